"""Test timing and processes that hold on a loaded machine: waits scale with the load, never with a
guess at an idle machine's speed, and every process a test starts is stopped however the test ends.

A timeout in a test is a guard against a hang, not a speed assertion: ``scaled_timeout(30)`` is 30 s
on an idle machine and grows with the load average per core (a second suite beside this one, a busy
CI host), up to ``MAX_SCALE`` times; ``AUDIOX_TEST_TIME_SCALE`` sets the factor outright.

A process left running by a failed test outlives it: its ``Popen`` warns "subprocess … is still
running" (a ResourceWarning, an error under the suite's ``filterwarnings``) whenever it is collected,
which is during some later test. ``Processes`` stops each one it started on every way out.

``mount_tmpfs`` gives a test a real small file system (full, read-only, short of inodes).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

SCALE_ENV = "AUDIOX_TEST_TIME_SCALE"
MAX_SCALE = 10.0
STOP_GRACE_S = 10.0  # between SIGTERM and SIGKILL, on an idle machine
KILLED_WAIT_S = 10.0  # for a SIGKILLed process to be reaped

log = logging.getLogger(__name__)


def time_scale() -> float:
    """How many times longer than on an idle machine a test may wait now (≥ 1)."""
    if given := os.environ.get(SCALE_ENV):
        return max(1.0, float(given))
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(MAX_SCALE, max(1.0, per_core))


def scaled_timeout(seconds: float) -> float:
    """``seconds`` on an idle machine, longer in proportion to the load (see ``time_scale``)."""
    return seconds * time_scale()


def _process_table() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, start time in clock ticks) of every process now, from Linux's /proc."""
    table = {}
    with os.scandir("/proc") as entries:
        for pid in (int(e.name) for e in entries if e.name.isdigit()):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)"; comm may hold anything
            except OSError:
                continue  # ended meanwhile
            table[pid] = (int(fields[1]), int(fields[19]))  # proc(5): ppid, starttime
    return table


def _descendants(pid: int) -> dict[int, int]:
    """pid → start time of every process below ``pid`` now (none where there is no /proc)."""
    table = _process_table() if os.path.isdir("/proc") else {}
    below, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, started) in table.items():
            if ppid == parent and child not in below:
                below[child] = started
                todo.append(child)
    return below


def _send(proc: subprocess.Popen, signum: int, group: bool) -> None:
    if not group:
        proc.send_signal(signum)  # nothing once the process is reaped
        return
    try:
        os.killpg(proc.pid, signum)  # the pid stays the group's while any member lives
    except ProcessLookupError:
        pass  # the whole group has ended


def _kill_left(below: dict[int, int]) -> None:
    """SIGKILL what is still running of ``below`` (a process that left the group, such as a Prefect
    worker's flow run in a session of its own); a pid now another process's (by start time) is spared."""
    now = _process_table() if below else {}
    for pid, started in below.items():
        if now.get(pid, (0, None))[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # ended meanwhile


def stop(proc: subprocess.Popen, *, group: bool, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM (to the process group the process leads when ``group``), ``scaled_timeout(grace_s)``
    to exit, then SIGKILL to the same and to whatever it had started (what it left behind, or itself)
    and a wait; its pipes closed."""
    below = _descendants(proc.pid) if proc.poll() is None else {}
    grace_s = scaled_timeout(grace_s)
    try:
        _send(proc, signal.SIGTERM, group)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning("pid %d (%s) did not stop within %.0f s of SIGTERM; killing it", proc.pid, proc.args, grace_s)
    finally:
        try:
            _send(proc, signal.SIGKILL, group)
            _kill_left(below)
            proc.wait(timeout=scaled_timeout(KILLED_WAIT_S))
        finally:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


class Processes:
    """The processes a test (or a fixture of any scope) starts, each stopped with ``stop`` when the
    ``with`` block ends, however it ends: the last started first, each in its own session by default
    so that what it starts (Prefect's server, uvicorn, a flow run's process) is stopped with it."""

    def __init__(self, grace_s: float = STOP_GRACE_S) -> None:
        self.grace_s = grace_s
        self._started: list[tuple[subprocess.Popen, bool]] = []

    def start(self, args: Any, **popen_kwargs: Any) -> subprocess.Popen:
        """``subprocess.Popen(args, **popen_kwargs)``, in a new session unless told otherwise."""
        popen_kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(args, **popen_kwargs)
        self._started.append((proc, popen_kwargs["start_new_session"]))
        return proc

    def stop_all(self) -> None:
        """Stop every started process; the first error (a Ctrl-C included) is raised once all are
        stopped, and after a Ctrl-C the rest are killed at once."""
        first: BaseException | None = None
        while self._started:
            proc, group = self._started.pop()
            try:
                stop(proc, group=group, grace_s=0 if isinstance(first, KeyboardInterrupt) else self.grace_s)
            except BaseException as e:  # raised below, after the others are stopped
                first = first or e
        if first is not None:
            raise first

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop_all()


def wait_until_serving(url: str, proc: subprocess.Popen, timeout_s: float, name: str) -> None:
    """Return once ``url`` answers over HTTP; RuntimeError when ``proc`` exits or ``timeout_s``
    passes first (pass a scaled timeout; stopping ``proc`` is its starter's job)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=scaled_timeout(1)).close()
            return
        except OSError as e:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode} before serving {url}") from e
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start within {timeout_s:.0f} s") from e
            time.sleep(0.2)


def mount_tmpfs(path: Path, options: str, request: pytest.FixtureRequest) -> Path:
    """A small tmpfs at ``path`` (root only, else the test is skipped), unmounted when the test ends:
    a real file system that is full, read-only or short of inodes."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("mount -t tmpfs is not permitted here")
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
    return path
