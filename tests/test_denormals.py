"""No subnormal floats in the mix's recursive state after digital silence.

A recursive filter fed zeros decays into subnormal floats and, in float32, settles into a limit
cycle there instead of reaching zero; Intel cores compute on subnormals ~50× slower, which made the
two-hour mix bench five times slower after every pause in the dialogue.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from audiox_core.sound.ducking import DuckingSettings, ducking_curve
from audiox_core.sound.loudness import K_WEIGHTING_48K, KWeighting, LoudnessMeter

RATE = 48_000


def subnormal(x: np.ndarray) -> np.ndarray:
    return (x != 0) & (np.abs(x) < np.finfo(x.dtype).tiny)


def burst_then_silence(silence_s: float) -> np.ndarray:
    burst = (0.5 * np.random.default_rng(0).standard_normal((2, RATE))).astype(np.float32)
    return np.concatenate((burst, np.zeros((2, round(silence_s * RATE)), np.float32)), axis=1)


def test_meter_filter_state_holds_no_subnormal_after_a_burst_and_a_long_silence() -> None:
    audio = burst_then_silence(10.0)
    meter = LoudnessMeter(2)
    for start in range(0, audio.shape[1], 4 * RATE):  # the mix's 4 s blocks
        meter.add(audio[:, start : start + 4 * RATE])
        assert not subnormal(meter.weighting.state).any(), (start, meter.weighting.state)
    assert not meter.weighting.state.any()  # settled: exactly zero


def test_k_weighted_silence_settles_to_exact_zeros_within_a_second() -> None:
    weighted = KWeighting(2)(burst_then_silence(6.0))
    assert not weighted[:, 2 * RATE :].any()  # one second after the burst ends


def test_k_weighting_equals_one_scipy_pass_within_the_smallest_normal_float() -> None:
    """Blocks of any size, pauses of any length: the outputs are scipy's over the whole signal
    (up to values below the smallest normal float32, ~1e-38, far below 24-bit resolution)."""
    rng = np.random.default_rng(1)
    lengths = (5_000, 70_000, 20_000, 200_000, 9_000)  # sound and silence in turn
    parts = [(0.3 * rng.standard_normal((2, n))).astype(np.float32) * (i % 2) for i, n in enumerate(lengths)]
    audio = np.concatenate(parts, axis=1)
    reference = signal.sosfilt(K_WEIGHTING_48K.astype(np.float32), audio, axis=1)
    weighting, start, out = KWeighting(2), 0, []
    for n in (1, 4_799, 100_000, 7, 192_000):
        out.append(weighting(audio[:, start : start + n]))
        start += n
    out.append(weighting(audio[:, start:]))
    assert np.abs(np.concatenate(out, axis=1) - reference).max() < np.finfo(np.float32).tiny


def test_ducking_gain_holds_no_subnormal_after_the_dialogue_stops() -> None:
    levels = np.concatenate((np.full(100, -20.0), np.full(60_000, -np.inf)))  # 1 s of dialogue, 10 min without
    gain = ducking_curve(levels, DuckingSettings())
    assert gain.min() < -8.0 and not subnormal(gain).any()
    assert gain[-1] == 0.0
