"""Faults that come during a run, or from a setting only the machine can refute: a CUDA device this
machine does not have, a disk that fills while the outputs are written, the database going away
mid-run, and a killed process's staged frames. Each is one line naming what failed, the run recorded
so, and nothing left behind. Real processes, a real tmpfs, a real PostgreSQL cluster."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PostgresCluster
from harness import mount_tmpfs, scaled_timeout

from audiox_core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def api_env(prefect_api, home: Path) -> dict[str, str]:
    """A CLI process's environment: the test harness's Prefect API and this test's home."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "AUDIOX_HOME": str(home)}


def _cli(env: dict[str, str], *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled_timeout(timeout_s),
    )


def _runs(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY id")]


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "internal error" not in proc.stderr
    return lines[0]


def _no_work_left(home: Path) -> None:
    work = home / "work"
    assert not work.exists() or list(work.iterdir()) == []


# --- a CUDA device this machine does not have --------------------------------------------------


def _missing_cuda_device() -> str:
    import torch

    return f"cuda:{torch.cuda.device_count() if torch.cuda.is_available() else 7}"


def test_check_device_names_the_setting_and_what_the_machine_has() -> None:
    from audiox_core.model.runtime import check_device

    check_device("cpu")
    check_device("auto")
    device = _missing_cuda_device()
    with pytest.raises(InputError, match=rf"^settings: device '{device}': this machine has "):
        check_device(device)


@pytest.mark.integration
def test_a_missing_cuda_device_is_refused_with_the_settings(api_env, home: Path, tmp_path: Path, reel) -> None:
    """Expected: one line naming the setting, the run failed with it, and nothing fetched or probed:
    no asset row, no model facts, no output folder (it failed after two minutes of work before)."""
    device = _missing_cuda_device()
    out = tmp_path / "out"
    proc = _cli(api_env, "run", str(reel.path), "--out", str(out), "--model", "tiny", "--device", device)
    line = _one_error_line(proc)
    assert line.startswith(f"error: settings: device '{device}': this machine has")
    [run] = _runs(home / "studio.db")
    assert run["status"] == "failed" and run["error"] == line.removeprefix("error: ")
    assert run["asset_id"] is None and run["model"] is None  # failed before the fetch and the model load
    assert not out.exists()
    _no_work_left(home)


# --- a disk that fills during the run ------------------------------------------------------------


@pytest.mark.integration
def test_a_disk_that_fills_during_the_run_is_named_and_nothing_is_left(
    api_env, home: Path, tmp_path: Path, reel, request: pytest.FixtureRequest
) -> None:
    """A tmpfs with room for the outputs' bytes (the check before the run passes) but for only a dozen
    files: it fills while the cues are written. Expected: one line naming the output folder as given
    and the disk filling up, the run failed with it, and the tmpfs as empty as before (no staging
    folder, and not the output folder the run created either)."""
    disk = mount_tmpfs(tmp_path / "disk", "size=64m,nr_inodes=12", request)
    out = disk / "out"
    proc = _cli(api_env, "run", str(reel.path), "--out", str(out), "--model", "tiny", "--steps", "2")
    line = _one_error_line(proc)
    assert line.startswith(f"error: {out}: the disk filled up during the run (No space left on device)")
    [run] = _runs(home / "studio.db")
    assert run["status"] == "failed" and run["error"] == line.removeprefix("error: ")
    assert list(disk.iterdir()) == []
    _no_work_left(home)


def test_full_disk_named_picks_the_folder_of_the_failed_write(tmp_path: Path) -> None:
    import errno

    from audiox_core.store.full_disk import DiskFull, full_disk_named

    folders = {"out": tmp_path / "out", "work": tmp_path / "work"}
    with pytest.raises(DiskFull, match="^work: the disk filled up"):
        with full_disk_named(folders):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "work" / "frames.rgb"))
    with pytest.raises(PermissionError):  # any other OSError passes unchanged
        with full_disk_named(folders):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "out" / "x"))


# --- the database going away mid-run -------------------------------------------------------------


@pytest.mark.integration
def test_the_database_going_away_mid_run_is_said_and_recorded_when_it_is_back(
    api_env, home: Path, tmp_path: Path, reel, postgres_cluster: PostgresCluster, processes
) -> None:
    """The server stops (immediate shutdown) once the run has started its work. Expected: one line
    saying the database went away and that the run is recorded once it answers; no work folder or
    output left; once the server is back, `doctor --repair` records the run as failed with that
    reason (not as a killed process), and says so in one line."""
    from sqlalchemy import create_engine, text

    cluster = postgres_cluster
    url = cluster.createdb("studio")
    env = {**api_env, "AUDIOX_DB_URL": url}
    out = tmp_path / "out"
    proc = processes.start(
        [sys.executable, "-m", "cli", "run", str(reel.path), "--out", str(out), "--model", "tiny", "--steps", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + scaled_timeout(120)
    while not ((home / "work").is_dir() and any((home / "work").iterdir())):  # the run's work has begun
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never started its work"
        time.sleep(0.05)
    cluster.stop("immediate")
    stdout, stderr = proc.communicate(timeout=scaled_timeout(240))
    line = _one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    shown = url.replace("audiox@", "")  # user names are scrubbed from what is shown and stored
    assert line.startswith(f"error: database {shown} went away during the run ("), line
    assert "run 1 is recorded as failed when it answers again" in line
    assert not out.exists()
    _no_work_left(home)

    cluster.start()
    repair = _cli(env, "doctor", "--repair", timeout_s=120)
    assert repair.returncode == 0, repair.stderr
    assert repair.stdout.splitlines()[0] == "recorded the end of run 1, kept while the database was away"
    engine = create_engine(url)
    with engine.connect() as conn:
        status, error = conn.execute(text("SELECT status, error FROM runs WHERE id = 1")).one()
    engine.dispose()
    assert status == "failed" and error.startswith(f"database {shown} went away during the run (")
    assert not list((home / "pending-closings").glob("*.json"))


# --- a killed process's staged frames --------------------------------------------------------------

_STAGE_AND_DIE = """
import os, sys
import numpy as np
from audiox_core.model.longform import SceneRequest
from audiox_core.store.shared import tensor_cache
from tasks.inference import stage_request
staged = stage_request(tensor_cache(), SceneRequest(np.zeros((2, 8, 8, 3), np.uint8), "rain", 0, 1.0))
print(staged["frames"], flush=True)
if sys.argv[1] == "die":
    os.kill(os.getpid(), 9)  # SIGKILL: no clean-up runs, as with the OOM killer
sys.stdin.read()  # "live": wait until the test closes stdin
"""


@pytest.mark.integration
def test_repair_removes_the_staged_frames_only_a_killed_process_wrote(home: Path, tmp_path: Path, processes) -> None:
    """Two real processes stage frames in the tensor cache: one is SIGKILLed, one stays alive.
    Expected: `doctor --repair` removes the dead one's entry (and says so), the live one's stays."""
    from audiox_core.store.shared import tensor_cache

    env = {**os.environ, "AUDIOX_HOME": str(home)}
    dead = subprocess.run(
        [sys.executable, "-c", _STAGE_AND_DIE, "die"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled_timeout(120),
    )
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    dead_key = dead.stdout.strip()
    live = processes.start(
        [sys.executable, "-c", _STAGE_AND_DIE, "live"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    live_key = live.stdout.readline().strip()
    cues = tensor_cache()
    assert cues.has(dead_key) and cues.has(live_key)
    repair = _cli(env, "doctor", "--repair", timeout_s=120)
    assert repair.returncode == 0, repair.stderr
    assert "removed 1 staged-frame cache entries of dead processes" in repair.stdout
    assert not cues.has(dead_key) and cues.has(live_key)
