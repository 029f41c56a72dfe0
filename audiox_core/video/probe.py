"""What a media file holds, from ffprobe: streams, exact frame rate, duration, rotation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from audiox_core.errors import InputError
from audiox_core.store.files import check_readable_file
from audiox_core.video.ffmpeg import run, stall_timeout_s


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str
    width: int
    height: int
    fps: Fraction
    frames: int | None  # announced by the header, or estimated from duration × fps
    duration_s: float
    start_s: float
    rotation: int
    field_order: str = "progressive"  # ffprobe's: progressive, tt, bb, tb, bt (or unknown)
    has_b_frames: int = 0  # frames of reordering delay: 0 means no B-frames

    @property
    def first_field(self) -> str:
        """The field shown first ("top"/"bottom") when the stream is interlaced, else ""."""
        return {"tt": "top", "bt": "top", "bb": "bottom", "tb": "bottom"}.get(self.field_order, "")


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration_s: float


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    container: str
    duration_s: float
    video: VideoStream
    audio: AudioStream | None
    start_s: float = 0.0  # the container's start (its earliest stream): zero of the timeline

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["video"]["fps"] = f"{self.video.fps.numerator}/{self.video.fps.denominator}"
        return d


VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".mxf", ".m4v", ".mpg", ".mpeg", ".ts"})
OUTPUT_NAMES = frozenset({"soundtrack", "review_proxy"})


def is_footage(name: str) -> bool:
    """Whether a file or object name looks like footage to process: a video extension, and not one
    of our own deliverables (soundtrack.*, review_proxy.mp4) written next to the footage."""
    stem, _, suffix = name.rsplit("/", 1)[-1].rpartition(".")
    return f".{suffix.lower()}" in VIDEO_SUFFIXES and stem not in OUTPUT_NAMES


def _fraction(text: str | None) -> Fraction | None:
    try:
        value = Fraction(text) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return value if value else None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(side["rotation"]) % 360
    return int(stream.get("tags", {}).get("rotate", 0)) % 360


def _video(stream: dict[str, Any], fallback_duration: float, path: Path) -> VideoStream:
    fps = _fraction(stream.get("avg_frame_rate")) or _fraction(stream.get("r_frame_rate"))
    if fps is None:
        raise InputError(f"{path}: video stream has no frame rate")
    if round(fps) < 1:  # SMPTE timecode counts whole frames per second (timecode.py)
        raise InputError(
            f"{path}: frame rate {float(fps):.3g} fps ({fps}) is too low: timecode needs more than 0.5 fps"
        )
    # The header's count when the container has one, else an estimate from duration and rate (no
    # extra pass over the file: the decoding pass counts the real frames).
    duration = float(stream.get("duration", fallback_duration))
    frames = int(stream["nb_frames"]) if stream.get("nb_frames") else round(duration * fps) or None
    return VideoStream(
        index=int(stream["index"]),
        codec=stream.get("codec_name", "unknown"),
        width=int(stream.get("width", 0)),
        height=int(stream.get("height", 0)),
        fps=fps,
        frames=frames,
        duration_s=duration,
        start_s=float(stream.get("start_time", 0.0)),
        rotation=_rotation(stream),
        field_order=stream.get("field_order", "unknown"),
        has_b_frames=int(stream.get("has_b_frames", 0) or 0),
    )


def _audio(stream: dict[str, Any], fallback_duration: float) -> AudioStream:
    return AudioStream(
        index=int(stream["index"]),
        codec=stream.get("codec_name", "unknown"),
        sample_rate=int(stream.get("sample_rate", 0)),
        channels=int(stream.get("channels", 0)),
        duration_s=float(stream.get("duration", fallback_duration)),
    )


def probe(path: Path) -> MediaInfo:
    """MediaInfo for ``path``; InputError naming the file when it is missing, empty or not a video."""
    check_readable_file(path)
    out = run(
        "ffprobe",
        ["-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        subject=path,
        what="cannot be read as media by ffprobe",
        timeout_s=stall_timeout_s(),
    ).stdout
    return described(path, json.loads(out))


def described(path: Path, info: dict[str, Any]) -> MediaInfo:
    """MediaInfo from ffprobe's ``-show_format -show_streams`` JSON (or the same shape built in
    process: video/libav.py); InputError when it holds no usable video."""
    fmt = info.get("format", {})
    duration = float(fmt.get("duration", 0.0) or 0.0)
    streams = info.get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        raise InputError(f"{path}: no video stream")
    video = _video(videos[0], duration, path)
    if video.duration_s <= 0 or (video.frames is not None and video.frames < 1):
        raise InputError(f"{path}: video stream is empty (no frames)")
    return MediaInfo(
        path=path,
        container=fmt.get("format_name", "unknown"),
        duration_s=duration or video.duration_s,
        video=video,
        audio=_audio(audios[0], duration) if audios else None,
        start_s=float(fmt.get("start_time", 0.0) or 0.0),
    )
