"""Synthetic DAW reels for the timeline tests and bench/daw_bench.py: long cue lists placed as the mix places them, no generation."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from audiox_core.reel.daw_reel import DawCue, DawReel, DawSettings
from audiox_core.sound.audio import MIX_RATE, write_wav24
from audiox_core.sound.timeline import Placement, to_sample
from audiox_core.video.scenes import Scene
from audiox_core.video.timecode import timecode


def long_reel(
    fps: Fraction,
    hours: float = 2.0,
    scene_s: float = 10.0,
    cue_s: float | None = 0.25,
    start: str = "01:00:00:00",
) -> DawReel:
    """A reel of ``hours`` cut every ~``scene_s`` (scene lengths vary by a few frames), a Foley cue
    at every scene start (``cue_s`` long, or the whole scene for None) and music cues of four scenes
    that crossfade into each other as the mix makes them; every place computed from the cut's frame."""
    frames = round(hours * 3600 * fps)
    step = round(scene_s * fps)
    cuts = list(range(0, frames, step))
    bounds = [c + (i % 3) for i, c in enumerate(cuts)] + [frames]
    bounds[0] = 0
    scenes = tuple(
        Scene(i, a, b, float(a / fps), float(b / fps), timecode(a, fps), timecode(b, fps))
        for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    )
    at = [to_sample(float(Fraction(b) / fps), MIX_RATE) for b in bounds]
    cues = []
    fade = 480
    for s in scenes:
        length = at[s.index + 1] - at[s.index] if cue_s is None else round(cue_s * MIX_RATE)
        p = Placement(s.index, "foley", at[s.index], length, fade, fade, False, -3.0 if s.index % 7 == 0 else 0.0)
        cues.append(
            DawCue(f"F{s.index:04d}", "foley", s.index, p, f"cues/scene{s.index:04d}_foley.wav", "steps", s.index)
        )
    half = MIX_RATE // 2
    firsts = list(range(0, len(scenes), 4))
    for k, first in enumerate(firsts):
        a, b = at[first], at[min(first + 4, len(scenes))]
        left = half if k > 0 else 0
        right = half if k + 1 < len(firsts) else 0
        p = Placement(first, "music", a - left, b + right - (a - left), 2 * left or 2400, 2 * right or 2400, True)
        file = None if k == 1 else f"cues/scene{first:04d}_music.wav"  # the second music cue muted
        cues.append(DawCue(f"M{first:04d}", "music", first, p, file, "score", first))
    return DawReel(
        title="long",
        run_id=7,
        source_uri="/footage/long.mov",
        fps=fps,
        frames=frames,
        samples=at[-1],
        scenes=scenes,
        cues=tuple(sorted(cues, key=lambda c: (c.placement.start, c.kind))),
        dialogue=None,
        stem_gain_db={"foley": -6.0, "music": -10.0},
        normalization_gain_db=-2.5,
        settings=DawSettings(start_timecode=start),
    )


def write_cue_files(reel: DawReel, folder: Path, kinds: tuple[str, ...] = ("foley", "music")) -> None:
    """A WAV of each unmuted cue's placement length (seeded noise), where the reel says its file is."""
    (folder / "cues").mkdir(parents=True, exist_ok=True)
    for c in reel.cues:
        if c.file is not None and c.kind in kinds:
            noise = np.random.default_rng(c.placement.start).uniform(-0.5, 0.5, (2, c.placement.length))
            write_wav24(folder / c.file, noise.astype(np.float32), MIX_RATE)


def only(reel: DawReel, kinds: tuple[str, ...]) -> DawReel:
    from dataclasses import replace

    return replace(reel, cues=tuple(c for c in reel.cues if c.kind in kinds))
