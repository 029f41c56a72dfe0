"""The local caches: cue audio as verified safetensors (never a pickle), S3 sources verified by their
recorded sha256, both bounded by $AUDIOX_CACHE_GB with least-recently-used eviction; and the nightly
flow's test of equal settings, whoever spelled them out."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from audiox_core.errors import InputError
from audiox_core.store.cache import IN_USE_S, SIDECAR, TensorCache, cache_budget, cache_root, evict, sources_cache

OUT = "s3://deliveries/soundtracks"  # the destination the runs of the settings test delivered to


def age(path: Path, seconds: float) -> None:
    """Make an entry's last use ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_tensors_come_back_equal_and_verified(home) -> None:
    cues = TensorCache()
    audio = torch.randn(2, 480)
    cues.put("key-1", {"audio": audio})
    assert cues.path("key-1").read_bytes()[8:9] == b"{"  # a safetensors JSON header, not a pickle
    assert torch.equal(cues.get("key-1")["audio"], audio)
    assert cues.get("key-2") is None


@pytest.mark.parametrize("damage", ["flip a data byte", "truncate", "garbage"])
def test_a_damaged_entry_is_discarded_with_a_warning(home, damage, caplog) -> None:
    """Expected: get() returns None (the cue will be generated again), the file is gone, one warning."""
    cues = TensorCache()
    cues.put("key", {"audio": torch.ones(2, 100)})
    path = cues.path("key")
    data = bytearray(path.read_bytes())
    if damage == "flip a data byte":
        data[-5] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"\x80\x04not safetensors at all")
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="audiox_core.store.cache"):
        assert cues.get("key") is None
    assert not path.exists()
    assert "discarding it" in caplog.text


def test_an_entry_renamed_to_another_key_is_refused(home) -> None:
    """Expected: the key recorded inside the file must be the key asked for."""
    cues = TensorCache()
    cues.put("a", {"audio": torch.zeros(1, 10)})
    cues.path("b").parent.mkdir(parents=True, exist_ok=True)
    cues.path("a").rename(cues.path("b"))
    assert cues.get("b") is None


def test_least_recently_used_entries_go_first_never_the_new_one_nor_one_in_use(home, monkeypatch) -> None:
    """Expected, with room for about two entries: of three old entries, the one just read survives
    (a hit is a use), the two others go; the entry just written stays; an entry used within
    IN_USE_S stays even over budget."""
    cues = TensorCache()
    audio = torch.zeros(1, 1000)  # 4000 bytes of data
    for key in ("old", "older", "read"):
        cues.put(key, {"audio": audio})
        age(cues.path(key), 2 * IN_USE_S)
    age(cues.path("older"), 3 * IN_USE_S)
    assert cues.get("read") is not None  # now its last use is now
    age(cues.path("read"), IN_USE_S + 10)  # still more recent than the others, but no longer in use
    size = cues.path("old").stat().st_size
    monkeypatch.setenv("AUDIOX_CACHE_GB", str(2.5 * size / 1e9))
    cues.put("new", {"audio": audio})
    assert [k for k in ("older", "old", "read", "new") if cues.has(k)] == ["read", "new"]
    cues.put("newer", {"audio": audio})  # over budget: "read" (not in use) goes, "new" is in use and stays
    assert [k for k in ("read", "new", "newer") if cues.has(k)] == ["new", "newer"]
    assert evict(keep=cues.path("newer"), root=cache_root(), budget=0) == []  # every entry left is in use


@pytest.mark.parametrize("value", ["lots", "0", "-1", "nan", "inf"])
def test_a_bad_cache_budget_is_one_line(monkeypatch, value) -> None:
    monkeypatch.setenv("AUDIOX_CACHE_GB", value)
    with pytest.raises(InputError, match=rf"^AUDIOX_CACHE_GB='{value}': must be a number of gigabytes above 0$"):
        cache_budget()


def test_the_default_budget_is_20_gb(monkeypatch) -> None:
    monkeypatch.delenv("AUDIOX_CACHE_GB", raising=False)
    assert cache_budget() == 20_000_000_000


@pytest.fixture
def bucket(s3_endpoint) -> str:
    from audiox_core.store.s3 import s3_client

    name = "cache-sources"
    try:
        s3_client().create_bucket(Bucket=name)
    except s3_client().exceptions.BucketAlreadyOwnedByYou:
        pass
    return name


def test_a_cached_source_that_changed_on_disk_is_downloaded_again(home, bucket, caplog) -> None:
    """Expected: the first download records the sha256 beside the file; the same bytes are a hit;
    a same-size corruption is noticed by its hash, logged, and replaced by a fresh download."""
    from audiox_core.store.files import sha256_file
    from audiox_core.store.s3 import download, s3_client

    body = os.urandom(4096)
    s3_client().put_object(Bucket=bucket, Key="reels/a.mp4", Body=body)
    sources = sources_cache()
    path, _ = download(f"s3://{bucket}/reels/a.mp4", sources)
    sidecar = path.with_name(path.name + SIDECAR)
    assert path.read_bytes() == body and sidecar.read_text() == sha256_file(path)
    age(path, 60)
    assert download(f"s3://{bucket}/reels/a.mp4", sources)[0] == path
    assert time.time() - path.stat().st_mtime < 30  # the hit counts as a use
    path.write_bytes(bytes(b ^ 1 for b in body))  # same size, other content
    with caplog.at_level(logging.WARNING, logger="audiox_core.store.cache"):
        again, _ = download(f"s3://{bucket}/reels/a.mp4", sources)
    assert again.read_bytes() == body
    assert "does not match its recorded sha256; fetching it again" in caplog.text


def test_the_source_cache_evicts_the_least_recently_used_download(home, bucket, monkeypatch) -> None:
    """Expected: with room for one source, downloading a second removes the first (not in use any
    more), sidecar included; the new one stays."""
    from audiox_core.store.s3 import download, s3_client

    for name in ("one", "two"):
        s3_client().put_object(Bucket=bucket, Key=f"reels/{name}.mp4", Body=os.urandom(10_000))
    sources = sources_cache()
    first, _ = download(f"s3://{bucket}/reels/one.mp4", sources)
    age(first, 2 * IN_USE_S)
    monkeypatch.setenv("AUDIOX_CACHE_GB", str(15_000 / 1e9))
    second, _ = download(f"s3://{bucket}/reels/two.mp4", sources)
    assert not first.exists() and not first.with_name(first.name + SIDECAR).exists()
    assert second.is_file()


@pytest.mark.integration
def test_batches_are_kept_as_safetensors_and_json_never_pickles(prefect_api, home) -> None:
    """Expected: a generation batch leaves its cues as verified safetensors and nothing else under
    the cache (no Prefect result record in-process, so none to plant a pickle beside); the staged
    frames are gone; a rerun of the batch is served from the cache, and a damaged cue in it is
    regenerated, equal to the first."""
    from prefect import flow

    from audiox_core.model.generate import SamplingSettings
    from audiox_core.model.longform import SceneRequest
    from tasks.inference import run_batch

    frames = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    requests = [SceneRequest(frames, "rain on a tin roof", seed, 0.25) for seed in (1, 2)]
    keys = [f"test-cue-{os.getpid()}-{time.time_ns()}-{i}" for i in range(2)]

    @flow
    def batch() -> list[torch.Tensor]:
        return run_batch("tiny", "cpu", requests, SamplingSettings(steps=2), keys)

    first = batch()
    files = [p for p in cache_root().rglob("*") if p.is_file()]
    cues = TensorCache()
    assert sorted(p for p in files if p.suffix == ".safetensors") == sorted(cues.path(k) for k in keys)
    assert not (cache_root() / "results").exists()
    path = cues.path(keys[0])
    damaged = path.read_bytes()[:-4] + b"\0\0\0\0"
    path.write_bytes(damaged)
    again = batch()
    assert path.read_bytes() != damaged and cues.get(keys[0]) is not None  # discarded and made again
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_equal_effective_settings_count_as_processed(db_url) -> None:
    """Expected: runs that stored ``{}`` and every default spelled out both count as processed for
    ``{}``, for the full dict and for a dict giving one default explicitly; another value does not,
    nor does another object version or a failed run."""
    from audiox_core.reel.settings import RunSettings
    from db import repository
    from db.session import upgrade
    from tasks.footage import needing_soundtracks

    upgrade(db_url)
    full = RunSettings().to_dict()
    for n, (stored, error) in enumerate([({}, None), (full, None), ({"seed": 4}, "failed")]):
        uri = f"s3://footage/reel{n}.mp4"
        run_id = repository.start_run(
            db_url, source_uri=uri, out_uri=OUT, settings=stored, code_version="test", flow_run_id=None
        )
        repository.record_asset(
            db_url, run_id, uri=uri, sha256=f"{n}" * 64, size=1, duration_s=1.0, fps=25, streams={}, version="e1"
        )
        repository.finish_run(db_url, run_id, error=error)
    footage = [{"uri": f"s3://footage/reel{n}.mp4", "version": "e1"} for n in range(3)]
    done = {"s3://footage/reel0.mp4", "s3://footage/reel1.mp4"}
    for asked in ({}, full, {"steps": full["steps"]}):
        for out in (OUT, OUT + "/"):  # an S3 prefix with or without its trailing '/'
            needed = needing_soundtracks(db_url, footage, asked, out)
            assert {f["uri"] for f in needed} == {f["uri"] for f in footage} - done
    assert len(needing_soundtracks(db_url, footage, {"seed": 4}, OUT)) == 3  # a different value; reel2's run failed
    assert len(needing_soundtracks(db_url, [{**f, "version": "e2"} for f in footage], {}, OUT)) == 3
    assert len(needing_soundtracks(db_url, footage, {}, "s3://deliveries/elsewhere")) == 3  # another destination


def test_a_model_path_compares_by_the_folder_it_names(tmp_path, monkeypatch) -> None:
    """Expected: a release folder given relative, with a trailing '/', or absolute is one model;
    another folder is not, and ``tiny`` stays the name ``tiny``."""
    from audiox_core.reel.settings import RunSettings
    from tasks.footage import comparable, same_settings

    (tmp_path / "models" / "audiox").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    absolute = RunSettings(model=str(tmp_path / "models" / "audiox"))
    for spelled in ("models/audiox/", "./models/audiox", str(tmp_path / "models" / "audiox") + "/"):
        assert same_settings({"model": spelled}, absolute), spelled
    assert not same_settings({"model": "models/other"}, absolute)
    assert comparable(RunSettings()).model == "tiny"


def test_the_task_workers_results_folder_is_this_users_alone(home) -> None:
    """Expected: Prefect's results folder is created 0700; once another account could write into it
    (a planted pickle record would be read), task-worker mode refuses it in one line naming it."""
    from tasks.inference import results_storage

    folder = results_storage()
    assert folder == cache_root() / "results" and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)
    with pytest.raises(InputError, match=r"results: Prefect's results folder is writable by others") as e:
        results_storage()
    assert "\n" not in str(e.value)
