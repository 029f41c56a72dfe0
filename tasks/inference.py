"""Where inference runs. Model loading and generation batches are Prefect tasks that run in the flow's
own process (``AUDIOX_INFERENCE=in-process``, the default) or on long-lived inference workers
(``task-worker``: ``audiox-studio inference-worker``, one per GPU), Prefect task workers that load
the model once and keep it for every batch of every run.

Nothing crosses between them as a pickle: the flow stages each scene's frames in the tensor cache
(audiox_core/store/cache.py, same $AUDIOX_HOME), the batch task writes each cue's audio there under its
generation key and returns the keys, and the model's facts travel as JSON. The tensor cache alone
decides reuse: a batch whose cues are all there is not generated again (a rerun after a crash
skips the batches that finished), a cue whose cached audio is gone or damaged is. Prefect keeps no
cache of its own here, because it reads a stored record with whatever serializer the record names
(a planted pickle record would be unpickled): in-process runs persist no results at all, and with
task workers, which must pass parameters and results through storage, that folder is this user's
alone (``results_storage``). Only the sampling itself holds the card's concurrency slot."""

from __future__ import annotations

import contextvars
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import numpy as np
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.futures import PrefectDistributedFuture

from audiox_core.environment import env_count, env_seconds, env_text, t5_dir
from audiox_core.errors import InputError, ModelError
from audiox_core.model.generate import SamplingSettings
from audiox_core.model.inpaint import Span
from audiox_core.model.longform import SceneRequest, generate_scenes
from audiox_core.model.runtime import LoadedModel, check_device, load_model
from audiox_core.provenance.records import ModelFacts, ProcessFacts
from audiox_core.store.cache import TensorCache, cache_root
from audiox_core.store.s3_cache import S3TensorCache
from audiox_core.store.shared import shared_store, tensor_cache
from audiox_core.store.staged import record_staged
from tasks.progress import working
from tasks.result_storage import results_storage

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
                t5 = t5_dir()
                model = load_model(spec, device=device, t5_dir=t5)
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
    mode = env_text("AUDIOX_INFERENCE", "in-process")
    if mode not in INFERENCE_MODES:
        raise InputError(f"AUDIOX_INFERENCE={mode!r}: unknown inference mode (known: {', '.join(INFERENCE_MODES)})")
    return mode  # type: ignore[return-value]


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
        foley_prompt=model.config.prompts.foley,
        music_prompt=model.config.prompts.music,
    )


@task(name="load-model", cache_policy=NO_CACHE, persist_result=True, result_serializer="json")
def load_model_task(spec: str, device: str) -> dict[str, Any]:
    """Load (or reuse) the model in this process; returns its facts (the process that holds it
    included) as a JSON-safe dict (``ModelFacts.from_dict`` rebuilds them)."""
    facts = facts_of(*MODELS.get(spec, device))
    get_run_logger().info(
        "model: %s on %s (%s), checkpoint sha256 %s",
        facts.label,
        facts.device,
        facts.precision,
        facts.checkpoint_sha256[:16],
    )
    return asdict(facts)


def check_inference_settings(device: str) -> None:
    """The inference settings, checked with the run's other settings before any work: the mode, the
    batches in flight, the shared store, the batch wait and, where this process generates, the device
    (an inference worker checks its own when it loads the model)."""
    batches_in_flight()
    shared_store()
    if inference_mode() == "task-worker":
        batch_wait_s()
    else:
        check_device(device)


def model_facts(spec: str, device: str) -> ModelFacts:
    """The model's facts from wherever inference runs (an inference worker loads it there)."""
    check_inference_settings(device)
    if inference_mode() == "task-worker":
        wait_s = env_seconds("AUDIOX_INFERENCE_WAIT_S", DEFAULT_WAIT_S)
        get_run_logger().info(
            "waiting up to %g s for an inference worker (audiox-studio inference-worker) to load %s", wait_s, spec
        )
        try:
            task = load_model_task.with_options(result_storage=results_storage())
            values = result_of(outside_the_flow(task.delay, spec, device), timeout=wait_s)
        except TimeoutError:
            raise ModelError(
                f"{spec}: no inference worker loaded the model within {wait_s:g} s; start `audiox-studio inference-worker` "
                "with this PREFECT_API_URL and AUDIOX_HOME, or unset AUDIOX_INFERENCE"
            ) from None
    else:
        with working(f"loading the model ({spec}) …"):
            values = load_model_task.with_options(persist_result=False)(spec, device)
    return ModelFacts.from_dict(values)


# Where a batch generated in this process reports its sampling steps (the flow's progress bar and
# artifact); a batch on an inference worker reports only when it ends.
BATCH_PROGRESS: contextvars.ContextVar[Callable[[float], None] | None] = contextvars.ContextVar(
    "batch_progress", default=None
)


@task(name="generate-cues", cache_policy=NO_CACHE, persist_result=True, result_serializer="json")
def generate_batch_task(
    spec: str,
    device: str,
    requests: list[dict[str, Any]],
    sampling: dict[str, Any],
    keys: list[str],
    batch_size: int | None = None,
) -> list[str]:
    """One batch through the model, each cue's audio stored in the tensor cache under its key;
    returns the keys. A batch whose cues are all cached is not generated again; the whole batch
    runs again when any cue of it is missing (the keys hold the footage's sha256, the model and
    checkpoint, prompts, seeds, sampling settings and the code version): batched and single
    matmuls round differently, and a key must always give the same bytes. Only inference holds the
    GPU slot."""
    cues = tensor_cache()
    if all(cues.has(key) for key in keys):
        get_run_logger().info("all %d cues of this batch are in the shared cache: nothing to generate", len(keys))
    else:
        model, process = MODELS.get(spec, device)
        get_run_logger().info("generating %d cues on %s (pid %d)", len(keys), process.host, process.pid)
        scenes = [scene_request(cues, r) for r in requests]
        on_card = model.device.type == "cuda"  # the CPU is no card to share: no slot, no missing-limit warning
        with concurrency(gpu_slot(model.device), occupy=1, strict=False) if on_card else nullcontext():
            audio = generate_scenes(
                model, scenes, SamplingSettings(**sampling), batch_size=batch_size, on_step=BATCH_PROGRESS.get()
            )
        for key, cue in zip(keys, audio):
            cues.put(key, {"audio": cue})
    return keys


def stage_request(cues: TensorCache | S3TensorCache, request: SceneRequest) -> dict[str, Any]:
    """A scene request as JSON-safe values, its frames staged in the tensor cache under a key of
    their own (never shared: the batch discards them when it ends, whoever else stages equal frames)."""
    key = f"frames-{uuid.uuid4().hex}"
    record_staged(cache_root(), key)  # so a sweep can remove it if this process is killed before the discard
    tensors = {"frames": torch.from_numpy(np.array(request.frames))}  # a copy: the frames may be read-only
    for name in ("previous", "audio_prompt"):  # the sound an inpainted or completed cue starts from
        if (sound := getattr(request, name)) is not None:
            tensors[name] = torch.from_numpy(np.array(sound, dtype=np.float32))
    cues.put(key, tensors)
    spans = [[s.start_s, s.end_s] for s in request.spans]
    return {"frames": key, "text": request.text, "seed": request.seed, "seconds": request.seconds, "spans": spans}


def scene_request(cues: TensorCache | S3TensorCache, staged: dict[str, Any]) -> SceneRequest:
    """The scene request ``stage_request`` staged, its frames (and given sound) read back and verified from the cache."""
    found = cues.get(staged["frames"])
    if found is None:
        raise ModelError(f"{staged['frames']}: the scene's frames are missing from the cache at {cues.location}")
    sound = {name: found[name].numpy() if name in found else None for name in ("previous", "audio_prompt")}
    spans = tuple(Span(a, b) for a, b in staged.get("spans", []))
    return SceneRequest(
        found["frames"].numpy(), staged["text"], staged["seed"], staged["seconds"], spans=spans, **sound
    )


def run_batch(
    spec: str,
    device: str,
    requests: list[SceneRequest],
    sampling: SamplingSettings,
    keys: list[str],
    batch_size: int | None = None,
) -> list[torch.Tensor]:
    """One generation batch wherever inference runs (its windows in passes of ``batch_size``), each
    cue's audio read from the tensor cache (verified); cues missing there or damaged are generated again."""
    cues = tensor_cache()
    staged = [stage_request(cues, r) for r in requests]
    try:
        audio = _cached_audio(cues, _submit(spec, device, staged, sampling, keys, batch_size))
        if any(a is None for a in audio):  # reading them discarded the damaged ones: the batch now runs
            get_run_logger().warning("cached cues of this batch are missing or damaged; generating them again")
            audio = _cached_audio(cues, _submit(spec, device, staged, sampling, keys, batch_size))
        if any(a is None for a in audio):
            raise ModelError(f"the generated cues did not reach the cache at {cues.location}")
    finally:
        for s in staged:
            cues.discard(s["frames"])
    return audio  # type: ignore[return-value]


def _submit(
    spec: str,
    device: str,
    staged: list[dict[str, Any]],
    sampling: SamplingSettings,
    keys: list[str],
    batch_size: int | None,
) -> list[str]:
    args = (spec, device, staged, asdict(sampling), keys, batch_size)
    if inference_mode() == "task-worker":
        return _on_a_worker(args, len(keys))
    return generate_batch_task.with_options(persist_result=False)(*args)


DEFAULT_BATCH_WAIT_S = 1800.0
BATCH_SENDS = 3  # a batch goes to the workers at most this many times


def batch_wait_s() -> float:
    """How long a batch may run on an inference worker before it counts as lost (the worker died
    or was cut off) and is sent again: $AUDIOX_BATCH_WAIT_S, default 1800."""
    return env_seconds("AUDIOX_BATCH_WAIT_S", DEFAULT_BATCH_WAIT_S)


def batches_in_flight() -> int:
    """How many of a reel's batches go to the inference workers at once: $AUDIOX_BATCHES_IN_FLIGHT,
    default 4 with task workers (free workers on any machine take them), 1 in-process."""
    return env_count("AUDIOX_BATCHES_IN_FLIGHT", 4 if inference_mode() == "task-worker" else 1)


def _on_a_worker(args: tuple[Any, ...], cues: int) -> list[str]:
    """The batch on whichever inference worker takes it. A batch with no result after
    ``batch_wait_s`` is lost with its worker: its task run is marked Crashed and the batch is sent
    again for another worker (cues it finished are in the shared cache and are not made again)."""
    batch = generate_batch_task.with_options(result_storage=results_storage())
    wait = batch_wait_s()
    for send in range(1, BATCH_SENDS + 1):
        future = outside_the_flow(batch.delay, *args)
        try:
            return result_of(future, timeout=wait)
        except TimeoutError:
            _mark_lost(future.task_run_id, wait)
            get_run_logger().warning(
                "batch of %d cues: no result within %g s (task run %s; its worker may be gone)%s",
                cues,
                wait,
                future.task_run_id,
                "; sending it again" if send < BATCH_SENDS else "",
            )
    raise ModelError(
        f"a batch of {cues} cues got no result from the inference workers in {BATCH_SENDS} sends of {wait:g} s each; "
        "check that `audiox-studio inference-worker` runs with this PREFECT_API_URL and AUDIOX_SHARED_STORE"
    )


def _mark_lost(task_run_id: uuid.UUID, wait: float) -> None:
    """Mark a batch's task run Crashed (it is sent again), so the UI does not show it running forever."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        state = client.read_task_run(task_run_id).state
        if state is None or not state.is_final():
            message = f"no result within {wait:g} s: the batch was sent again"
            client.set_task_run_state(task_run_id, Crashed(message=message), force=True)


NO_STATE_WAIT_S = 60.0  # how long a just-sent task run may stay without a state


def result_of(future: PrefectDistributedFuture, timeout: float | None = None) -> Any:
    """The task run's result. A run just sent with ``delay`` can still have no state on a loaded
    machine, and Prefect's future then raises at once ("has no state which means it hasn't started
    yet"); that is retried for up to NO_STATE_WAIT_S, every other error is not."""
    deadline = time.monotonic() + NO_STATE_WAIT_S
    while True:
        try:
            return future.result(timeout=timeout)
        except RuntimeError as exc:
            if "has no state" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _cached_audio(cues: TensorCache | S3TensorCache, keys: list[str]) -> list[torch.Tensor | None]:
    found = [cues.get(k) for k in keys]
    return [f["audio"] if f is not None else None for f in found]


def outside_the_flow(send: Callable[..., PrefectDistributedFuture], *args: Any) -> PrefectDistributedFuture:
    """Send a task to the inference workers without the flow run's context: Prefect stores that
    context (the Flow object itself) with the task's parameters, which only pickle could encode;
    without it the parameters record is JSON like everything else (the task run then stands on its
    own in the UI instead of under the flow run)."""
    from prefect.context import FlowRunContext, TaskRunContext

    def send_detached() -> PrefectDistributedFuture:
        FlowRunContext.__var__.set(None)
        TaskRunContext.__var__.set(None)
        return send(*args)

    return until_recorded(contextvars.copy_context().run(send_detached))


def until_recorded(future: PrefectDistributedFuture, wait_s: float = 60.0) -> PrefectDistributedFuture:
    """The future once the API shows its task run's first state: the server records a deferred
    run's Scheduled state a moment after the run itself, and Prefect's wait refuses (RuntimeError
    "has no state") a run read in between, which a busy machine hits."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while client.read_task_run(future.task_run_id).state is None:
            if time.monotonic() > deadline:
                raise ModelError(
                    f"task run {future.task_run_id}: the Prefect API recorded no state within {wait_s:g} s"
                )
            time.sleep(0.05)
    return future


def serve_inference() -> None:
    """Run this process as an inference worker: a Prefect task worker for model loading and
    generation batches, keeping the model loaded between them. It takes one batch at a time (one
    model, one card): the next batch of a reel goes to whichever worker is free, on any machine."""
    from prefect.task_worker import serve

    storage = results_storage()
    serve(
        load_model_task.with_options(result_storage=storage),
        generate_batch_task.with_options(result_storage=storage),
        limit=1,
    )


def gpu_slot(device: torch.device) -> str:
    """The global concurrency limit guarding this process's accelerator (create it with
    `prefect gcl create audiox-gpu --limit 1`; per card when workers pin CUDA_VISIBLE_DEVICES)."""
    card = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return f"audiox-gpu-{card}" if device.type == "cuda" and card else "audiox-gpu"
