"""Putting the new soundtrack into the picture with ffmpeg: the video stream copied, never re-encoded."""

from __future__ import annotations

from pathlib import Path

from audiox_core.video.ffmpeg import run

# Delivery codec: AAC-LC 256 kb/s at 48 kHz; the "fast" coder is transparent at that rate and
# twice as quick as the default two-loop search.
AAC_BITRATE = "256k"
# Video codecs ffmpeg's MP4 muxer accepts for stream copy.
MP4_VIDEO_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"})


def soundtrack_name(video_codec: str, source: Path) -> str:
    """The delivery file's name for a source with this video codec: ``.mov`` (24-bit PCM, what editing rooms
    expect) for QuickTime, ``.mp4`` (AAC) where MP4 carries the codec, else ``.mkv`` (VP8, Theora)."""
    if source.suffix.lower() == ".mov":
        return "soundtrack.mov"
    return "soundtrack.mp4" if video_codec in MP4_VIDEO_CODECS else "soundtrack.mkv"


_CONTAINERS = {
    ".mov": ["-c:a", "pcm_s24le", "-f", "mov"],
    ".mp4": ["-c:a", "aac", "-aac_coder", "fast", "-b:a", AAC_BITRATE, "-f", "mp4", "-movflags", "+faststart"],
    ".mkv": ["-c:a", "aac", "-aac_coder", "fast", "-b:a", AAC_BITRATE, "-f", "matroska"],
}


def mux(video: Path, video_stream: int, audio: Path, out: Path) -> None:
    """Write ``out`` (.mov, .mp4 or .mkv) with ``video``'s stream ``video_stream`` copied bit for bit plus ``audio``."""
    inputs = ["-i", str(video), "-i", str(audio), "-map", f"0:{video_stream}", "-map", "1:a:0"]
    output = ["-c:v", "copy", "-ar", "48000", *_CONTAINERS[out.suffix], str(out)]
    run(
        "ffmpeg",
        ["-v", "error", "-y", *inputs, *output],
        subject=video,
        what="muxing the soundtrack into the picture failed",
    )
