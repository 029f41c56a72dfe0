"""Cues: what to generate for each scene (a Foley cue and a music cue), with prompts and seeds.

Prompts are built from simple measurements of the scene's frames (motion, brightness, colour), so
they differ per scene and are recorded for provenance; seeds derive from the run's seed, the scene
index and the cue kind, so a rerun with the same settings regenerates identical audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from audiox_core.media.scenes import Scene

CueKind = Literal["foley", "music"]
CUE_KINDS: tuple[CueKind, ...] = get_args(CueKind)  # a scene's cues, in the order they are planned (and seeded)


@dataclass(frozen=True)
class SceneLook:
    motion: float  # mean absolute change between sampled frames, 0–255
    brightness: float  # mean value, 0–255
    saturation: float  # mean chroma spread, 0–255


@dataclass(frozen=True)
class Cue:
    scene_index: int
    kind: CueKind
    prompt: str
    seed: int


def measure(frames: np.ndarray) -> SceneLook:
    """Motion, brightness and colourfulness of a scene from its sampled RGB frames."""
    if len(frames) == 0:
        return SceneLook(0.0, 0.0, 0.0)
    # Integer arithmetic on the uint8 frames (means accumulate in float64): exact, and no float copy
    # of a long scene; the channel extremes elementwise, as a reduction over an axis of 3 is slow.
    f = np.asarray(frames)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    motion = float(np.abs(np.diff(f.astype(np.int16), axis=0)).mean()) if len(f) > 1 else 0.0
    return SceneLook(motion, float(f.mean()), float(spread.mean()))


def cue_seed(run_seed: int, scene_index: int, kind: CueKind) -> int:
    """A distinct, reproducible 31-bit seed per (run seed, scene, kind)."""
    return (run_seed * 1_000_003 + scene_index * len(CUE_KINDS) + CUE_KINDS.index(kind)) % 2**31


def prompts(look: SceneLook) -> dict[CueKind, str]:
    pace = (
        "fast, energetic movement"
        if look.motion > 12
        else "gentle movement"
        if look.motion > 3
        else "a still, quiet shot"
    )
    light = "a dark" if look.brightness < 70 else "a bright" if look.brightness > 160 else "an evenly lit"
    mood = "tense, driving" if look.motion > 12 else "warm, flowing" if look.saturation > 80 else "calm, ambient"
    return {
        "foley": f"Foley sound effects for {light} scene with {pace}",
        "music": f"{mood} cinematic underscore",
    }


def plan_cues(scenes: tuple[Scene, ...], looks: list[SceneLook], run_seed: int) -> list[Cue]:
    """One Foley and one music cue per scene, in scene order."""
    cues = []
    for scene, look in zip(scenes, looks):
        text = prompts(look)
        cues += [Cue(scene.index, kind, text[kind], cue_seed(run_seed, scene.index, kind)) for kind in CUE_KINDS]
    return cues
