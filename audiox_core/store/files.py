"""Durable files: content hashes, atomic writes flushed to disk, folders staged and swapped into place."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from audiox_core.errors import InputError
from audiox_core.lifecycle import process_tag

log = logging.getLogger(__name__)


CHUNK = 1 << 20


# <linux/fcntl.h> and <linux/fs.h>: paths relative to the working folder; swap two existing names.
_AT_FDCWD = -100


_RENAME_EXCHANGE = 2


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_readable_file(path: Path) -> None:
    """InputError naming ``path`` when it is a broken link, missing, not a regular file, unreadable or empty."""
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path}: broken symbolic link (the file it points to does not exist)")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied (not readable by this user)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a hidden sibling of ``final`` (named with this process's tag, so a sweep can tell a live
    one from an abandoned one); on success it is flushed to disk and put in place of ``final``, on
    any error it is removed and ``final`` is left as it was. An existing ``final`` is swapped with the
    stage in one atomic exchange, so its name always holds a whole version, and the old one (now at
    the stage's name) is removed; a concurrent publish that landed first is swapped out the same way."""
    made = _make_parents(final.parent)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.{process_tag()}.", suffix=".partial", dir=final.parent))
    except BaseException:
        _remove_empty(made)
        raise
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())
        fsync_tree(stage)
        old = _put_in_place(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(made)  # a failed run leaves no empty output root behind either
        raise
    try:
        fsync_folder(final.parent)
    except OSError as e:  # the new version is already live: not a failed run, only a less durable rename
        log.warning("%s: in place, but its folder could not be flushed to disk (%s)", final, e.strerror or e)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p folder``; the folders it created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is still empty; another run's files stay."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _put_in_place(stage: Path, final: Path) -> Path | None:
    """Move the flushed ``stage`` to ``final``; the path now holding the version it replaced (to be
    removed), or None. A plain rename when ``final`` is absent; an atomic exchange when it exists;
    two renames (``final`` briefly moved to a ``.previous`` name, put back on failure, restored by
    the sweep if this process dies in between) where the file system cannot exchange."""
    if not final.exists():
        try:
            os.replace(stage, final)
            return None
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise  # else another publish landed first: exchange with it
    if _exchange(stage, final):
        return stage
    previous = final.with_name(f".{final.name}.{process_tag()}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    os.replace(final, previous)
    try:
        os.replace(stage, final)
    except BaseException:
        os.replace(previous, final)
        raise
    return previous


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one step (``renameat2(RENAME_EXCHANGE)``); False where libc,
    the kernel or the file system has no exchange (ENOSYS, EINVAL), OSError for any other failure."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@cache
def _renameat2():
    """libc's ``renameat2`` (glibc 2.28+), or None where this libc has none."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder``, then every folder (deepest first), to disk: a rename that
    publishes the folder must not survive a power cut that its contents do not."""
    folders = [folder]
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            continue
        if path.is_dir():
            folders.append(path)
        else:
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    for path in reversed(folders):
        fsync_folder(path)


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name in the same folder, flush it to disk, then rename it over
    ``path`` (and flush the folder, so the rename is durable too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; published files follow the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
