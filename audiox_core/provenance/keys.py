"""Content keys: the sha256 of everything that determines a generated cue."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generation_key(facts: dict[str, Any]) -> str:
    """sha256 of everything that determines a generated cue (canonical JSON: sorted keys)."""
    return sha256_text(json.dumps(facts, sort_keys=True, separators=(",", ":"), default=str))
