"""Provenance tasks: the run's rows in the database and its provenance document, built once from the
records in ``audiox_core/provenance/records.py`` and both written beside the outputs (provenance.json) and into
the database, so the lineage command rebuilds the same document from the rows."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from audiox_core.lifecycle import process_tag
from audiox_core.provenance.records import (
    CueGeneration,
    GenerationRecord,
    ModelFacts,
    ProvenanceDocument,
    RenderedCue,
    RunFacts,
    TakeGeneration,
)
from audiox_core.reel.destination import Destination
from audiox_core.reel.document import (
    generation_records,
    output_records,
    provenance_document,
    scene_records,
    source_facts,
)
from audiox_core.reel.generation_plan import GenerationPlan
from audiox_core.reel.source import Footage, Source
from audiox_core.reel.stages import Analysis
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.store.files import write_atomic
from audiox_core.store.local import local_path
from audiox_core.store.uri import public_uri, scrub
from audiox_core.workspace import code_version
from db import repository


@task(name="start-run", cache_policy=NO_CACHE)
def start_run_task(db_url: str, source_shown: str, out_uri: str, settings: dict[str, Any], trigger: str) -> int:
    """The run row, with the flow run, deployment and trigger that started it (URIs without secrets),
    the output root (a local one as its absolute path, so ``doctor --repair`` run from any folder
    finds its staging folders) and the process running it (for the sweep of killed processes' runs)."""
    return repository.start_run(
        db_url,
        source_uri=source_shown,
        out_uri=_stored_out_uri(out_uri),
        settings=settings,
        code_version=code_version(),
        flow_run_id=flow_run.get_id(),
        deployment=deployment.get_name(),
        trigger=trigger,
        process=process_tag(),
    )


def _stored_out_uri(out_uri: str) -> str:
    """The output root as a run row keeps it: a local path or file URI as its absolute resolved path,
    any other URI without secrets (an unsupported one is the run's own check to refuse)."""
    if "://" in out_uri and not out_uri.startswith("file://"):
        return public_uri(out_uri)
    return str(local_path(out_uri))


def close_run(db_url: str, run_id: int, *, error: str | None = None, status: str | None = None) -> bool:
    """``repository.finish_run`` with the reason cleaned of credentials and signatures. A plain call:
    on an interrupt or a Prefect cancellation the API may refuse to start a task."""
    return repository.finish_run(db_url, run_id, error=None if error is None else scrub(error), status=status)


def close_flow_run(db_url: str, flow_run_id: str, *, error: str, status: str) -> list[int]:
    """Close the runs of a flow run still open (from its Prefect state hooks), the reason cleaned."""
    return repository.finish_flow_run(db_url, flow_run_id, error=scrub(error), status=status)


def close_process_runs(db_url: str, *, error: str, status: str) -> list[int]:
    """Close the runs this process still has open (a batch interrupted with reels in flight)."""
    return repository.finish_process_runs(db_url, process_tag(), error=scrub(error), status=status)


@task(name="finish-run", cache_policy=NO_CACHE)
def finish_run_task(db_url: str, run_id: int, error: str | None = None, status: str | None = None) -> None:
    """The run's end (status and reason), as one task in the flow run's graph."""
    close_run(db_url, run_id, error=error, status=status)


def run_facts(db_url: str, run_id: int) -> RunFacts:
    """The run as recorded when it started (flow run, deployment, trigger, code version, resolved
    settings): the document states exactly what the run row holds."""
    row = repository.run_values(db_url, run_id)
    return RunFacts(**{f.name: row[f.name] for f in fields(RunFacts)})


@task(name="record-source", cache_policy=NO_CACHE)
def record_source_task(
    db_url: str, run_id: int, source: Source, footage: Footage, analysis: Analysis, model: ModelFacts
) -> dict[int, int]:
    """The asset, the model's facts and the scene rows; returns scene index → scene row id."""
    info, file = analysis.info, footage.file
    repository.record_asset(
        db_url,
        run_id,
        uri=source.shown,
        sha256=file.sha256,
        size=file.bytes,
        duration_s=info.duration_s,
        fps=info.video.fps,
        streams=info.to_dict(),
        version=file.version,
    )
    repository.record_model(db_url, run_id, asdict(model))
    return repository.record_scenes(db_url, run_id, [asdict(s) for s in scene_records(analysis)])


@task(name="provenance", cache_policy=NO_CACHE)
def provenance_task(
    db_url: str,
    run_id: int,
    stage: Path,
    where: Destination,
    source: Source,
    footage: Footage,
    analysis: Analysis,
    plan: GenerationPlan,
    rendered: list[RenderedCue],
    mix: LoudnessReport,
    model: ModelFacts,
    takes: dict[int, list[RenderedCue]] | None = None,
) -> ProvenanceDocument:
    """The version's provenance document (reused cues keep their original records, read from the
    database), its cues' takes beside its generations, written as provenance.json beside the staged
    outputs (an S3 destination gets it last)."""
    takes = takes or {}
    plans = {t.take: t for t in plan.takes}
    made = [(plan, rendered)] + [(plans[n], cues) for n, cues in sorted(takes.items())]
    reused = [p.keys[(c.scene_index, c.kind)] for p, cues in made for c in cues if c.reused]
    recorded = {k: GenerationRecord(**values) for k, values in repository.find_generations(db_url, reused).items()}
    sha = footage.file.sha256

    def records(p: GenerationPlan, cues: list[RenderedCue]) -> list[CueGeneration]:
        return generation_records(cues, p.keys, sha, where.base_uri, stage, model, p.sampling, recorded)

    generations = records(plan, rendered)
    take_records = [
        TakeGeneration(p.take, g.scene_index, g.generation) for p, cues in made[1:] for g in records(p, cues)
    ]
    outputs = output_records(stage, where.base_uri)
    run = run_facts(db_url, run_id)
    facts = source_facts(source.shown, footage.file, analysis)
    document = provenance_document(run, facts, model, analysis, generations, mix, outputs, take_records)
    write_atomic(stage / "provenance.json", document.to_json().encode())
    return document


@task(name="record-results", cache_policy=NO_CACHE)
def record_results_task(db_url: str, run_id: int, scene_ids: dict[int, int], document: ProvenanceDocument) -> None:
    """The document's generations (reused ones keep their row), its mix with the stems, and every output."""
    repository.record_generations(
        db_url,
        scene_ids,
        [{"scene_index": g.scene_index, **asdict(g.generation)} for g in document.generations],
        [asdict(t.generation) for t in document.takes],
    )
    repository.record_mix(db_url, run_id, asdict(document.mix))
    repository.record_outputs(db_url, run_id, [asdict(o) for o in document.outputs])
