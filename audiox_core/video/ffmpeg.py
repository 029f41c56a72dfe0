"""Running ffmpeg and ffprobe: one place that finds the binaries and turns failures into clear errors."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from audiox_core.environment import env_seconds
from audiox_core.errors import InputError, PipelineError

INSTALL_HINT = "install it with: apt-get install -y ffmpeg"
# Seconds ffmpeg may go without delivering a frame (ffprobe: without answering) before it is stopped:
# generous, since a long GOP of 4K footage on a busy machine takes a while to decode to its next frame.
DEFAULT_STALL_S = 120.0


def stall_timeout_s() -> float:
    """``$AUDIOX_FFMPEG_STALL_S`` (seconds, > 0), else ``DEFAULT_STALL_S``."""
    return env_seconds("AUDIOX_FFMPEG_STALL_S", DEFAULT_STALL_S)


def binary(name: str) -> str:
    """Absolute path of ``ffmpeg`` or ``ffprobe``; PipelineError with an install hint when missing."""
    found = shutil.which(name)
    if not found:
        raise PipelineError(f"{name} not found on PATH ({INSTALL_HINT})")
    return found


# ffmpeg's closing lines that only say "it failed"; the cause is on an earlier line.
_GENERIC = ("Error initializing output stream", "Could not write header", "Conversion failed", "Error opening output")


def _reason(stderr: str, subject: Path) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    specific = [ln for ln in lines if not ln.startswith(_GENERIC)] or lines
    if not specific:
        return "no error output"
    reason = specific[-1].removeprefix(f"{subject}: ")
    return reason.split("] ", 1)[1] if reason.startswith("[") and "] " in reason else reason


def run(
    tool: str,
    args: Sequence[str],
    *,
    subject: Path,
    what: str,
    binary_output: bool = False,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess:
    """Run ffmpeg/ffprobe; a failure is an InputError naming ``subject`` and ffmpeg's last line, and
    so is a run past ``timeout_s`` (for quick calls such as ffprobe that must never hang a batch)."""
    cmd = (
        [binary(tool), "-hide_banner", "-nostdin", *args] if tool == "ffmpeg" else [binary(tool), "-hide_banner", *args]
    )
    try:
        proc = subprocess.run(cmd, capture_output=True, text=not binary_output, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise InputError(f"{subject}: {what} ({tool} gave no answer within {timeout_s:g} s)") from None
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace") if binary_output else proc.stderr
        raise InputError(f"{subject}: {what} ({_reason(stderr, subject)})")
    return proc
