"""The media type (Content-Type) of every file a reel's output folder holds, so a link plays in the browser."""

from __future__ import annotations

from pathlib import PurePath

# One table, not the platform's ``mimetypes``, whose answers differ between machines (.edl, .yaml, .wav).
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".wav": "audio/wav",  # RFC 2361's audio/vnd.wave is what few browsers play; audio/wav is what they do
    ".mp3": "audio/mpeg",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".edl": "text/plain; charset=utf-8",  # CMX 3600 is plain text; shown, not downloaded
    ".yaml": "application/yaml",  # RFC 9512
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".otio": "application/json",  # OpenTimelineIO's native format is JSON (registered by no one)
    ".aaf": "application/octet-stream",  # AAF has no registered type: downloaded, opened by the DAW
}
DEFAULT_TYPE = "application/octet-stream"


def media_type(path: str | PurePath) -> str:
    """The Content-Type to store or serve ``path`` with, by its extension (case-insensitive)."""
    return MEDIA_TYPES.get(PurePath(path).suffix.lower(), DEFAULT_TYPE)
