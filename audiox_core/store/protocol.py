"""The one interface of local folders and S3 buckets, ``Store``, and what its ``fetch`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


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

    def assembly_folder(self, folder_uri: str, version: str, work: Path) -> Path:
        """The local folder in which ``version`` of the folder is assembled (staged, then renamed into place)."""

    def publish(self, folder: Path, folder_uri: str, version: str) -> None:
        """Make the assembled ``folder`` the current ``version`` at ``folder_uri``, all or nothing;
        idempotent, so a transient failure can be retried."""

    def versions(self, folder_uri: str) -> list[str]:
        """The folder's published versions, oldest first (the names sort by time)."""

    def location(self, folder_uri: str) -> str:
        """Where a person finds the folder: a local path or the URI."""

    def link(self, uri: str) -> str:
        """A URL that opens the file in a browser (S3: presigned, expiring)."""
