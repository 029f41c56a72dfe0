"""The ``soundtrack`` flow: one reel from source footage to a muxed soundtrack with provenance.

fetch → probe/scenes → cues → generate → mix → mux → publish → provenance → review artifact.
Outputs are staged in a hidden folder and renamed into ``<out>/<reel>/`` only when complete; a
failure records the run as failed with its one-line reason and leaves no output folder.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from audiox_core.errors import InputError, PipelineError
from audiox_core.media.timeline import plan_timeline
from audiox_core.reel import reel_cues
from audiox_core.settings import RunSettings
from audiox_core.storage import staged_directory, store_for
from audiox_core.workspace import studio_home
from db.session import database_url
from tasks.generation import generate_cues, plan_generation, reusable_task
from tasks.inference import model_facts
from tasks.media import (
    analyse_source,
    fetch_source,
    mix_task,
    mux_task,
    proxy_task,
    publish_scenes,
    publish_task,
)
from tasks.provenance import (
    finish_run_task,
    generation_records_task,
    output_records,
    provenance_document,
    record_results_task,
    record_source_task,
    run_facts_task,
    source_facts,
    start_run_task,
    write_provenance_task,
)
from tasks.review import review_markdown, review_task


def reel_name(source_uri: str) -> str:
    """Output folder name: the source file's stem with unsafe characters replaced."""
    stem = Path(source_uri.rstrip("/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "reel"


@flow(name="soundtrack", log_prints=False)
def soundtrack(
    source_uri: str, out_uri: str = "out", settings: dict[str, Any] | None = None, trigger: str = "manual"
) -> dict[str, Any]:
    """Make the soundtrack of one reel; returns the output folder, run id and review artifact key.
    ``trigger`` says what started it (manual, nightly, s3-drop) for the provenance record."""
    db_url = database_url(studio_home())
    given = dict(settings or {})
    try:
        s = RunSettings.from_dict(given)  # every setting checked before any work starts
    except InputError as e:
        finish_run_task(db_url, start_run_task(db_url, source_uri, out_uri, given, trigger), error=str(e))
        raise
    run_id = start_run_task(db_url, source_uri, out_uri, s.to_dict(), trigger)
    try:
        result = _make_soundtrack(db_url, run_id, source_uri, out_uri, s)
    except PipelineError as e:
        finish_run_task(db_url, run_id, error=str(e))
        raise
    except Exception as e:
        finish_run_task(db_url, run_id, error=f"internal error: {type(e).__name__}: {e}")
        raise
    finish_run_task(db_url, run_id)
    return result


def _make_soundtrack(db_url: str, run_id: int, source_uri: str, out_uri: str, s: RunSettings) -> dict[str, Any]:
    log = get_run_logger()
    reel = reel_name(source_uri)
    work_root = studio_home() / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{reel}.", dir=work_root))
    store = store_for(out_uri)
    base_uri = store.child(out_uri, reel)
    final_dir = store.assembly_folder(base_uri, work)
    try:
        source = fetch_source(source_uri)
        model = model_facts(s.model, s.device)
        analysis = analyse_source(source.path, source_uri, work, s.detector, model.frame_fps, model.frame_size)
        scene_ids = record_source_task(db_url, run_id, source_uri, source, analysis, model)
        log.info("%s: %d scenes at %s fps", reel, len(analysis.scenes.scenes), analysis.scenes.fps)
        cues = reel_cues(analysis, s.seed)
        placements = plan_timeline(analysis.scenes.scenes, s.timeline)
        plan = plan_generation(s, model, cues, placements, source.sha256)
        reuse = reusable_task(db_url, plan.keys)
        with staged_directory(final_dir) as stage:
            publish_scenes(analysis, stage, reel)
            rendered = generate_cues(plan, analysis, reuse, stage / "cues", reel)
            mix = mix_task(analysis, rendered, work, stage, s.mix)
            mux_task(analysis, stage)
            if s.review_proxy:
                proxy_task(analysis, stage)
            generations = generation_records_task(
                db_url, rendered, plan.keys, source.sha256, base_uri, stage, model, s.sampling
            )
            outputs = output_records(stage, base_uri)
            run = run_facts_task(db_url, run_id)
            document = provenance_document(
                run, source_facts(source_uri, source, analysis), model, analysis, generations, mix, outputs
            )
            write_provenance_task(stage, document)
        publish_task(final_dir, base_uri)
        record_results_task(db_url, run_id, scene_ids, document)
        key = review_task(reel, review_markdown(reel, analysis, rendered, model, mix, base_uri), outputs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "reel": reel,
        "out_dir": store.location(base_uri),
        "run_id": run_id,
        "flow_run_id": flow_run.get_id(),
        "review_artifact": key,
        "model": model.label,
    }
