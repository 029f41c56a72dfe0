"""Hard-cut scene detection with OpenCV, sampling the model's frames in the same decoding pass.

Score per frame: the mean absolute change of hue, saturation and value between consecutive small
thumbnails (0–255 scale, as PySceneDetect's ContentDetector measures it). A frame whose score reaches
the threshold starts a new scene, unless the current scene is shorter than the minimum length.
Frame ``i`` is at ``i / fps`` seconds from the first decoded frame; frames are 0-based in decode
order and a scene's end frame is exclusive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from audiox_core.errors import InputError
from audiox_core.media.frames import FrameStoreWriter
from audiox_core.media.timecode import timecode

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class DetectorSettings:
    """Recorded with every result for provenance."""

    detector: str = "hsv-content"
    threshold: float = 27.0
    min_scene_s: float = 0.5
    thumb_width: int = 160


@dataclass(frozen=True)
class Scene:
    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    start_tc: str
    end_tc: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class SceneList:
    fps: Fraction
    frames: int
    scenes: tuple[Scene, ...]
    settings: DetectorSettings

    def to_dict(self) -> dict[str, Any]:
        return {
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "frames": self.frames,
            "scenes": [asdict(s) for s in self.scenes],
            "detector": asdict(self.settings),
        }


def scenes_from_cuts(cuts: list[int], frames: int, fps: Fraction, settings: DetectorSettings) -> SceneList:
    """Scenes spanning [0, frames) split at ``cuts`` (first frames of new shots)."""
    bounds = [0, *cuts, frames]
    scenes = tuple(
        Scene(i, a, b, float(a / fps), float(b / fps), timecode(a, fps), timecode(b, fps))
        for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    )
    return SceneList(fps, frames, scenes, settings)


def _thumbnail(frame: np.ndarray, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.int16)


def detect_scenes(
    path: Path,
    fps: Fraction,
    settings: DetectorSettings = DetectorSettings(),
    *,
    frames_out: FrameStoreWriter | None = None,
    expected_frames: int | None = None,
    progress: ProgressCallback | None = None,
) -> SceneList:
    """Decode ``path`` once: find hard cuts and, when ``frames_out`` is given, sample the model's frames."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{path}: OpenCV cannot open the video")
    min_len = max(1, int(np.ceil(settings.min_scene_s * fps)))
    cuts: list[int] = []
    previous: np.ndarray | None = None
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            thumb = _thumbnail(frame, settings.thumb_width)
            if previous is not None:
                score = float(np.abs(thumb - previous).mean())
                if score >= settings.threshold and index - (cuts[-1] if cuts else 0) >= min_len:
                    cuts.append(index)
            previous = thumb
            if frames_out is not None:
                frames_out.offer(frame, Fraction(index) / fps)
            index += 1
            if progress and index % 25 == 0:
                progress(index, expected_frames or index)
    finally:
        capture.release()
    if index == 0:
        raise InputError(f"{path}: no decodable video frames")
    if progress:
        progress(index, index)
    log.info("%s: %d frames, %d cuts", path.name, index, len(cuts))
    return scenes_from_cuts(cuts, index, fps, settings)

