"""Run closings that wait for the database: when the database goes away during a run, the run's end
(status and reason) cannot be written, so it is kept as a small JSON file in a local folder and
written by the next sweep on this host (every run starts with one, and ``doctor --repair``) once the
database answers again; without it the row would stay ``running`` and later be closed as killed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from db.repository import finish_run
from db.session import redact

log = logging.getLogger(__name__)

PENDING_CLOSINGS = "pending-closings"  # the folder under AUDIOX_HOME


def database_lost(e: BaseException) -> bool:
    """Whether ``e`` says the database stopped answering (server down, connection dropped), as
    opposed to a query the database refused."""
    if isinstance(e, (OperationalError, InterfaceError)):
        return True
    return isinstance(e, DBAPIError) and bool(e.connection_invalidated)


def lost_reason(url: str, e: BaseException) -> str:
    """One line: which database went away, and what its driver said."""
    orig = getattr(e, "orig", None) or e
    said = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return f"database {redact(url)} went away during the run ({said})"


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def defer_closing(folder: Path, url: str, run_id: int, status: str, error: str) -> Path:
    """Keep run ``run_id``'s closing in ``folder`` until the database at ``url`` answers again."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_key(url)}-run{run_id}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "status": status, "error": error}))
    os.replace(tmp, path)
    return path


def apply_deferred(folder: Path, url: str) -> list[int]:
    """Write the closings kept for ``url`` (a run closed meanwhile stays as it is); the ids written.
    Raises the database's error, keeping the files, while it still does not answer."""
    closed = []
    for path in sorted(folder.glob(f"{_key(url)}-run*.json")) if folder.is_dir() else ():
        try:
            kept = json.loads(path.read_text())
            run_id, status, error = int(kept["run_id"]), str(kept["status"]), str(kept["error"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("%s: not a kept run closing (%s); removed", path, e)
            path.unlink(missing_ok=True)
            continue
        if finish_run(url, run_id, error=error, status=status):
            closed.append(run_id)
        path.unlink(missing_ok=True)
    return closed
