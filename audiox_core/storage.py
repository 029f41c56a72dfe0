"""Where inputs come from and outputs go: local paths and ``s3://bucket/key`` behind one small
protocol, ``Store``, chosen once from the URI by ``store_for``; content hashes and atomic writes.

A store reads a URI to a local file, names a reel's folder under a root, says where that folder is
assembled, and publishes it when complete. Local folders are assembled in a hidden sibling and
renamed into place; S3 folders are assembled under the run's work folder and uploaded
(``audiox_core/s3.py``, the only module that talks to boto3).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from audiox_core.errors import InputError

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def local_path(uri: str) -> Path:
    """The local file a local URI names; InputError for other schemes (see ``fetch`` for S3)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme == "file" else uri).expanduser().resolve()
    raise InputError(f"{uri}: unsupported URI scheme {parsed.scheme!r} (use a local path or s3://)")


def as_uri(path: Path) -> str:
    return path.resolve().as_uri()


def check_readable_file(path: Path) -> None:
    """InputError naming the file when it is missing, not a regular file, or empty."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
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

    def child(self, root_uri: str, name: str) -> str:
        """The URI of the folder ``name`` under ``root_uri``."""

    def assembly_folder(self, folder_uri: str, work: Path) -> Path:
        """The local folder in which the finished folder is assembled (staged, then renamed into place)."""

    def publish(self, folder: Path, folder_uri: str) -> None:
        """Make the assembled ``folder`` available at ``folder_uri``."""

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

    def child(self, root_uri: str, name: str) -> str:
        return as_uri(local_path(root_uri) / name)

    def assembly_folder(self, folder_uri: str, work: Path) -> Path:
        return local_path(folder_uri)

    def publish(self, folder: Path, folder_uri: str) -> None:
        """Nothing to do: the staged folder was renamed into place when it was complete."""

    def location(self, folder_uri: str) -> str:
        return str(local_path(folder_uri))

    def link(self, uri: str) -> str:
        return as_uri(local_path(uri))


def store_for(uri: str) -> Store:
    """The store for a URI's scheme: ``s3://`` or a local path / ``file://``."""
    if uri.startswith("s3://"):
        from audiox_core.s3 import S3Store

        return S3Store()
    local_path(uri)  # InputError for other schemes
    return LocalStore()


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; on success it replaces ``final``, on error it is removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    os.chmod(stage, 0o777 & ~_umask())
    previous = final.with_name(f".{final.name}.previous")
    if final.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(final, previous)
    os.replace(stage, final)
    shutil.rmtree(previous, ignore_errors=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name in the same folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; published files follow the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
