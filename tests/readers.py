"""Readers for what the pipeline writes, for the tests' round trips: the scene CSV, a CMX 3600 EDL's
cut events, and the packets of a muxed stream."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from audiox_core.video.ffmpeg import run
from audiox_core.video.timecode import frame_from_timecode

_EVENT = re.compile(r"^(\d{3,6})\s+(\S+)\s+V\s+C\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


@dataclass(frozen=True)
class EdlEvent:
    number: int
    reel: str
    source_in: int  # frames
    source_out: int
    record_in: int
    record_out: int


def read_scenes_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def read_edl(text: str, fps: Fraction) -> list[EdlEvent]:
    """The cut events of a CMX 3600 EDL, timecodes converted to frames at ``fps``."""
    events = []
    for line in text.splitlines():
        if m := _EVENT.match(line.strip()):
            tcs = [frame_from_timecode(tc, fps) for tc in m.groups()[2:]]
            events.append(EdlEvent(int(m.group(1)), m.group(2), *tcs))
    return events


def packet_md5s(path: Path, stream: str = "v:0") -> list[str]:
    """MD5 of every packet of one stream (ffmpeg framemd5 on a stream copy): equal lists = identical packets."""
    out = run(
        "ffmpeg",
        ["-v", "error", "-i", str(path), "-map", f"0:{stream}", "-c", "copy", "-f", "framemd5", "-"],
        subject=path,
        what="hashing its packets failed",
    ).stdout
    return [line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if line and not line.startswith("#")]
