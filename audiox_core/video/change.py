"""How much the picture changed between two frames, on the active picture only (PySceneDetect's 0–255 HSV scale)."""

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
LIGHT_STEP = 2.0  # a change of the mean value below this is no change of light: nothing to discount
DARK = 24.0  # a value below which a pixel shows too little to tell relighting from new content
GAIN = (0.5, 3.0)  # the contrast gains a change of light may have (a strobe: 2.6 here; a cut: near 0)
SLOPE_BASE = 8.0  # a pixel this far (or more) from the median value gives a slope for the gain


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
    """Weighted mean absolute HSV change inside ``box`` (0–255): hue counts as far as both pixels have chroma,
    saturation as far as one is bright, divided by the weight present, so a saturated picture scores as the
    plain HSV mean and a monochrome one as its value change ((0,0,0) → (0,1,0) in a shadow counts next to none)."""
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
    ``level``, not counting what a change of light explains (``relit``): a cut changes most of the
    picture, a counter's digits, a lighting shift, flames, a strobe or a sign's glow do not."""
    rows, cols = slice(box[0], box[1]), slice(box[2], box[3])
    dv = np.abs(a.v[rows, cols] - b.v[rows, cols])
    ws = np.maximum(a.sat_weight[rows, cols], b.sat_weight[rows, cols])
    ds = ws * np.abs(a.s[rows, cols] - b.s[rows, cols])
    changed = np.maximum(dv, ds) > level
    lit_a, lit_b = brightness(a, box), brightness(b, box)
    if abs(lit_a - lit_b) >= LIGHT_STEP:
        changed &= ~(relit(a, b, box, level) if lit_a <= lit_b else relit(b, a, box, level))
    return float(changed.mean())


def relit(dark: Look, bright: Look, box: Box, level: float = VISIBLE) -> np.ndarray:
    """The pixels whose change from the darker frame to the brighter a change of light explains: the
    value within ``level`` of the darker's under the gain and offset most pixels agree on (``light``),
    the hue kept, and the darker frame not black there (nothing to relight: new content coming out
    of black counts). No pixel where no such gain exists: two different pictures."""
    rows, cols = slice(box[0], box[1]), slice(box[2], box[3])
    low, high = dark.v[rows, cols], bright.v[rows, cols]
    fit = light(low, high)
    if fit is None:
        return np.zeros(low.shape, dtype=bool)
    gain, low_median, high_median = fit
    dh = np.abs(dark.h[rows, cols] - bright.h[rows, cols])
    hue_change = np.minimum(dark.hue_weight[rows, cols], bright.hue_weight[rows, cols]) * np.minimum(dh, 180 - dh)
    lit = gain * (low - low_median) + high_median
    return (np.abs(high - lit) <= level) & (hue_change <= level) & (low >= DARK)


def light(low: np.ndarray, high: np.ndarray) -> tuple[float, float, float] | None:
    """(gain, median before, median after) of the change of light from ``low`` to ``high``: the median
    of each pixel's slope about the medians, on every other row and column (a local change such as a
    sign is an outlier that does not move it); None when that gain is outside ``GAIN`` (two different
    pictures give a slope near 0); gain 1 when under a tenth of the pixels stand off the median to
    measure one (a flat picture)."""
    low, high = low[::2, ::2].ravel(), high[::2, ::2].ravel()
    low_median, high_median = _median(low), _median(high)
    off = low - low_median
    measured = np.abs(off) >= SLOPE_BASE
    if measured.mean() < 0.1:
        return 1.0, low_median, high_median
    gain = _median((high[measured] - high_median) / off[measured])
    return (gain, low_median, high_median) if GAIN[0] <= gain <= GAIN[1] else None


def _median(values: np.ndarray) -> float:
    """The upper median, by a partition (np.median costs several times as much on these sizes)."""
    return float(np.partition(values, values.size // 2)[values.size // 2])
