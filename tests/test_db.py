"""The provenance database on SQLite and on a real PostgreSQL: migrations, idempotent reruns,
concurrent writers, and lookups by content."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import func, select

from db import repository
from db.models import Asset, Generation, Output, SceneGeneration
from db.session import alembic_config, sessions, upgrade

SCENES = [{"index": i, "start_s": float(i), "end_s": i + 1.0, "start_frame": 25 * i, "end_frame": 25 * (i + 1),
           "start_tc": f"00:00:0{i}:00", "end_tc": f"00:00:0{i + 1}:00"} for i in range(3)]


def generation(i: int, kind: str, key_suffix: str = "") -> dict:
    return {
        "scene_index": i, "key": f"{i}-{kind}{key_suffix}".ljust(64, "k"), "kind": kind, "source_sha256": "ab" * 32,
        "span_start": 48_000 * i, "span_length": 48_000, "model_name": "tiny", "checkpoint_sha256": "cd" * 32,
        "prompt": f"{kind} {i}", "prompt_sha256": "ef" * 32, "conditioning_sha256": "01" * 32, "seed": i, "sampler": "euler",
        "steps": 4, "cfg_scale": 7.0, "windows": 1, "precision": "fp32", "device": "cpu", "torch_version": "2.14.1",
        "cuda_version": None, "code_version": "test", "seconds": 1.0, "elapsed_s": 0.1,
        "output_uri": f"file:///out/cues/{i}_{kind}.wav", "output_sha256": f"{i}{kind}".ljust(64, "0"),
    }


def record_run(url: str) -> int:
    run_id = repository.start_run(url, source_uri="/x.mp4", out_uri="out", settings={"seed": 1}, code_version="test", flow_run_id=None, trigger="manual")
    repository.record_asset(url, run_id, uri="/x.mp4", sha256="ab" * 32, size=10, duration_s=3.0, fps=Fraction(25), streams={})
    scene_ids = repository.record_scenes(url, run_id, SCENES, {"threshold": 27})
    repository.record_generations(url, scene_ids, [generation(i, k) for i in range(3) for k in ("foley", "music")])
    repository.record_outputs(url, run_id, [{"kind": "mix", "uri": "file:///out/mix.wav", "sha256": "9" * 64, "bytes": 10}])
    repository.finish_run(url, run_id)
    return run_id


def count(url: str, model: type) -> int:
    with sessions(url)() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_migrations_up_down_and_no_drift(db_url: str) -> None:
    upgrade(db_url)
    try:
        command.check(alembic_config(db_url))
    except CommandError as e:  # pragma: no cover - the message lists the drift
        raise AssertionError(f"models differ from migrations: {e}") from e
    command.downgrade(alembic_config(db_url), "base")
    upgrade(db_url)


def test_rerun_reuses_rows(db_url: str) -> None:
    first, second = record_run(db_url), record_run(db_url)
    assert count(db_url, Asset) == 1 and count(db_url, Generation) == 6 and count(db_url, Output) == 1
    assert count(db_url, SceneGeneration) == 12  # both runs' scenes point at the same six generations
    run = repository.get_run(db_url, second)
    assert run.status == "succeeded" and [len(s.generations) for s in run.scenes] == [2, 2, 2]
    assert {o.run_id for o in repository.get_run(db_url, second).outputs} == {second} and first != second
    assert set(repository.find_generations(db_url, [generation(0, "foley")["key"], "missing"])) == {generation(0, "foley")["key"]}


def test_failed_run_keeps_its_reason(db_url: str) -> None:
    run_id = repository.start_run(db_url, source_uri="/bad.mp4", out_uri="out", settings={}, code_version="t", flow_run_id=None)
    repository.finish_run(db_url, run_id, error="/bad.mp4: file is empty (0 bytes)")
    run = repository.get_run(db_url, run_id)
    assert run.status == "failed" and run.error.endswith("(0 bytes)") and run.ended_at is not None


def test_lookup_by_content(db_url: str) -> None:
    run_id = record_run(db_url)
    kind, run, _ = repository.lookup(db_url, "9" * 64)
    assert kind == "output" and run.id == run_id and run.asset.sha256 == "ab" * 32
    kind, _, g = repository.lookup(db_url, generation(1, "music")["output_sha256"])
    assert kind == "generation" and g.prompt == "music 1"
    assert repository.lookup(db_url, "ab" * 32)[0] == "source" and repository.lookup(db_url, "f" * 64)[0] == "unknown"


def test_concurrent_writers_never_duplicate_or_deadlock(postgres_url: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE DATABASE concurrent"))
    engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/concurrent"
    upgrade(url)
    errors: list[BaseException] = []

    def writer(order: int) -> None:
        try:
            for round_ in range(15):
                run_id = repository.start_run(url, source_uri="/x.mp4", out_uri="out", settings={}, code_version="t", flow_run_id=None)
                repository.record_asset(url, run_id, uri="/x.mp4", sha256="ab" * 32, size=1, duration_s=1.0, fps=Fraction(25), streams={})
                scene_ids = repository.record_scenes(url, run_id, SCENES, {})
                rows = [generation(i, k, key_suffix=str(round_ % 5)) for i in range(3) for k in ("foley", "music")]
                repository.record_generations(url, scene_ids, rows[::order])  # the writers insert in opposite orders
                repository.record_outputs(url, run_id, [{"kind": "mix", "uri": "file:///out/mix.wav", "sha256": str(round_ % 3) * 64, "bytes": 1}])
        except BaseException as e:  # collected and asserted on below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (1, -1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert count(url, Asset) == 1 and count(url, Generation) == 6 * 5 and count(url, Output) == 3
