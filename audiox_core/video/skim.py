"""Scene detection faster than decoding every frame: a skim of the reference frames, exact frames around candidates."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from itertools import groupby

from audiox_core.video.change import look, with_boxes
from audiox_core.video.curves import FrameCurves, measure
from audiox_core.video.decode import DecodeReport
from audiox_core.video.libav import frame_times, reordered_share, thumbnails
from audiox_core.video.probe import MediaInfo

SKIMMABLE = frozenset({"h264", "hevc", "mpeg2video", "mpeg4"})  # decoders that honour skip_frame (with B-frames)
MERGE_S = 2.0  # exact windows closer than this merge into one


# When the skim pays (measured with bench/scenes_bench.py, 2-core CPU): pictures this tall, where
# decoding costs more per frame than scoring a thumbnail; clips this long, where its second pass
# and packet listing are worth starting; and B-frames holding this share of the bytes, which it skips.
SKIM_HEIGHT = 720
SKIM_MIN_FRAMES = 100
SKIM_MIN_REORDERED = 0.25


def skimmable(info: MediaInfo) -> bool:
    """Whether the codec can skip frames: the skim applies."""
    return info.video.codec in SKIMMABLE and info.video.has_b_frames > 0


def why_not(info: MediaInfo) -> str | None:
    """Why the skim is unlikely to beat decoding every frame, from the header and the first packets
    (the codec cannot skip, the picture is short, the clip is short, B-frames hold few of the
    bytes); None when it is likely faster."""
    video = info.video
    if not skimmable(info):
        return f"{video.codec}" + (" without B-frames" if video.codec in SKIMMABLE else "")
    if video.height < SKIM_HEIGHT:
        return f"{video.height} < {SKIM_HEIGHT} rows"
    if (video.frames or 0) < SKIM_MIN_FRAMES:
        return f"{video.frames} < {SKIM_MIN_FRAMES} frames"
    if (share := reordered_share(info.path)) < SKIM_MIN_REORDERED:
        return f"B-frames {share:.0%} of the bytes"
    return None


def pays(info: MediaInfo) -> bool:
    """Whether the skim is likely faster than decoding every frame (``why_not`` finds no reason against)."""
    return why_not(info) is None


def _index(times: Sequence[Fraction], t: Fraction) -> int | None:
    """The frame whose time is nearest ``t``, if within half a frame."""
    k = bisect.bisect_left(times, t)
    best = min((j for j in (k - 1, k) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t), default=None)
    if best is None:
        return None
    step = times[min(best + 1, len(times) - 1)] - times[max(best - 1, 0)]
    return best if abs(times[best] - t) <= step / 2 else None


def skim(
    info: MediaInfo,
    report: DecodeReport,
    *,
    min_threshold: float,
    flash_frames: int,
    pad: int,
    threshold_of: Callable[[Sequence[float]], float],
    fading_of: Callable[[FrameCurves], set[int]],
    ceiling: float,
    progress: Callable[[int], None] | None = None,
) -> FrameCurves | None:
    """Per-frame curves for every frame, decoding in full only around the skim's candidate cuts;
    None when the packets carry no presentation times (take the full pass)."""
    path, field = info.path, info.video.first_field
    if "avi" in info.container.split(","):
        return None  # AVI packets carry no presentation times
    with ThreadPoolExecutor(1) as pool:  # the packet listing runs beside the skim's decoding
        listing = pool.submit(frame_times, path)
        # the flash check over the next flash_frames skimmed frames: they span at least as many frames
        coarse = measure(
            with_boxes(thumbnails(path, report, field=field, cheap=True)),
            min_threshold,
            flash_frames,
            progress,
        )
        times, keyframes = listing.result()
    if not times:
        return None
    if not coarse.times:
        return coarse
    at = [_index(times, t) for t in coarse.times]
    pairs = [(j, a, b) for j, (a, b) in enumerate(zip(at, at[1:]), 1) if a is not None and b is not None and b > a]
    n = len(times)
    change, light = [0.0] * n, [coarse.brightness[0]] * n
    for j, a, b in pairs:
        for k in range(a + 1, b + 1):
            change[k] = coarse.change[j] / (b - a)
            light[k] = coarse.brightness[j - 1] + (coarse.brightness[j] - coarse.brightness[j - 1]) * (k - a) / (b - a)
    for j, k in enumerate(at):
        if k is not None:
            light[k] = coarse.brightness[j]
    last = max((k for k in at if k is not None), default=0)
    light[last + 1 :] = [light[last]] * (n - last - 1)
    curves = FrameCurves(times=list(times), change=change, brightness=light)
    _merge_marks(curves, coarse, at)
    for j, a, b in pairs:  # a gap of one frame: both of its ends were decoded, its change is exact
        if b == a + 1:
            change[b] = coarse.change[j]
    # A gap whose change could hide a cut, with frames the skim did not decode, is decoded in full;
    # inside a fade only a change near the full ceiling can.
    estimate, fading = threshold_of(change), fading_of(curves)
    wanted = [
        (a, b)
        for j, a, b in pairs
        if b > a + 1 and coarse.change[j] >= max(min_threshold, 0.8 * (ceiling if b in fading else estimate))
    ]
    box_times = coarse.times
    windows = _windows(wanted, times, pad)
    spans = [(times[lo], times[hi] + (times[min(hi + 1, n - 1)] - times[hi]) / 2) for lo, hi in windows]
    starts = [lo for lo, _ in spans]
    frames = thumbnails(path, DecodeReport(), field=field, spans=spans, keyframes=keyframes)
    # One forward sweep decodes every window; each is measured on its own frames (its first frame's
    # change stays the skim's).
    for _, inside in groupby(frames, key=lambda tf: bisect.bisect_right(starts, tf[0])):
        exact = measure(
            ((t, look(bgr), coarse.boxes[_nearest(box_times, t)]) for t, bgr in inside), min_threshold, flash_frames
        )
        local = [_index(times, t) for t in exact.times]
        for i, k in enumerate(local):
            if k is None:
                continue
            curves.brightness[k] = exact.brightness[i]
            if i:
                curves.change[k] = exact.change[i]
        _merge_marks(curves, exact, local)
    curves.boxes = [coarse.boxes[_nearest(box_times, t)] for t in times]
    return curves


def _merge_marks(curves: FrameCurves, measured: FrameCurves, at: Sequence[int | None]) -> None:
    """Copy ``measured``'s flash and coverage marks onto ``curves``: its frame j is frame ``at[j]`` there."""
    for mine, theirs in (
        (curves.returns, measured.returns),
        (curves.comebacks, measured.comebacks),
        (curves.coverage, measured.coverage),
    ):
        mine.update({at[j]: v for j, v in theirs.items() if at[j] is not None})


def _nearest(times: Sequence[Fraction], t: Fraction) -> int:
    k = bisect.bisect_left(times, t)
    return min((j for j in (k - 1, k) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t))


def _windows(gaps: Sequence[tuple[int, int]], times: Sequence[Fraction], pad: int) -> list[tuple[int, int]]:
    """Frame ranges [lo, hi] to decode exactly: each gap widened by ``pad``, merged when close."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(gaps):
        lo, hi = max(0, a - pad), min(len(times) - 1, b + pad)
        if out and times[lo] - times[out[-1][1]] < MERGE_S:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
