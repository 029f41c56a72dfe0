"""How much the picture changed between two frames, measured on the active picture only.

A frame becomes a ``Look``: its HSV thumbnail as floats, how defined its hue and saturation are at
each pixel, and the brightest value of each row and column (for the bars). The change between two
looks is the mean absolute change of hue (circular), saturation and value inside the active box
(the picture inside letterbox or pillarbox bars), on PySceneDetect's 0–255 scale, where hue counts only as far as both pixels have
a hue (chroma: near-black, near-white and grey pixels have none) and saturation only as far as one
of them is bright enough to have one. The weighted sum is divided by the weight actually present, so a
saturated picture scores as the plain HSV mean and a monochrome one as its value change alone.
Chroma noise in near-black shadows ((0, 0, 0) → (0, 1, 0) is hue 60, saturation 255) counts none
of its hue swing and 1/32 of its saturation swing; in the bars it does not count at all.

Bars are the rows (columns) from each edge whose brightest pixel stays at most ``BAR_LEVEL`` over
a stretch of frames (``with_boxes``: about a second either side), so a bar stays a bar when re-encoding
makes its values drift by a few code values, and a dark or fading frame keeps the picture's box.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

BAR_LEVEL = 40.0  # a row or column whose brightest pixel (V, 0–255) is at most this may be a bar
CHROMA_FULL = 32.0  # chroma (S · V / 255) at which hue counts fully
VALUE_FULL = 32.0  # value at which saturation counts fully
BAR_REACH = 25  # frames either side whose brightest rows and columns decide the bars (about a second)
T = TypeVar("T")
Box = tuple[int, int, int, int]  # active rows [top, bottom), columns [left, right)
VISIBLE = 16.0  # a pixel whose value or saturation changes more than this changed visibly
SCALE = 2  # the thumbnail is averaged over SCALE × SCALE blocks before scoring


@dataclass(frozen=True)
class Look:
    h: np.ndarray  # float32, OpenCV hue 0–179
    s: np.ndarray
    v: np.ndarray
    hue_weight: np.ndarray  # 0–1: how defined the hue is
    sat_weight: np.ndarray  # 0–1: how defined the saturation is
    row_max: np.ndarray  # brightest value of each row
    col_max: np.ndarray


def brightness(a: Look, box: Box) -> float:
    """Mean value inside ``box``."""
    t, b, left, right = box
    return float(a.v[t:b, left:right].mean())


def _span(brightest: np.ndarray) -> tuple[int, int]:
    """[first, last) of the entries above BAR_LEVEL; the whole range when none is (a dark frame)."""
    live = np.flatnonzero(brightest > BAR_LEVEL)
    return (int(live[0]), int(live[-1]) + 1) if live.size else (0, brightest.size)


def active_box(row_max: np.ndarray, col_max: np.ndarray) -> Box:
    """The box inside the bars, from the brightest value each row and column reached."""
    return (*_span(row_max), *_span(col_max))


def look(bgr: np.ndarray) -> Look:
    """The frame averaged down by ``SCALE`` (area filter: film grain and noise average out), in HSV."""
    small = cv2.resize(bgr, (bgr.shape[1] // SCALE, bgr.shape[0] // SCALE), interpolation=cv2.INTER_AREA)
    h, s, v = (c.astype(np.float32) for c in cv2.split(cv2.cvtColor(small, cv2.COLOR_BGR2HSV)))
    hue_weight = np.minimum(s * v * (1 / (255 * CHROMA_FULL)), 1.0)
    sat_weight = np.minimum(v * (1 / VALUE_FULL), 1.0)
    return Look(h, s, v, hue_weight, sat_weight, v.max(axis=1), v.max(axis=0))


def content_change(a: Look, b: Look, box: Box) -> float:
    """Weighted mean absolute HSV change inside ``box`` (0–255)."""
    rows, cols = slice(box[0], box[1]), slice(box[2], box[3])
    dh = np.abs(a.h[rows, cols] - b.h[rows, cols])
    dh = np.minimum(dh, 180 - dh)
    wh = np.minimum(a.hue_weight[rows, cols], b.hue_weight[rows, cols])
    ws = np.maximum(a.sat_weight[rows, cols], b.sat_weight[rows, cols])
    ds = np.abs(a.s[rows, cols] - b.s[rows, cols])
    dv = np.abs(a.v[rows, cols] - b.v[rows, cols])
    total = float((wh * dh).mean() + (ws * ds).mean() + dv.mean())
    return total / (1.0 + float(wh.mean()) + float(ws.mean()))


def with_boxes(frames: Iterable[tuple[T, np.ndarray]], reach: int = BAR_REACH) -> Iterator[tuple[T, Look, Box]]:
    """(key, look, active box) per frame, the box from the ``reach`` frames either side (a look-ahead
    of ``reach`` frames: memory stays flat)."""
    window: deque[tuple[T, Look]] = deque()
    centre = 0  # index in window of the next frame to emit
    for key, bgr in frames:
        window.append((key, look(bgr)))
        if len(window) - 1 - centre >= reach:
            yield _emit(window, centre)
            if centre >= reach:
                window.popleft()
            else:
                centre += 1
    while centre < len(window):
        yield _emit(window, centre)
        centre += 1


def _emit(window: deque[tuple[T, Look]], centre: int) -> tuple[T, Look, Box]:
    key, current = window[centre]
    rows = np.max([w.row_max for _, w in window], axis=0)
    cols = np.max([w.col_max for _, w in window], axis=0)
    return key, current, active_box(rows, cols)


def coverage(a: Look, b: Look, box: Box, level: float = VISIBLE) -> float:
    """The share of the active picture whose value or (defined) saturation changed by more than
    ``level``: a cut changes most of the picture, a counter's digits or a lighting shift do not."""
    rows, cols = slice(box[0], box[1]), slice(box[2], box[3])
    dv = np.abs(a.v[rows, cols] - b.v[rows, cols])
    ws = np.maximum(a.sat_weight[rows, cols], b.sat_weight[rows, cols])
    ds = ws * np.abs(a.s[rows, cols] - b.s[rows, cols])
    return float((np.maximum(dv, ds) > level).mean())
