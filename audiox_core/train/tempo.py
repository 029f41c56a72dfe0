"""Tempo from the autocorrelation of the onset strength: how a music completion is checked against
the sketch it continues (the continuation should keep the sketch's beat)."""

from __future__ import annotations

import numpy as np
import torch

from audiox_core.train.evaluation import onset_strength

BPM_RANGE = (60.0, 200.0)  # a beat period of 0.3–1 s: the lags searched


def tempo_bpm(audio: np.ndarray | torch.Tensor, rate: int, bpm_range: tuple[float, float] = BPM_RANGE) -> float:
    """The beat rate of ``audio`` in beats per minute: the lag of the largest autocorrelation of its
    (mean-removed) onset strength within ``bpm_range``, refined between frames by a parabola; NaN for
    a sound with no onsets to speak of."""
    flux, hop_s = onset_strength(audio, rate)
    x = flux.astype(np.float64) - float(flux.mean())
    if x.size < 4 or not np.any(x):
        return float("nan")
    spectrum = np.fft.rfft(x, 2 * x.size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: x.size]
    acf /= np.arange(x.size, 0, -1)  # unbiased: long lags have fewer products
    lo = max(1, int(np.floor(60.0 / bpm_range[1] / hop_s)))
    hi = min(x.size - 2, int(np.ceil(60.0 / bpm_range[0] / hop_s)))
    if hi <= lo:
        return float("nan")
    k = lo + int(np.argmax(acf[lo : hi + 1]))
    a, b, c = acf[k - 1], acf[k], acf[k + 1]
    shift = float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5)) if (a - 2 * b + c) < 0 else 0.0
    return 60.0 / ((k + shift) * hop_s)


def tempo_ratio(continuation: float, sketch: float) -> float:
    """The continuation's tempo over the sketch's, folded to the octave nearest 1 (a half- or
    double-time reading of the same beat is the same tempo)."""
    ratio = continuation / sketch
    while ratio > 1.5:
        ratio /= 2
    while ratio < 0.75:
        ratio *= 2
    return ratio
