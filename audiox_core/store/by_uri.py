"""The store for a URI, chosen once from its scheme: ``s3://`` or a local path."""

from __future__ import annotations

from audiox_core.store.local import LocalStore, local_path
from audiox_core.store.protocol import Store


def store_for(uri: str) -> Store:
    """The store for a URI's scheme: ``s3://`` or a local path / ``file://``."""
    if uri.startswith("s3://"):
        from audiox_core.store.s3 import S3Store

        return S3Store()
    local_path(uri)  # InputError for other schemes
    return LocalStore()
