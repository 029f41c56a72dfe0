"""The pipeline's placements for scenes a test builds without an Analysis: the drafted cue sheet,
resolved on the scenes and placed, as ``plan_sheet`` does."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from audiox_core.reel.cues import SceneLook
from audiox_core.reel.cuesheet import draft_sheet, resolve
from audiox_core.sound.timeline import Placement, TimelineSettings, place_cues
from audiox_core.video.scenes import Scene

CALM, BUSY = SceneLook(1.0, 120.0, 20.0), SceneLook(20.0, 120.0, 20.0)  # two moods: two music cues


def drafted_placements(
    scenes: Sequence[Scene],
    fps: Fraction,
    looks: Sequence[SceneLook] | None = None,
    timeline: TimelineSettings = TimelineSettings(),
) -> list[Placement]:
    """Every cue of the draft (run seed 0); ``looks`` default to one mood, so one music cue per two minutes."""
    sheet = draft_sheet("reel", scenes, fps, looks or [CALM] * len(scenes), run_seed=0)
    return place_cues([s.as_span() for s in resolve(sheet, scenes, fps, "drafted cue sheet")], timeline)


def alternating(n: int) -> list[SceneLook]:
    """Looks whose mood changes at every cut: the draft has a music cue per scene."""
    return [(CALM, BUSY)[i % 2] for i in range(n)]
