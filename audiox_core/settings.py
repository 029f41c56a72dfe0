"""Run settings (what determines a reel's output, recorded for provenance) and where data lives."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiox_core import __version__
from audiox_core.errors import InputError


def studio_home() -> Path:
    """Data folder (database, work files): $AUDIOX_HOME, default ~/.audiox-studio."""
    return Path(os.environ.get("AUDIOX_HOME", Path.home() / ".audiox-studio")).expanduser()


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return __version__
    return f"{__version__}+g{sha}"


@dataclass(frozen=True)
class RunSettings:
    model: str = "tiny"
    seed: int = 0
    steps: int = 50
    cfg_scale: float = 7.0
    sampler: str = "dpmpp-3m-sde"
    device: str = "auto"
    scene_threshold: float = 27.0
    min_scene_s: float = 0.5
    loudness_preset: str = "ebu-r128"
    music_crossfade_s: float = 1.0
    review_proxy: bool = False
    batch_size: int = 8  # cues per forward pass; also the unit a rerun skips when its result was persisted

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> RunSettings:
        """Settings from a flow parameter dict; unknown keys are an InputError naming them."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"settings: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        settings = cls(**values)
        if settings.batch_size < 1:
            raise InputError(f"settings: batch_size must be at least 1, not {settings.batch_size}")
        return settings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
