"""A disk that fills during a run: one line naming the folder, not an ``OSError: [Errno 28]`` naming a hidden file."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from audiox_core.errors import PipelineError

FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(PipelineError):
    """A folder's file system filled up (or ran out of inodes or quota) during the run."""


def _folder_of(e: OSError, folders: Mapping[str, Path]) -> str:
    """Which of ``folders`` (shown name → path) the failed write was in: the one holding the file the
    error names, else the one with the least free space."""
    for name in (e.filename, e.filename2):
        if isinstance(name, (str, Path)):
            path = Path(name).absolute()
            for shown, folder in folders.items():
                if path.is_relative_to(folder.absolute()):
                    return shown

    def free(folder: Path) -> int:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return shutil.disk_usage(folder).free

    return min(folders, key=lambda shown: free(folders[shown]))


@contextmanager
def full_disk_named(folders: Mapping[str, Path]) -> Iterator[None]:
    """Turn an out-of-space ``OSError`` raised inside into ``DiskFull`` naming the folder (as the user
    gave it) whose disk filled; any other error passes unchanged."""
    try:
        yield
    except OSError as e:
        if e.errno not in FULL or not folders:
            raise
        raise DiskFull(
            f"{_folder_of(e, folders)}: the disk filled up during the run ({e.strerror}); nothing was published: "
            "free some space and run again"
        ) from e
