"""Putting the new soundtrack into the picture: ffmpeg with the video stream copied, never re-encoded."""

from __future__ import annotations

from pathlib import Path

from audiox_core.media.tools import run

# Delivery codec for MP4: AAC-LC 256 kb/s at 48 kHz.
AAC_BITRATE = "256k"


def mux(video: Path, video_stream: int, audio: Path, out: Path) -> None:
    """Write ``out`` (MP4) with ``video``'s stream ``video_stream`` copied bit for bit plus ``audio`` as AAC."""
    run(
        "ffmpeg",
        [
            "-v", "error", "-y", "-i", str(video), "-i", str(audio),
            "-map", f"0:{video_stream}", "-map", "1:a:0",
            "-c:v", "copy", "-c:a", "aac", "-b:a", AAC_BITRATE, "-ar", "48000",
            "-movflags", "+faststart", "-f", "mp4", str(out),
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
