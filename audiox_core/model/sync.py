"""Time-aligned video conditioning: the picture's timing on the latent time axis.

AudioX gives the DiT the video only through cross-attention, with no shared time axis, so a model
must learn from content alone where in the window an impact is; a small one does not. Here, as
MMAudio does with its 24 fps sync features, each frame and its difference from the frame before
become a feature vector at the video rate; those are resampled to the latent frame rate (each latent
frame reads the picture at its own centre time) and added to the DiT's input tokens at the same
positions (``DiffusionTransformer.sync_proj``, zero-initialised, so a model with the option switched
on starts exactly as the one without). An onset head on the features gives the branch a task of its
own (``train.sync``) before the DiT learns to use it.

Frames: the conditioner's input (B, F, 3, S, S), values 0…255, frame j shown at j / fps − offset
seconds from the window's start (``offset`` ≥ 0 when the first frame starts before the window).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiox_core.model.config import SyncConfig


def latent_times(latent_frames: int, hop_s: float) -> torch.Tensor:
    """(T,) centre time in seconds of each latent frame from the window's start."""
    return (torch.arange(latent_frames, dtype=torch.float64) + 0.5) * hop_s


def resample_to_latents(
    features: torch.Tensor, fps: float, offset_s: torch.Tensor, latent_frames: int, hop_s: float
) -> torch.Tensor:
    """(B, F, D) per-frame features → (B, T, D): linear interpolation between the two frames around
    each latent frame's centre time, clamped to the first and last frame (as the conditioner repeats
    the last frame past the picture's end). ``offset_s`` (B,): how long before the window each
    item's first frame starts."""
    b, f, _ = features.shape
    times = latent_times(latent_frames, hop_s).to(features.device)  # (T,)
    position = (times[None] + offset_s.to(features.device, torch.float64)[:, None]) * float(fps)  # (B, T) frames
    position = position.clamp(0, f - 1)
    lower = position.floor().long().clamp(max=f - 1)
    upper = (lower + 1).clamp(max=f - 1)
    weight = (position - lower).to(features.dtype)[..., None]  # (B, T, 1)
    gather = lambda idx: torch.gather(features, 1, idx[..., None].expand(-1, -1, features.shape[-1]))  # noqa: E731
    return gather(lower) * (1 - weight) + gather(upper) * weight


class SyncEncoder(nn.Module):
    """Frames and frame differences → per-frame features (a small CNN per frame, then temporal
    convolutions across frames) → resampled to the latent grid; plus the onset head."""

    def __init__(self, cfg: SyncConfig) -> None:
        super().__init__()
        c, k = cfg.channels, cfg.kernel
        self.frame = nn.Sequential(
            nn.Conv2d(6, c, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1),
            nn.GELU(),
        )
        self.to_dim = nn.Linear(4 * c, cfg.dim)
        self.temporal = nn.ModuleList(nn.Conv1d(cfg.dim, cfg.dim, k, padding=k // 2) for _ in range(2))
        self.onset_head = nn.Linear(cfg.dim, 1)

    def per_frame(self, video: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, S, S) 0…255 → (B, F, dim)."""
        b, f = video.shape[:2]
        x = video / 255.0 - 0.5
        diff = torch.cat((torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]), dim=1)  # motion since the frame before
        h = self.frame(torch.cat((x, 4.0 * diff), dim=2).flatten(0, 1))  # (B·F, 2c, S/8, S/8)
        pooled = torch.cat((h.mean(dim=(2, 3)), h.amax(dim=(2, 3))), dim=1)  # (B·F, 4c)
        y = self.to_dim(pooled).view(b, f, -1).transpose(1, 2)  # (B, dim, F)
        for conv in self.temporal:
            y = y + F.gelu(conv(y))
        return y.transpose(1, 2)  # (B, F, dim)

    def forward(
        self, video: torch.Tensor, fps: float, offset_s: torch.Tensor, latent_frames: int, hop_s: float
    ) -> torch.Tensor:
        """(B, T, dim) features on the latent grid."""
        return resample_to_latents(self.per_frame(video), fps, offset_s, latent_frames, hop_s)

    def onset_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) → (B, T): how likely a sound starts in each latent frame."""
        return self.onset_head(features)[..., 0]
