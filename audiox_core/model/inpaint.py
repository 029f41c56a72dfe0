"""Regenerating spans of a cue: the sampler steered to the previous latents outside them (stable-audio-tools'
approach, any model), optionally a DiT trained with inpainting channels, and the samples spliced."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from audiox_core.errors import InputError
from audiox_core.model.sampling import Denoiser

EDGE_FADE_S = 0.025  # each edge's crossfade, inside the span (the issue allows ≤ 50 ms)


@dataclass(frozen=True)
class Span:
    """Seconds from the cue's start: [start_s, end_s) is regenerated."""

    start_s: float
    end_s: float


def checked_spans(spans: Sequence[Span], cue_s: float, min_s: float, where: str) -> list[Span]:
    """The spans sorted; one line naming ``where`` and the span for one outside the cue, inverted,
    shorter than ``min_s`` (one latent frame) or overlapping another."""
    out = sorted(spans, key=lambda s: s.start_s)
    for s in out:
        label = f"{where}: span {s.start_s:.3f}–{s.end_s:.3f} s"
        if not (math.isfinite(s.start_s) and math.isfinite(s.end_s)):
            raise InputError(f"{label} is not a finite time")
        if s.end_s <= s.start_s:
            raise InputError(f"{label} ends before it starts")
        if s.start_s < 0 or s.end_s > cue_s + 1e-9:
            raise InputError(f"{label} lies outside the cue (0–{cue_s:.3f} s)")
        if s.end_s - s.start_s < min_s:
            raise InputError(f"{label} is shorter than one latent frame ({min_s * 1000:.0f} ms)")
    for a, b in zip(out, out[1:]):
        if b.start_s < a.end_s:
            raise InputError(
                f"{where}: span {b.start_s:.3f}–{b.end_s:.3f} s overlaps span {a.start_s:.3f}–{a.end_s:.3f} s"
            )
    return out


def keep_mask(spans: Sequence[Span], frames: int, hop_s: float, offset_s: float = 0.0) -> Tensor:
    """(frames,) bool: True where latent frame k (covering offset_s + [k, k + 1) · hop_s) lies wholly
    outside every span, so its previous latent is kept; a frame a span touches is regenerated."""
    starts = offset_s + torch.arange(frames, dtype=torch.float64) * hop_s
    ends = starts + hop_s
    keep = torch.ones(frames, dtype=torch.bool)
    for s in spans:
        keep &= (ends <= s.start_s) | (starts >= s.end_s)
    return keep


def guided(denoise: Denoiser, known: Tensor, keep: Tensor, noise: Tensor) -> Denoiser:
    """``denoise`` steered to ``known`` (B, C, T) where ``keep`` (T,) or (B, 1, T) is True: the state there is
    ``known + σ · noise`` (one fixed draw) and the estimate ``known``, so any sampler that lands on the
    estimate at σ = 0 ends on ``known`` there, and the model fills the spans to agree at every noise level."""
    mask = keep.reshape(1, 1, -1) if keep.dim() == 1 else keep

    def inner(x: Tensor, sigma: Tensor) -> Tensor:
        x = torch.where(mask, known + sigma * noise, x)
        return torch.where(mask, known, denoise(x, sigma))

    return inner


def channels_input(known: Tensor, keep: Tensor) -> Tensor:
    """(B, 1 + C, T): an inpainting DiT's extra input, the keep-mask (B, 1, T) then ``known`` (B, C, T)
    where it is kept and zero elsewhere; all zeros for a row with nothing kept (plain generation)."""
    mask = keep.to(known.dtype)
    return torch.cat((mask, known * mask), dim=1)


def splice(previous: np.ndarray, new: np.ndarray, spans: Sequence[Span], rate: int) -> np.ndarray:
    """(C, N) audio: ``previous`` outside the spans, bit for bit; ``new`` inside, with linear
    crossfades of ``EDGE_FADE_S`` (at most a third of the span each) just inside each edge that is
    not the audio's own start or end."""
    if previous.shape != new.shape:
        raise ValueError(f"splice: shapes differ {previous.shape} vs {new.shape}")
    out = previous.copy()
    n = previous.shape[-1]
    for s in spans:
        a, b = max(0, int(round(s.start_s * rate))), min(n, int(round(s.end_s * rate)))
        if b <= a:
            continue
        fade = min(int(round(EDGE_FADE_S * rate)), (b - a) // 3)
        gain = np.ones(b - a, dtype=np.float64)
        if fade > 0:  # an edge at the audio's own start or end joins nothing: no crossfade there
            ramp = (np.arange(fade) + 0.5) / fade
            if a > 0:
                gain[:fade] = ramp
            if b < n:
                gain[-fade:] = ramp[::-1]
        inside = previous[..., a:b] * (1 - gain) + new[..., a:b] * gain
        out[..., a:b] = inside.astype(previous.dtype)
    return out
