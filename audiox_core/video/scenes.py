"""Hard-cut scene detection with OpenCV, sampling the model's frames in the same decoding pass."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from audiox_core.errors import InputError
from audiox_core.validation import above, at_least, check_fields, one_of
from audiox_core.video import libav
from audiox_core.video.change import with_boxes
from audiox_core.video.curves import FrameCurves, measure
from audiox_core.video.decode import DecodeReport, ModelFrames, decode_thumbnails
from audiox_core.video.probe import MediaInfo, probe
from audiox_core.video.skim import pays, skim, skimmable
from audiox_core.video.timecode import timecode

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
FADE_STEP = 0.3  # brightness change per frame (0–255) that counts as ramping in a fade
SKIM_CHOICES = ("auto", "always", "never")
TransitionKind = Literal["fade_out", "black", "fade_in"]  # in the order they occur around a black run


@dataclass(frozen=True)
class DetectorSettings:
    """Recorded with every result for provenance."""

    detector: str = "audiox-hsv-adaptive-v3"  # v3: changes of light and big flashes in noise are no cuts
    threshold: float = field(
        default=27.0, metadata=above(0)
    )  # a change this big always reaches the threshold (0–255, PySceneDetect's scale) …
    min_threshold: float = field(default=10.0, metadata=above(0))  # … and one below this (or threshold) never does;
    noise_factor: float = field(default=3.0, metadata=above(0))  # between: this × the clip's 90th-percentile change
    adaptive_ratio: float = 2.0  # the change must be this many times the neighbours' mean
    window: int = field(default=2, metadata=at_least(0))  # neighbours on each side for that mean
    min_scene_s: float = field(default=0.5, metadata=at_least(0))  # a scene lasts at least this long …
    min_scene_frames: int = field(default=15, metadata=at_least(0))  # … and this many frames (PySceneDetect's default)
    min_coverage: float = field(default=0.3, metadata=at_least(0))  # share of the picture a cut changes visibly
    flash_frames: int = field(default=3, metadata=at_least(0))  # a flash lasts at most this many frames
    black_level: float = 16.0  # mean brightness (0–255) at or below which a frame is black
    fade_min_frames: int = field(default=3, metadata=at_least(0))
    # Without model frames: skim the reference frames and decode every frame only around candidate
    # cuts ("auto": where skim.pays says it is faster; "always": wherever the codec can; "never").
    skim: str = field(default="auto", metadata=one_of(SKIM_CHOICES))

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
    start_pts_s: float = 0.0  # the video stream's own start time (ffprobe), for provenance
    damaged_frames: int = 0
    threshold_used: float = 0.0  # the adaptive threshold this clip got
    interlaced: str = ""  # the field scored ("top"/"bottom") when the picture is interlaced

    def to_dict(self) -> dict[str, Any]:
        return {
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "frames": self.frames,
            "start_pts_s": self.start_pts_s,
            "damaged_frames": self.damaged_frames,
            "threshold_used": self.threshold_used,
            "interlaced": self.interlaced,
            "scenes": [asdict(s) for s in self.scenes],
            "transitions": [asdict(t) for t in self.transitions],
            "detector": asdict(self.settings),
        }


def adaptive_threshold(change: Sequence[float], settings: DetectorSettings) -> float:
    """``noise_factor`` × the clip's 90th-percentile frame change (what its motion, grain and lighting
    reach; cuts are rarer than one frame in ten), kept within [min_threshold, threshold]."""
    typical = float(np.percentile(change[1:], 90)) if len(change) > 1 else 0.0
    floor = min(settings.min_threshold, settings.threshold)  # a threshold set low lowers the floor too
    return min(settings.threshold, max(floor, settings.noise_factor * typical))


def _fades_into_black(brightness: list[float], i: int, black_level: float) -> bool:
    """Frame i is black, darker than frame i-1, which was already dim: the last step of a fade out,
    not a cut. (Dim
    saturated pixels keep HSV saturation high until they reach black, so that step scores high.)"""
    return brightness[i] <= black_level and brightness[i] < brightness[i - 1] <= 2 * black_level


def find_cuts(
    curves: FrameCurves,
    settings: DetectorSettings,
    threshold: float | None = None,
    transitions: Sequence[Transition] = (),
) -> list[int]:
    """Frames that start a new shot: candidates (README "Scene detection", *Cuts*) kept strongest first unless a
    kept cut (or the first frame) is closer than the minimum scene length."""
    change, times = curves.change, curves.times
    threshold = adaptive_threshold(change, settings) if threshold is None else threshold
    n = len(change)
    floor = statistics.median(change[1:]) if n > 1 else 0.0  # what every frame changes (noise, grain)
    fading = _fading(transitions)
    candidates = []
    for i in range(1, n):
        if change[i] < (settings.threshold if i in fading else threshold):
            continue
        if _fades_into_black(curves.brightness, i, settings.black_level):
            continue
        if _flash(curves, i, threshold):
            continue
        if curves.coverage.get(i, 1.0) < settings.min_coverage:
            continue  # most of the picture stayed as it was, or changed only as a change of light does
        neighbours = [change[j] for j in range(max(1, i - settings.window), min(n, i + settings.window + 1)) if j != i]
        local = sum(neighbours) / len(neighbours) if neighbours else 0.0
        if change[i] - floor >= settings.adaptive_ratio * max(local - floor, 1.0):
            candidates.append(i)
    kept = [0]
    for i in sorted(candidates, key=lambda i: (-change[i], i)):
        if all(
            abs(i - k) >= settings.min_scene_frames and abs(times[i] - times[k]) >= Fraction(settings.min_scene_s)
            for k in kept
        ):
            kept.append(i)
    return sorted(kept[1:])


def _flash(curves: FrameCurves, i: int, threshold: float) -> bool:
    """A flash starts or ends at frame i: the picture before it is back within flash_frames, to within
    half the threshold or a quarter of the flash's own change (a big flash in noisy footage never gets
    back within half a threshold that adapted low)."""
    back = min(curves.returns.get(i, math.inf), curves.comebacks.get(i, math.inf))
    return back < max(threshold, curves.change[i] / 2) / 2


def _fading(transitions: Sequence[Transition]) -> set[int]:
    """The frames inside a fade in or out."""
    return {k for t in transitions if t.kind != "black" for k in range(t.start_frame, t.end_frame)}


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
    known_cuts: Sequence[int] | None = None,
) -> tuple[MediaInfo, SceneList]:
    """Decode once: scene cuts, transitions and (optionally) the model's frames. Without model frames
    the file is read in this process (video/libav.py: no ffprobe, no ffmpeg); with them, ffprobe then
    one ffmpeg pass writes the model's exact frames beside the thumbnails. ``known_cuts`` (the
    first frame of each scene after the first: a storyboard's cards) replace the detected ones."""
    report = DecodeReport()
    in_process = model_frames is None  # read in this process, without ffprobe or ffmpeg
    if isinstance(source, MediaInfo):
        info = source
    else:
        info = libav.probe(source) if in_process else probe(source)
    expected = info.video.frames or 0
    tick = (lambda i: progress(i, max(i, expected))) if progress else None
    if in_process:
        curves = _in_process(info, settings, report, tick, known_cuts)
    else:
        frames = decode_thumbnails(info.path, report, model_frames, field=info.video.first_field)
        curves = measure(with_boxes(frames), settings.min_threshold, settings.flash_frames, tick)
    return info, _scene_list(info, curves, report, settings, progress, known_cuts)


def _in_process(
    info: MediaInfo,
    settings: DetectorSettings,
    report: DecodeReport,
    tick: Callable[[int], None] | None,
    known_cuts: Sequence[int] | None,
) -> FrameCurves:
    """The curves of every frame, decoded in this process: by the skim where it applies, else every frame."""
    wanted = {"auto": pays, "always": skimmable, "never": lambda _: False}[settings.skim]
    if known_cuts is None and wanted(info):
        pad = max(settings.window, settings.flash_frames) + 1
        curves = skim(
            info,
            report,
            min_threshold=settings.min_threshold,
            flash_frames=settings.flash_frames,
            pad=pad,
            threshold_of=lambda change: adaptive_threshold(change, settings),
            fading_of=lambda c: _fading(find_fades(c, settings)),
            ceiling=settings.threshold,
            progress=tick,
        )
        if curves is not None:
            return curves
    frames = libav.thumbnails(info.path, report, field=info.video.first_field)
    return measure(with_boxes(frames), settings.min_threshold, settings.flash_frames, tick)


def _scene_list(
    info: MediaInfo,
    curves: FrameCurves,
    report: DecodeReport,
    settings: DetectorSettings,
    progress: ProgressCallback | None,
    known_cuts: Sequence[int] | None = None,
) -> SceneList:
    path, n = info.path, len(curves.times)
    if n == 0:
        raise InputError(f"{path}: no decodable video frames")
    decoded_s, declared_s = float(curves.end_s - curves.times[0]), info.video.duration_s
    if n > 1 and decoded_s < 0.9 * declared_s - 0.5:
        raise InputError(
            f"{path}: truncated or unreadable: the picture ends at {decoded_s:.2f} s of the {declared_s:.2f} s its header announces"
        )
    if progress:
        progress(n, n)
    if known_cuts is not None:
        if any(not 0 < c < n for c in known_cuts):
            raise InputError(f"{path}: known cuts {list(known_cuts)} lie outside its {n} frames")
        return scenes_from_cuts(list(known_cuts), curves, info.video.fps, settings)
    transitions = find_fades(curves, settings)
    threshold = adaptive_threshold(curves.change, settings)
    cuts = find_cuts(curves, settings, threshold, transitions)
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
        threshold_used=threshold,
        interlaced=info.video.first_field,
    )
