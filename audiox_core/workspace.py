"""Where this installation keeps its data and which code it is: light enough for every command
(no torch), so `db upgrade`, `watch` and `provenance` start at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from audiox_core import __version__
from audiox_core.environment import env_path


def studio_home() -> Path:
    """Data folder (database, work files): $AUDIOX_HOME, default ~/.audiox-studio."""
    return env_path("AUDIOX_HOME") or Path.home() / ".audiox-studio"


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return __version__
    return f"{__version__}+g{sha}"
