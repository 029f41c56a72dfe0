"""File names of the stems and printmaster as a studio's deliverables spell them, from a pattern it can set."""

from __future__ import annotations

import string
from fractions import Fraction

from audiox_core.errors import InputError
from audiox_core.video.timecode import is_drop_frame

DEFAULT_PATTERN = "{reel}_{version}_{stem}_{channels}ch_{rate}k_{bits}b_{fps}"
STEM_CODES = {  # our stem → the deliverable's usual name
    "foley": "FXStem",
    "music": "MXStem",
    "dialogue": "DIAStem",
    "m_and_e": "ME",
    "mix": "PM",
}
FIELDS = ("reel", "version", "stem", "channels", "rate", "bits", "fps")


def pattern_problem(pattern: object) -> str | None:
    """What is wrong with a naming pattern ("has a path separator"), None when it names files."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "is no file name pattern (empty)"
    if any(sep in pattern for sep in "/\\\0"):
        return "has a path separator (a pattern names a file, not a folder)"
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as e:
        return f"does not parse ({e}; write a field as {{reel}})"
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            return f"has an unknown field {{{name}}} (known: {', '.join(FIELDS)})"
        if spec or conversion:
            return f"formats field {{{name}}} (fields take no format)"
    if "{stem}" not in pattern:
        return "has no {stem} field, so every stem would get the same name"
    return None


def check_pattern(pattern: str, label: str = "stem_names") -> str:
    """The pattern, or InputError ``"{label} '…' <problem>"``."""
    if problem := pattern_problem(pattern):
        raise InputError(f"{label} {pattern!r} {problem}")
    return pattern


def fps_label(fps: Fraction) -> str:
    """``25``, ``2398``, ``2997DF``: the frame rate as deliverable names write it."""
    if fps.denominator == 1:
        return str(fps.numerator)
    return f"{float(fps):.2f}".replace(".", "").rstrip("0") + ("DF" if is_drop_frame(fps) else "")


def version_label(run_id: int) -> str:
    return f"v{run_id:03d}"


def stem_file(pattern: str, stem: str, *, reel: str, run_id: int, fps: Fraction, rate: int, channels: int = 2) -> str:
    """The file name of ``stem`` (a key of ``STEM_CODES``) under ``pattern``, with ``.wav``."""
    name = pattern.format(
        reel=reel,
        version=version_label(run_id),
        stem=STEM_CODES[stem],
        channels=channels,
        rate=f"{rate / 1000:g}",
        bits=24,
        fps=fps_label(fps),
    )
    return f"{name}.wav"


def delivered_names(pattern: str, *, reel: str, run_id: int, fps: Fraction, rate: int) -> dict[str, str]:
    """Each stem's and the printmaster's file in a version folder → its name as delivered."""
    files = {"mix": "mix.wav", **{k: f"stems/{k}.wav" for k in STEM_CODES if k != "mix"}}
    return {
        file: stem_file(pattern, stem, reel=reel, run_id=run_id, fps=fps, rate=rate) for stem, file in files.items()
    }
