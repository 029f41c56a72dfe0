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

from audiox_core.errors import PipelineError
from audiox_core.media.mix import MixSettings
from audiox_core.media.scenes import DetectorSettings
from audiox_core.media.timeline import TimelineSettings, plan_timeline
from audiox_core.model.generate import SamplingSettings
from audiox_core.reel import reel_cues
from audiox_core.settings import RunSettings, studio_home
from audiox_core.storage import as_uri, is_s3, local_path, staged_directory
from db.session import database_url
from tasks.generation import (
    generate_cues,
    generation_keys,
    model_facts,
    reusable_task,
)
from tasks.media import (
    analyse_source,
    fetch_source,
    mix_task,
    mux_task,
    proxy_task,
    publish_scenes,
    upload_task,
)
from tasks.provenance import (
    finish_run_task,
    generation_rows,
    output_rows,
    provenance_document,
    record_results_task,
    record_source_task,
    start_run_task,
    write_provenance_task,
)
from tasks.review import review_markdown, review_task


def reel_name(source_uri: str) -> str:
    """Output folder name: the source file's stem with unsafe characters replaced."""
    stem = Path(source_uri.rstrip("/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "reel"


@flow(name="soundtrack", log_prints=False)
def soundtrack(source_uri: str, out_uri: str = "out", settings: dict[str, Any] | None = None, trigger: str = "manual") -> dict[str, Any]:
    """Make the soundtrack of one reel; returns the output folder, run id and review artifact key.
    ``trigger`` says what started it (manual, nightly, s3-drop) for the provenance record."""
    db_url = database_url(studio_home())
    run_id = start_run_task(db_url, source_uri, out_uri, dict(settings or {}), trigger)
    try:
        result = _make_soundtrack(db_url, run_id, source_uri, out_uri, RunSettings.from_dict(settings))
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
    sampling = SamplingSettings(sampler=s.sampler, steps=s.steps, cfg_scale=s.cfg_scale)
    detector = DetectorSettings(threshold=s.scene_threshold, min_scene_s=s.min_scene_s)
    work_root = studio_home() / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{reel}.", dir=work_root))
    # S3 destinations: the reel is assembled locally, then uploaded once complete.
    final_dir = (work / "out" if is_s3(out_uri) else local_path(out_uri)) / reel
    base_uri = f"{out_uri.rstrip('/')}/{reel}" if is_s3(out_uri) else as_uri(final_dir)
    try:
        source = fetch_source(source_uri)
        model = model_facts(s.model, s.device)
        analysis = analyse_source(source["path"], source_uri, work, detector, model["frame_fps"], model["frame_size"])
        scene_ids = record_source_task(db_url, run_id, source_uri, source, analysis)
        log.info("%s: %d scenes at %s fps", reel, len(analysis.scenes.scenes), analysis.scenes.fps)
        cues = reel_cues(analysis, s.seed)
        placements = plan_timeline(analysis.scenes.scenes, TimelineSettings(music_crossfade_s=s.music_crossfade_s))
        keys = generation_keys(cues, placements, source["sha256"], model, sampling)
        reuse = reusable_task(db_url, keys)
        with staged_directory(final_dir) as stage:
            publish_scenes(analysis, stage, reel)
            rendered = generate_cues(s.model, s.device, cues, analysis, placements, sampling, stage / "cues", reuse, keys, reel, s.batch_size)
            mix = mix_task(analysis, rendered, work, stage, MixSettings(preset=s.loudness_preset))
            mux_task(analysis, stage)
            if s.review_proxy:
                proxy_task(analysis, stage)
            generations = generation_rows(rendered, keys, source["sha256"], base_uri, stage, model, sampling)
            outputs = output_rows(stage, base_uri)
            write_provenance_task(stage, provenance_document(run_id, s, source_uri, source, analysis, model, generations, mix, outputs))
        if is_s3(out_uri):
            upload_task(final_dir, base_uri)
        record_results_task(db_url, run_id, scene_ids, generations, mix, outputs)
        key = review_task(reel, review_markdown(reel, analysis, rendered, model, mix, base_uri), outputs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "reel": reel, "out_dir": str(final_dir) if not is_s3(out_uri) else base_uri, "run_id": run_id, "flow_run_id": flow_run.get_id(),
        "review_artifact": key, "model": model["label"],
    }
