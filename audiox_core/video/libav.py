"""Scene detection's decoding in process with libav (PyAV): probe, packet list, thumbnails with exact times."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import av
import av.logging
import cv2
import numpy as np

from audiox_core.errors import InputError
from audiox_core.store.files import check_readable_file
from audiox_core.video.decode import DAMAGE, THUMB_SIZE, DecodeReport
from audiox_core.video.probe import MediaInfo, described
from audiox_core.video.probe import probe as ffprobe

log = logging.getLogger(__name__)

# Decoders that skip the loop filter when told to (deblocking smooths block edges; a cut survives it).
LOOP_FILTERED = frozenset({"h264", "hevc"})  # not vp8: without its filter, blocks add false changes
FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}  # AVFieldOrder, as ffprobe names them


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as e:
        raise InputError(f"{path}: video decoding failed ({e})") from None


def _video(path: Path, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise InputError(f"{path}: no video stream")
    return streams[0]


def _rate(rate: Fraction | None) -> str:
    return f"{rate.numerator}/{rate.denominator}" if rate else "0/0"


def _printed(seconds: Fraction) -> float:
    """Seconds as ffprobe prints them: six decimals."""
    return float(f"{float(seconds):.6f}")


def probe(path: Path) -> MediaInfo:
    """What ``probe.probe`` says of ``path``, read in this process (no ffprobe): the same fields,
    checks and errors; where libav cannot open the file at all, ffprobe's own reason is raised."""
    check_readable_file(path)
    try:
        container = av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError) as e:
        ffprobe(path)  # raises its reason ("cannot be read as media by ffprobe (…)")
        raise InputError(f"{path}: cannot be read as media ({e})") from None
    with container:
        streams = []
        for s in container.streams:
            entry: dict[str, Any] = {"index": s.index, "codec_type": s.type}
            if s.duration is not None:
                entry["duration"] = _printed(s.duration * s.time_base)
            if s.start_time is not None:
                entry["start_time"] = _printed(s.start_time * s.time_base)
            codec = s.codec_context
            if s.type == "video":
                entry |= {
                    "codec_name": codec.codec.canonical_name,
                    "width": codec.width,
                    "height": codec.height,
                    "avg_frame_rate": _rate(s.average_rate),
                    "r_frame_rate": _rate(s.base_rate),
                    "field_order": FIELD_ORDERS.get(codec.field_order, "unknown"),
                    "has_b_frames": codec.reorder_depth,  # ffprobe's has_b_frames (video_delay)
                    "disposition": {"attached_pic": int(bool(s.disposition & av.stream.Disposition.attached_pic))},
                }
                if s.frames:
                    entry["nb_frames"] = s.frames
            elif s.type == "audio":
                entry |= {
                    "codec_name": codec.codec.canonical_name,
                    "sample_rate": codec.sample_rate,
                    "channels": codec.layout.nb_channels,
                }
            streams.append(entry)
        fmt: dict[str, Any] = {"format_name": container.format.name}
        if container.duration is not None:
            fmt["duration"] = _printed(Fraction(container.duration, 1_000_000))
        if container.start_time is not None:
            fmt["start_time"] = _printed(Fraction(container.start_time, 1_000_000))
        video = next((e for e in streams if e["codec_type"] == "video" and not e["disposition"]["attached_pic"]), None)
        if video is not None:
            video["side_data_list"] = [{"rotation": _rotation(container, video["index"])}]
    return described(path, {"format": fmt, "streams": streams})


def _rotation(container: av.container.InputContainer, index: int) -> int:
    """The display matrix's rotation, which libav hands out on decoded frames (0 where none decodes)."""
    stream = container.streams[index]
    try:
        for frame in container.decode(stream):
            return int(frame.rotation)
    except av.FFmpegError:
        pass
    return 0


def _offset(container: av.container.InputContainer, base: Fraction) -> int:
    """The container's start in the stream's ticks, which the CLI subtracts from every timestamp."""
    start = container.start_time
    return round(Fraction(start, 1_000_000) / base) if start is not None else 0


def frame_times(path: Path) -> tuple[list[Fraction], list[Fraction]]:
    """Every frame's presentation time on the container's timeline, sorted, and the keyframes' times,
    from the packets alone (no decoding); both empty when a packet has no presentation time (AVI)."""
    with _open(path) as container:
        stream = _video(path, container)
        base = stream.time_base
        ticks, keys = [], []
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None:
                return [], []
            ticks.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
        offset = _offset(container, base)
        return [(t - offset) * base for t in sorted(ticks)], [(t - offset) * base for t in sorted(keys)]


def reordered_share(path: Path, packets: int = 300) -> float:
    """The share of the bytes of the first ``packets`` video packets that are B-frames (shown before
    a frame decoded earlier): what a skim of the reference frames leaves undecoded, as the packet
    list alone tells it (packets are demuxed, nothing is decoded)."""
    with _open(path) as container:
        stream = _video(path, container)
        latest, reordered, total = None, 0, 0
        for packet in islice(container.demux(stream), packets):
            if packet.size == 0 or packet.pts is None:
                continue
            total += packet.size
            if latest is not None and packet.pts < latest:
                reordered += packet.size
            else:
                latest = packet.pts
        return reordered / total if total else 0.0


def _scaler(stream: av.video.stream.VideoStream, field: str) -> Callable[[av.VideoFrame], av.VideoFrame]:
    """The thumbnail filters of the CLI pass (decode.py): one field of interlaced pictures, scaled to
    THUMB_SIZE as planar YCbCr in the source's range (``_bgr`` expands it). Progressive pictures go
    straight through swscale, the same scaling as the filter's, without the filter graph's cost."""
    w, h = THUMB_SIZE
    if not field:
        return lambda frame: frame.reformat(w, h, "yuv444p", interpolation="FAST_BILINEAR")
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream), graph.add("field", field)]
    nodes.append(graph.add("scale", f"{w}:{h}:flags=fast_bilinear"))
    nodes.append(graph.add("format", "yuv444p"))
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()

    def scaled(frame: av.VideoFrame) -> av.VideoFrame:
        graph.push(frame)
        return graph.pull()

    return scaled


# Limited-range (16–235 luma, 16–240 chroma) to full, rounded exactly: black stays (0, 128, 128), so
# near-black frames get no false colour (swscale's own range conversion moves chroma 128 to 127 in part).
_LUMA = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)
_CHROMA = np.clip(np.round((np.arange(256) - 128) * 127 / 112 + 128), 0, 255).astype(np.uint8)
FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def _bgr(frame: av.VideoFrame) -> np.ndarray:
    """The thumbnail as BGR, by OpenCV's exact YCrCb conversion (as decode.py does), from full range."""
    y, cb, cr = (np.asarray(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
    if frame.color_range != FULL_RANGE:
        y, cb, cr = cv2.LUT(y, _LUMA), cv2.LUT(cb, _CHROMA), cv2.LUT(cr, _CHROMA)
    return cv2.cvtColor(cv2.merge((y, cr, cb)), cv2.COLOR_YCrCb2BGR)


Span = tuple[Fraction, Fraction]  # [start, end) in seconds on the container's timeline


def thumbnails(
    path: Path,
    report: DecodeReport,
    *,
    field: str = "",
    cheap: bool = False,
    spans: Sequence[Span] | None = None,
    keyframes: Sequence[Fraction] = (),
    loop_filter: bool = False,
) -> Iterator[tuple[Fraction, np.ndarray]]:
    """What ``decode.decode_thumbnails`` yields without model frames, decoded in this process: (seconds on the
    container's timeline, BGR thumbnail) per frame. The loop filter is skipped unless ``loop_filter``;
    ``cheap``: only reference frames. ``spans`` (sorted, apart): only the frames shown in them, in one
    forward sweep; ``keyframes`` (their times, from the packets) say where a seek skips ahead."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # the decoder's damage reports (libav logging is off otherwise)
    try:
        with _open(path) as container, av.logging.Capture(local=False) as messages:
            stream = _video(path, container)
            stream.thread_type = "AUTO"  # frame and slice threads on every core: decoding runs ahead of the scoring
            codec = stream.codec_context
            options = {"flags": "-output_corrupt"}  # damaged frames are dropped, not passed on half-drawn
            if cheap or (not loop_filter and codec.name in LOOP_FILTERED):
                options["skip_loop_filter"] = "all"
            codec.options = options
            if cheap:
                codec.skip_frame = "NONREF"
            base = stream.time_base
            offset = _offset(container, base)
            scale = _scaler(stream, field)
            if spans is None:
                frames = _timed(container.decode(stream), base, offset)
            else:
                frames = _swept(container, stream, base, offset, spans, keyframes)
            try:
                for t, frame in frames:
                    report.frames += 1
                    if report.first_pts is None:
                        report.first_pts = t
                    yield t, _bgr(scale(frame))
            except av.FFmpegError as e:
                raise InputError(f"{path}: video decoding failed ({e})") from None
            finally:
                for _, _, text in messages:
                    if DAMAGE.search(text):
                        report.damaged += 1
                    report.messages.append(text)
    finally:
        av.logging.set_level(level)
    if report.damaged:
        log.warning(
            "%s: %d damaged frame report(s) from the decoder; damaged frames were skipped", path.name, report.damaged
        )


def _timed(frames: Iterable[av.VideoFrame], base: Fraction, offset: int) -> Iterator[tuple[Fraction, av.VideoFrame]]:
    for frame in frames:
        ticks = frame.pts if frame.pts is not None else frame.best_effort_timestamp
        if ticks is not None:
            yield (ticks - offset) * base, frame


def _swept(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    base: Fraction,
    offset: int,
    spans: Sequence[Span],
    keyframes: Sequence[Fraction],
) -> Iterator[tuple[Fraction, av.VideoFrame]]:
    """The frames inside ``spans``, decoding forward from one span to the next: between spans only the
    reference frames, which later frames need (a skipped frame is one nothing refers to), and a seek
    where a keyframe lies between the frames decoded so far and the next span (or no keyframes are known)."""
    codec = stream.codec_context
    reached: Fraction | None = None  # the latest packet time fed to the decoder
    for lo, hi in spans:
        before = bisect.bisect_right(keyframes, lo)  # keyframes[before - 1]: the last one at or before lo
        if reached is None or reached >= lo or not keyframes or (before and keyframes[before - 1] > reached):
            container.seek(round(lo / base) + offset, stream=stream, backward=True)
        done = False
        for packet in container.demux(stream):
            t = None if packet.pts is None else (packet.pts - offset) * base
            if t is not None:
                reached = t if reached is None else max(reached, t)
            codec.skip_frame = "DEFAULT" if t is None or lo <= t < hi else "NONREF"
            for ft, frame in _timed(codec.decode(packet), base, offset):
                if ft >= hi:
                    done = True
                elif ft >= lo:
                    yield ft, frame
            if done:
                break
        else:
            return  # the end of the file
