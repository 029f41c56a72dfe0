"""The provenance database on SQLite and on a real PostgreSQL: migrations, idempotent reruns,
concurrent writers, and lookups by content."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

from alembic import command
from alembic.util.exc import CommandError
from harness import scaled_timeout
from sqlalchemy import func, select

from db import repository
from db.models import Asset, Generation, Output, SceneGeneration
from db.session import alembic_config, sessions, upgrade

SCENES = [
    {
        "index": i,
        "start_s": float(i),
        "end_s": i + 1.0,
        "start_frame": 25 * i,
        "end_frame": 25 * (i + 1),
        "start_tc": f"00:00:0{i}:00",
        "end_tc": f"00:00:0{i + 1}:00",
        "detector": {"threshold": 27},
    }
    for i in range(3)
]
MODEL = {
    "name": "tiny",
    "label": "tiny (RANDOM WEIGHTS)",
    "checkpoint_sha256": "cd" * 32,
    "random_weights": True,
    "device": "cuda:0",
    "frame_fps": 5,
    "frame_size": 224,
    "precision": "dit=bf16 vae=fp32 cond=fp32 text=fp16",
    "torch_version": "2.14.1",
    "cuda_version": "12.8",
    "process": {"host": "gpu1", "pid": 7, "loaded_at": "2026-12-02T16:00:00+00:00"},
}
MIX = {
    "preset": "ebu-r128",
    "integrated_lufs": -23.0,
    "loudness_range_lu": 4.5,
    "true_peak_dbtp": -1.2,
    "normalization_gain_db": 3.1,
    "limiter_reduction_db": 0.0,
    "stems": {
        "foley": {
            "integrated_lufs": -30.0,
            "loudness_range_lu": 2.0,
            "true_peak_dbtp": -9.0,
            "uri": "file:///out/stems/foley.wav",
            "sha256": "8" * 64,
        }
    },
}


def generation(i: int, kind: str, key_suffix: str = "") -> dict:
    return {
        "scene_index": i,
        "key": f"{i}-{kind}{key_suffix}".ljust(64, "k"),
        "kind": kind,
        "source_sha256": "ab" * 32,
        "span_start": 48_000 * i,
        "span_length": 48_000,
        "model_name": "tiny",
        "checkpoint_sha256": "cd" * 32,
        "prompt": f"{kind} {i}",
        "prompt_sha256": "ef" * 32,
        "conditioning_sha256": "01" * 32,
        "seed": i,
        "sampler": "euler",
        "steps": 4,
        "cfg_scale": 7.0,
        "windows": 1,
        "precision": MODEL["precision"],
        "device": "cpu",
        "torch_version": "2.14.1",
        "cuda_version": None,
        "code_version": "test",
        "seconds": 1.0,
        "elapsed_s": 0.1,
        "output_uri": f"file:///out/cues/{i}_{kind}.wav",
        "output_sha256": f"{i}{kind}".ljust(64, "0"),
        "audio_input": None,
    }


def record_run(url: str) -> int:
    run_id = repository.start_run(
        url,
        source_uri="/x.mp4",
        out_uri="out",
        settings={"seed": 1},
        code_version="test",
        flow_run_id=None,
        trigger="manual",
    )
    repository.record_asset(
        url,
        run_id,
        uri="/x.mp4",
        sha256="ab" * 32,
        size=10,
        duration_s=3.0,
        fps=Fraction(25),
        streams={"audio": None},
        version="e1",
    )
    repository.record_model(url, run_id, MODEL)
    scene_ids = repository.record_scenes(url, run_id, SCENES)
    repository.record_generations(url, scene_ids, [generation(i, k) for i in range(3) for k in ("foley", "music")])
    repository.record_mix(url, run_id, MIX)
    repository.record_outputs(
        url,
        run_id,
        [
            {"kind": "stems/foley", "uri": "file:///out/stems/foley.wav", "sha256": "8" * 64, "bytes": 20},
            {"kind": "mix", "uri": "file:///out/mix.wav", "sha256": "9" * 64, "bytes": 10},
        ],
    )
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
    assert count(db_url, Asset) == 1 and count(db_url, Generation) == 6 and count(db_url, Output) == 2
    assert count(db_url, SceneGeneration) == 12  # both runs' scenes point at the same six generations
    run = repository.get_run(db_url, second)
    assert run.status == "succeeded" and [len(s.generations) for s in run.scenes] == [2, 2, 2]
    assert {o.run_id for o in repository.get_run(db_url, second).outputs} == {second} and first != second
    assert set(repository.find_generations(db_url, [generation(0, "foley")["key"], "missing"])) == {
        generation(0, "foley")["key"]
    }


def test_failed_run_keeps_its_reason(db_url: str) -> None:
    run_id = repository.start_run(
        db_url, source_uri="/bad.mp4", out_uri="out", settings={}, code_version="t", flow_run_id=None
    )
    repository.finish_run(db_url, run_id, error="/bad.mp4: file is empty (0 bytes)")
    run = repository.get_run(db_url, run_id)
    assert run.status == "failed" and run.error.endswith("(0 bytes)") and run.ended_at is not None


def test_lookup_by_sha256_finds_outputs_generations_and_sources(db_url: str) -> None:
    run_id = record_run(db_url)
    assert repository.lookup(db_url, "9" * 64) == ("output", run_id, None)
    expected = {k: v for k, v in generation(1, "music").items() if k != "scene_index"}
    assert repository.lookup(db_url, expected["output_sha256"]) == ("generation", None, expected)
    assert repository.lookup(db_url, "ab" * 32) == ("source", run_id, None)
    assert repository.lookup(db_url, "f" * 64) == ("unknown", None, None)


def test_a_source_is_traced_to_the_latest_run_that_mastered_it(db_url: str) -> None:
    mastered = record_run(db_url)
    unfinished = repository.start_run(
        db_url, source_uri="/x.mp4", out_uri="out", settings={}, code_version="t", flow_run_id=None
    )
    repository.record_asset(
        db_url, unfinished, uri="/x.mp4", sha256="ab" * 32, size=10, duration_s=3.0, fps=Fraction(25), streams={}
    )
    assert repository.lookup(db_url, "ab" * 32) == ("source", mastered, None)


def test_chain_gives_back_every_recorded_value(db_url: str) -> None:
    """What the lineage command rebuilds a run's provenance document from: the values as recorded, in
    document order (scenes by index, their generations by kind, outputs by URI), the model's facts and
    a precision label longer than the first schema's 16 characters included."""
    run_id = record_run(db_url)
    chain = repository.chain(db_url, run_id)
    run = chain["run"]
    assert (run["model"], run["settings"], run["source_uri"], run["source_version"]) == (
        MODEL,
        {"seed": 1},
        "/x.mp4",
        "e1",
    )
    assert {k: chain["asset"][k] for k in ("sha256", "bytes", "streams")} == {
        "sha256": "ab" * 32,
        "bytes": 10,
        "streams": {"audio": None},
    }
    assert [{k: v for k, v in s.items() if k != "generations"} for s in chain["scenes"]] == SCENES
    recorded = [(s["index"], g) for s in chain["scenes"] for g in s["generations"]]
    expected = [
        (i, {k: v for k, v in generation(i, kind).items() if k != "scene_index"})
        for i in range(3)
        for kind in ("foley", "music")
    ]
    assert recorded == expected
    assert chain["mix"] == MIX
    assert [o["uri"] for o in chain["outputs"]] == ["file:///out/mix.wav", "file:///out/stems/foley.wav"]
    assert chain["outputs"][0] == {"kind": "mix", "uri": "file:///out/mix.wav", "sha256": "9" * 64, "bytes": 10}


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
                run_id = repository.start_run(
                    url, source_uri="/x.mp4", out_uri="out", settings={}, code_version="t", flow_run_id=None
                )
                repository.record_asset(
                    url, run_id, uri="/x.mp4", sha256="ab" * 32, size=1, duration_s=1.0, fps=Fraction(25), streams={}
                )
                scene_ids = repository.record_scenes(url, run_id, SCENES)
                rows = [generation(i, k, key_suffix=str(round_ % 5)) for i in range(3) for k in ("foley", "music")]
                repository.record_generations(url, scene_ids, rows[::order])  # the writers insert in opposite orders
                repository.record_outputs(
                    url,
                    run_id,
                    [{"kind": "mix", "uri": "file:///out/mix.wav", "sha256": str(round_ % 3) * 64, "bytes": 1}],
                )
        except BaseException as e:  # collected and asserted on below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (1, -1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=scaled_timeout(120))
    assert not errors, errors
    assert count(url, Asset) == 1 and count(url, Generation) == 6 * 5 and count(url, Output) == 3
