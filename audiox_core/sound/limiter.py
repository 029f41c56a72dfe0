"""A true-peak limiter (BS.1770-4 Annex 2 peaks, 4× oversampled): the mix never exceeds the ceiling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d

from audiox_core.sound.audio import MIX_RATE, sample_peak
from audiox_core.sound.truepeak import OVERSHOOT, envelope_where

MARGIN_DB = 0.1  # below the ceiling, for the interpolator's own error


@dataclass(frozen=True)
class LimiterSettings:
    ceiling_dbtp: float = -1.0
    lookahead_ms: float = 5.0
    release_ms: float = 50.0
    rate: int = MIX_RATE

    @property
    def lookahead(self) -> int:
        return max(2, round(self.lookahead_ms * self.rate / 1000))

    @property
    def release(self) -> int:
        return max(self.lookahead, round(self.release_ms * self.rate / 1000))

    @property
    def context(self) -> int:
        """Samples of neighbouring audio each side that a block's gain depends on."""
        return self.release + 2 * self.lookahead


def limiter_gain(audio: np.ndarray, before: np.ndarray, after: np.ndarray, settings: LimiterSettings) -> np.ndarray:
    """Gain per sample (N,) for (C, N) ``audio`` given up to ``settings.context`` samples of context each side: the
    least gain needed over [n − release, n + lookahead], averaged over the lookahead, and never above what its own
    sample needs, so no peak escapes (reductions ramp in over the lookahead and hold for the release)."""
    la, rel = settings.lookahead, settings.release
    ceiling = 10 ** ((settings.ceiling_dbtp - MARGIN_DB) / 20)
    if max(sample_peak(before), sample_peak(audio), sample_peak(after)) * OVERSHOOT < ceiling:
        return np.ones(audio.shape[1], np.float32)  # nothing near the ceiling: the usual case at −23 LUFS
    x = np.concatenate((before, audio, after), axis=1)
    env = envelope_where(x, ceiling)  # linked channels; oversampled only near the ceiling
    needed = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    # Window [n − rel, n + la]: minimum_filter1d centres its window, so shift by the asymmetry.
    size = rel + la + 1
    held = minimum_filter1d(needed, size=size, origin=(rel - la) // 2, mode="nearest")
    cumulative = np.concatenate(([0.0], np.cumsum(held, dtype=np.float64)))
    half = la // 2
    lo = np.clip(np.arange(len(held)) - half, 0, len(held))
    hi = np.clip(np.arange(len(held)) + half + 1, 0, len(held))
    smooth = (cumulative[hi] - cumulative[lo]) / (hi - lo)
    start = before.shape[1]
    return np.minimum(smooth, needed)[start : start + audio.shape[1]].astype(np.float32)
