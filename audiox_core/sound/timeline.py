"""Where each cue goes on the 48 kHz timeline, to the sample (PTS times converted once, never accumulated)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, get_args

import numpy as np

from audiox_core.sound.audio import MIX_RATE
from audiox_core.validation import above, at_least, check_fields

CueKind = Literal["foley", "music"]
CUE_KINDS: tuple[CueKind, ...] = get_args(CueKind)  # a scene's cues, in the order they are planned (and seeded)
FOLEY: CueKind = "foley"
MUSIC: CueKind = "music"
DIALOGUE = "dialogue"  # the reel's own audio: a stem, not a cue


@dataclass(frozen=True)
class TimelineSettings:
    rate: int = field(default=MIX_RATE, metadata=above(0))
    music_crossfade_s: float = field(default=1.0, metadata=at_least(0))
    foley_fade_ms: float = field(default=10.0, metadata=at_least(0))
    edge_fade_ms: float = field(
        default=50.0, metadata=at_least(0)
    )  # music fade in at the reel's start and out at its end

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Placement:
    """One cue on the timeline: [start, start + length) samples, with fades at both ends."""

    scene_index: int
    kind: CueKind
    start: int
    length: int
    fade_in: int
    fade_out: int
    equal_power: bool
    gain_db: float = 0.0


def to_sample(seconds: float, rate: int) -> int:
    return round(seconds * rate)


@dataclass(frozen=True)
class CueSpan:
    """A cue's span on the reel (seconds, the container's timeline) and its gain, as the cue sheet says."""

    scene_index: int  # the scene it starts in
    kind: CueKind
    start_s: float
    end_s: float
    gain_db: float = 0.0


def place_cues(spans: Sequence[CueSpan], settings: TimelineSettings = TimelineSettings()) -> list[Placement]:
    """Placements for cue sheet spans: Foley covers its span with short linear fades; a music cue that
    meets the next one reaches half a crossfade across their boundary (equal power, centred on it, at
    most half of either cue), and fades in or out over the edge fade where no music cue meets it."""
    rate = settings.rate
    half = to_sample(settings.music_crossfade_s / 2, rate)
    foley_fade = to_sample(settings.foley_fade_ms / 1000, rate)
    edge = to_sample(settings.edge_fade_ms / 1000, rate)
    music = sorted((s for s in spans if s.kind == MUSIC), key=lambda s: s.start_s)
    bounds = {id(s): (to_sample(s.start_s, rate), to_sample(s.end_s, rate)) for s in spans}
    placements = []
    for s in spans:
        a, b = bounds[id(s)]
        if s.kind != MUSIC:
            fade = min(foley_fade, (b - a) // 2)
            placements.append(Placement(s.scene_index, s.kind, a, b - a, fade, fade, False, s.gain_db))
            continue
        i = music.index(s)
        before = bounds[id(music[i - 1])] if i > 0 and bounds[id(music[i - 1])][1] == a else None
        after = bounds[id(music[i + 1])] if i + 1 < len(music) and bounds[id(music[i + 1])][0] == b else None
        left = min(half, (b - a) // 2, (a - before[0]) // 2) if before else 0
        right = min(half, (b - a) // 2, (after[1] - b) // 2) if after else 0
        fade_in = 2 * left if before else min(edge, (b - a) // 2)
        fade_out = 2 * right if after else min(edge, (b - a) // 2)
        placements.append(
            Placement(s.scene_index, MUSIC, a - left, (b + right) - (a - left), fade_in, fade_out, True, s.gain_db)
        )
    return sorted(placements, key=lambda p: (p.scene_index, p.kind))


@lru_cache(maxsize=64)
def _ramp(n: int, equal_power: bool) -> np.ndarray:
    u = (np.arange(n, dtype=np.float64) + 0.5) / n
    ramp = (np.sin(u * np.pi / 2) if equal_power else u).astype(np.float32)
    ramp.flags.writeable = False  # shared between cues (cached)
    return ramp


def apply_envelope(audio: np.ndarray, p: Placement) -> np.ndarray:
    """Shape (C, p.length) ``audio`` in place with the cue's fades (sin/cos for music: equal power,
    so two overlapping cues keep a constant total power) and its gain; returns it."""
    if p.gain_db:
        audio *= np.float32(10 ** (p.gain_db / 20))
    if p.fade_in > 0:
        audio[:, : p.fade_in] *= _ramp(p.fade_in, p.equal_power)
    if p.fade_out > 0:
        audio[:, p.length - p.fade_out :] *= _ramp(p.fade_out, p.equal_power)[::-1]
    return audio
