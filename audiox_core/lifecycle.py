"""Which process owns a run, a staging folder or a work folder, and whether that process still lives.

A process tag is ``<host>-<pid>-<start>``: a short hash of the host name, the pid and the process's
start time in clock ticks since boot (from /proc), so a pid reused by a later process is not mistaken
for the one that made the folder. Folders are named with the tag of the process that writes them;
a sweep removes those whose process on this host is gone.

SIGTERM and SIGINT become ``Interrupted`` (a ``KeyboardInterrupt``) in the main thread, so a run
interrupted either way closes its provenance row and removes its folders on the way out; only
SIGKILL leaves them, for the sweep.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from audiox_core.workspace import studio_home

_TAG = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)")


def host_id() -> str:
    """8 hex characters naming this machine (a hash of its host name)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


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
    """This process's tag: host, pid and start time."""
    return f"{host_id()}-{os.getpid()}-{_start_ticks(os.getpid()) or 0}"


def find_tag(name: str) -> str | None:
    """The process tag inside a folder or file name, if it holds one."""
    match = _TAG.search(name)
    return match.group(0) if match else None


def tag_alive(tag: str) -> bool | None:
    """Whether the process a tag names is running: True/False on this host, None for another host
    (a sweep here cannot tell, and leaves its folders alone)."""
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

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
        return 128 + self.signum


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """While active, SIGTERM and SIGINT raise ``Interrupted`` in the main thread. Prefect's flow engine
    swaps in its own SIGTERM handler while a flow runs and, after its clean-up, re-sends the signal to
    the handler it found: this one, so the command still ends as interrupted."""
    previous = {s: signal.signal(s, _raise_interrupted) for s in SIGNAL_NAMES}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
