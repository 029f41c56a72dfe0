"""Provenance tasks: run rows in the database and the provenance.json written beside the outputs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from audiox_core.media.mix import MasterReport
from audiox_core.model.generate import SamplingSettings
from audiox_core.provenance import public_uri, sha256_text
from audiox_core.reel import Analysis, RenderedCue
from audiox_core.settings import RunSettings, code_version
from audiox_core.storage import sha256_file, write_atomic
from db import repository


@task(name="start-run", cache_policy=NO_CACHE)
def start_run_task(db_url: str, source_uri: str, out_uri: str, settings: dict[str, Any], trigger: str) -> int:
    """The run row, with the flow run, deployment and trigger that started it (URIs without secrets)."""
    return repository.start_run(
        db_url, source_uri=public_uri(source_uri), out_uri=public_uri(out_uri), settings=settings, code_version=code_version(),
        flow_run_id=flow_run.get_id(), deployment=deployment.get_name(), trigger=trigger,
    )


@task(name="finish-run", cache_policy=NO_CACHE)
def finish_run_task(db_url: str, run_id: int, error: str | None = None) -> None:
    repository.finish_run(db_url, run_id, error=error)


@task(name="record-source", cache_policy=NO_CACHE)
def record_source_task(db_url: str, run_id: int, source_uri: str, source: dict, analysis: Analysis) -> dict[int, int]:
    """Asset and scene rows; returns scene index → scene row id."""
    info = analysis.info
    repository.record_asset(
        db_url, run_id, uri=public_uri(source_uri), sha256=source["sha256"], size=source["bytes"],
        duration_s=info.duration_s, fps=info.video.fps, streams=info.to_dict(), version=source.get("version"),
    )
    detector = asdict(analysis.scenes.settings)
    return repository.record_scenes(db_url, run_id, [asdict(s) for s in analysis.scenes.scenes], detector)


def generation_rows(
    rendered: list[RenderedCue], keys: dict[tuple[int, str], str], source_sha256: str, base_uri: str, stage: Path,
    model: dict, sampling: SamplingSettings,
) -> list[dict]:
    """One row per cue (``scene_index`` picks the scene it belongs to)."""
    return [
        {
            "scene_index": c.scene_index, "key": keys[(c.scene_index, c.kind)], "kind": c.kind, "source_sha256": source_sha256,
            "span_start": c.placement.start, "span_length": c.placement.length, "model_name": model["name"],
            "checkpoint_sha256": model["checkpoint_sha256"], "prompt": c.prompt, "prompt_sha256": sha256_text(c.prompt),
            "conditioning_sha256": c.conditioning_sha256, "seed": c.seed, "sampler": sampling.sampler, "steps": sampling.steps,
            "cfg_scale": sampling.cfg_scale, "windows": c.windows, "precision": model["precision"], "device": model["device"],
            "torch_version": model["torch_version"], "cuda_version": model["cuda_version"], "code_version": code_version(),
            "seconds": c.seconds, "elapsed_s": round(c.elapsed_s, 3),
            "output_uri": f"{base_uri}/{c.path.relative_to(stage).as_posix()}", "output_sha256": c.sha256,
        }
        for c in rendered
    ]


def output_rows(stage: Path, base_uri: str) -> list[dict]:
    """Every file in the staged folder, with its kind (path without suffix), final URI, sha256 and size."""
    return [
        {"kind": str(path.relative_to(stage).with_suffix("")), "uri": f"{base_uri}/{path.relative_to(stage).as_posix()}",
         "sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(p for p in stage.rglob("*") if p.is_file())
    ]


def provenance_document(
    run_id: int, settings: RunSettings, source_uri: str, source: dict, analysis: Analysis, model: dict,
    generations: list[dict], mix: MasterReport, outputs: list[dict],
) -> dict[str, Any]:
    """The chain from outputs back to the footage, as written to provenance.json."""
    return {
        "run": {"id": run_id, "flow_run_id": flow_run.get_id(), "code_version": code_version(), "settings": settings.to_dict()},
        "source": {"uri": public_uri(source_uri), "sha256": source["sha256"], "bytes": source["bytes"], "media": analysis.info.to_dict()},
        "model": model,
        "scenes": analysis.scenes.to_dict(),
        "generations": generations,
        "mix": mix.to_dict(),
        "outputs": outputs,
    }


@task(name="write-provenance", cache_policy=NO_CACHE)
def write_provenance_task(stage: Path, document: dict[str, Any]) -> Path:
    path = stage / "provenance.json"
    write_atomic(path, (json.dumps(document, indent=2, default=str) + "\n").encode())
    return path


@task(name="record-results", cache_policy=NO_CACHE)
def record_results_task(db_url: str, run_id: int, scene_ids: dict[int, int], generations: list[dict], mix: MasterReport, outputs: list[dict]) -> None:
    """Generations (reused ones keep their row), the mix with its stems, and every output."""
    repository.record_generations(db_url, scene_ids, generations)
    by_kind = {o["kind"]: o for o in outputs}
    stems = {k: {**figures, **({"uri": by_kind[f"stems/{k}"]["uri"], "sha256": by_kind[f"stems/{k}"]["sha256"]} if f"stems/{k}" in by_kind else {})}
             for k, figures in mix.outputs.items()}
    repository.record_mix(db_url, run_id, mix.to_dict(), stems)
    repository.record_outputs(db_url, run_id, outputs)
