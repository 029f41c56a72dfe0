"""What a pass over the frames measures, per frame: time, content change, brightness, the active
box, and for the big changes how much of the picture they touch and whether the picture comes back
(a flash). Plain lists: a few numbers per frame, so a two-hour reel stays small."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from audiox_core.video.change import Box, Look, brightness, content_change, coverage


@dataclass
class FrameCurves:
    """What the decoding pass measured per frame (plain lists: a few floats per frame)."""

    times: list[Fraction] = field(default_factory=list)  # seconds on the container's timeline
    change: list[float] = field(default_factory=list)  # content change from the previous frame (0 for frame 0)
    brightness: list[float] = field(default_factory=list)
    # frame → least change from the frame before it over the next flash_frames frames (only frames
    # whose change reached min_threshold): small means the picture came back, a flash
    returns: dict[int, float] = field(default_factory=dict)
    # frame → least change from the picture before a big change a few frames earlier: small means
    # this frame ends a flash (the picture is back), which is no cut either
    comebacks: dict[int, float] = field(default_factory=dict)
    coverage: dict[int, float] = field(default_factory=dict)
    boxes: list[Box] = field(
        default_factory=list
    )  # the active picture of each frame  # frame → share of the picture that changed visibly

    @property
    def end_s(self) -> Fraction:
        """When the last frame ends: its start plus the previous frame interval."""
        t = self.times
        return t[-1] + (t[-1] - t[-2]) if len(t) > 1 else (t[0] if t else Fraction(0))

    def time_at(self, k: int) -> Fraction:
        return self.times[k] if k < len(self.times) else self.end_s


def measure(
    frames: Iterable[tuple[Fraction, Look, Box]],
    min_threshold: float,
    flash_frames: int,
    progress: Callable[[int], None] | None = None,
) -> FrameCurves:
    """One streaming pass over (time, look, active box): change per frame, brightness, and, for each
    change of at least ``min_threshold``, its coverage and how far it returns within ``flash_frames``."""
    curves = FrameCurves()
    previous: Look | None = None
    watching: dict[int, Look] = {}  # candidate frame → the frame before it, for the flash check
    for i, (t, current, box) in enumerate(frames):
        curves.times.append(t)
        curves.boxes.append(box)
        curves.brightness.append(brightness(current, box))
        change = 0.0 if previous is None else content_change(previous, current, box)
        curves.change.append(change)
        for start, before in list(watching.items()):
            back = content_change(before, current, box)
            curves.returns[start] = min(curves.returns.get(start, math.inf), back)
            curves.comebacks[i] = min(curves.comebacks.get(i, math.inf), back)
            if i - start >= flash_frames:
                del watching[start]
        if previous is not None and change >= min_threshold:
            curves.coverage[i] = coverage(previous, current, box)
            if flash_frames:
                watching[i] = previous
        previous = current
        if progress and i % 50 == 0:
            progress(i)
    return curves
