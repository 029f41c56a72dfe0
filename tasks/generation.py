"""The generate stage: the model is loaded once per worker process and reused across reels."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from audiox_core.cues import Cue
from audiox_core.model.checkpoint import LoadedModel, load_model
from audiox_core.model.generate import SamplingSettings
from audiox_core.media.timeline import Placement
from audiox_core.reel import Analysis, RenderedCue, render_cues
from tasks.progress import progress_bar


@cache
def cached_model(spec: str, device: str) -> LoadedModel:
    """One load per (model, device) per process; T5 comes from $AUDIOX_T5_DIR when the model needs it."""
    t5 = os.environ.get("AUDIOX_T5_DIR")
    return load_model(spec, device=device, t5_dir=Path(t5) if t5 else None)


@task(name="load-model", cache_policy=NO_CACHE)
def load_model_task(spec: str, device: str) -> dict:
    """Load (or reuse) the model; returns what the flow and provenance need, not the model itself."""
    model = cached_model(spec, device)
    get_run_logger().info("model: %s on %s, checkpoint sha256 %s", model.label, model.device, model.checkpoint_sha256[:16])
    return {
        "name": model.name,
        "label": model.label,
        "checkpoint_sha256": model.checkpoint_sha256,
        "random_weights": model.random_weights,
        "device": str(model.device),
        "frame_fps": model.config.video.video_fps,
        "frame_size": model.config.video.clip.image_size,
    }


@task(name="generate", cache_policy=NO_CACHE)
def generate_task(
    spec: str, device: str, cues: list[Cue], analysis: Analysis, placements: list[Placement], sampling: SamplingSettings, out_dir: Path
) -> list[RenderedCue]:
    with progress_bar(f"generate {len(cues)} cues") as update:
        return render_cues(cached_model(spec, device), cues, analysis, placements, sampling, out_dir, progress=update)
