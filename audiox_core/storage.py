"""Where inputs come from and outputs go: local paths and ``s3://bucket/key`` behind one small
protocol, ``Store``, chosen once from the URI by ``store_for``; content hashes and atomic writes.

A store reads a URI to a local file, checks that a root can take outputs, names a reel's folder
under a root, says where that folder is assembled and where a version of it lives, and publishes
it when complete, all or nothing. Local folders are assembled in a hidden sibling, flushed to disk
(fsync of every file and folder) and swapped into place (Linux ``renameat2(RENAME_EXCHANGE)``: the
folder's name never points at nothing); S3 folders are assembled under the run's
work folder and uploaded under a version prefix, made current by one small manifest written last
(``audiox_core/s3.py``, the only module that talks to boto3).
"""

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
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from audiox_core.errors import InputError
from audiox_core.lifecycle import process_tag
from audiox_core.provenance import public_uri
from audiox_core.serving import local_link

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


def given_path(uri: str) -> Path:
    """The local path a local URI names, as given (symbolic links not followed: errors name the
    file the user named); InputError, naming the URI without secrets, for other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme == "file" else uri).expanduser()
    raise InputError(f"{public_uri(uri)}: unsupported URI scheme {parsed.scheme!r} (use a local path or s3://)")


def local_path(uri: str) -> Path:
    """The local file a local URI names, absolute with symbolic links resolved; InputError for other
    schemes (see ``fetch`` for S3)."""
    return given_path(uri).resolve()


def as_uri(path: Path) -> str:
    return path.resolve().as_uri()


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


@dataclass(frozen=True)
class Fetched:
    """A URI's content as a local file, with the object version it was read at (S3 ETag; None locally)."""

    path: Path
    version: str | None


class Store(Protocol):
    """Local files or S3, as one interface for the flows and tasks."""

    def fetch(self, uri: str, cache_dir: Path) -> Fetched:
        """A local, readable file with the content of ``uri`` (InputError naming it otherwise)."""

    def check_writable(self, root_uri: str, need_bytes: int) -> None:
        """InputError (one line, naming ``root_uri``) when the root cannot take a reel's outputs of
        about ``need_bytes``: checked before any expensive work."""

    def child(self, root_uri: str, name: str) -> str:
        """The URI of the folder ``name`` under ``root_uri``."""

    def version_uri(self, folder_uri: str, version: str) -> str:
        """Where the files of one published version of the folder live (the URIs provenance records)."""

    def assembly_folder(self, folder_uri: str, work: Path) -> Path:
        """The local folder in which the finished folder is assembled (staged, then renamed into place)."""

    def publish(self, folder: Path, folder_uri: str, version: str) -> None:
        """Make the assembled ``folder`` the current ``version`` at ``folder_uri``, all or nothing;
        idempotent, so a transient failure can be retried."""

    def location(self, folder_uri: str) -> str:
        """Where a person finds the folder: a local path or the URI."""

    def link(self, uri: str) -> str:
        """A URL that opens the file in a browser (S3: presigned, expiring)."""


class LocalStore:
    """Local paths and ``file://`` URIs: files read in place, folders published by the atomic rename
    of ``staged_directory``."""

    def fetch(self, uri: str, cache_dir: Path) -> Fetched:
        path = local_path(uri)
        check_readable_file(path)
        return Fetched(path, None)

    def check_writable(self, root_uri: str, need_bytes: int) -> None:
        """The root is (or can be made) a folder, a file can be written in it, and its file system
        has ``need_bytes`` free. Nothing is created: a missing root is probed at its nearest existing
        ancestor, so a run refused later leaves no empty folder behind."""
        shown = public_uri(root_uri)
        root = local_path(root_uri)
        if root.exists() and not root.is_dir():
            raise InputError(f"{shown}: output folder is not a folder")
        while not root.exists():
            root = root.parent
        if not root.is_dir():
            raise InputError(f"{shown}: output folder cannot be made ({root} is not a folder)")
        try:
            fd, probe = tempfile.mkstemp(prefix=f".write-probe.{process_tag()}.", dir=root)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as e:
            raise InputError(f"{shown}: output folder is not writable ({e.strerror or e})") from e
        free = shutil.disk_usage(root).free
        if free < need_bytes:
            raise InputError(
                f"{shown}: not enough free space for the outputs ({_mib(free)} free, about {_mib(need_bytes)} needed)"
            )

    def child(self, root_uri: str, name: str) -> str:
        return as_uri(local_path(root_uri) / name)

    def version_uri(self, folder_uri: str, version: str) -> str:
        """The folder itself: a local folder holds one version, replaced whole by ``staged_directory``."""
        return folder_uri

    def assembly_folder(self, folder_uri: str, work: Path) -> Path:
        return local_path(folder_uri)

    def publish(self, folder: Path, folder_uri: str, version: str) -> None:
        """Nothing to do: the staged folder was flushed and renamed into place when it was complete."""

    def location(self, folder_uri: str) -> str:
        return str(local_path(folder_uri))

    def link(self, uri: str) -> str:
        """Its URL through ``audiox-studio serve`` (a browser page cannot open ``file://``)."""
        return local_link(local_path(uri))


def store_for(uri: str) -> Store:
    """The store for a URI's scheme: ``s3://`` or a local path / ``file://``."""
    if uri.startswith("s3://"):
        from audiox_core.s3 import S3Store

        return S3Store()
    local_path(uri)  # InputError for other schemes
    return LocalStore()


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
        _fsync_folder(final.parent)
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
        _fsync_folder(path)


def _fsync_folder(folder: Path) -> None:
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
    _fsync_folder(path.parent)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
