"""Names of a reel's outputs: one folder or prefix per source (``<stem>-<hash of its identity>``) and its versions."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import PurePosixPath

from audiox_core.store.local import local_path
from audiox_core.store.uri import public_uri

FOLDER_MAX_BYTES = 100  # so ".{folder}.{process tag}.<random>.partial" stays far below the usual 255-byte limit
HASH_HEX = 10  # 40 bits: a collision between two sources of one studio is out of reach
_TITLE_MAX_BYTES = FOLDER_MAX_BYTES - 1 - HASH_HEX
_KEPT = "._-"  # besides letters, marks and digits of any script (Unicode categories L, M, N)


def source_identity(source_uri: str) -> str:
    """What names a source uniquely: ``s3://bucket/key`` without secrets, or the resolved absolute path."""
    if source_uri.startswith("s3://"):
        return public_uri(source_uri)
    return str(local_path(source_uri))


def reel_title(source_uri: str) -> str:
    """The source's readable stem, safe in a path or key and at most 89 bytes of UTF-8 ("reel"
    when nothing readable is left)."""
    name = PurePosixPath(public_uri(source_uri).rstrip("/")).name
    stem = unicodedata.normalize("NFC", name.rsplit(".", 1)[0] if "." in name[1:] else name)
    kept = "".join(c if c in _KEPT or unicodedata.category(c)[0] in "LMN" else "_" for c in stem)
    safe = re.sub(r"_{2,}", "_", kept).strip(_KEPT)
    cut = safe.encode()[:_TITLE_MAX_BYTES].decode(errors="ignore").rstrip(_KEPT)
    return cut or "reel"


def source_name(source_uri: str) -> str:
    """The source's own file name (``bikes.mp4`` for ``s3://footage/in/bikes.mp4``), as the editors
    know it: the EDL's clip name and the pictures' titles use it, never the fetch cache's name."""
    return PurePosixPath(public_uri(source_uri).rstrip("/")).name or "reel"


def reel_folder(source_uri: str) -> str:
    """The output folder (or prefix) name of a source: readable stem, '-', 10 hex of its identity's hash."""
    digest = hashlib.sha256(source_identity(source_uri).encode()).hexdigest()[:HASH_HEX]
    return f"{reel_title(source_uri)}-{digest}"


def version_name(run_id: int, now: datetime | None = None) -> str:
    """A published version's name: UTC time to the microsecond, then the run id (sorts by time, which is
    how ``store/s3.py`` orders the versions under a reel's prefix)."""
    return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%S%fZ}-run{run_id}"


def version_label(version: str) -> str:
    """``20261207T214001123456Z-run12`` → ``run 12 (2026-12-07 21:40 UTC)``; other names as they are."""
    m = re.fullmatch(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)\d*Z-run(\d+)", version)
    return f"run {m[6]} ({m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]} UTC)" if m else version
