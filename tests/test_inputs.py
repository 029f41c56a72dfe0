"""Every error a user can cause is one line naming the input, recorded as a failed run, and found
before the expensive stages: the CLI run in a subprocess on ffmpeg-made media, a dangling link, a
stalled ffmpeg, unwritable or full output folders, bad S3 destinations and a bad database URL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import mount_tmpfs, scaled_timeout


@dataclass
class Case:
    source: str
    out: str
    env: dict[str, str] = field(default_factory=dict)
    recorded: bool = True  # a database exists to record the failed run in


def _ffmpeg_clip(path: Path, rate: str, frames: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=160x90:rate={rate}"]
        + ["-frames:v", str(frames), "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


def one_frame(tmp: Path, reel, request) -> Case:
    return Case(str(_ffmpeg_clip(tmp / "one.mp4", "25", 1)), str(tmp / "out"))


def quarter_fps(tmp: Path, reel, request) -> Case:
    return Case(str(_ffmpeg_clip(tmp / "slow.mp4", "1/4", 3)), str(tmp / "out"))


def past_wav_limit(tmp: Path, reel, request) -> Case:
    """4 h 13 min of 1 fps picture: its 48 kHz 24-bit stereo mix would need 4.08 GiB."""
    path = tmp / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:size=16x16:rate=1", "-t", "15200"]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-g", "600", str(path)],
        check=True,
    )
    return Case(str(path), str(tmp / "out"))


def dangling_link(tmp: Path, reel, request) -> Case:
    (tmp / "take1.mp4").symlink_to(tmp / "moved-away.mp4")
    return Case(str(tmp / "take1.mp4"), str(tmp / "out"))


def stalled_ffmpeg(tmp: Path, reel, request) -> Case:
    """An ``ffmpeg`` first on PATH that never writes a frame (ffprobe stays the real one)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 120\n")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "AUDIOX_FFMPEG_STALL_S": "5"}
    return Case(str(reel.path), str(tmp / "out"), env)


def out_read_only(tmp: Path, reel, request) -> Case:
    return Case(str(reel.path), str(mount_tmpfs(tmp / "ro", "size=1m,ro", request)))


def out_is_a_file(tmp: Path, reel, request) -> Case:
    (tmp / "out.txt").write_text("not a folder")
    return Case(str(reel.path), str(tmp / "out.txt"))


def out_full(tmp: Path, reel, request) -> Case:
    """A 64 KiB tmpfs: writable, far too small for the reel's WAVs."""
    return Case(str(reel.path), str(mount_tmpfs(tmp / "small", "size=64k", request)))


def missing_bucket(tmp: Path, reel, request) -> Case:
    request.getfixturevalue("s3_endpoint")
    return Case(str(reel.path), "s3://missing-bucket/x")


def dotdot_prefix(tmp: Path, reel, request) -> Case:
    request.getfixturevalue("s3_endpoint")
    return Case(str(reel.path), "s3://b/../x")


def db_malformed(tmp: Path, reel, request) -> Case:
    return Case(str(reel.path), str(tmp / "out"), {"AUDIOX_DB_URL": "postgresql+psycopg://u@h:port/db"}, False)


def db_closed_port(tmp: Path, reel, request) -> Case:
    import socket

    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://studio:hunter2@127.0.0.1:{port}/studio"
    return Case(str(reel.path), str(tmp / "out"), {"AUDIOX_DB_URL": url}, False)


# (build the case, a fragment of the one expected error line; {source}/{out} filled in)
CASES: list = [
    pytest.param(one_frame, "{source}: 1 video frame(s); a soundtrack needs at least 2", id="one-frame"),
    pytest.param(quarter_fps, "{source}: frame rate 0.25 fps (1/4) is too low", id="fps-0.25"),
    pytest.param(past_wav_limit, "{source}: 4.22 h of picture: its 2-channel 24-bit 48 kHz mix", id="past-wav-limit"),
    pytest.param(dangling_link, "{source}: broken symbolic link", id="dangling-link"),
    pytest.param(stalled_ffmpeg, "{source}: ffmpeg stalled: no frame for 5 s", id="ffmpeg-stalls"),
    pytest.param(out_read_only, "{out}: output folder is not writable (Read-only file system)", id="out-read-only"),
    pytest.param(out_is_a_file, "{out}: output folder is not a folder", id="out-is-a-file"),
    pytest.param(out_full, "{out}: not enough free space for the outputs", id="out-full"),
    pytest.param(missing_bucket, "s3://missing-bucket/x: no such bucket 'missing-bucket'", id="out-missing-bucket"),
    pytest.param(
        dotdot_prefix, "s3://b/../x/: S3 key with a leading '/' or a '..' segment is refused", id="out-dotdot"
    ),
    pytest.param(db_malformed, "database postgresql+psycopg://h:port/db: malformed URL", id="db-malformed"),
    pytest.param(db_closed_port, "cannot connect (connection failed", id="db-closed-port"),
]


@pytest.fixture
def api_env(prefect_api, home: Path) -> Iterator[dict[str, str]]:
    """The environment of a CLI process using the test harness's Prefect API and this test's home."""
    from prefect.settings import PREFECT_API_URL

    yield {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "AUDIOX_HOME": str(home)}


def rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f'SELECT * FROM "{table}"').fetchall()


@pytest.mark.integration
@pytest.mark.parametrize(("build", "expected"), CASES)
def test_a_user_error_is_one_line_recorded_and_found_early(
    build: Callable[..., Case], expected: str, api_env, home: Path, tmp_path: Path, reel, request
) -> None:
    """Expected for every case: exit status 1, exactly one stderr line ``error: …`` with the case's
    fragment, no traceback, the run recorded failed with that reason (where a database exists),
    no scenes recorded (the decode pass and generation never ran), no reel folder, no work folder."""
    case = build(tmp_path, reel, request)
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "run", case.source, "--out", case.out, "--model", "tiny", "--steps", "2"],
        capture_output=True,
        text=True,
        # os.environ's S3 settings too: a case may start moto_server (s3_endpoint) after api_env was made
        env={**api_env, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}, **case.env},
        timeout=scaled_timeout(240),
    )
    fragment = expected.format(source=case.source, out=case.out)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "hunter2" not in proc.stderr
    db = home / "studio.db"
    if case.recorded:
        (*_, last), scenes = rows(db, "runs"), rows(db, "scenes")
        run = dict(zip([d[1] for d in sqlite3.connect(db).execute("PRAGMA table_info(runs)")], last))
        assert run["status"] == "failed" and fragment in run["error"]
        assert scenes == []  # failed before the scene pass recorded anything
    else:
        assert not db.exists() or rows(db, "runs") == []
    out = Path(case.out)
    assert not out.is_dir() or [p for p in out.iterdir() if not p.name.startswith(".write-probe")] == []
    assert not (home / "work").exists() or list((home / "work").iterdir()) == []


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_exception_is_one_scrubbed_line_or_the_traceback_with_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], debug: bool
) -> None:
    """Expected: a non-PipelineError prints ``error: internal error: Type: message (rerun with
    --debug …)`` with the URL's credentials removed and exits 1; with --debug it propagates."""
    import cli.main

    def boom(args) -> int:
        raise RuntimeError("lost s3://AKIAEXAMPLE:SECRETEXAMPLE@bucket/k.mp4\nsecond line")

    monkeypatch.setattr(cli.main, "cmd_db", boom)
    if debug:
        with pytest.raises(RuntimeError, match="lost"):
            cli.main.main(["--debug", "db", "upgrade"])
        return
    assert cli.main.main(["db", "upgrade"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: internal error: RuntimeError: lost s3://bucket/k.mp4 second line (rerun with --debug for the traceback)"
    ]
