"""Where one version of a reel goes: its folder under the output root, its version name, and where it is assembled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audiox_core.reel.naming import version_name
from audiox_core.store.by_uri import store_for


@dataclass(frozen=True)
class Destination:
    root: str  # the output root, a path or s3:// URI
    folder_uri: str  # the reel's folder (or prefix) under it
    version: str
    base_uri: str  # this version's files, as provenance records them
    assembly: Path  # the local folder in which the version is staged

    @classmethod
    def of(cls, root: str, folder: str, run_id: int, work: Path) -> Destination:
        store = store_for(root)
        folder_uri, version = store.child(root, folder), version_name(run_id)
        return cls(
            root,
            folder_uri,
            version,
            store.version_uri(folder_uri, version),
            store.assembly_folder(folder_uri, version, work),
        )

    def file_uri(self, name: str) -> str:
        return f"{self.base_uri.rstrip('/')}/{name}"
