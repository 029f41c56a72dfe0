"""Run settings: what determines a reel's output, one flat dict (``SETTING_PATHS``) for flows, runs and provenance."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from audiox_core.environment import env_text
from audiox_core.errors import InputError
from audiox_core.model.generate import SamplingSettings
from audiox_core.reel.daw_reel import DawSettings
from audiox_core.sound.mix import MixSettings
from audiox_core.sound.timeline import CUE_KINDS, TimelineSettings
from audiox_core.validation import above, at_least, check_fields, checked, matching, one_of
from audiox_core.video.scenes import DetectorSettings

# Each flow-parameter key and the RunSettings attribute it sets, in to_dict's order.
SETTING_PATHS: dict[str, str] = {
    "model": "model",
    "seed": "seed",
    "steps": "sampling.steps",
    "cfg_scale": "sampling.cfg_scale",
    "sampler": "sampling.sampler",
    "device": "device",
    "scene_threshold": "detector.threshold",
    "min_scene_s": "detector.min_scene_s",
    "loudness_preset": "mix.preset",
    "music_crossfade_s": "timeline.music_crossfade_s",
    "review_proxy": "review_proxy",
    "batch_size": "batch_size",
    "seconds": "still_seconds",
    "kind": "brief_kind",
    "start_timecode": "daw.start_timecode",
    "stem_names": "daw.stem_names",
}


DEFAULT_MODEL = "demo"


def default_model() -> str:
    """The model a run uses when its settings name none: ``AUDIOX_MODEL`` (a studio's workers point
    it at their own release folder; the test suite at ``tiny``), else the shipped demo model."""
    return env_text("AUDIOX_MODEL", DEFAULT_MODEL)


@dataclass(frozen=True)
class RunSettings:
    """Everything that determines a run's outputs: each stage's settings and the run's own."""

    model: str = field(default_factory=default_model)  # tiny, demo or the PATH of an AudioX release
    seed: int = 0
    device: str = field(default="auto", metadata=matching(r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda, cuda:N"))
    review_proxy: bool = False
    batch_size: int = field(
        default=8, metadata=at_least(1)
    )  # cues per forward pass; also the unit a rerun skips when its result was persisted
    # a still's (each still of a storyboard folder's) and a text brief's length, and the brief's cue kind
    still_seconds: float = field(default=8.0, metadata=above(0))
    brief_kind: str = field(default="foley", metadata=one_of(CUE_KINDS))
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    timeline: TimelineSettings = field(default_factory=TimelineSettings)
    mix: MixSettings = field(default_factory=MixSettings)
    daw: DawSettings = field(default_factory=DawSettings)

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> RunSettings:
        """Settings from a flow parameter dict. Every key and value is checked before anything is
        built; the first bad one is an InputError naming the key and what it allows."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(SETTING_PATHS))
        if unknown:
            raise InputError(
                f"settings: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(SETTING_PATHS))})"
            )
        field_types = typing.get_type_hints(cls)
        given: dict[str, dict[str, Any]] = {}  # stage ("" for the run's own fields) → field → value
        for key, value in values.items():
            stage, _, name = SETTING_PATHS[key].rpartition(".")
            owner = field_types[stage] if stage else cls
            given.setdefault(stage, {})[name] = checked(f"settings: {key}", owner, name, value)
        own = given.pop("", {})
        return cls(**own, **{stage: field_types[stage](**fields) for stage, fields in given.items()})

    def to_dict(self) -> dict[str, Any]:
        """Every key of ``SETTING_PATHS`` with its value: the flow parameter, run row and provenance shape; equal
        settings give equal dicts (the nightly flow compares them to find the reels already made)."""
        return {key: attrgetter(path)(self) for key, path in SETTING_PATHS.items()}

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the defaults (what a review says about a version)."""
        defaults = RunSettings().to_dict()
        return {k: v for k, v in self.to_dict().items() if defaults[k] != v}
