"""Scene lists for editors: CSV and a CMX 3600 EDL, one cut event per scene."""

from __future__ import annotations

import re

from audiox_core.producer_text import csv_table
from audiox_core.video.scenes import SceneList
from audiox_core.video.timecode import is_drop_frame

CSV_FIELDS = ("scene", "start_frame", "end_frame", "start_s", "end_s", "start_tc", "end_tc", "duration_s")
_NUMERIC_FIELDS = frozenset(CSV_FIELDS) - {"start_tc", "end_tc"}


def scenes_csv(scenes: SceneList) -> str:
    """The scene list as CSV: every column ours, numbers and timecodes (``csv_table``, as every CSV we write)."""
    rows = [
        (
            s.index,
            s.start_frame,
            s.end_frame,
            f"{s.start_s:.6f}",
            f"{s.end_s:.6f}",
            s.start_tc,
            s.end_tc,
            f"{s.duration_s:.6f}",
        )
        for s in scenes.scenes
    ]
    return csv_table(CSV_FIELDS, rows, numeric=_NUMERIC_FIELDS)


def _reel_name(name: str) -> str:
    """CMX 3600 reel names: up to 8 characters, letters, digits and underscores."""
    return (re.sub(r"[^A-Za-z0-9_]", "", name)[:8] or "AX").upper()


def scenes_edl(scenes: SceneList, title: str, clip_name: str) -> str:
    """A CMX 3600 EDL with one cut event per scene on track V, the reel's own timecode as source and record
    (drop-frame at 29.97/59.94), so an editor can load the cuts against the original picture."""
    reel = _reel_name(title)
    lines = [f"TITLE: {title}", f"FCM: {'DROP FRAME' if is_drop_frame(scenes.fps) else 'NON-DROP FRAME'}", ""]
    for s in scenes.scenes:
        lines.append(f"{s.index + 1:03d}  {reel:<8} V     C        {s.start_tc} {s.end_tc} {s.start_tc} {s.end_tc}")
        lines.append(f"* FROM CLIP NAME: {clip_name}")
        lines.append("")
    return "\n".join(lines)
