"""Provenance tasks: the run's rows in the database and its provenance document, built once from the
records in ``audiox_core/provenance/records.py`` and both written beside the outputs (provenance.json) and into
the database, so the lineage command rebuilds the same document from the rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from audiox_core.lifecycle import process_tag
from audiox_core.model.generate import SamplingSettings
from audiox_core.provenance.keys import sha256_text
from audiox_core.provenance.records import (
    CueGeneration,
    CueId,
    GenerationRecord,
    MixRecord,
    ModelFacts,
    OutputRecord,
    ProvenanceDocument,
    RenderedCue,
    RunFacts,
    SceneRecord,
    SourceFacts,
    SourceFile,
)
from audiox_core.reel.stages import Analysis
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.store.files import sha256_file, write_atomic
from audiox_core.store.local import local_path
from audiox_core.store.uri import public_uri, scrub
from audiox_core.workspace import code_version
from db import repository


@task(name="start-run", cache_policy=NO_CACHE)
def start_run_task(db_url: str, source_uri: str, out_uri: str, settings: dict[str, Any], trigger: str) -> int:
    """The run row, with the flow run, deployment and trigger that started it (URIs without secrets),
    the output root (a local one as its absolute path, so ``doctor --repair`` run from any folder
    finds its staging folders) and the process running it (for the sweep of killed processes' runs)."""
    return repository.start_run(
        db_url,
        source_uri=public_uri(source_uri),
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


@task(name="run-facts", cache_policy=NO_CACHE)
def run_facts_task(db_url: str, run_id: int) -> RunFacts:
    """The run as recorded when it started (flow run, deployment, trigger, code version, resolved
    settings): the document states exactly what the run row holds."""
    row = repository.run_values(db_url, run_id)
    return RunFacts(**{f.name: row[f.name] for f in fields(RunFacts)})


def source_facts(source_uri: str, source: SourceFile, analysis: Analysis) -> SourceFacts:
    """The footage as the document states it: its secret-free URI, identity and media facts."""
    return SourceFacts(
        uri=public_uri(source_uri),
        sha256=source.sha256,
        bytes=source.bytes,
        version=source.version,
        media=analysis.info.to_dict(),
    )


def scene_records(analysis: Analysis) -> list[SceneRecord]:
    """One record per detected scene, each with the detector settings that found it."""
    detector = asdict(analysis.scenes.settings)
    return [
        SceneRecord(s.index, s.start_s, s.end_s, s.start_frame, s.end_frame, s.start_tc, s.end_tc, detector)
        for s in analysis.scenes.scenes
    ]


@task(name="record-source", cache_policy=NO_CACHE)
def record_source_task(
    db_url: str,
    run_id: int,
    source_uri: str,
    source: SourceFile,
    analysis: Analysis,
    model: ModelFacts,
) -> dict[int, int]:
    """The asset, the model's facts and the scene rows; returns scene index → scene row id."""
    info = analysis.info
    repository.record_asset(
        db_url,
        run_id,
        uri=public_uri(source_uri),
        sha256=source.sha256,
        size=source.bytes,
        duration_s=info.duration_s,
        fps=info.video.fps,
        streams=info.to_dict(),
        version=source.version,
    )
    repository.record_model(db_url, run_id, asdict(model))
    return repository.record_scenes(db_url, run_id, [asdict(s) for s in scene_records(analysis)])


def generation_records(
    rendered: Sequence[RenderedCue],
    keys: Mapping[CueId, str],
    source_sha256: str,
    base_uri: str,
    stage: Path,
    model: ModelFacts,
    sampling: SamplingSettings,
    recorded: Mapping[str, GenerationRecord],
) -> list[CueGeneration]:
    """Each scene's cue as a generation; a reused cue keeps its original record from ``recorded`` (by key)."""

    def made(c: RenderedCue, key: str) -> GenerationRecord:
        return GenerationRecord(
            key=key,
            kind=c.kind,
            source_sha256=source_sha256,
            span_start=c.placement.start,
            span_length=c.placement.length,
            model_name=model.name,
            checkpoint_sha256=model.checkpoint_sha256,
            prompt=c.prompt,
            prompt_sha256=sha256_text(c.prompt),
            conditioning_sha256=c.conditioning_sha256,
            seed=c.seed,
            sampler=sampling.sampler,
            steps=sampling.steps,
            cfg_scale=sampling.cfg_scale,
            windows=c.windows,
            precision=model.precision,
            device=model.device,
            torch_version=model.torch_version,
            cuda_version=model.cuda_version,
            code_version=code_version(),
            seconds=c.seconds,
            elapsed_s=round(c.elapsed_s, 3),
            output_uri=f"{base_uri}/{c.path.relative_to(stage).as_posix()}",
            output_sha256=c.sha256,
            audio_input=c.audio_input,
        )

    keyed = [(c, keys[(c.scene_index, c.kind)]) for c in rendered]
    return [CueGeneration(c.scene_index, recorded[key] if c.reused else made(c, key)) for c, key in keyed]


@task(name="generation-records", cache_policy=NO_CACHE)
def generation_records_task(
    db_url: str,
    rendered: list[RenderedCue],
    keys: dict[CueId, str],
    source_sha256: str,
    base_uri: str,
    stage: Path,
    model: ModelFacts,
    sampling: SamplingSettings,
) -> list[CueGeneration]:
    """``generation_records``, with the reused cues' original records read from the database."""
    reused = [keys[(c.scene_index, c.kind)] for c in rendered if c.reused]
    recorded = {k: GenerationRecord(**values) for k, values in repository.find_generations(db_url, reused).items()}
    return generation_records(rendered, keys, source_sha256, base_uri, stage, model, sampling, recorded)


def output_records(stage: Path, base_uri: str) -> list[OutputRecord]:
    """Every file in the staged folder, with its kind (path without suffix), final URI, sha256 and size."""
    names = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
    return [
        OutputRecord(
            str(n.with_suffix("")), f"{base_uri}/{n.as_posix()}", sha256_file(stage / n), (stage / n).stat().st_size
        )
        for n in names
    ]


def mix_record(report: LoudnessReport, outputs: Sequence[OutputRecord]) -> MixRecord:
    """The mastering as recorded: the preset, the mix's figures, and per stem its file (URI, sha256) and figures."""
    files = {o.kind: o for o in outputs}
    stems = {
        k: {**asdict(figures), "uri": files[f"stems/{k}"].uri, "sha256": files[f"stems/{k}"].sha256}
        for k, figures in report.stems.items()
    }
    mix = report.mix
    return MixRecord(
        preset=report.preset,
        integrated_lufs=mix.integrated_lufs,
        loudness_range_lu=mix.loudness_range_lu,
        true_peak_dbtp=mix.true_peak_dbtp,
        normalization_gain_db=report.normalization_gain_db,
        limiter_reduction_db=report.max_gain_reduction_db,
        stems=stems,
    )


def provenance_document(
    run: RunFacts,
    source: SourceFacts,
    model: ModelFacts,
    analysis: Analysis,
    generations: Sequence[CueGeneration],
    report: LoudnessReport,
    outputs: Sequence[OutputRecord],
) -> ProvenanceDocument:
    """The chain from the outputs back to the footage, as written to provenance.json and recorded."""
    return ProvenanceDocument(
        run=run,
        source=source,
        model=model,
        scenes=tuple(scene_records(analysis)),
        generations=tuple(generations),
        mix=mix_record(report, outputs),
        outputs=tuple(sorted(outputs, key=lambda o: o.uri)),
    )


@task(name="write-provenance", cache_policy=NO_CACHE)
def write_provenance_task(stage: Path, document: ProvenanceDocument) -> Path:
    """provenance.json beside the staged outputs (an S3 destination gets it last)."""
    path = stage / "provenance.json"
    write_atomic(path, document.to_json().encode())
    return path


@task(name="record-results", cache_policy=NO_CACHE)
def record_results_task(db_url: str, run_id: int, scene_ids: dict[int, int], document: ProvenanceDocument) -> None:
    """The document's generations (reused ones keep their row), its mix with the stems, and every output."""
    repository.record_generations(
        db_url, scene_ids, [{"scene_index": g.scene_index, **asdict(g.generation)} for g in document.generations]
    )
    repository.record_mix(db_url, run_id, asdict(document.mix))
    repository.record_outputs(db_url, run_id, [asdict(o) for o in document.outputs])
