"""The diffusion objective the sampler expects (stable-audio-tools' ``diffusion_objective="v"``, cosine schedule) and
the condition dropout that makes one model serve video→audio, text→audio and continuation."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from audiox_core.model.dit import DiffusionTransformer


def sample_generator(seed: int, stage: str, step: int, index: int) -> torch.Generator:
    """The generator of sample ``index`` of ``step``: independent of batch layout and process count."""
    key = zlib.crc32(f"{stage}:{step}:{index}".encode())
    return torch.Generator().manual_seed((seed * 1_000_003 + key) % 2**63)


def step_generator(seed: int, stage: str, step: int) -> torch.Generator:
    """The generator that draws which examples make up ``step``'s global batch (identical on every rank)."""
    return sample_generator(seed, f"{stage}/batch", step, 0)


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The cosine schedule: α = cos(πt/2), σ = sin(πt/2)."""
    return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)


def v_loss(
    dit: DiffusionTransformer,
    x0: torch.Tensor,
    cond: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    sync: torch.Tensor | None = None,
    pooled: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error of v = α·ε − σ·x₀ at x_t = α·x₀ + σ·ε over the whole window (``AudioX.denoise``
    inverts it with σ = tan(πt/2)); x0, noise (B, C, T), cond (B, S, D) raw tokens, t (B,), sync (B, T, sync_dim)
    or None, pooled (B, D) global condition or None, known (B, 1 + C, T) an inpainting DiT's input or None."""
    alpha, sigma = (a[:, None, None] for a in alpha_sigma(t))
    x_t = alpha * x0 + sigma * noise
    target = alpha * noise - sigma * x0
    v = dit(x_t, t, cond, sync=sync, pooled=pooled, known=known)  # (B, C, T)
    return ((v.float() - target) ** 2).mean()


@dataclass(frozen=True)
class Dropped:
    """Which conditions one training sample loses: an all-zero video or audio prompt selects the learned empty
    feature, an empty caption the text encoder's empty sequence."""

    everything: bool  # the CFG null condition: all-zero raw tokens, what ``DiffusionTransformer.guided`` feeds
    video: bool
    text: bool
    audio: bool


def draw_dropout(g: torch.Generator, *, cfg: float, video: float, text: float, audio: float) -> Dropped:
    """Independent Bernoulli draws, in a fixed order, from the sample's generator."""
    u = torch.rand(4, generator=g).tolist()
    return Dropped(u[0] < cfg, u[1] < video, u[2] < text, u[3] < audio)


def onset_loss(logits: torch.Tensor, onsets: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the sync branch's onset head (B, T) against the real sound's onset
    frames (B, T), over the windows that have their picture (positives weighted by their rarity)."""
    if not present.any():
        return logits.new_zeros(())
    logits, onsets = logits[present], onsets[present]
    weight = ((1 - onsets).sum() / onsets.sum().clamp_min(1.0)).clamp(1.0, 50.0)
    return F.binary_cross_entropy_with_logits(logits, onsets, pos_weight=weight)
