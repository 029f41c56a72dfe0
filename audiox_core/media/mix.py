"""The soundtrack mix: cues placed sample-exactly on stems, stems summed by pydub on a 32-bit bus.

Each generated cue is levelled to a peak, faded at its edges and placed at the sample where its
scene starts (computed from the frame index and the exact frame rate, never accumulated). The
stems are summed with per-stem gains; if the sum would exceed the ceiling, mix and stems are
scaled by one common gain so that the stems still sum to the mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from audiox_core.media.audio import from_segment, to_segment

FOLEY, MUSIC, DIALOGUE = "foley", "music", "dialogue"


@dataclass(frozen=True)
class PlacedCue:
    kind: str
    start: int  # first sample on the timeline
    audio: np.ndarray  # (2, N) float32 at the mix rate


@dataclass(frozen=True)
class MixSettings:
    rate: int = 48_000
    cue_peak_dbfs: float = -6.0
    stem_gain_db: dict[str, float] = field(default_factory=lambda: {DIALOGUE: 0.0, FOLEY: -6.0, MUSIC: -12.0})
    fade_ms: float = 10.0
    ceiling_dbfs: float = -1.0


@dataclass(frozen=True)
class MixResult:
    mix: np.ndarray
    stems: dict[str, np.ndarray]
    gain_db: float
    peak_dbfs: float


def _db(gain: float) -> float:
    return 20 * np.log10(max(gain, 1e-12))


def level_cue(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale a cue so its peak sits at ``peak_dbfs`` (silence stays silence)."""
    peak = float(np.abs(audio).max(initial=0.0))
    return audio if peak == 0 else (audio * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


def build_stem(cues: Sequence[PlacedCue], total: int, rate: int, fade_ms: float) -> np.ndarray:
    """(2, total) float32 with every cue added at its start sample, with linear fades on its edges."""
    stem = np.zeros((2, total), np.float32)
    for cue in cues:
        n = min(cue.audio.shape[1], total - cue.start)
        if n <= 0:
            continue
        audio = cue.audio[:, :n].copy()
        fade = min(int(rate * fade_ms / 1000), n // 2)
        if fade:
            ramp = np.linspace(0, 1, fade, dtype=np.float32)
            audio[:, :fade] *= ramp
            audio[:, n - fade :] *= ramp[::-1]
        stem[:, cue.start : cue.start + n] += audio
    return stem


def mix_stems(stems: dict[str, np.ndarray], settings: MixSettings) -> MixResult:
    """Apply stem gains and sum with pydub on a 32-bit bus; one common gain keeps the peak under the ceiling."""
    segments = {k: to_segment(a, settings.rate).apply_gain(settings.stem_gain_db.get(k, 0.0)) for k, a in stems.items()}
    bus = None
    for segment in segments.values():
        bus = segment if bus is None else bus.overlay(segment)
    gained = {k: from_segment(s) for k, s in segments.items()}
    mix = from_segment(bus)
    peak = float(np.abs(mix).max(initial=0.0))
    ceiling = 10 ** (settings.ceiling_dbfs / 20)
    gain = ceiling / peak if peak > ceiling else 1.0
    return MixResult(
        mix=mix * gain,
        stems={k: a * gain for k, a in gained.items()},
        gain_db=_db(gain),
        peak_dbfs=_db(peak * gain),
    )
