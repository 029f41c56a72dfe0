"""The generate stage. Each batch of cues is a Prefect task cached on the cues' generation keys with
its result persisted, so a rerun of a half-finished reel skips the batches (whole scenes) that
finished. Inference runs in the flow's own process (``AUDIOX_INFERENCE=in-process``, the default),
or on long-lived inference workers (``task-worker``: ``audiox-studio inference-worker``, one per
GPU), Prefect task workers that load the model once and keep it for every reel of every run."""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import asdict
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from audiox_core.cues import Cue
from audiox_core.errors import InputError, ModelError
from audiox_core.media.timeline import Placement
from audiox_core.model.checkpoint import LoadedModel, load_config, load_model
from audiox_core.model.generate import SamplingSettings
from audiox_core.model.longform import SceneRequest, generate_scenes
from audiox_core.provenance import generation_key
from audiox_core.reel import Analysis, RenderedCue, render_cues
from audiox_core.settings import code_version, studio_home
from audiox_core.storage import fetch, sha256_file
from db import repository
from tasks.progress import progress_bar
from tasks.retry import RETRY_DELAYS, transient_only
from tasks.review import artifact_slug

INFERENCE_MODES = ("in-process", "task-worker")
_LOADED_AT: dict[tuple[str, str], str] = {}


def inference_mode() -> str:
    """Where batches run: $AUDIOX_INFERENCE, ``in-process`` (default) or ``task-worker``."""
    mode = os.environ.get("AUDIOX_INFERENCE", "in-process")
    if mode not in INFERENCE_MODES:
        raise InputError(f"AUDIOX_INFERENCE={mode!r}: unknown inference mode (known: {', '.join(INFERENCE_MODES)})")
    return mode


@cache
def cached_model(spec: str, device: str) -> LoadedModel:
    """One load per (model, device) per process; T5 comes from $AUDIOX_T5_DIR when the model needs it."""
    t5 = os.environ.get("AUDIOX_T5_DIR")
    model = load_model(spec, device=device, t5_dir=Path(t5) if t5 else None)
    _LOADED_AT[(spec, device)] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return model


def results_storage() -> Path:
    """Where generation batches persist their results (cue audio at the model's rate), under
    $AUDIOX_HOME (Prefect keeps them in a local file system at this path); inference workers on the
    same machine share it."""
    return studio_home() / "cache" / "results"


@task(name="load-model", cache_policy=NO_CACHE, persist_result=True)
def load_model_task(spec: str, device: str) -> dict:
    """Load (or reuse) the model in this process; returns what the flow and provenance need (the
    process that holds it included), not the model itself."""
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
        "precision": "bf16 DiT, fp32 VAE and conditioners" if model.device.type == "cuda" else "fp32",
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if model.device.type == "cuda" else None,
        "process": {"host": socket.gethostname(), "pid": os.getpid(), "loaded_at": _LOADED_AT[(spec, device)]},
    }


def model_facts(spec: str, device: str) -> dict:
    """The model's facts from wherever inference runs (an inference worker loads it there)."""
    if inference_mode() == "task-worker":
        wait_s = float(os.environ.get("AUDIOX_INFERENCE_WAIT_S", "600"))
        get_run_logger().info("waiting up to %g s for an inference worker (audiox-studio inference-worker) to load %s", wait_s, spec)
        try:
            return load_model_task.with_options(result_storage=results_storage()).delay(spec, device).result(timeout=wait_s)
        except TimeoutError:
            raise ModelError(
                f"{spec}: no inference worker loaded the model within {wait_s:g} s; start `audiox-studio inference-worker` "
                "with this PREFECT_API_URL and AUDIOX_HOME, or unset AUDIOX_INFERENCE"
            ) from None
    return load_model_task(spec, device)


def generation_keys(cues: list[Cue], placements: list[Placement], source_sha256: str, model: dict, sampling: SamplingSettings) -> dict[tuple[int, str], str]:
    """The content key of every cue: everything that determines its audio, this code version included."""
    where = {(p.scene_index, p.kind): p for p in placements}
    keys = {}
    for c in cues:
        p = where[(c.scene_index, c.kind)]
        keys[(c.scene_index, c.kind)] = generation_key({
            "source_sha256": source_sha256, "kind": c.kind, "span": [p.start, p.length, p.fade_in, p.fade_out],
            "model": model["name"], "checkpoint_sha256": model["checkpoint_sha256"], "prompt": c.prompt, "seed": c.seed,
            "sampling": asdict(sampling), "precision": model["precision"], "code_version": code_version(),
        })
    return keys


def batch_cache_key(context: object, parameters: dict) -> str:
    """A batch's cache key: its cues' generation keys, which hold the footage's sha256, the model and
    checkpoint, prompts, seeds, sampling settings and the code version."""
    return "cues-" + hashlib.sha256("\n".join(parameters["keys"]).encode()).hexdigest()


@task(name="generate-cues", cache_key_fn=batch_cache_key, persist_result=True, result_serializer="pickle")
def generate_cues_task(spec: str, device: str, requests: list[SceneRequest], sampling: SamplingSettings, keys: list[str]) -> list[torch.Tensor]:
    """One batch through the model; only inference holds the GPU slot."""
    model = cached_model(spec, device)
    with concurrency(gpu_slot(model.device), occupy=1, strict=False):
        return [audio.cpu() for audio in generate_scenes(model, requests, sampling)]


@task(name="find-reusable", cache_policy=NO_CACHE, retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=transient_only)
def reusable_task(db_url: str, keys: dict[tuple[int, str], str]) -> dict[tuple[int, str], Path]:
    """Cues an earlier finished run generated with the same key, whose recorded file (local or S3) is
    still there, unchanged."""
    found = repository.find_generations(db_url, keys.values())
    reuse = {}
    for where, key in keys.items():
        g = found.get(key)
        if g is None:
            continue
        try:
            path, _ = fetch(g.output_uri, studio_home() / "cache" / "sources")
        except InputError:
            continue  # the recorded file is gone: generate again
        if sha256_file(path) == g.output_sha256:
            reuse[where] = path
    if reuse:
        get_run_logger().info("reusing %d of %d cues generated before with the same inputs and settings", len(reuse), len(keys))
    return reuse


def generate_cues(
    spec: str, device: str, cues: list[Cue], analysis: Analysis, placements: list[Placement], sampling: SamplingSettings,
    out_dir: Path, reuse: dict[tuple[int, str], Path], keys: dict[tuple[int, str], str], reel: str, batch_size: int = 8,
) -> list[RenderedCue]:
    """The generate stage, run in the flow itself (not inside a task): each batch is then a task of
    the flow whose cached result is committed as soon as it finishes, where a task nested in another
    task would commit only with its parent, and a crash would lose every finished batch."""
    artifact = create_progress_artifact(progress=0.0, key=f"generation-{artifact_slug(reel)}", description="cues generated")
    batch_task = generate_cues_task.with_options(result_storage=results_storage())
    remote = inference_mode() == "task-worker"

    def generate(batch: list[Cue], requests: list[SceneRequest]) -> list[torch.Tensor]:
        batch_keys = [keys[(c.scene_index, c.kind)] for c in batch]
        if remote:
            return batch_task.delay(spec, device, requests, sampling, batch_keys).result()
        return batch_task(spec, device, requests, sampling, batch_keys)

    with progress_bar(f"generate {len(cues) - len(reuse)} cues") as bar:

        def update(done: int, total: int) -> None:
            bar(done, total)
            update_progress_artifact(artifact, progress=100.0 * done / max(total, 1))

        return render_cues(load_config(spec), cues, analysis, placements, out_dir, generate, reuse=reuse, batch_size=batch_size, progress=update)


def serve_inference() -> None:
    """Run this process as an inference worker: a Prefect task worker for model loading and
    generation batches, keeping the model loaded between them."""
    from prefect.task_worker import serve

    storage = results_storage()
    serve(load_model_task.with_options(result_storage=storage), generate_cues_task.with_options(result_storage=storage))


def gpu_slot(device: torch.device) -> str:
    """The global concurrency limit guarding this process's accelerator (create it with
    `prefect gcl create audiox-gpu --limit 1`; per card when workers pin CUDA_VISIBLE_DEVICES)."""
    card = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return f"audiox-gpu-{card}" if device.type == "cuda" and card else "audiox-gpu"
