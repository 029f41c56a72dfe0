"""Where a browser reaches local outputs: ``audiox-studio serve`` answers HTTP for the output folders,
so the Prefect UI's links and the review page play and seek (a browser page cannot open ``file://``
links, and a player needs range requests to seek). A file's URL is the serve address followed by its
absolute path; only files under the output roots the server was given are served.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, unquote

DEFAULT_PORT = 8765
SERVE_URL_ENV = "AUDIOX_SERVE_URL"  # where `audiox-studio serve` listens, as browsers reach it


def serve_url() -> str:
    """The serve address links are made with: ``$AUDIOX_SERVE_URL``, or this machine on the default port."""
    return os.environ.get(SERVE_URL_ENV, f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")


def local_link(path: Path) -> str:
    """The URL of a local output file through ``audiox-studio serve``."""
    return serve_url() + quote(str(path.resolve()))


def served_path(url_path: str, roots: Sequence[Path]) -> Path | None:
    """The file a request path names, when it lies under one of ``roots`` (after resolving links and
    ``..``); None otherwise (the server answers 404 and shows nothing outside the output folders)."""
    path = Path(unquote(url_path.split("?", 1)[0])).resolve()
    for root in roots:
        if path.is_relative_to(root.resolve()) and path.is_file():
            return path
    return None
