"""Loudness to broadcast spec, measured in a stream of blocks: ITU-R BS.1770-4 integrated loudness, EBU Tech 3342
loudness range, BS.1770-4 Annex 2 true peak (``truepeak.py``), R128/A85 presets."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from audiox_core.sound.audio import sample_peak
from audiox_core.sound.truepeak import TruePeak


@dataclass(frozen=True)
class StemLoudness:
    """ITU-R BS.1770 figures of one stem or of the mix, as written."""

    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float


@dataclass(frozen=True)
class LoudnessReport:
    """What mastering did and measured (``loudness.json``); ``outputs`` holds every stem and ``mix``."""

    preset: str
    target_lufs: float
    ceiling_dbtp: float
    normalization_gain_db: float
    stems_offset_db: float
    max_gain_reduction_db: float
    limited_seconds: float
    outputs: dict[str, StemLoudness]
    samples: int

    @property
    def mix(self) -> StemLoudness:
        return self.outputs["mix"]

    @property
    def stems(self) -> dict[str, StemLoudness]:
        return {k: v for k, v in self.outputs.items() if k != "mix"}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LoudnessReport:
        return cls(**{**values, "outputs": {k: StemLoudness(**v) for k, v in values["outputs"].items()}})


@dataclass(frozen=True)
class Preset:
    name: str
    integrated_lufs: float
    true_peak_dbtp: float


PRESETS = {
    p.name: p
    for p in (
        Preset("ebu-r128", -23.0, -1.0),  # EBU R128: −23 LUFS, −1 dBTP
        Preset("atsc-a85", -24.0, -2.0),  # ATSC A/85: −24 LKFS, −2 dBTP
        Preset("streaming-14", -14.0, -1.0),
        Preset("streaming-16", -16.0, -1.0),
    )
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown loudness preset {name!r} (known: {', '.join(PRESETS)})") from None


# BS.1770-4 K-weighting at 48 kHz (Tables 1 and 2): the head's high shelf, then the RLB high-pass,
# as second-order sections (b0, b1, b2, a0, a1, a2).
K_WEIGHTING_48K = np.array(
    [
        [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
        [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
    ]
)
RATE = 48_000  # the rate the K-weighting coefficients above are for: the meter measures at this rate only


def _loudness(mean_square: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(mean_square)


TINY = np.finfo(np.float32).tiny  # the smallest normal float32, ~1.2e-38: 10⁻³¹ of a 24-bit step
PIECE = RATE // 10  # in digital silence the filter runs in 100 ms pieces, its state flushed after each


class KWeighting:
    """The BS.1770-4 K-weighting filter over a stream of (C, N) blocks (state kept between blocks),
    denormal-free: after every piece its state is flushed to zero below ``TINY``, so at most one
    piece per pause is computed on subnormals, and silence into a settled filter is zeros without
    filtering. Equal to one float32 pass of scipy's filter up to values below ``TINY``."""

    def __init__(self, channels: int, rate: int = RATE) -> None:
        if rate != RATE:
            raise ValueError(f"loudness is measured on the 48 kHz deliverables, not {rate} Hz")
        self.sos = K_WEIGHTING_48K.astype(np.float32)
        self.state = np.zeros((self.sos.shape[0], channels, 2), np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        # float32 filtering: its error (~1e-7 relative) is far below the 0.01 LU we report.
        x = audio.astype(np.float32, copy=False)
        parts = [self._filter(x[:, a:b]) for a, b in _pieces(x)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _filter(self, x: np.ndarray) -> np.ndarray:
        if not self.state.any() and not x.any():
            return np.zeros_like(x)  # exactly what the filter would compute
        weighted, self.state = signal.sosfilt(self.sos, x, axis=1, zi=self.state)
        # flushed here, not by an FTZ flag: that is per thread, and only threads made after it inherit it
        self.state[np.abs(self.state) < TINY] = 0.0
        return weighted


def _pieces(x: np.ndarray) -> list[tuple[int, int]]:
    """Samples [0, N) of (C, N) ``x`` cut at the multiples of PIECE where every channel is zero: one
    piece for sound, 100 ms pieces through digital silence (a stray zero in sound costs one cut)."""
    probes = np.arange(PIECE, x.shape[1], PIECE)
    bounds = [0, *probes[~x[:, probes].any(axis=0)].tolist(), x.shape[1]]
    return list(itertools.pairwise(bounds))


class Measurement:
    """The loudness figures of one signal, from its K-weighted blocks: mean-square power per 100 ms
    sub-block, true peak and sample peak. Reports can be read at any gain (powers scale by the gain
    squared, peaks by the gain, the gates follow), and measurements of consecutive stretches of a
    timeline join with ``extend`` when each stretch is a whole number of sub-blocks."""

    def __init__(self, channels: int, rate: int = RATE, true_peak: bool = True) -> None:
        self.channels, self.step = channels, rate // 10  # 100 ms
        self.carry = np.zeros((channels, 0), np.float32)
        self.sub_blocks: list[np.ndarray] = []  # mean square per 100 ms, summed over channels (weights 1)
        self.true_peak = TruePeak(channels) if true_peak else None
        self.sample_peak = 0.0

    def add(self, audio: np.ndarray, weighted: np.ndarray, record: bool = True) -> None:
        """Feed a block and its K-weighted version; ``record=False`` only updates the peaks (a warm-up)."""
        if self.true_peak is not None:
            self.true_peak.add(audio)
        self.sample_peak = max(self.sample_peak, sample_peak(audio))
        if not record:
            return
        x = np.concatenate((self.carry, weighted), axis=1) if self.carry.shape[1] else weighted
        whole = x.shape[1] // self.step * self.step
        if whole:
            blocks = x[:, :whole].reshape(self.channels, -1, self.step)
            squares = np.einsum("cbs,cbs->cb", blocks, blocks) / self.step  # (C, blocks)
            self.sub_blocks.append(squares.sum(axis=0))
        self.carry = x[:, whole:]

    def add_known(self, audio: np.ndarray, powers: np.ndarray) -> None:
        """Feed a block whose sub-block powers are already known (whole sub-blocks only)."""
        assert not self.carry.shape[1] and len(powers) == audio.shape[1] // self.step, (self.carry.shape, len(powers))
        self.add(audio, audio[:, :0], record=False)
        self.sub_blocks.append(powers)
        self.carry = audio[:, len(powers) * self.step :]  # (a last partial sub-block: dropped, as in add)

    def powers(self) -> np.ndarray:
        """Mean-square power of every whole 100 ms sub-block so far."""
        return np.concatenate(self.sub_blocks) if self.sub_blocks else np.zeros(0)

    def extend(self, later: Measurement) -> None:
        """Append the measurement of the stretch that follows this one."""
        assert not self.carry.shape[1], "only whole 100 ms sub-blocks can be joined"
        self.sub_blocks.extend(later.sub_blocks)
        self.carry = later.carry
        self.sample_peak = max(self.sample_peak, later.sample_peak)
        if self.true_peak is not None and later.true_peak is not None:
            self.true_peak.extend(later.true_peak)

    def _windows(self, length: int, gain: float) -> np.ndarray:
        """Mean-square power of every window of ``length`` sub-blocks (hop: one sub-block)."""
        subs = np.concatenate(self.sub_blocks) * gain**2 if self.sub_blocks else np.zeros(0)
        if len(subs) < length:
            return np.zeros(0)
        cumulative = np.concatenate(([0.0], np.cumsum(subs)))
        return (cumulative[length:] - cumulative[:-length]) / length

    def integrated(self, gain: float = 1.0) -> float:
        """Gated integrated loudness in LUFS (−inf for silence or under 400 ms): BS.1770-4, 400 ms blocks every
        100 ms, absolute gate −70 LUFS, relative gate −10 LU."""
        power = self._windows(4, gain)
        power = power[_loudness(power) > -70]
        if not len(power):
            return -math.inf
        power = power[_loudness(power) > _loudness(np.array([power.mean()]))[0] - 10]
        return float(_loudness(np.array([power.mean()]))[0])

    def loudness_range(self, gain: float = 1.0) -> float:
        """EBU Tech 3342 loudness range in LU (0 when too short or silent): 3 s short-term blocks every 100 ms,
        gates −70 LUFS and −20 LU, 95th minus 10th percentile."""
        short_term = _loudness(self._windows(30, gain))
        short_term = short_term[short_term > -70]
        if len(short_term) < 2:
            return 0.0
        mean = _loudness(np.array([np.mean(10 ** ((short_term + 0.691) / 10))]))[0]
        short_term = short_term[short_term > mean - 20]
        if len(short_term) < 2:
            return 0.0
        low, high = np.percentile(short_term, [10, 95])
        return float(high - low)

    def report(self, gain: float = 1.0) -> StemLoudness:
        """Integrated loudness, loudness range and true peak of the signal scaled by ``gain`` (the true
        peak measured here, or joined in from the ranges that measured it)."""
        assert self.true_peak is not None, (
            "a report needs the true peak: measure it, or set it from the ranges that did"
        )
        peak = self.true_peak.final * gain
        return StemLoudness(
            integrated_lufs=round(self.integrated(gain), 2),
            loudness_range_lu=round(self.loudness_range(gain), 2),
            true_peak_dbtp=round(20 * math.log10(peak), 2) if peak > 0 else -math.inf,
        )


class LoudnessMeter(Measurement):
    """Feed (C, N) float blocks at 48 kHz; read integrated loudness, loudness range and true peak."""

    def __init__(self, channels: int, rate: int = RATE, true_peak: bool = True) -> None:
        super().__init__(channels, rate, true_peak)
        self.weighting = KWeighting(channels, rate)

    def add(self, audio: np.ndarray, weighted: np.ndarray | None = None, record: bool = True) -> None:
        super().add(audio, self.weighting(audio) if weighted is None else weighted, record)
