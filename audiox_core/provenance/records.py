"""The typed facts every layer speaks: the model, each cue's generation, the rows of provenance and the document built from them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiox_core.model.config import TaskPrompts
from audiox_core.sound.timeline import CueKind, Placement

CueId = tuple[int, CueKind]  # (scene index, cue kind): a cue's place in its reel


@dataclass(frozen=True)
class ProcessFacts:
    """The process holding the model (an inference worker, or the flow run's own process)."""

    host: str
    pid: int
    loaded_at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class ModelFacts:
    """What the flow, provenance and the review page need to know about the loaded model (never the
    model itself: this crosses process boundaries as a Prefect result)."""

    name: str
    label: str
    checkpoint_sha256: str
    random_weights: bool
    device: str
    frame_fps: int
    frame_size: int
    precision: str  # computed from the dtypes that actually run, e.g. "fp32" on the CPU
    torch_version: str
    cuda_version: str | None
    process: ProcessFacts
    # the model's own task prompts (AudioXConfig.prompts), which drafted cue sheets use
    foley_prompt: str = TaskPrompts.foley
    music_prompt: str = TaskPrompts.music

    @property
    def task_prompts(self) -> TaskPrompts:
        return TaskPrompts(self.foley_prompt, self.music_prompt)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelFacts:
        return cls(**{**values, "process": ProcessFacts(**values["process"])})


@dataclass(frozen=True)
class GivenSound:
    """Sound a cue is made from besides its picture and prompt (audiox_core/reel/given_sound.py): the
    previous version's cue it inpaints, or the sketch it completes."""

    task: str  # "inpaint" or "complete"
    path: Path | None  # a local copy (None: gone, which only a cue that is reused can do without)
    uri: str  # where it came from, as shown and recorded (no secrets)
    sha256: str
    name: str  # how a problem with it is named: the sheet, the cue and the file


@dataclass(frozen=True)
class RenderedCue:
    """One cue's audio as placed on the reel: where it came from and what the model saw."""

    scene_index: int
    kind: CueKind
    prompt: str
    seed: int
    seconds: float
    path: Path
    sha256: str
    placement: Placement  # where it sits on the reel's timeline, in samples at the mix rate
    conditioning_sha256: str  # the frames the model saw
    windows: int
    elapsed_s: float
    reused: bool = False
    # what it was made from besides picture and prompt: task, uri, sha256, the new spans, the sketch kept
    audio_input: dict[str, Any] | None = None


@dataclass(frozen=True)
class GenerationRecord:
    """One generated cue; the fields are the ``generations`` table's columns."""

    key: str
    kind: CueKind
    source_sha256: str
    span_start: int
    span_length: int
    model_name: str
    checkpoint_sha256: str
    prompt: str
    prompt_sha256: str
    conditioning_sha256: str
    seed: int
    sampler: str
    steps: int
    cfg_scale: float
    windows: int
    precision: str
    device: str
    torch_version: str
    cuda_version: str | None
    code_version: str
    seconds: float
    elapsed_s: float
    output_uri: str
    output_sha256: str
    audio_input: dict[str, Any] | None = None  # RenderedCue.audio_input: the cue inpainted or the sketch completed


@dataclass(frozen=True)
class SceneRecord:
    """One detected scene; the fields are the ``scenes`` table's columns."""

    index: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    start_tc: str
    end_tc: str
    detector: dict[str, Any]


@dataclass(frozen=True)
class MixRecord:
    """The mastering of a run; the fields are the ``mixes`` table's columns. ``stems``: kind → uri,
    sha256 and its loudness figures."""

    preset: str
    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    normalization_gain_db: float
    limiter_reduction_db: float
    stems: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class OutputRecord:
    """A delivered file; the fields are the ``outputs`` table's columns."""

    kind: str
    uri: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class SourceFile:
    """The footage as fetched: a local file (S3 objects from the download cache) and its identity."""

    path: Path
    sha256: str
    bytes: int
    version: str | None  # S3 ETag (the content identity the nightly listing compares); None locally


@dataclass(frozen=True)
class SourceFacts:
    """The footage as read: secret-free URI, content hash, size, object version and media facts."""

    uri: str
    sha256: str
    bytes: int
    version: str | None
    media: dict[str, Any]


@dataclass(frozen=True)
class RunFacts:
    """The activity: which run, started by what, with which settings and code."""

    id: int
    flow_run_id: str | None
    deployment: str | None
    trigger: str | None
    code_version: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class CueGeneration:
    """A generation as it gives one scene its cue (a reused generation keeps its original record)."""

    scene_index: int
    generation: GenerationRecord


@dataclass(frozen=True)
class TakeGeneration:
    """A take of a cue made for the producer to choose from (take 2 …; take 1 is the cue): a generation
    beside the version's cues, not in its mix."""

    take: int
    scene_index: int
    generation: GenerationRecord


@dataclass(frozen=True)
class ProvenanceDocument:
    """A reel's chain from every output back to the footage, the model, prompts, seeds and settings."""

    run: RunFacts
    source: SourceFacts
    model: ModelFacts
    scenes: tuple[SceneRecord, ...]
    generations: tuple[CueGeneration, ...]
    mix: MixRecord
    outputs: tuple[OutputRecord, ...]
    takes: tuple[TakeGeneration, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["generations"] = [
            {"scene_index": g.scene_index, **dataclasses.asdict(g.generation)} for g in self.generations
        ]
        values["takes"] = [
            {"take": t.take, "scene_index": t.scene_index, **dataclasses.asdict(t.generation)} for t in self.takes
        ]
        values["outputs"] = sorted(values["outputs"], key=lambda o: o["uri"])
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ProvenanceDocument:
        generations = []
        for g in values["generations"]:
            fields = dict(g)
            generations.append(CueGeneration(fields.pop("scene_index"), GenerationRecord(**fields)))
        takes = []
        for t in values.get("takes", []):
            fields = dict(t)
            takes.append(TakeGeneration(fields.pop("take"), fields.pop("scene_index"), GenerationRecord(**fields)))
        return cls(
            run=RunFacts(**values["run"]),
            source=SourceFacts(**values["source"]),
            model=ModelFacts.from_dict(values["model"]),
            scenes=tuple(SceneRecord(**s) for s in values["scenes"]),
            generations=tuple(generations),
            mix=MixRecord(**values["mix"]),
            outputs=tuple(sorted((OutputRecord(**o) for o in values["outputs"]), key=lambda o: o.uri)),
            takes=tuple(takes),
        )

    @classmethod
    def from_json(cls, text: str) -> ProvenanceDocument:
        return cls.from_dict(json.loads(text))
