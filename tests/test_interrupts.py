"""Every way a run can end closes its provenance row, and nothing stays behind: real `audiox-studio run`
processes signalled mid-generation (SIGTERM, SIGINT, SIGKILL) or cancelled in a real Prefect server;
the sweep that closes what a killed process left, and never touches what a live one or another host owns."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from harness import Processes, scaled_timeout, wait_until_serving

from audiox_core.lifecycle import (
    StopRequested,
    abandoned,
    clear_stop,
    host_id,
    process_tag,
    request_stop,
    stop_point,
    tag_alive,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """`prefect server start` on a free loopback port with its own database; yields its API URL."""

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect")), "DO_NOT_TRACK": "1"}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    server = Path(sys.executable).parent / "prefect"
    api = f"http://127.0.0.1:{port}/api"
    with Processes() as started:
        proc = started.start(
            [str(server), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_serving(f"{api}/health", proc, scaled_timeout(60), "prefect server")
        yield api


@pytest.fixture(scope="module")
def long_reel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 1.6 s shots: long enough for a signal to land while its cues are being generated."""
    from audiox_core.video.lavfi_reel import make_reel

    path = tmp_path_factory.mktemp("reel") / "interrupted_reel.mp4"
    return make_reel(path, shot_frames=(40,) * 6, fps=Fraction(25), size=(320, 180)).path


def _env(home: Path, api: str) -> dict[str, str]:
    env = {**os.environ, "AUDIOX_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("AUDIOX_DB_URL", None)
    return env


def _start_run(processes: Processes, reel: Path, home: Path, out: Path, api: str) -> subprocess.Popen[str]:
    """`audiox-studio run` on the reel; returns once its staging folder exists (generation under way;
    24 steps, so the run cannot finish before the signal lands)."""
    command = ["-m", "cli", "run", str(reel), "--model", "tiny", "--steps", "24", "--out", str(out)]
    staged = lambda: any(name.endswith(".partial") for name in _hidden(out))  # noqa: E731
    return _start_until(processes, command, _env(home, api), staged, 120, "staging its outputs")


def _start_until(
    processes: Processes, args: list[str], env: dict[str, str], ready, timeout_s: float, what: str
) -> subprocess.Popen[str]:
    """``python ARGS`` in the repository (stopped with the test); returns once ``ready()`` holds, fails
    the test if the process ends or ``scaled_timeout(timeout_s)`` passes first."""
    proc = processes.start(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + scaled_timeout(timeout_s)
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output = proc.communicate(timeout=scaled_timeout(30))[0]
            pytest.fail(f"the process ended or stalled before {what}:\n{output}")
        time.sleep(0.1)
    return proc


def _runs(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "studio.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT id, status, error, process, flow_run_id FROM runs")]


def _hidden(out: Path) -> list[str]:
    """Hidden entries in the out folder and in its reels' versions folders (where a version is staged)."""
    if not out.is_dir():
        return []
    entries = list(out.iterdir())
    entries += [e for folder in entries if folder.name.endswith(".versions") for e in folder.iterdir()]
    return [e.name for e in entries if e.name.startswith(".")]


def _leftovers(home: Path, out: Path) -> list[str]:
    """Hidden staging entries in the out folder and work folders: what an ended run must not leave."""
    work = home / "work"
    return _hidden(out) + ([e.name for e in work.iterdir()] if work.is_dir() else [])


def _flow_run_state(api: str, flow_run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state


@pytest.mark.integration
@pytest.mark.parametrize(
    ("signum", "exit_code", "status", "reason"),
    [
        pytest.param(signal.SIGTERM, 143, "cancelled", "interrupted by SIGTERM", id="SIGTERM-cancelled-exit-143"),
        pytest.param(signal.SIGINT, 130, "cancelled", "interrupted by SIGINT (Ctrl-C)", id="SIGINT-cancelled-exit-130"),
    ],
)
def test_signal_closes_the_run_and_leaves_nothing(
    long_reel: Path,
    prefect_server: str,
    tmp_path: Path,
    processes: Processes,
    signum: int,
    exit_code: int,
    status: str,
    reason: str,
) -> None:
    """Expected: the command exits with 128 + the signal's number after one line saying how the run was
    recorded; the row is closed with the signal as its reason; no staging or work folder is left."""
    home, out = tmp_path / "home", tmp_path / "out"
    proc = _start_run(processes, long_reel, home, out, prefect_server)
    proc.send_signal(signum)
    output = proc.communicate(timeout=scaled_timeout(120))[0]
    assert proc.returncode == exit_code, output
    [run] = _runs(home)
    assert (run["status"], run["error"]) == (status, reason)
    assert (
        output.strip().splitlines()[-1]
        == f"interrupted ({signal.Signals(signum).name}): run {run['id']} recorded as {status}"
    )
    assert _leftovers(home, out) == []
    assert not _flow_run_state(prefect_server, run["flow_run_id"]).is_running()


@pytest.mark.integration
def test_sigkill_leaves_a_run_that_doctor_repair_closes(
    long_reel: Path, prefect_server: str, tmp_path: Path, processes: Processes
) -> None:
    """Expected: SIGKILL runs no clean-up (row running, flow run Running, staging and work folders left);
    `doctor --repair` then closes the row as crashed naming the dead process, sets the flow run to
    Crashed, removes both folders and prints one line for each and a summary."""
    home, out = tmp_path / "home", tmp_path / "out"
    proc = _start_run(processes, long_reel, home, out, prefect_server)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=scaled_timeout(60))
    assert proc.returncode == -signal.SIGKILL
    [run] = _runs(home)
    assert run["status"] == "running"
    assert len(_leftovers(home, out)) == 2  # the .partial staging folder and the work folder
    assert _flow_run_state(prefect_server, run["flow_run_id"]).is_running()

    repair = subprocess.run(
        [sys.executable, "-m", "cli", "doctor", "--repair"],
        cwd=ROOT,
        env=_env(home, prefect_server),
        capture_output=True,
        text=True,
        timeout=scaled_timeout(120),
    )
    assert repair.returncode == 0, repair.stderr
    reason = f"process {run['process']} on this host ended without closing the run (killed?)"
    [run] = _runs(home)
    assert (run["status"], run["error"]) == ("crashed", reason)
    assert _leftovers(home, out) == []
    state = _flow_run_state(prefect_server, run["flow_run_id"])
    assert (state.is_crashed(), state.message) == (True, reason)
    lines = repair.stdout.strip().splitlines()
    assert lines[0] == f"closed run {run['id']} as crashed: {reason}"
    assert lines[-1].startswith("repaired: 1 run, 1 flow run, 1 staging folder, 1 work folder")


@pytest.mark.integration
def test_cancellation_in_prefect_stops_the_run(
    long_reel: Path, prefect_server: str, tmp_path: Path, processes: Processes
) -> None:
    """Expected: cancelling the flow run in Prefect (what the UI's Cancel does) while the CLI's run
    generates stops it as SIGTERM would: exit 143, row cancelled "cancelled in Prefect", the flow run
    Cancelled (not Crashed), nothing left behind."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelling

    home, out = tmp_path / "home", tmp_path / "out"
    proc = _start_run(processes, long_reel, home, out, prefect_server)
    [run] = _runs(home)
    with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        client.set_flow_run_state(run["flow_run_id"], Cancelling(), force=True)
    output = proc.communicate(timeout=scaled_timeout(120))[0]
    assert proc.returncode == 143, output
    [run] = _runs(home)
    assert (run["status"], run["error"]) == ("cancelled", "cancelled in Prefect")
    assert _leftovers(home, out) == []
    assert _flow_run_state(prefect_server, run["flow_run_id"]).is_cancelled()


def _dead_tag() -> str:
    """The tag of a process that has ended."""
    code = "from audiox_core.lifecycle import process_tag; print(process_tag())"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_sweep_closes_only_what_dead_processes_on_this_host_left(home: Path, tmp_path: Path) -> None:
    """Expected: the dead process's run is closed as crashed and its staging folder, write probe and work
    folder removed, its `.previous` put back where its reel folder is missing; the runs and folders of
    this (live) process, of another host, and untagged rows are left exactly as they were."""
    from db import repository
    from db.session import database_url
    from tasks.sweep import sweep

    url = database_url(home)
    out = tmp_path / "out"
    dead, live = _dead_tag(), process_tag()
    other_host = ("0" * 8 if host_id() != "0" * 8 else "1" * 8) + "-1-1"

    def run(process: str | None) -> int:
        return repository.start_run(
            url, source_uri="/r.mp4", out_uri=str(out), settings={}, code_version="t", flow_run_id=None, process=process
        )

    ids = {name: run(tag) for name, tag in [("dead", dead), ("live", live), ("other", other_host), ("untagged", None)]}
    entries = {
        f".reel-a.{dead}.x1y2z3.partial": "removed",
        f".write-probe.{dead}.abc123": "removed",
        f".reel-b.{dead}.previous": "restored as reel-b",
        f".reel-c.{live}.q1w2e3.partial": "kept",
        f".reel-d.{other_host}.q1w2e3.partial": "kept",
        ".reel-e.cafebabe-1-2.r4t5.partial.note": "kept",  # not one of our names
    }
    for name in entries:
        (out / name).mkdir(parents=True) if "probe" not in name else (out / name).touch()
    work = home / "work"
    for name in (f"reel-a.{dead}.w1", f"reel-c.{live}.w2", f"reel-d.{other_host}.w3"):
        (work / name).mkdir(parents=True)

    repairs = sweep(url)
    assert sorted(r.kind for r in repairs) == [
        "run",
        "staging folder",
        "staging folder",
        "staging folder",
        "work folder",
    ]
    statuses = {name: repository.run_values(url, i)["status"] for name, i in ids.items()}
    assert statuses == {"dead": "crashed", "live": "running", "other": "running", "untagged": "running"}
    assert sorted(e.name for e in out.iterdir()) == sorted(
        [
            f".reel-c.{live}.q1w2e3.partial",
            f".reel-d.{other_host}.q1w2e3.partial",
            ".reel-e.cafebabe-1-2.r4t5.partial.note",
            "reel-b",
        ]
    )
    assert sorted(e.name for e in work.iterdir()) == [f"reel-c.{live}.w2", f"reel-d.{other_host}.w3"]
    assert sweep(url) == []  # a second sweep finds nothing more


def test_a_run_is_closed_once(home: Path) -> None:
    """Expected: the first way a run ends wins (a hook or sweep arriving later changes nothing), and a
    status without its reason, or a success with one, is refused."""
    from db import repository
    from db.session import database_url

    url = database_url(home)
    run_id = repository.start_run(
        url, source_uri="/r.mp4", out_uri=None, settings={}, code_version="t", flow_run_id="f"
    )
    assert repository.finish_run(url, run_id, error="interrupted by SIGTERM", status="cancelled")
    assert not repository.finish_run(url, run_id, error="cancelled in Prefect", status="cancelled")
    assert repository.finish_flow_run(url, "f", error="crashed in Prefect: x", status="crashed") == []
    values = repository.run_values(url, run_id)
    assert (values["status"], values["error"]) == ("cancelled", "interrupted by SIGTERM")
    with pytest.raises(ValueError):
        repository.finish_run(url, run_id, status="crashed")
    with pytest.raises(ValueError):
        repository.finish_run(url, run_id, error="x", status="succeeded")
    with pytest.raises(ValueError):
        repository.finish_run(url, run_id, error="x", status="stopped")


def test_a_process_in_another_pid_namespace_is_another_host(tmp_path: Path) -> None:
    """Expected: a process with this host name in its own PID namespace (a container sharing the host
    name) has another host id, so this process's sweep leaves its folders however its pid reads here."""
    code = "from audiox_core.lifecycle import host_id; print(host_id())"
    try:
        other = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make a PID namespace here: {e}")
    assert len(other) == 8
    assert other != host_id()
    assert tag_alive(f"{other}-{os.getpid()}-1") is None
    assert not abandoned(f".reel.{other}-{os.getpid()}-1.x1y2.partial")


def test_stop_request_ends_worker_threads_at_their_next_stop_point() -> None:
    """Expected: worker threads running stage after stage raise StopRequested with the first reason given
    at their next stop_point once a stop is requested (no signal reaches them); after clear_stop, a
    stop_point lets a thread go on."""
    stages_before_stop = threading.Barrier(3)
    ended: dict[str, str] = {}

    def reel(name: str) -> None:
        stages_before_stop.wait(timeout=scaled_timeout(10))
        try:
            for _ in range(1000):
                stop_point()
                time.sleep(0.01)  # a stage
            ended[name] = "finished"
        except StopRequested as e:
            ended[name] = e.reason

    threads = [threading.Thread(target=reel, args=(f"reel{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        stages_before_stop.wait(timeout=scaled_timeout(10))
        request_stop("interrupted by SIGTERM")
        request_stop("cancelled in Prefect")  # the first reason stays
        for t in threads:
            t.join(timeout=scaled_timeout(10))
        assert ended == {"reel0": "interrupted by SIGTERM", "reel1": "interrupted by SIGTERM"}
    finally:
        clear_stop()
    stop_point()  # no stop requested any more: returns


def test_a_local_out_root_is_stored_absolute(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expected: a relative `--out` is stored as its absolute path (so `doctor --repair` from any folder
    sweeps it), an S3 root without its credentials."""
    from tasks.provenance import _stored_out_uri

    monkeypatch.chdir(tmp_path)
    assert _stored_out_uri("out") == str(tmp_path.resolve() / "out")
    assert _stored_out_uri(f"file://{tmp_path}/out") == str(tmp_path.resolve() / "out")
    assert _stored_out_uri("s3://KEY:SECRET@bucket/p?X-Amz-Signature=s") == "s3://bucket/p"


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_doctor_repair_with_the_database_down_is_one_line(tmp_path: Path) -> None:
    """Expected: `doctor --repair` with an unreachable database exits 1 after one `error:` line naming
    the database, and touches nothing."""
    env = {**os.environ, "AUDIOX_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env["AUDIOX_DB_URL"] = "postgresql+psycopg://studio@127.0.0.1:1/studio"
    result = subprocess.run(
        [sys.executable, "-m", "cli", "doctor", "--repair"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "127.0.0.1:1" in line, line


# 60 steps: each reel generates for several seconds, so both are still generating when the signal lands
# (at 2 steps a fast machine finished the first reel between the check and the signal)
NIGHTLY_SCRIPT = """
import sys
from flows.nightly import nightly
nightly(sys.argv[1], "reels/", out_prefix=f"s3://{sys.argv[1]}/out", settings={"model": "tiny", "steps": 60})
"""


@pytest.mark.integration
def test_sigterm_stops_the_nightly_flows_reels_and_closes_every_row(
    long_reel: Path, prefect_server: str, s3_endpoint: str, tmp_path: Path, processes: Processes
) -> None:
    """Expected: SIGTERM to a process running the nightly flow (as a runner sends on cancel or shutdown)
    while two reels generate in worker threads: each reel stops at its next stage or batch and closes
    its own row as cancelled; no row is left running, none succeeded after the signal, the third reel
    never starts; no work folder and no published version is left; the process exits non-zero."""
    from audiox_core.store.s3 import s3_client

    bucket = "nightly-sigterm"
    s3_client().create_bucket(Bucket=bucket)
    for i in range(3):
        s3_client().upload_file(str(long_reel), bucket, f"reels/day{i}/reel.mp4")
    home = tmp_path / "home"
    two_generating = lambda: (home / "studio.db").exists() and len(_generating(home)) == 2  # noqa: E731
    proc = _start_until(
        processes,
        ["-c", NIGHTLY_SCRIPT, bucket],
        _env(home, prefect_server),
        two_generating,
        180,
        "two reels generated",
    )
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=scaled_timeout(180))[0]
    assert proc.returncode != 0, output
    runs = _runs(home)
    assert len(runs) == 2, runs  # the third reel never started
    # A reel already publishing when the signal lands (past its last stop point: on a loaded machine the
    # other reel can reach generation that late) ends as it would have; every other reel is cancelled.
    ended = {(r["status"], r["error"]) for r in runs}
    assert ("cancelled", "interrupted by SIGTERM") in ended and ended <= {
        ("cancelled", "interrupted by SIGTERM"),
        ("succeeded", None),
    }, runs
    assert _leftovers(home, tmp_path / "no-local-out") == []
    published = {o["Key"] for o in s3_client().list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", [])}
    finished = sum(r["status"] == "succeeded" for r in runs)
    assert len({k.split("/")[1] for k in published}) == finished  # only a finished reel published, and whole
    assert all(f"{k.rsplit('/versions/', 1)[0]}/current.json" in published for k in published if "/versions/" in k)


def _generating(home: Path) -> list[Path]:
    """Work folders of reels whose model frames are written (the scene pass done: generation is next)."""
    work = home / "work"
    return [f for f in work.iterdir() if (f / "frames.rgb").exists()] if work.is_dir() else []
