"""Time-aligned video conditioning (ours, after MMAudio's sync features): the picture's timing on the latent axis."""

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
        """(B, T, dim) features on the latent grid from ``video`` (B, F, 3, S, S), 0…255, frame j shown at
        j / fps − ``offset_s`` seconds from the window's start."""
        return resample_to_latents(self.per_frame(video), fps, offset_s, latent_frames, hop_s)

    def onset_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) → (B, T): how likely a sound starts in each latent frame (the branch's own task while
        the DiT's zero-initialised ``sync_proj`` learns to read it)."""
        return self.onset_head(features)[..., 0]
