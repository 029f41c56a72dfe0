"""What the generate stage does for one reel: each cue's content key, its batches' settings and the sound it starts from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from audiox_core.model.generate import SamplingSettings
from audiox_core.provenance.keys import generation_key
from audiox_core.provenance.records import CueId, GivenSound, ModelFacts
from audiox_core.reel.cues import Cue
from audiox_core.reel.cuesheet import take_seed
from audiox_core.reel.given_sound import span_list
from audiox_core.reel.settings import RunSettings
from audiox_core.sound.timeline import Placement
from audiox_core.workspace import code_version


@dataclass(frozen=True)
class GenerationPlan:
    """What the generate stage does for one reel: which model where, with which sampling, in what
    batches, for which cues at which placements, and each cue's content key."""

    model_spec: str
    device: str
    sampling: SamplingSettings
    batch_size: int
    cues: tuple[Cue, ...]
    placements: tuple[Placement, ...]
    keys: dict[CueId, str]
    given: dict[CueId, GivenSound] = field(default_factory=dict)  # the sound a cue starts from (given_sound.py)
    reuse: dict[CueId, Path] = field(default_factory=dict)  # cues an earlier run made with the same key: copied
    take: int = 1  # 1: the version's own cues; 2 …: the cues' take of that number (the review page's choice)
    takes: tuple[GenerationPlan, ...] = ()  # the plans of takes 2 … n of the cues that ask for takes


def generation_keys(
    cues: list[Cue],
    placements: list[Placement],
    source_sha256: str,
    model: ModelFacts,
    sampling: SamplingSettings,
    given: Mapping[CueId, GivenSound] | None = None,
) -> dict[CueId, str]:
    """The content key of every cue: everything that determines its audio, this code version included
    (for a cue made from a given sound, that sound's sha256, the spans made again and the sketch kept)."""
    where = {(p.scene_index, p.kind): p for p in placements}
    given = given or {}
    keys = {}
    for c in cues:
        p = where[(c.scene_index, c.kind)]
        facts = {
            "source_sha256": source_sha256,
            "kind": c.kind,
            "span": [p.start, p.length, p.fade_in, p.fade_out],
            "model": model.name,
            "checkpoint_sha256": model.checkpoint_sha256,
            "prompt": c.prompt,
            "seed": c.seed,
            "sampling": asdict(sampling),
            "precision": model.precision,
            "code_version": code_version(),
        }
        if g := given.get((c.scene_index, c.kind)):
            spans = span_list(c.regenerate)
            facts["audio_input"] = {"task": g.task, "sha256": g.sha256, "spans": spans, "kept": c.prompt_audio_kept}
        keys[(c.scene_index, c.kind)] = generation_key(facts)
    return keys


def plan_generation(
    settings: RunSettings,
    model: ModelFacts,
    cues: list[Cue],
    placements: list[Placement],
    source_sha256: str,
    given: Mapping[CueId, GivenSound] | None = None,
) -> GenerationPlan:
    """The reel's generation plan, its cues keyed by what determines them."""
    keys = generation_keys(cues, placements, source_sha256, model, settings.sampling, given)
    return GenerationPlan(
        settings.model,
        settings.device,
        settings.sampling,
        settings.batch_size,
        tuple(cues),
        tuple(placements),
        keys,
        dict(given or {}),
    )


def take_plans(
    plan: GenerationPlan, takes: Mapping[CueId, int], settings: RunSettings, model: ModelFacts, source_sha256: str
) -> tuple[GenerationPlan, ...]:
    """Plans of takes 2 … n for the cues in ``takes`` (cue → how many takes): each the cue with the
    next seeds in turn (``take_seed``), at its own placement and with the sound it starts from, keyed as
    the cue would be with that seed, so a take chosen for the next version is reused, not made again."""
    where = {(p.scene_index, p.kind): p for p in plan.placements}
    plans = []
    for take in range(2, max(takes.values(), default=1) + 1):
        cues = [
            replace(c, seed=take_seed(c.seed, take)) for c in plan.cues if takes.get((c.scene_index, c.kind), 1) >= take
        ]
        ids = [(c.scene_index, c.kind) for c in cues]
        given = {i: plan.given[i] for i in ids if i in plan.given}
        made = plan_generation(settings, model, cues, [where[i] for i in ids], source_sha256, given)
        plans.append(replace(made, take=take))
    return tuple(plans)
