"""Which staged-frame entries a process put in the tensor cache, so a sweep can remove a killed process's."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Protocol

from audiox_core.lifecycle import abandoned, process_tag

_lock = threading.Lock()


class Discards(Protocol):
    def discard(self, key: str) -> None: ...


def ledger_folder(cache_root: Path) -> Path:
    return cache_root / "staged"


@cache
def _ledger(folder: Path) -> Path:
    """This process's ledger in ``folder`` (made on first use)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"frames.{process_tag()}.", dir=folder)
    os.close(fd)
    return Path(name)


def record_staged(cache_root: Path, key: str) -> None:
    """Note that this process staged ``key`` (before it is written: a kill in between leaves no orphan)."""
    with _lock, _ledger(ledger_folder(cache_root)).open("a") as f:
        f.write(key + "\n")


def _abandoned_ledgers(cache_root: Path) -> Iterator[Path]:
    folder = ledger_folder(cache_root)
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_file() and abandoned(path.name):
            yield path


def sweep_staged(cache_root: Path, cues: Discards) -> int:
    """Discard from ``cues`` every entry a dead process on this host staged, then its ledger; the count."""
    removed = 0
    for ledger in _abandoned_ledgers(cache_root):
        for key in dict.fromkeys(ledger.read_text().split()):
            cues.discard(key)
            removed += 1
        ledger.unlink(missing_ok=True)
    return removed
