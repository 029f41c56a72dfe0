"""Settings from the environment, each read through one parser here: a bad value is one line naming the variable."""

from __future__ import annotations

import math
import os
from pathlib import Path

from audiox_core.errors import InputError

T5_DIR = "AUDIOX_T5_DIR"  # a local copy of the T5 text encoder (the official model's prompts)


def env_text(name: str, default: str = "") -> str:
    """The variable's value with surrounding blanks removed, else ``default``."""
    return os.environ.get(name, "").strip() or default


def env_number(name: str, default: float, unit: str) -> float:
    """A finite number above 0 from ``name``, else ``default``."""
    raw = env_text(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name}={raw!r}: must be a number of {unit} above 0")
    return value


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds (> 0) from ``name``, else ``default``."""
    return env_number(name, default, "seconds")


def env_count(name: str, default: int) -> int:
    """A whole number (1 or more) from ``name``, else ``default``."""
    raw = env_text(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"{name}={raw!r}: must be a whole number, 1 or more")
    return int(raw)


def env_path(name: str) -> Path | None:
    """A path from ``name`` (``~`` expanded), else None."""
    raw = env_text(name)
    return Path(raw).expanduser() if raw else None


def t5_dir() -> Path | None:
    """$AUDIOX_T5_DIR: where the T5 tokenizer and encoder are read from, when the model needs them."""
    return env_path(T5_DIR)
