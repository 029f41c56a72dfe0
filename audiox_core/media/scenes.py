"""Hard-cut scene detection with OpenCV, sampling the model's frames in the same decoding pass.

Per frame, the content change from the previous frame: the mean absolute change of hue (circular),
saturation and value between small HSV thumbnails (0–255 scale), plus an optional edge term. A cut
needs the change to reach an absolute threshold AND to stand out from its neighbourhood (ratio to
the rolling mean of the surrounding frames' changes, so fast motion does not cut), to come at least
the minimum scene length after the previous cut, and not to be a flash (a few frames after which
the picture returns to what it was). Fades to and from black are found from the brightness curve
and reported as transitions; they do not cut. Times are the container's PTS relative to the first
decoded frame; frames are 0-based in decode output order; a scene's end frame is exclusive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from audiox_core.errors import InputError
from audiox_core.media.decode import DecodeReport, ModelFrames, decode_thumbnails
from audiox_core.media.probe import MediaInfo, probe
from audiox_core.media.timecode import timecode
from audiox_core.storage import check_readable_file
from audiox_core.validation import above, at_least, check_fields

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
FADE_STEP = 0.3  # brightness change per frame (0–255) that counts as ramping in a fade
TransitionKind = Literal["fade_out", "black", "fade_in"]  # in the order they occur around a black run


@dataclass(frozen=True)
class DetectorSettings:
    """Recorded with every result for provenance."""

    detector: str = "audiox-hsv-adaptive-v1"
    threshold: float = field(
        default=27.0, metadata=above(0)
    )  # minimum content change for a cut (0–255, PySceneDetect's scale)
    adaptive_ratio: float = 2.0  # the change must be this many times the neighbours' mean
    window: int = field(default=2, metadata=at_least(0))  # neighbours on each side for that mean
    min_scene_s: float = field(default=0.5, metadata=at_least(0))  # a scene lasts at least this long …
    min_scene_frames: int = field(default=15, metadata=at_least(0))  # … and this many frames (PySceneDetect's default)
    flash_frames: int = field(default=3, metadata=at_least(0))  # a flash lasts at most this many frames
    edge_weight: float = field(
        default=0.0, metadata=at_least(0)
    )  # weight of the edge-map change against the three HSV channels (1 each)
    black_level: float = 16.0  # mean brightness (0–255) at or below which a frame is black
    fade_min_frames: int = field(default=3, metadata=at_least(0))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Scene:
    index: int
    start_frame: int  # frames [start_frame, end_frame), 0-based in decode order
    end_frame: int
    start_s: float
    end_s: float
    start_tc: str
    end_tc: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Transition:
    """A gradual transition (fade out to black, black, fade in from black); it does not cut."""

    kind: TransitionKind
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SceneList:
    fps: Fraction
    frames: int
    scenes: tuple[Scene, ...]
    settings: DetectorSettings
    transitions: tuple[Transition, ...] = ()
    start_pts_s: float = 0.0
    damaged_frames: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "frames": self.frames,
            "start_pts_s": self.start_pts_s,
            "damaged_frames": self.damaged_frames,
            "scenes": [asdict(s) for s in self.scenes],
            "transitions": [asdict(t) for t in self.transitions],
            "detector": asdict(self.settings),
        }


@dataclass
class FrameCurves:
    """What the decoding pass measured per frame (plain lists: a few floats per frame)."""

    times: list[Fraction] = field(default_factory=list)  # seconds since the first frame
    change: list[float] = field(default_factory=list)  # content change from the previous frame (0 for frame 0)
    brightness: list[float] = field(default_factory=list)
    flashes: set[int] = field(default_factory=set)  # frames that start a flash

    @property
    def end_s(self) -> Fraction:
        """When the last frame ends: its start plus the previous frame interval."""
        t = self.times
        return t[-1] + (t[-1] - t[-2]) if len(t) > 1 else Fraction(0)

    def time_at(self, k: int) -> Fraction:
        return self.times[k] if k < len(self.times) else self.end_s


def _hsv(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)


def _edges(hsv: np.ndarray) -> np.ndarray:
    v = hsv[..., 2]
    median = float(np.median(v))
    edges = cv2.Canny(v, int(max(0, 0.67 * median)), int(min(255, 1.33 * median)))
    return cv2.dilate(edges, np.ones((3, 3), np.uint8))


def content_change(a: np.ndarray, b: np.ndarray, edge_weight: float = 0.0) -> float:
    """Mean absolute HSV change between two HSV thumbnails (OpenCV scales: hue 0–179, taken circularly)."""
    diff = cv2.absdiff(a, b)
    dh = np.minimum(diff[..., 0], 180 - diff[..., 0]).mean()
    ds, dv = diff[..., 1].mean(), diff[..., 2].mean()
    total, weight = dh + ds + dv, 3.0
    if edge_weight:
        total += edge_weight * cv2.absdiff(_edges(a), _edges(b)).mean()
        weight += edge_weight
    return float(total / weight)


def measure(
    frames: Iterable[tuple[Fraction, np.ndarray]],
    settings: DetectorSettings,
    progress: Callable[[int], None] | None = None,
) -> FrameCurves:
    """One streaming pass: change per frame, brightness, and which candidate cuts are flashes."""
    curves = FrameCurves()
    previous: np.ndarray | None = None
    watching: dict[int, np.ndarray] = {}  # candidate frame → the frame before it, for the flash check
    for i, (t, bgr) in enumerate(frames):
        hsv = _hsv(bgr)
        curves.times.append(t)
        curves.brightness.append(float(hsv[..., 2].mean()))
        change = 0.0 if previous is None else content_change(previous, hsv, settings.edge_weight)
        curves.change.append(change)
        for start, before in list(watching.items()):
            if content_change(before, hsv, settings.edge_weight) < settings.threshold / 2:
                curves.flashes.add(start)  # back to the pre-flash picture within flash_frames
                del watching[start]
            elif i - start >= settings.flash_frames:
                del watching[start]
        if previous is not None and change >= settings.threshold:
            watching[i] = previous
        previous = hsv
        if progress and i % 50 == 0:
            progress(i)
    return curves


def _fades_into_black(brightness: list[float], i: int, black_level: float) -> bool:
    """Frame i is black, darker than frame i-1, which was already dim: the last step of a fade out,
    not a cut. (Dim
    saturated pixels keep HSV saturation high until they reach black, so that step scores high.)"""
    return brightness[i] <= black_level and brightness[i] < brightness[i - 1] <= 2 * black_level


def find_cuts(curves: FrameCurves, settings: DetectorSettings) -> list[int]:
    """Frames that start a new shot.

    The minimum scene length counts from the previous candidate, accepted or not: a burst of big
    changes (strobing, colour cycling, fast flicker) yields at most its first frame as a cut.
    """
    change, times = curves.change, curves.times
    n = len(change)
    cuts: list[int] = []
    last = 0  # the start, or the previous frame whose change reached the threshold
    for i in range(1, n):
        if change[i] < settings.threshold:
            continue
        long_enough = i - last >= settings.min_scene_frames and times[i] - times[last] >= Fraction(settings.min_scene_s)
        last = i
        if not long_enough or i in curves.flashes or _fades_into_black(curves.brightness, i, settings.black_level):
            continue
        neighbours = [change[j] for j in range(max(1, i - settings.window), min(n, i + settings.window + 1)) if j != i]
        local = sum(neighbours) / len(neighbours) if neighbours else 0.0
        if change[i] >= settings.adaptive_ratio * max(local, 1.0):
            cuts.append(i)
    return cuts


def find_fades(curves: FrameCurves, settings: DetectorSettings) -> list[Transition]:
    """Black runs, with the fade out before and the fade in after where brightness ramps into them."""
    lum, n = curves.brightness, len(curves.brightness)
    black = [v <= settings.black_level for v in lum]
    spans: list[Transition] = []
    i = 0
    while i < n:
        if not black[i]:
            i += 1
            continue
        a = i
        while i < n and black[i]:
            i += 1
        b = i  # black frames [a, b)
        start = a  # walking back while each earlier frame is brighter: the fade out
        while start > 0 and lum[start - 1] >= lum[start] + FADE_STEP:
            start -= 1
        end = b  # walking on while each frame is brighter than the one before: the fade in
        while 0 < end < n and lum[end] >= lum[end - 1] + FADE_STEP:
            end += 1
        if a - start >= settings.fade_min_frames:
            spans.append(Transition("fade_out", start, a, float(curves.time_at(start)), float(curves.time_at(a))))
        spans.append(Transition("black", a, b, float(curves.time_at(a)), float(curves.time_at(b))))
        if end - b >= settings.fade_min_frames:
            spans.append(Transition("fade_in", b, end, float(curves.time_at(b)), float(curves.time_at(end))))
    return spans


def scenes_from_cuts(
    cuts: list[int], curves: FrameCurves, fps: Fraction, settings: DetectorSettings, **extra: Any
) -> SceneList:
    """Scenes spanning all frames, split at ``cuts``; timecodes from each boundary's time at ``fps``."""
    frames = len(curves.times)
    bounds = [0, *cuts, frames]
    at = curves.time_at
    scenes = tuple(
        Scene(i, a, b, float(at(a)), float(at(b)), timecode(round(at(a) * fps), fps), timecode(round(at(b) * fps), fps))
        for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    )
    return SceneList(fps, frames, scenes, settings, **extra)


def detect_scenes(
    source: Path | MediaInfo,
    settings: DetectorSettings = DetectorSettings(),
    *,
    model_frames: ModelFrames | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[MediaInfo, SceneList]:
    """Decode once: scene cuts, transitions and (optionally) the model's frames. Given a path,
    ffprobe runs beside the decoding pass instead of before it."""
    path = source.path if isinstance(source, MediaInfo) else source
    check_readable_file(path)
    with ThreadPoolExecutor(1) as pool:
        info_future = pool.submit(lambda: source) if isinstance(source, MediaInfo) else pool.submit(probe, path)
        report = DecodeReport()
        try:
            tick = (lambda i: progress(i, _expected_frames(info_future, i))) if progress else None
            curves = measure(decode_thumbnails(path, report, model_frames), settings, tick)
        except InputError:
            info_future.result()  # a file ffprobe cannot read: its reason is the clearer one
            raise
        info = info_future.result()
    return info, _scene_list(info, curves, report, settings, progress)


def _expected_frames(info_future: Future[MediaInfo], done: int) -> int:
    """The header's frame count once ffprobe has answered (for progress bars)."""
    if info_future.done() and not info_future.exception():
        return max(done, info_future.result().video.frames or done)
    return done


def _scene_list(
    info: MediaInfo,
    curves: FrameCurves,
    report: DecodeReport,
    settings: DetectorSettings,
    progress: ProgressCallback | None,
) -> SceneList:
    path, n = info.path, len(curves.times)
    if n == 0:
        raise InputError(f"{path}: no decodable video frames")
    decoded_s, declared_s = float(curves.end_s), info.video.duration_s
    if n > 1 and decoded_s < 0.9 * declared_s - 0.5:
        raise InputError(
            f"{path}: truncated or unreadable: the picture ends at {decoded_s:.2f} s of the {declared_s:.2f} s its header announces"
        )
    if progress:
        progress(n, n)
    transitions = find_fades(curves, settings)
    cuts = find_cuts(curves, settings)
    log.info(
        "%s: %d frames, %d cuts, %d transitions, %d damaged", path.name, n, len(cuts), len(transitions), report.damaged
    )
    return scenes_from_cuts(
        cuts,
        curves,
        info.video.fps,
        settings,
        transitions=tuple(transitions),
        start_pts_s=info.video.start_s,
        damaged_frames=report.damaged,
    )
