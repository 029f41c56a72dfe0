"""Sidechain ducking: music and Foley dip under the dialogue, only where dialogue is present."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRAME_S = 0.01
TINY = float(np.finfo(np.float64).tiny)  # the smallest normal float64


@dataclass(frozen=True)
class DuckingSettings:
    depth_db: float = 9.0
    threshold_dbfs: float = -45.0
    attack_ms: float = 80.0
    release_ms: float = 400.0
    hold_ms: float = 150.0
    enabled: bool = True


def frame_levels(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS level in dBFS of each whole ``frame``-sample frame (loudest channel)."""
    n = audio.shape[1] // frame * frame
    power = (audio[:, :n].astype(np.float64) ** 2).reshape(audio.shape[0], -1, frame).mean(axis=2).max(axis=0)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(power)


def ducking_curve(levels_db: np.ndarray, settings: DuckingSettings) -> np.ndarray:
    """Gain in dB per frame (0 or below) from the dialogue's frame levels: frames above the threshold (held to
    bridge syllables) ask for ``depth`` dB, and the gain follows that target with attack and release, in dB."""
    present = levels_db > settings.threshold_dbfs
    hold = round(settings.hold_ms / 1000 / FRAME_S)
    if hold and present.any():
        # A frame counts as dialogue when any frame within ``hold`` before it does.
        present = np.convolve(present.astype(np.int32), np.ones(hold + 1, np.int32))[: len(present)] > 0
    target = np.where(present, -settings.depth_db, 0.0)
    attack = math.exp(-FRAME_S / (settings.attack_ms / 1000))
    release = math.exp(-FRAME_S / (settings.release_ms / 1000))
    gain = np.empty_like(target)
    g = 0.0
    for i, t in enumerate(target):  # one float per 10 ms: 720 000 steps for two hours
        a = attack if t < g else release
        g = a * g + (1 - a) * t
        if -TINY < g < TINY:  # released: 0 dB exactly (left alone, it would hold a subnormal for ever)
            g = 0.0
        gain[i] = g
    return gain


def gain_for_samples(curve: np.ndarray, start: int, n: int, frame: int) -> np.ndarray:
    """Gain for samples [start, start + n) from a per-frame linear gain ``curve`` (10^(dB/20) of
    ``ducking_curve``): within each frame, a straight line from that frame's gain to the next
    one's (``start`` is a multiple of ``frame``)."""
    if not len(curve):
        return np.ones(n, np.float32)
    first = start // frame
    count = -(-n // frame)
    gains = curve[np.clip(np.arange(first, first + count + 1), 0, len(curve) - 1)].astype(np.float32)
    ramp = np.arange(frame, dtype=np.float32) / np.float32(frame)
    per_frame = gains[:-1, None] + (gains[1:] - gains[:-1])[:, None] * ramp[None, :]
    return per_frame.reshape(-1)[:n]
