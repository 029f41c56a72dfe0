"""The shared store that lets flow runs and inference workers live on different machines: cues and
staged frames as verified safetensors objects on S3 (moto_server), Prefect's task results in an S3
block that holds no credentials, the settings' one-line errors, and a reel's batches sent several
at a time with their results kept in order."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import torch
from harness import scaled_timeout

from audiox_core.errors import InputError


@pytest.fixture
def shared(home, s3_endpoint, monkeypatch) -> str:
    from audiox_core.store.s3 import s3_client

    try:
        s3_client().create_bucket(Bucket="studio-shared")
    except s3_client().exceptions.BucketAlreadyOwnedByYou:
        pass
    prefix = f"s3://studio-shared/run-{time.time_ns()}"
    monkeypatch.setenv("AUDIOX_SHARED_STORE", prefix + "/")
    return prefix


def test_the_default_store_is_this_machines_cache_folder(home, monkeypatch) -> None:
    """Expected: without AUDIOX_SHARED_STORE the cues stay where one machine kept them before."""
    from audiox_core.store.cache import TensorCache, cache_root
    from audiox_core.store.shared import shared_store, tensor_cache

    monkeypatch.delenv("AUDIOX_SHARED_STORE", raising=False)
    assert shared_store() == str(cache_root())
    cues = tensor_cache()
    assert isinstance(cues, TensorCache) and cues.folder == cache_root() / "cues"


@pytest.mark.parametrize("value", ["gs://bucket/x", "s3://", "s3://bucket/../up"])
def test_a_bad_shared_store_is_one_line(home, monkeypatch, value) -> None:
    from audiox_core.store.shared import shared_store

    monkeypatch.setenv("AUDIOX_SHARED_STORE", value)
    with pytest.raises(InputError) as e:
        shared_store()
    assert "\n" not in str(e.value)


def test_cues_on_s3_come_back_equal_and_a_damaged_object_is_deleted(shared, caplog) -> None:
    """Expected: put/get round-trips the tensors through one S3 object under the prefix; an object
    whose bytes changed is refused with a warning and deleted (the cue is made again)."""
    from audiox_core.store.s3 import s3_client
    from audiox_core.store.s3_cache import S3TensorCache
    from audiox_core.store.shared import tensor_cache

    cues = tensor_cache()
    assert isinstance(cues, S3TensorCache) and cues.location == shared + "/cues"
    audio = torch.randn(2, 480)
    assert not cues.has("cue-1") and cues.get("cue-1") is None
    cues.put("cue-1", {"audio": audio})
    assert cues.has("cue-1") and torch.equal(cues.get("cue-1")["audio"], audio)
    bucket, key = cues.bucket, cues.object_key("cue-1")
    assert key.startswith(shared.removeprefix("s3://studio-shared/") + "/cues/")
    body = bytearray(s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())
    body[-3] ^= 0xFF
    s3_client().put_object(Bucket=bucket, Key=key, Body=bytes(body))
    with caplog.at_level(logging.WARNING, logger="audiox_core.store.cache"):
        assert cues.get("cue-1") is None
    assert "does not match its recorded sha256" in caplog.text
    assert not cues.has("cue-1")


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_an_unreachable_shared_store_is_one_line_naming_it(home, monkeypatch) -> None:
    """Expected: S3 that cannot be reached is a transient error naming the object, not a traceback."""
    from audiox_core.errors import TransientError
    from audiox_core.store.s3 import s3_client
    from audiox_core.store.shared import tensor_cache

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AUDIOX_SHARED_STORE", "s3://nowhere/store")
    s3_client.cache_clear()
    try:
        with pytest.raises((TransientError, InputError)) as e:
            tensor_cache().has("cue")
    finally:
        s3_client.cache_clear()
    assert str(e.value).startswith("s3://nowhere/store/cues/") and "\n" not in str(e.value)


@pytest.mark.integration
def test_prefect_results_on_s3_are_a_block_without_credentials(prefect_api, shared) -> None:
    """Expected: a task's JSON result written through the S3 block lands under <store>/results and
    reads back in a fresh result store by the block's id (as another machine would); the saved block
    holds the bucket and prefix only, no key nor secret."""
    from prefect import flow, task
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client
    from prefect.results import ResultStore

    from audiox_core.store.s3 import s3_client
    from tasks.result_storage import S3Results, results_storage

    storage = results_storage()
    assert isinstance(storage, S3Results) and storage.prefix.endswith("/results")

    @task(persist_result=True, result_serializer="json", result_storage=storage)
    def keys() -> list[str]:
        return ["cue-a", "cue-b"]

    @flow
    def run() -> object:
        return keys(return_state=True)

    state = run()
    metadata = state.data.metadata if hasattr(state.data, "metadata") else state.data
    assert metadata.storage_block_id is not None
    with get_client(sync_client=True) as client:
        document = client.read_block_document(metadata.storage_block_id)
    assert set(document.data) == {"bucket", "prefix"} and "testing" not in str(document.data)
    # What another machine does with the record: the block from its id, then the record from it.
    # (Prefect's own ResultStore._from_metadata does the same but leaves its API client open.)
    block = Block._from_block_document(document)
    assert isinstance(block, S3Results) and block is not storage
    record = ResultStore(result_storage=block, serializer=metadata.serializer).read(metadata.storage_key)
    assert record.result == ["cue-a", "cue-b"]
    listed = s3_client().list_objects_v2(Bucket="studio-shared", Prefix=storage.prefix + "/")
    assert listed.get("KeyCount", 0) >= 1


def test_batches_in_flight_run_together_and_come_back_in_order() -> None:
    """Expected: with 3 in flight, three slow items overlap (all started before any finished) and
    the results keep the items' order although the last finishes first."""
    from audiox_core.reel.stages import _in_order

    started: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=scaled_timeout(10))

    def work(i: int) -> int:
        with lock:
            started.append(i)
        gate.wait()  # fails unless all three run at once
        time.sleep(0.05 * (3 - i))
        return i * 10

    assert list(_in_order(work, [0, 1, 2], 3)) == [0, 10, 20]
    assert sorted(started) == [0, 1, 2]
    assert list(_in_order(lambda i: i + 1, [1, 2], 1)) == [2, 3]


def test_a_failed_batch_stops_the_rest_and_raises() -> None:
    from audiox_core.reel.stages import _in_order

    ran: list[int] = []

    def work(i: int) -> int:
        ran.append(i)
        if i == 0:
            raise RuntimeError("batch 0 failed")
        time.sleep(0.2)
        return i

    with pytest.raises(RuntimeError, match="batch 0 failed"):
        list(_in_order(work, list(range(8)), 2))
    assert len(ran) < 8  # the ones not started were cancelled


@pytest.mark.parametrize(
    ("name", "value", "call"),
    [
        ("AUDIOX_BATCH_WAIT_S", "soon", "batch_wait_s"),
        ("AUDIOX_BATCH_WAIT_S", "0", "batch_wait_s"),
        ("AUDIOX_BATCHES_IN_FLIGHT", "0", "batches_in_flight"),
        ("AUDIOX_BATCHES_IN_FLIGHT", "two", "batches_in_flight"),
        ("AUDIOX_INFERENCE_WAIT_S", "soon", "model_facts"),
    ],
)
def test_bad_batch_settings_are_one_line(monkeypatch, name, value, call) -> None:
    import tasks.inference as inference

    monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUDIOX_INFERENCE", "task-worker" if call == "model_facts" else "in-process")
    args = ("tiny", "cpu") if call == "model_facts" else ()
    with pytest.raises(InputError, match=rf"^{name}=") as e:
        getattr(inference, call)(*args)
    assert "\n" not in str(e.value)


def test_task_workers_get_four_batches_at_once_in_process_one(monkeypatch) -> None:
    from tasks.inference import batches_in_flight

    monkeypatch.delenv("AUDIOX_BATCHES_IN_FLIGHT", raising=False)
    monkeypatch.setenv("AUDIOX_INFERENCE", "task-worker")
    assert batches_in_flight() == 4
    monkeypatch.setenv("AUDIOX_INFERENCE", "in-process")
    assert batches_in_flight() == 1
