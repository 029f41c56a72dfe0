"""One ffmpeg decoding pass over a video: thumbnails of every frame with exact PTS, the model's 5 fps frames beside."""

from __future__ import annotations

import logging
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from audiox_core.errors import InputError
from audiox_core.video.ffmpeg import binary, stall_timeout_s

log = logging.getLogger(__name__)

THUMB_SIZE = (192, 108)  # width, height: enough to score content change, cheap to move and convert
_TIME_BASE = re.compile(r"Parsed_showinfo.*config in time_base: (\d+)/(\d+)")
_FRAME = re.compile(r"Parsed_showinfo.* n:\s*(\d+) pts:\s*(-?\d+) ")
# Decoder complaints that mean a damaged frame (h264/hevc/mpeg4/vp* wording).
DAMAGE = re.compile(
    r"error while decoding|concealing|corrupt|invalid .*(slice|mb|macroblock)|decode_slice", re.IGNORECASE
)


@dataclass(frozen=True)
class ModelFrames:
    """Where and how to write the model's frames during the pass."""

    path: Path
    fps: int = 5
    size: int = 224


@dataclass
class DecodeReport:
    frames: int = 0
    first_pts: Fraction | None = None
    damaged: int = 0
    messages: list[str] = field(default_factory=list)


class _Stderr(threading.Thread):
    """Reads ffmpeg's log: the time base, one timestamp per frame, and decoder damage reports."""

    def __init__(self, stream, report: DecodeReport) -> None:
        super().__init__(daemon=True)
        self.stream, self.report = stream, report
        self.pts: queue.Queue[Fraction | None] = queue.Queue()
        self.time_base: Fraction | None = None

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode(errors="replace").rstrip()
            if (m := _FRAME.search(line)) and self.time_base is not None:
                self.pts.put(int(m.group(2)) * self.time_base)
            elif m := _TIME_BASE.search(line):
                self.time_base = Fraction(int(m.group(1)), int(m.group(2)))
            elif DAMAGE.search(line):
                self.report.damaged += 1
                self.report.messages.append(line)
            elif "Parsed_showinfo" not in line and ("rror" in line or "nvalid" in line):
                self.report.messages.append(line)
        self.pts.put(None)


class _Watchdog(threading.Thread):
    """Kills ``proc`` when a wait for its next frame lasts longer than ``timeout_s``; time the consumer
    spends between frames does not count."""

    def __init__(self, proc: subprocess.Popen, timeout_s: float) -> None:
        super().__init__(daemon=True)
        self.proc, self.timeout_s = proc, timeout_s
        self.waiting_since: float | None = None
        self.stalled = False
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(min(1.0, self.timeout_s / 4)):
            since = self.waiting_since
            if since is not None and time.monotonic() - since > self.timeout_s:
                self.stalled = True
                self.proc.kill()
                return


def decode_thumbnails(
    path: Path,
    report: DecodeReport,
    model_frames: ModelFrames | None = None,
    *,
    field: str = "",
    cheap: bool = False,
    span: tuple[Fraction, Fraction] | None = None,
) -> Iterator[tuple[Fraction, np.ndarray]]:
    """Yield (seconds on the container's timeline, BGR thumbnail (108, 192, 3)) for every decoded
    frame of the first video stream that is not a cover picture (ffmpeg's ``V`` stream specifier).
    ``field`` ("top"/"bottom"): interlaced footage, of which only that field is kept (ffmpeg's
    ``field`` filter: no combing, and a cut between two fields lands on one frame). ``cheap``: only
    reference frames, without the loop filter (a skim: the frames come out approximate and fewer).
    ``span`` (start, duration): only the frames shown from ``start`` for ``duration`` seconds, by an
    accurate seek."""
    w, h = THUMB_SIZE
    # Thumbnails leave ffmpeg as full-range planar YCbCr and OpenCV turns them into BGR with exact
    # rounding: grey stays grey and near-black frames get no false saturation (swscale's fast RGB
    # path adds ±1 colour casts that HSV magnifies), at no cost at this size.
    deinterlace = f"field={field}," if field else ""
    graph = f"[0:V:0]{deinterlace}split=2[a][b];[a]scale={w}:{h}:flags=fast_bilinear:out_range=full,format=yuv444p,showinfo[t]"
    outputs = ["-map", "[t]", "-f", "rawvideo", "-fps_mode", "passthrough", "pipe:1"]
    if model_frames is not None:
        s = model_frames.size
        # start_time=0: grid point k is at k / fps on the container's timeline, wherever the picture starts
        graph += f";[b]fps={model_frames.fps}:start_time=0,scale={s}:{s}:flags=area,format=rgb24[m]"
        outputs += ["-map", "[m]", "-f", "rawvideo", "-fps_mode", "passthrough", "-y", str(model_frames.path)]
    else:
        graph = graph.replace("split=2[a][b];[a]", "")
    # Damaged frames are dropped by the decoder rather than passed on half-drawn.
    decoding = ["-skip_loop_filter", "all", "-skip_frame", "noref"] if cheap else []
    offset = Fraction(0)
    if span is not None:
        offset = Fraction(round(span[0] * 1_000_000), 1_000_000)  # ffmpeg keeps seek points in microseconds
        decoding += ["-ss", f"{float(offset):.6f}", "-t", f"{float(span[1]):.6f}"]
    cmd = [
        binary("ffmpeg"),
        "-hide_banner",
        "-nostdin",
        "-v",
        "info",
        "-flags",
        "-output_corrupt",
        *decoding,
        "-i",
        str(path),
        "-filter_complex",
        graph,
        *outputs,
    ]
    timeout_s = stall_timeout_s()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=w * h * 3 * 16)
    reader = _Stderr(proc.stderr, report)
    reader.start()
    watchdog = _Watchdog(proc, timeout_s)
    watchdog.start()
    size = w * h * 3
    stalled = InputError(
        f"{path}: ffmpeg stalled: no frame for {timeout_s:g} s (set AUDIOX_FFMPEG_STALL_S to wait longer)"
    )
    try:
        while True:
            watchdog.waiting_since = time.monotonic()
            if len(buf := proc.stdout.read(size)) != size:
                break
            try:
                pts = reader.pts.get(timeout=timeout_s)
            except queue.Empty:
                raise stalled from None
            watchdog.waiting_since = None
            if pts is None:
                raise InputError(f"{path}: ffmpeg reported fewer timestamps than frames")
            if report.first_pts is None:
                report.first_pts = pts
            report.frames += 1
            planes = np.frombuffer(buf, np.uint8).reshape(3, h, w)  # Y, Cb, Cr
            yield (
                pts + offset,
                cv2.cvtColor(cv2.merge((planes[0], planes[2], planes[1])), cv2.COLOR_YCrCb2BGR),
            )
    finally:
        watchdog.done.set()
        proc.stdout.close()
        code = proc.wait()
        reader.join(timeout=10)
        proc.stderr.close()
    if watchdog.stalled:
        raise stalled
    if code != 0:
        reason = report.messages[-1].split("] ", 1)[-1] if report.messages else f"ffmpeg exited with {code}"
        raise InputError(f"{path}: video decoding failed ({reason})")
    if report.damaged:
        log.warning(
            "%s: %d damaged frame report(s) from the decoder; damaged frames were skipped", path.name, report.damaged
        )
