"""Where what several machines share lives: $AUDIOX_SHARED_STORE, an ``s3://`` prefix or a local folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from audiox_core.environment import env_text
from audiox_core.errors import InputError
from audiox_core.store.cache import TensorCache, cache_root

if TYPE_CHECKING:
    from audiox_core.store.s3_cache import S3TensorCache


def shared_store() -> str:
    """$AUDIOX_SHARED_STORE: an ``s3://`` prefix (no trailing slash) or an absolute local folder."""
    raw = env_text("AUDIOX_SHARED_STORE")
    if not raw:
        return str(cache_root())
    if raw.startswith("s3://"):
        from audiox_core.store.s3 import parse_s3

        bucket, prefix = parse_s3(raw.rstrip("/"))
        return f"s3://{bucket}/{prefix}".rstrip("/")
    if "://" in raw:
        raise InputError(f"AUDIOX_SHARED_STORE={raw!r}: not an s3:// prefix or a local folder")
    return str(Path(raw).expanduser().resolve())


def tensor_cache() -> TensorCache | S3TensorCache:
    """The cue and frame cache every inference worker of this studio reads: on S3 or in a folder."""
    store = shared_store()
    if store.startswith("s3://"):
        from audiox_core.store.s3_cache import S3TensorCache

        return S3TensorCache(f"{store}/cues")
    return TensorCache(Path(store) / "cues")
