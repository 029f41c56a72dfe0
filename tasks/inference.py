"""Where inference runs. Model loading and generation batches are Prefect tasks that run in the flow's
own process (``AUDIOX_INFERENCE=in-process``, the default) or on long-lived inference workers
(``task-worker``: ``audiox-studio inference-worker``, one per GPU), Prefect task workers that load
the model once and keep it for every batch of every run. A batch's result is persisted under
$AUDIOX_HOME and cached on its cues' generation keys, so a rerun skips the batches that finished;
only the sampling itself holds the card's concurrency slot."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from audiox_core.errors import InputError, ModelError
from audiox_core.model.generate import SamplingSettings
from audiox_core.model.longform import SceneRequest, generate_scenes
from audiox_core.model.runtime import LoadedModel, load_model
from audiox_core.records import ModelFacts, ProcessFacts
from audiox_core.workspace import studio_home

InferenceMode = Literal["in-process", "task-worker"]
INFERENCE_MODES: tuple[InferenceMode, ...] = get_args(InferenceMode)
DEFAULT_WAIT_S = 600.0


class ModelCache:
    """The models this process holds: one load per (model, device), whichever thread asks first;
    T5 comes from $AUDIOX_T5_DIR when the model needs it."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], tuple[LoadedModel, ProcessFacts]] = {}
        self._lock = threading.Lock()

    def get(self, spec: str, device: str) -> tuple[LoadedModel, ProcessFacts]:
        with self._lock:
            if (spec, device) not in self._models:
                t5 = os.environ.get("AUDIOX_T5_DIR")
                model = load_model(spec, device=device, t5_dir=Path(t5) if t5 else None)
                loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
                self._models[(spec, device)] = (model, ProcessFacts(socket.gethostname(), os.getpid(), loaded_at))
            return self._models[(spec, device)]

    def __len__(self) -> int:
        return len(self._models)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


MODELS = ModelCache()


def inference_mode() -> InferenceMode:
    """Where batches run: $AUDIOX_INFERENCE, ``in-process`` (default) or ``task-worker``."""
    mode = os.environ.get("AUDIOX_INFERENCE", "in-process")
    if mode not in INFERENCE_MODES:
        raise InputError(f"AUDIOX_INFERENCE={mode!r}: unknown inference mode (known: {', '.join(INFERENCE_MODES)})")
    return mode  # type: ignore[return-value]


def results_storage() -> Path:
    """Where generation batches persist their results (cue audio at the model's rate), under
    $AUDIOX_HOME (Prefect keeps them in a local file system at this path); inference workers on the
    same machine share it."""
    return studio_home() / "cache" / "results"


def facts_of(model: LoadedModel, process: ProcessFacts) -> ModelFacts:
    """What the flow and provenance need to know about a loaded model, not the model itself."""
    cuda = model.device.type == "cuda"
    return ModelFacts(
        name=model.name,
        label=model.label,
        checkpoint_sha256=model.checkpoint_sha256,
        random_weights=model.random_weights,
        device=str(model.device),
        frame_fps=model.config.video.video_fps,
        frame_size=model.config.video.clip.image_size,
        precision=model.precision,
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda if cuda else None,
        process=process,
    )


@task(name="load-model", cache_policy=NO_CACHE, persist_result=True)
def load_model_task(spec: str, device: str) -> ModelFacts:
    """Load (or reuse) the model in this process; returns its facts (the process that holds it included)."""
    facts = facts_of(*MODELS.get(spec, device))
    get_run_logger().info(
        "model: %s on %s (%s), checkpoint sha256 %s",
        facts.label,
        facts.device,
        facts.precision,
        facts.checkpoint_sha256[:16],
    )
    return facts


def model_facts(spec: str, device: str) -> ModelFacts:
    """The model's facts from wherever inference runs (an inference worker loads it there)."""
    if inference_mode() == "task-worker":
        wait_s = float(os.environ.get("AUDIOX_INFERENCE_WAIT_S", DEFAULT_WAIT_S))
        get_run_logger().info(
            "waiting up to %g s for an inference worker (audiox-studio inference-worker) to load %s", wait_s, spec
        )
        try:
            return (
                load_model_task.with_options(result_storage=results_storage())
                .delay(spec, device)
                .result(timeout=wait_s)
            )
        except TimeoutError:
            raise ModelError(
                f"{spec}: no inference worker loaded the model within {wait_s:g} s; start `audiox-studio inference-worker` "
                "with this PREFECT_API_URL and AUDIOX_HOME, or unset AUDIOX_INFERENCE"
            ) from None
    return load_model_task(spec, device)


def batch_cache_key(context: object, parameters: dict) -> str:
    """A batch's cache key: its cues' generation keys, which hold the footage's sha256, the model and
    checkpoint, prompts, seeds, sampling settings and the code version."""
    return "cues-" + hashlib.sha256("\n".join(parameters["keys"]).encode()).hexdigest()


@task(name="generate-cues", cache_key_fn=batch_cache_key, persist_result=True, result_serializer="pickle")
def generate_batch_task(
    spec: str, device: str, requests: list[SceneRequest], sampling: SamplingSettings, keys: list[str]
) -> list[torch.Tensor]:
    """One batch through the model; only inference holds the GPU slot."""
    model, _ = MODELS.get(spec, device)
    with concurrency(gpu_slot(model.device), occupy=1, strict=False):
        return [audio.cpu() for audio in generate_scenes(model, requests, sampling)]


def run_batch(
    spec: str, device: str, requests: list[SceneRequest], sampling: SamplingSettings, keys: list[str]
) -> list[torch.Tensor]:
    """One generation batch wherever inference runs, its result cached on ``keys``."""
    batch = generate_batch_task.with_options(result_storage=results_storage())
    if inference_mode() == "task-worker":
        return batch.delay(spec, device, requests, sampling, keys).result()
    return batch(spec, device, requests, sampling, keys)


def serve_inference() -> None:
    """Run this process as an inference worker: a Prefect task worker for model loading and
    generation batches, keeping the model loaded between them."""
    from prefect.task_worker import serve

    storage = results_storage()
    serve(
        load_model_task.with_options(result_storage=storage), generate_batch_task.with_options(result_storage=storage)
    )


def gpu_slot(device: torch.device) -> str:
    """The global concurrency limit guarding this process's accelerator (create it with
    `prefect gcl create audiox-gpu --limit 1`; per card when workers pin CUDA_VISIBLE_DEVICES)."""
    card = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return f"audiox-gpu-{card}" if device.type == "cuda" and card else "audiox-gpu"
