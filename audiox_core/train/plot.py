"""The loss curve as a PNG, drawn with OpenCV (already a dependency; no plotting library needed):
one panel per stage, log-scaled loss, the raw values in grey and a running mean over 1 % of the run."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

WIDTH, PANEL, MARGIN = 900, 300, 60


def _panel(stage: str, losses: list[float]) -> np.ndarray:
    image = np.full((PANEL, WIDTH, 3), 255, np.uint8)
    cv2.putText(
        image,
        f"{stage}: loss (log scale) over {len(losses)} steps",
        (MARGIN, 24),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.55,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    x0, x1, y0, y1 = MARGIN, WIDTH - 20, 40, PANEL - 40
    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 0), 1)
    values = np.log10(np.clip(np.asarray(losses, np.float64), 1e-8, None))
    if values.size == 0:
        return image
    lo, hi = float(values.min()), float(values.max())
    hi = hi if hi > lo else lo + 1
    window = max(1, len(values) // 100)
    smooth = np.convolve(values, np.ones(window) / window, mode="valid")

    def points(v: np.ndarray, offset: int) -> np.ndarray:
        xs = x0 + (np.arange(len(v)) + offset) / max(1, len(values) - 1) * (x1 - x0)
        ys = y1 - (v - lo) / (hi - lo) * (y1 - y0)
        return np.stack((xs, ys), axis=1).astype(np.int32)

    cv2.polylines(image, [points(values, 0)], False, (190, 190, 190), 1, cv2.LINE_AA)
    cv2.polylines(image, [points(smooth, window - 1)], False, (200, 60, 0), 2, cv2.LINE_AA)
    for v in (lo, (lo + hi) / 2, hi):
        y = int(y1 - (v - lo) / (hi - lo) * (y1 - y0))
        cv2.putText(image, f"{10**v:.3g}", (4, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(5):
        step = round(k / 4 * (len(values) - 1))
        x = int(x0 + k / 4 * (x1 - x0))
        cv2.putText(image, str(step + 1), (x - 10, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "step", (WIDTH // 2 - 15, PANEL - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def draw_losses(curves: dict[str, list[float]], path: Path) -> None:
    """Write ``path``: one panel per stage, in order."""
    panels = [_panel(stage, losses) for stage, losses in curves.items()] or [_panel("no stage ran", [])]
    image = np.concatenate(panels, axis=0)
    ok, png = cv2.imencode(".png", image)
    assert ok and not math.isnan(float(image.mean()))
    path.write_bytes(png.tobytes())
