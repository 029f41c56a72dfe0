"""A cue to render (a Foley or music cue starting in a scene, with its prompt and seed) and the look of its scene."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiox_core.model.config import TaskPrompts
from audiox_core.model.inpaint import Span
from audiox_core.sound.timeline import CUE_KINDS, CueKind


@dataclass(frozen=True)
class SceneLook:
    motion: float  # share of the picture that changes from one sampled frame to the next, in %
    brightness: float  # mean value, 0–255
    saturation: float  # mean chroma spread, 0–255


def cue_file(scene_index: int, kind: str) -> str:
    """A rendered cue's file, relative to the version's folder."""
    return f"cues/scene{scene_index:04d}_{kind}.wav"


CHANGED_LEVELS = 12  # a pixel changes when a channel moves by more than this (above grain and coding noise)


@dataclass(frozen=True)
class Cue:
    scene_index: int
    kind: CueKind
    prompt: str
    seed: int
    # Inpainting: spans (seconds from the cue's start) of the previous version's cue to make again.
    regenerate: tuple[Span, ...] = ()
    # Completion: a given sound (path or URI) the cue continues, kept at its start or only heard by the model.
    prompt_audio: str | None = None
    prompt_audio_kept: bool = True


def measure(frames: np.ndarray) -> SceneLook:
    """Motion, brightness and colourfulness of a scene from its sampled RGB frames."""
    if len(frames) == 0:
        return SceneLook(0.0, 0.0, 0.0)
    # Integer arithmetic on the uint8 frames (means accumulate in float64): exact, and no float copy
    # of a long scene; the channel extremes elementwise, as a reduction over an axis of 3 is slow.
    f = np.asarray(frames)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    # Motion is where the picture changes, not how much on average: a ball crossing a still room
    # changes a few per cent of the pixels strongly, which a mean over the whole frame calls still.
    motion = 0.0
    if len(f) > 1:
        changed = (np.abs(np.diff(f.astype(np.int16), axis=0)) > CHANGED_LEVELS).any(axis=-1)  # (F-1, H, W)
        motion = 100.0 * float(changed.mean())
    return SceneLook(motion, float(f.mean()), float(spread.mean()))


def cue_seed(run_seed: int, scene_index: int, kind: CueKind) -> int:
    """A distinct, reproducible 31-bit seed per (run seed, scene, kind): a rerun with the same settings
    regenerates identical audio."""
    return (run_seed * 1_000_003 + scene_index * len(CUE_KINDS) + CUE_KINDS.index(kind)) % 2**31


# Motion thresholds in % of the picture changing per frame (measured on the demo reel and the shared
# footage, README "Spotting"): a still shot stays under 0.5 %, a bouncing ball or a walk is 1–6 %.
STILL_BELOW, FAST_ABOVE = 0.5, 15.0


def look_words(look: SceneLook) -> dict[str, str]:
    """The scene in words: ``pace``, ``light`` and ``mood`` (the music cue grouping follows ``mood``)."""
    pace = (
        "fast, energetic movement"
        if look.motion > FAST_ABOVE
        else "a still, quiet shot"
        if look.motion < STILL_BELOW
        else "gentle movement"
    )
    light = "a dark" if look.brightness < 70 else "a bright" if look.brightness > 160 else "an evenly lit"
    mood = (
        "tense, driving" if look.motion > FAST_ABOVE else "warm, flowing" if look.saturation > 80 else "calm, ambient"
    )
    return {"pace": pace, "light": light, "mood": mood}


def look_note(look: SceneLook) -> str:
    """One line for the cue sheet: ``a dark scene with gentle movement; calm, ambient``."""
    w = look_words(look)
    return f"{w['light']} scene with {w['pace']}; {w['mood']}"


def prompts(task: TaskPrompts) -> dict[CueKind, str]:
    """The prompt of each cue kind: the model's own task prompts."""
    return {"foley": task.foley, "music": task.music}
