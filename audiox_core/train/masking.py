"""What a DiT training sample hides beyond whole modalities: the inpainting keep-mask (as stable-audio-tools trains)
and AudioX's masked multi-modal training (frame patches, caption words, audio-prompt segments)."""

from __future__ import annotations

import math

import torch

from audiox_core.model.conditioners import CLIP_MEAN

SEGMENTS_MAX = 3  # a random-segment mask makes 1…3 spans again
SEGMENT_SHARE = (0.1, 0.5)  # each span's length, as a share of the window
CAUSAL_SHARE = (0.1, 0.9)  # a causal mask's known prefix, as a share of the window


def _share(g: torch.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return low + (high - low) * float(torch.rand(1, generator=g))


def inpaint_keep(g: torch.Generator, frames: int, *, segments: float, causal: float) -> torch.Tensor:
    """(frames,) bool, True where the latent is known: with probability ``segments`` all but 1…3
    random spans, with probability ``causal`` a prefix, else nothing (plain generation)."""
    u = float(torch.rand(1, generator=g))
    keep = torch.zeros(frames, dtype=torch.bool)
    if u < segments:
        keep[:] = True
        for _ in range(int(torch.randint(1, SEGMENTS_MAX + 1, (1,), generator=g))):
            length = max(1, round(_share(g, SEGMENT_SHARE) * frames))
            start = int(torch.randint(0, frames - length + 1, (1,), generator=g))
            keep[start : start + length] = False
    elif u < segments + causal:
        keep[: round(_share(g, CAUSAL_SHARE) * frames)] = True
    return keep


def mask_patches(g: torch.Generator, video: torch.Tensor, rate: float, patch: int) -> torch.Tensor:
    """``video`` (F, 3, S, S), values 0…255, with each frame's patches of the tower's grid replaced by
    CLIP's mean colour with probability ``rate`` each (pixels past the last whole patch, which the
    tower's strided convolution never reads, stay)."""
    frames, _, size, _ = video.shape
    grid = size // patch
    hidden = torch.rand(frames, grid, grid, generator=g) < rate  # (F, grid, grid)
    pixels = torch.zeros(frames, size, size, dtype=torch.bool)
    pixels[:, : grid * patch, : grid * patch] = hidden.repeat_interleave(patch, 1).repeat_interleave(patch, 2)
    mean = torch.tensor(CLIP_MEAN, dtype=video.dtype).view(1, 3, 1, 1) * 255.0
    return torch.where(pixels[:, None], mean, video)


def drop_words(g: torch.Generator, caption: str, rate: float) -> str:
    """``caption`` with each of its words dropped with probability ``rate``."""
    words = caption.split()
    kept = (torch.rand(len(words), generator=g) >= rate).tolist()
    return " ".join(w for w, k in zip(words, kept) if k)


def silence_segments(g: torch.Generator, prompt: torch.Tensor, rate: float, segment: int) -> torch.Tensor:
    """``prompt`` (C, N) with each run of ``segment`` samples (from its start) silenced with probability ``rate``."""
    n = prompt.shape[-1]
    hidden = torch.rand(math.ceil(n / segment), generator=g) < rate
    return prompt.masked_fill(hidden.repeat_interleave(segment)[:n], 0.0)
