"""The model's view of the picture: frames on a fixed 5 fps grid, 224×224 RGB, memory-mapped from the decoding pass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FrameStore:
    """Grid point k (k / fps s on the container's timeline) holds the frame on screen then; points before the
    first frame hold the first frame."""

    path: Path
    fps: int
    size: int
    count: int

    @classmethod
    def open(cls, path: Path, fps: int, size: int) -> FrameStore:
        frame_bytes = size * size * 3
        count = path.stat().st_size // frame_bytes if path.exists() else 0
        return cls(path, fps, size, count)

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
