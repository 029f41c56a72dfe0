"""Where a browser reaches local outputs: the URL of a file under ``audiox-studio serve`` and the roots it may serve."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, unquote

from audiox_core.environment import env_text
from audiox_core.errors import InputError

DEFAULT_PORT = 8765
SERVE_URL_ENV = "AUDIOX_SERVE_URL"  # where `audiox-studio serve` listens, as browsers reach it
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def serve_url() -> str:
    """The serve address links are made with: ``$AUDIOX_SERVE_URL``, or this machine on the default port."""
    return env_text(SERVE_URL_ENV, f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")


def local_link(path: Path) -> str:
    """The URL of a local output file through ``audiox-studio serve``."""
    return serve_url() + quote(str(path.resolve()))


def request_path(url_path: str) -> Path:
    """The absolute path a request names (query dropped, escapes decoded as UTF-8, as ``local_link``
    makes them); InputError, in words that never repeat the request, for one that names no file."""
    raw = url_path.split("?", 1)[0]
    if not raw.startswith("/"):
        raise InputError("bad path: not an absolute path")
    if _BAD_ESCAPE.search(raw):
        raise InputError("bad path: a malformed %-escape")
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError as e:
        raise InputError("bad path: %-escapes that are not UTF-8") from e
    if "\0" in text:
        raise InputError("bad path: a NUL byte")
    return Path(text)


def served_path(url_path: str, roots: Sequence[Path]) -> Path | None:
    """The file a request path names, when it lies under one of ``roots`` (after resolving links and
    ``..``) and no part of it below the root is hidden; None otherwise (the server answers 404 and
    shows nothing outside the output folders). InputError for a malformed path (400)."""
    path = request_path(url_path)
    try:
        path = path.resolve()
        for root in roots:
            root = root.resolve()
            if path.is_relative_to(root) and not _hidden(path.relative_to(root)) and path.is_file():
                return path
    except (OSError, RuntimeError):  # a name too long, a loop of links (RuntimeError), a folder it may not read
        return None
    return None


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def root_refusal(root: Path, guarded: Sequence[tuple[str, Path]]) -> str | None:
    """Why ``root`` must not be served, or None: it is the file system's root, or it is or holds one of
    ``guarded`` (what each folder is, and the folder: the home folder, the databases' folders)."""
    try:
        root = root.resolve()
    except RuntimeError:
        return "it is a loop of symbolic links"
    if root == root.parent:
        return "it is the file system's root"
    for what, folder in guarded:
        if folder.resolve().is_relative_to(root):
            return f"it is or holds {what} ({folder})"
    return None
