"""Which process owns a run, a staging or a work folder (its tag ``<host>-<pid>-<start>``), and whether it lives."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from audiox_core.workspace import studio_home

_TAG = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)")


def host_id() -> str:
    """8 hex characters naming the pid space this process sees: a hash of the host name and the inode
    of its PID namespace (two containers with one host name are two hosts)."""
    # the host's own PID namespace has a fixed inode (0xEFFFFFFC, PROC_PID_INIT_INO): its tags survive a reboot
    pid_namespace = os.stat("/proc/self/ns/pid").st_ino
    return hashlib.sha256(f"{socket.gethostname()}\0{pid_namespace}".encode()).hexdigest()[:8]


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after the command name, which may hold spaces


@cache
def process_tag() -> str:
    """This process's tag: host, pid and start time (so a pid reused by a later process is not this one)."""
    return f"{host_id()}-{os.getpid()}-{_start_ticks(os.getpid()) or 0}"


def tag_alive(tag: str) -> bool | None:
    """Whether the process a tag names is running: True/False on this host, None for another host or PID
    namespace (a sweep here cannot tell, and leaves its folders alone)."""
    match = _TAG.fullmatch(tag)
    if match is None:
        raise ValueError(f"{tag!r} is not a process tag")
    if match["host"] != host_id():
        return None
    return _start_ticks(int(match["pid"])) == int(match["start"])


def owner_tag(name: str) -> str | None:
    """The process tag of a folder this project names ``[.]<name>.<tag>.<random>[.partial]`` (work and
    staging folders, ``.<name>.<tag>.previous``, write probes), read from its place in the name, so a
    reel name that looks like a tag is never taken for one; None for any other name."""
    parts = name.removesuffix(".partial").rsplit(".", 2)
    return parts[1] if len(parts) == 3 and _TAG.fullmatch(parts[1]) else None


def abandoned(name: str) -> bool:
    """Whether ``name`` is one of our folders (see ``owner_tag``) whose process on this host is gone."""
    tag = owner_tag(name)
    return tag is not None and tag_alive(tag) is False


def ended_reason(tag: str) -> str:
    """What a sweep records for a run whose process died without closing it."""
    return f"process {tag} on this host ended without closing the run (killed?)"


def work_folder(name: str) -> Path:
    """A new, empty work folder ``studio_home()/work/{name}.{process_tag()}.<random>`` for one run; the
    caller removes it on every exit path, and a sweep removes it once this process is gone."""
    root = studio_home() / "work"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}.{process_tag()}.", dir=root))


SIGNAL_NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT, raised in the main thread so that every ``finally`` and ``except BaseException``
    runs (Python's default SIGTERM ends the process at once, leaving runs open and folders behind)."""

    def __init__(self, signum: int) -> None:
        super().__init__(SIGNAL_NAMES.get(signum, signal.Signals(signum).name))
        self.signum = signum

    @property
    def signal_name(self) -> str:
        """``SIGTERM`` or ``SIGINT (Ctrl-C)``, as run records and messages name it."""
        return self.args[0]


class StopRequested(KeyboardInterrupt):
    """Raised by ``stop_point`` in any thread once ``request_stop`` was called; carries the stop's
    reason (``interrupted by SIGTERM``, ``cancelled in Prefect``) for the run rows it closes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)

    @property
    def reason(self) -> str:
        """Why the process is stopping, as run records state it."""
        return self.args[0]


_stop_lock = threading.Lock()
_stop_reason: str | None = None


def request_stop(reason: str) -> None:
    """Ask every thread of this process to stop at its next ``stop_point``; the first reason given wins."""
    global _stop_reason
    with _stop_lock:
        _stop_reason = _stop_reason or reason


def clear_stop() -> None:
    """Forget the stop request once what it stopped has ended, for a process that goes on (tests, a worker)."""
    global _stop_reason
    with _stop_lock:
        _stop_reason = None


def stop_point() -> None:
    """``StopRequested`` if a stop was requested: called between stages, so a run in a worker thread,
    which no signal reaches, ends at a stage boundary, closing its row and removing its folders."""
    if _stop_reason is not None:
        raise StopRequested(_stop_reason)


def _raise_interrupted(signum: int, _frame: object) -> None:
    error = Interrupted(signum)
    request_stop(f"interrupted by {error.signal_name}")
    raise error


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """While active, SIGTERM and SIGINT raise ``Interrupted`` in the main thread and request a stop of
    every other thread (``request_stop``), forgotten on the way out. Prefect's flow engine swaps in
    its own SIGTERM handler while a flow runs and, after its clean-up, re-sends the signal to the
    handler it found: this one, so the command still ends as interrupted."""
    previous = {s: signal.signal(s, _raise_interrupted) for s in SIGNAL_NAMES}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        clear_stop()
