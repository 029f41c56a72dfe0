from fractions import Fraction
from pathlib import Path

from alembic import command
from alembic.util.exc import CommandError

from db import repository
from db.session import alembic_config, upgrade


def test_models_and_migrations_do_not_drift(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'check.db'}"
    upgrade(url)
    try:
        command.check(alembic_config(url))
    except CommandError as e:  # pragma: no cover - message lists the drift
        raise AssertionError(f"models differ from migrations: {e}") from e


def test_migrations_down_and_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'updown.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    upgrade(url)


def test_run_lifecycle_and_asset_dedup(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    runs = []
    for _ in range(2):
        run_id = repository.start_run(url, source_uri="/x.mp4", out_uri="out", settings={"seed": 1}, code_version="t", flow_run_id=None)
        asset = repository.record_asset(url, run_id, uri="/x.mp4", sha256="ab" * 32, size=10, duration_s=1.0, fps=Fraction(30000, 1001), streams={})
        runs.append((run_id, asset))
    assert runs[0][1] == runs[1][1]  # one asset row per content hash
    scene_ids = repository.record_scenes(url, runs[0][0], [{"index": 0, "start_s": 0.0, "end_s": 1.0, "start_frame": 0, "end_frame": 30, "start_tc": "00:00:00;00"}], {"threshold": 27})
    repository.finish_run(url, runs[0][0])
    repository.finish_run(url, runs[1][0], error="bad.mp4: file is empty (0 bytes)")
    ok, failed = repository.get_run(url, runs[0][0]), repository.get_run(url, runs[1][0])
    assert ok.status == "succeeded" and ok.asset.fps_den == 1001 and [s.id for s in ok.scenes] == [scene_ids[0]]
    assert failed.status == "failed" and failed.error.endswith("(0 bytes)") and failed.ended_at is not None
