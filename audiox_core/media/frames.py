"""The model's view of the picture: frames on a fixed time grid (5 fps), squashed to 224×224 RGB.

Frames are written to a raw file as they are decoded and read back through a memory map, so a
two-hour reel does not sit in memory. Grid point k (time k / fps) takes the first decoded frame
at or after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class FrameStore:
    path: Path
    fps: int
    size: int
    count: int

    def array(self) -> np.ndarray:
        """All frames, (count, size, size, 3) uint8 RGB, memory-mapped."""
        if self.count == 0:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.memmap(self.path, dtype=np.uint8, mode="r", shape=(self.count, self.size, self.size, 3))

    def between(self, start_s: float, end_s: float) -> np.ndarray:
        """Frames whose grid time lies in [start_s, end_s)."""
        first = math.ceil(round(start_s * self.fps, 9))
        last = math.ceil(round(end_s * self.fps, 9))
        return np.asarray(self.array()[first : min(last, self.count)])


class FrameStoreWriter:
    def __init__(self, path: Path, fps: int = 5, size: int = 224) -> None:
        self.path, self.fps, self.size = path, fps, size
        self.count = 0
        self._file = open(path, "wb")

    def offer(self, frame_bgr: np.ndarray, t: Fraction) -> None:
        """Give the writer a decoded frame at time ``t`` (seconds from the first frame)."""
        if Fraction(self.count, self.fps) > t:
            return
        rgb = cv2.cvtColor(cv2.resize(frame_bgr, (self.size, self.size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        data = np.ascontiguousarray(rgb).tobytes()
        while Fraction(self.count, self.fps) <= t:
            self._file.write(data)
            self.count += 1

    def close(self) -> FrameStore:
        self._file.close()
        return FrameStore(self.path, self.fps, self.size, self.count)
