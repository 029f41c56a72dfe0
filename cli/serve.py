"""``audiox-studio serve``: the local output folders over HTTP, so the review page and the Prefect UI's
links play, show and seek in a browser.

GET and HEAD with byte ranges (``Range: bytes=a-b``, ``a-``, ``-n``: 206 with ``Content-Range``; an
unsatisfiable range is 416), each file with its media type (``audiox_core/store/media_types.py``); a path
that names no file (a NUL byte, a broken escape, not absolute) is 400. Only files under the roots are
served: each local reel folder a run published into (its outputs rows; the ``--out`` a run was given
is not served, nor a failed run's), read again as runs publish, and any ``--root``; ``/`` lists
the reels with links to their review pages; no root may be or hold the file system's
root, the home folder, the studio's data folder, Prefect's home or a SQLite database's folder
(``audiox_core/store/serving.py``). Listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import quote

from sqlalchemy.exc import SQLAlchemyError

from audiox_core.errors import InputError
from audiox_core.reel.naming import version_label
from audiox_core.store.local_versions import SUFFIX as VERSIONS_SUFFIX
from audiox_core.store.local_versions import current_version, versions
from audiox_core.store.media_types import media_type
from audiox_core.store.serving import DEFAULT_PORT, root_refusal, served_path

log = logging.getLogger(__name__)
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)$")
_SQLITE = re.compile(r"sqlite(?:\+\w+)?:///([^?]+)")
# Where Prefect's database is when its URL is set (Prefect 3's name, then 2's); else under PREFECT_HOME.
PREFECT_DB_ENV = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
CHUNK = 1 << 20


def _position(digits: str, size: int) -> int:
    """A Range position, at most ``size``: one with more digits than ``size`` is past the end (and
    ``int()`` refuses strings of over 4300 digits)."""
    digits = digits.lstrip("0") or "0"
    return size if len(digits) > len(str(size)) else min(int(digits), size)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The [first, last] bytes a Range header asks for; None for the whole file; False when it cannot
    be satisfied (or names several ranges, which a player never asks for). A last byte past the end
    means the end, a suffix longer than the file the whole file (RFC 9110, 14.1.2)."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return False
    if not m.group(1):  # the last n bytes
        n = _position(m.group(2), size)
        return (size - n, size - 1) if n > 0 and size > 0 else False
    first = _position(m.group(1), size)
    last = min(_position(m.group(2), size), size - 1) if m.group(2) else size - 1
    return (first, last) if first <= last and first < size else False


Roots = Callable[[], Sequence[Path]]


class LiveRoots:
    """The folders to serve as runs publish them: ``local_roots`` read again at most every
    ``refresh_s`` when a request comes, so a reel a run publishes into a new ``--out`` is served
    without a restart (the last good answer kept while the database cannot be read)."""

    def __init__(self, db_url: str, extra: Sequence[str], refresh_s: float = 2.0) -> None:
        self.db_url, self.extra, self.refresh_s = db_url, list(extra), refresh_s
        self.roots = local_roots(db_url, extra)  # a refused --root is the command's one line, at start
        self.read_at = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self) -> Sequence[Path]:
        with self.lock:
            if time.monotonic() - self.read_at >= self.refresh_s:
                try:
                    self.roots = local_roots(self.db_url, self.extra)
                except (InputError, SQLAlchemyError, OSError) as e:
                    log.warning("the served folders were not read again (%s): serving the ones known", e)
                self.read_at = time.monotonic()
            return self.roots


def index_page(roots: Sequence[Path]) -> bytes:
    """The root's page: each served reel with its versions, newest first, each linked to its review
    page (when it has one), the current one marked; nothing of any folder but the roots."""
    rows = []
    for root in sorted(roots, key=lambda r: r.name):
        if root.name.endswith(VERSIONS_SUFFIX):
            reel = root.with_name(root.name.removesuffix(VERSIONS_SUFFIX))
            current = current_version(reel)
            rows += [_index_row(reel.name, root / v, version_label(v), v == current) for v in reversed(versions(reel))]
        else:
            rows.append(_index_row(root.name, root, "", False))
    body = "".join(rows) or "<tr><td colspan=4>no reel published yet</td></tr>"
    return (
        "<!doctype html><meta charset=utf-8><title>AudioX Studio: reels</title>"
        "<style>body{font:14px system-ui;background:#111;color:#ddd;margin:2em}a{color:#8cf}"
        "td,th{padding:4px 12px;text-align:left;border-bottom:1px solid #333}</style>"
        "<h1>Reels</h1><table><tr><th>reel</th><th>version (its review page)</th><th>folder</th><th>updated</th></tr>"
        f"{body}</table>"
    ).encode()


def _index_row(reel: str, folder: Path, label: str, current: bool) -> str:
    review = folder / "review.html"
    when = datetime.fromtimestamp(folder.stat().st_mtime).strftime("%Y-%m-%d %H:%M") if folder.is_dir() else "gone"
    text = escape(label or folder.name) + (" (current)" if current else "")
    link = f'<a href="{escape(quote(str(review)))}">{text}</a>' if review.is_file() else text
    return f"<tr><td>{escape(reel)}</td><td>{link}</td><td>{escape(str(folder.parent))}</td><td>{when}</td></tr>"


def make_handler(roots: Roots) -> type[BaseHTTPRequestHandler]:
    class OutputsHandler(BaseHTTPRequestHandler):
        server_version = "audiox-studio-serve"

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            if self.path.split("?", 1)[0] == "/":
                page = index_page(roots())
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", media_type("index.html"))
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                if body:
                    self.wfile.write(page)
                return
            try:
                path = served_path(self.path, roots())
            except InputError as e:
                self.send_error(HTTPStatus.BAD_REQUEST, str(e))
                return
            try:
                f = path.open("rb") if path else None
            except OSError:  # removed or made unreadable since it was found
                f = None
            if path is None or f is None:
                self.send_error(HTTPStatus.NOT_FOUND, "not an output file")
                return
            try:
                with f:
                    self._send(f, os.fstat(f.fileno()).st_size, media_type(path), body)
            except (BrokenPipeError, ConnectionResetError):  # the player moved on (a seek): not an error
                return

        def _send(self, f: BinaryIO, size: int, kind: str, body: bool) -> None:
            wanted = byte_range(self.headers.get("Range"), size)
            if wanted is False:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first, last = wanted if wanted else (0, size - 1)
            self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK)
            self.send_header("Content-Type", kind)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(max(0, last - first + 1)))
            if wanted:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if body and size:
                f.seek(first)
                _copy(f, self.wfile, last - first + 1)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return OutputsHandler


def _copy(source: BinaryIO, target: BinaryIO, n: int) -> None:
    while n > 0:
        chunk = source.read(min(CHUNK, n))
        if not chunk:
            return
        target.write(chunk)
        n -= len(chunk)


def make_server(
    roots: Sequence[Path] | Roots, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> ThreadingHTTPServer:
    """The server for fixed ``roots``, or for the roots a callable gives at each request (``LiveRoots``)."""
    if not callable(roots):
        fixed = [r.resolve() for r in roots]
        roots = lambda: fixed  # noqa: E731
    server = ThreadingHTTPServer((host, port), make_handler(roots))
    server.daemon_threads = True
    return server


def prefect_home() -> Path:
    """Prefect's data folder (its database, and profiles that can hold an API key): $PREFECT_HOME,
    default ~/.prefect, as Prefect's settings define it."""
    return Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()


def guarded_folders(db_url: str) -> list[tuple[str, Path]]:
    """What no served root may be or hold, each with what it is: the home folder, the studio's data
    folder, Prefect's home, and the folder of the studio's and Prefect's SQLite databases."""
    from audiox_core.workspace import studio_home

    guarded = [
        ("the home folder", Path.home()),
        ("the studio's data folder", studio_home()),
        ("Prefect's home", prefect_home()),
    ]
    for url in (db_url, *(os.environ.get(name, "") for name in PREFECT_DB_ENV)):
        if m := _SQLITE.match(url):
            guarded.append(("the folder of a database", Path(m.group(1)).expanduser().parent))
    return guarded


def _reel_folders(outputs: Iterable[tuple[str, str]]) -> Iterator[Path]:
    """The local folder of each recorded (uri, kind) output: its path less the kind's parts
    (``stems/music`` → two); S3 outputs are served by S3 itself."""
    from audiox_core.store.local import given_path

    for uri, kind in outputs:
        if uri.startswith("s3://"):
            continue
        try:
            path, depth = given_path(uri), len(PurePosixPath(kind).parts)
        except InputError as e:  # a scheme this machine cannot serve
            log.warning("%s (a recorded output), not served", e)
            continue
        if not path.is_absolute() or not 0 < depth < len(path.parts):
            log.warning("%s: a recorded output whose folder cannot be told (kind %r), not served", uri, kind)
            continue
        folder = path.parents[depth - 1]
        yield folder.parent if folder.parent.name.endswith(VERSIONS_SUFFIX) else folder  # all the reel's versions


def local_roots(db_url: str, extra: Sequence[str]) -> list[Path]:
    """The folders to serve: each ``--root`` in ``extra`` (InputError naming it for one that must not be
    served), then each local reel folder a run published into (one that must not be served is skipped
    with a warning)."""
    from db import repository

    guarded = guarded_folders(db_url)
    roots = []
    for given in extra:
        if reason := root_refusal(Path(given).expanduser(), guarded):
            raise InputError(f"--root {given}: not served: {reason}")
        roots.append(Path(given).expanduser().resolve())
    for folder in dict.fromkeys(_reel_folders(repository.published_outputs(db_url))):
        if reason := root_refusal(folder, guarded):
            log.warning("%s: recorded as a reel's output folder, not served: %s", folder, reason)
        else:
            roots.append(folder.resolve())
    return list(dict.fromkeys(roots))


def cmd_serve(args: argparse.Namespace) -> int:
    from audiox_core.workspace import studio_home
    from db.session import database_url

    roots = LiveRoots(database_url(studio_home()), args.root or [])
    try:
        server = make_server(roots, args.host, args.port)
    except OSError as e:
        raise InputError(f"{args.host}:{args.port}: cannot listen there: {e.strerror or e}") from e
    shown = ", ".join(str(r) for r in roots()) or "none yet"
    print(
        f"Serving the output folders ({shown}, and every reel a run publishes from now on) on "
        f"http://{args.host}:{server.server_port}/  (its page lists the reels; Ctrl-C stops)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the local output folders over HTTP (review pages, links that play)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--root", action="append", metavar="DIR", help="also serve this output folder (repeatable)")
    p.set_defaults(func=cmd_serve)
