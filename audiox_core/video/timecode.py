"""SMPTE 12M timecode from a 0-based frame index and an exact frame rate (drop-frame at 29.97 and 59.94 fps)."""

from __future__ import annotations

from fractions import Fraction

from audiox_core.errors import InputError


def is_drop_frame(fps: Fraction) -> bool:
    """30000/1001 and 60000/1001: skip frame numbers 0–1 (0–3) each minute but every tenth; 23.976 is non-drop."""
    return fps.denominator == 1001 and round(fps) in (30, 60)


def timecode(frame: int, fps: Fraction) -> str:
    """``HH:MM:SS:FF`` (``HH:MM:SS;FF`` for drop-frame) of ``frame`` at ``fps``."""
    if frame < 0:
        raise ValueError(f"frame must be ≥ 0, got {frame}")
    nominal = round(fps)
    if nominal < 1:
        raise ValueError(f"timecode counts whole frames per second: {fps} fps rounds to none (probe refuses it)")
    drop = is_drop_frame(fps)
    if drop:
        skipped = nominal // 15  # frame numbers dropped per minute: 2 at 29.97, 4 at 59.94
        per_10min = nominal * 600 - 9 * skipped
        per_min = nominal * 60 - skipped
        tens, rem = divmod(frame, per_10min)
        frame += 9 * skipped * tens + (skipped * ((rem - skipped) // per_min) if rem > skipped else 0)
    ff = frame % nominal
    seconds = frame // nominal
    sep = ";" if drop else ":"
    return f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{sep}{ff:02d}"


def frame_from_timecode(tc: str, fps: Fraction) -> int:
    """The frame number a ``HH:MM:SS:FF`` / ``HH:MM:SS;FF`` timecode names at ``fps`` (inverse of ``timecode``)."""
    hh, mm, ss, ff = (int(p) for p in tc.replace(";", ":").split(":"))
    nominal = round(fps)
    frame = ((hh * 60 + mm) * 60 + ss) * nominal + ff
    if is_drop_frame(fps):
        total_minutes = hh * 60 + mm
        frame -= (nominal // 15) * (total_minutes - total_minutes // 10)
    return frame


def parse_timecode(text: str, fps: Fraction, label: str) -> int:
    """The frame a timecode a person typed names at ``fps`` (``HH:MM:SS:FF``, ``;`` before the frames
    at drop frame, either accepted); InputError ``"{label} '…': <why>"`` for one that does not parse
    or names no frame (a frame number a drop-frame minute skips, minutes or seconds past 59)."""
    parts = text.replace(";", ":").split(":") if isinstance(text, str) else []
    if len(parts) != 4 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise InputError(f"{label} {text!r}: not a timecode HH:MM:SS:FF")
    hh, mm, ss, ff = (int(p) for p in parts)
    nominal = round(fps)
    if hh > 23 or mm > 59 or ss > 59 or ff >= nominal:
        raise InputError(f"{label} {text!r}: beyond 23:59:59:{nominal - 1:02d} at {float(fps):.3f} fps")
    if is_drop_frame(fps) and ss == 0 and mm % 10 and ff < nominal // 15:
        raise InputError(
            f"{label} {text!r}: drop-frame timecode skips frames 00–{nominal // 15 - 1:02d} of minute {mm}"
        )
    return frame_from_timecode(text, fps)
