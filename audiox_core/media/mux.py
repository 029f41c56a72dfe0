"""Putting the new soundtrack into the picture: ffmpeg with the video stream copied, never re-encoded.

The delivery container is MP4 when it can carry the source's video codec, else Matroska (VP8 or
Theora, for instance, have no MP4 mapping), so the picture is never touched.
"""

from __future__ import annotations

from pathlib import Path

from audiox_core.media.tools import run

# Delivery codec: AAC-LC 256 kb/s at 48 kHz.
AAC_BITRATE = "256k"
# Video codecs ffmpeg's MP4 muxer accepts for stream copy.
MP4_VIDEO_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"})


def soundtrack_name(video_codec: str) -> str:
    """``soundtrack.mp4``, or ``soundtrack.mkv`` for codecs MP4 cannot hold."""
    return "soundtrack.mp4" if video_codec in MP4_VIDEO_CODECS else "soundtrack.mkv"


def mux(video: Path, video_stream: int, audio: Path, out: Path) -> None:
    """Write ``out`` (.mp4 or .mkv) with ``video``'s stream ``video_stream`` copied bit for bit plus ``audio`` as AAC."""
    container = ["-f", "mp4", "-movflags", "+faststart"] if out.suffix == ".mp4" else ["-f", "matroska"]
    run(
        "ffmpeg",
        [
            "-v", "error", "-y", "-i", str(video), "-i", str(audio),
            "-map", f"0:{video_stream}", "-map", "1:a:0",
            "-c:v", "copy", "-c:a", "aac", "-b:a", AAC_BITRATE, "-ar", "48000",
            *container, str(out),
        ],
        subject=video,
        what="muxing the soundtrack into the picture failed",
    )


def packet_md5s(path: Path, stream: str = "v:0") -> list[str]:
    """MD5 of every packet of one stream (ffmpeg framemd5 on a stream copy): equal lists = identical packets."""
    out = run(
        "ffmpeg", ["-v", "error", "-i", str(path), "-map", f"0:{stream}", "-c", "copy", "-f", "framemd5", "-"],
        subject=path, what="hashing its packets failed",
    ).stdout
    return [line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if line and not line.startswith("#")]
