"""Local paths and ``file://`` URIs behind the ``Store`` protocol."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from audiox_core.errors import InputError
from audiox_core.lifecycle import process_tag
from audiox_core.store.files import check_readable_file
from audiox_core.store.local_versions import kept_versions, point_current, versions, versions_folder
from audiox_core.store.protocol import Fetched
from audiox_core.store.serving import local_link
from audiox_core.store.uri import public_uri


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
        kept_versions()  # a bad $AUDIOX_KEEP_VERSIONS is one line now, not after the run's work
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
        """The reel's name under the root (not followed: it is the current pointer, a symbolic link)."""
        return (local_path(root_uri) / name).as_uri()

    def version_uri(self, folder_uri: str, version: str) -> str:
        """``<root>/<reel>.versions/<version>``: every version is a folder of its own."""
        return versions_folder(given_path(folder_uri)).joinpath(version).as_uri()

    def assembly_folder(self, folder_uri: str, version: str, work: Path) -> Path:
        """The version's own folder, staged and renamed into place by ``staged_directory``."""
        return versions_folder(given_path(folder_uri)) / version

    def publish(self, folder: Path, folder_uri: str, version: str) -> None:
        """Point ``<root>/<reel>`` at the version (already in place), then keep the newest
        ``kept_versions()`` versions and the one it replaced."""
        point_current(given_path(folder_uri), version)

    def versions(self, folder_uri: str) -> list[str]:
        return versions(given_path(folder_uri))

    def location(self, folder_uri: str) -> str:
        return str(given_path(folder_uri))

    def link(self, uri: str) -> str:
        """Its URL through ``audiox-studio serve`` (a browser page cannot open ``file://``)."""
        return local_link(local_path(uri))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
