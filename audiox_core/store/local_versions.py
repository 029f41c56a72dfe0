"""A local reel's versions: ``<root>/<reel>.versions/<version>/`` folders behind ``<root>/<reel>``, a
symbolic link to the current one that is swapped in one rename, the newest few kept."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from audiox_core.environment import env_count
from audiox_core.errors import InputError
from audiox_core.lifecycle import process_tag
from audiox_core.store.files import fsync_folder

log = logging.getLogger(__name__)

KEEP_ENV = "AUDIOX_KEEP_VERSIONS"
DEFAULT_KEPT = 5
SUFFIX = ".versions"


def kept_versions() -> int:
    """How many of a reel's newest versions are kept: ``$AUDIOX_KEEP_VERSIONS``, 5 by default (the
    version a new one replaces is kept too, so a review page open on it keeps playing)."""
    return env_count(KEEP_ENV, DEFAULT_KEPT)


def versions_folder(reel: Path) -> Path:
    return reel.with_name(reel.name + SUFFIX)


def current_version(reel: Path) -> str | None:
    """The version ``<root>/<reel>`` points at, or None (no version yet, or a folder of the old layout)."""
    return Path(os.readlink(reel)).name if reel.is_symlink() else None


def versions(reel: Path) -> list[str]:
    """The reel's published versions, oldest first (their names sort by time)."""
    folder = versions_folder(reel)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())


def point_current(reel: Path, version: str) -> None:
    """Make ``reel`` a link to ``<reel>.versions/<version>`` (in place already) in one rename, then
    remove the versions older than the newest ``kept_versions()``, never the one it replaced. The last
    publish wins the pointer, as on S3. A folder of the old layout (one version in ``<reel>`` itself)
    is moved in among the versions first."""
    folder = versions_folder(reel)
    if not (folder / version).is_dir():
        raise FileNotFoundError(f"{folder / version}: the version to make current is not in place")
    previous = current_version(reel)
    if reel.is_dir() and not reel.is_symlink():
        when = datetime.fromtimestamp(reel.stat().st_mtime, UTC)
        os.replace(reel, folder / f"{when:%Y%m%dT%H%M%S%fZ}-earlier")
    link = reel.with_name(f".{reel.name}.{process_tag()}.link")
    link.unlink(missing_ok=True)
    os.symlink(f"{folder.name}/{version}", link)
    os.replace(link, reel)
    fsync_folder(reel.parent)
    _remove_old(reel, keep={version, previous})


def _remove_old(reel: Path, keep: set[str | None]) -> None:
    """Housekeeping after the pointer moved: a failure is logged and left for the next publish."""
    names = versions(reel)
    try:
        newest = kept_versions()
    except InputError as e:  # checked before the run; changed since: keep everything this time
        log.warning("old versions of %s kept: %s", reel, e)
        return
    kept = set(names[-newest:]) | keep
    for name in names:
        if name not in kept:
            try:
                shutil.rmtree(versions_folder(reel) / name)
            except OSError as e:
                log.warning("%s: old version not removed yet (%s)", versions_folder(reel) / name, e.strerror or e)
