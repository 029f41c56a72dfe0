"""``audiox-studio serve``: the local output folders over HTTP, so the review page and the Prefect UI's
links play, show and seek in a browser.

GET and HEAD with byte ranges (``Range: bytes=a-b``, ``a-``, ``-n``: 206 with ``Content-Range``; an
unsatisfiable range is 416), each file with its media type (``audiox_core/media/types.py``). Only files
under the output roots are served: every local root a run recorded in the provenance database, and
any ``--root`` given. Listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from audiox_core.media.types import media_type
from audiox_core.serving import DEFAULT_PORT, served_path

log = logging.getLogger(__name__)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
CHUNK = 1 << 20


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The [first, last] bytes a Range header asks for; None for the whole file; False when it cannot
    be satisfied (or names several ranges, which a player never asks for)."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return False
    if not m.group(1):  # the last n bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else False
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (first, last) if first <= last and first < size else False


def make_handler(roots: Sequence[Path]) -> type[BaseHTTPRequestHandler]:
    class OutputsHandler(BaseHTTPRequestHandler):
        server_version = "audiox-studio-serve"

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            path = served_path(self.path, roots)
            if path is None:
                self.send_error(HTTPStatus.NOT_FOUND, "not an output file")
                return
            size = path.stat().st_size
            wanted = byte_range(self.headers.get("Range"), size)
            if wanted is False:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first, last = wanted if wanted else (0, size - 1)
            self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK)
            self.send_header("Content-Type", media_type(path))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(max(0, last - first + 1)))
            if wanted:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if body and size:
                with path.open("rb") as f:
                    f.seek(first)
                    _copy(f, self.wfile, last - first + 1)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return OutputsHandler


def _copy(source, target, n: int) -> None:
    try:
        while n > 0:
            chunk = source.read(min(CHUNK, n))
            if not chunk:
                return
            target.write(chunk)
            n -= len(chunk)
    except (BrokenPipeError, ConnectionResetError):  # the player moved on (a seek): not an error
        return


def make_server(roots: Sequence[Path], host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler([r.resolve() for r in roots]))
    server.daemon_threads = True
    return server


def local_roots(db_url: str, extra: Sequence[str]) -> list[Path]:
    """The local output roots runs recorded, and ``extra``; S3 roots are served by S3 itself."""
    from db import repository

    recorded = [u for u in repository.out_uris(db_url) if not u.startswith("s3://")]
    return [Path(u) for u in dict.fromkeys([*recorded, *extra])]


def cmd_serve(args: argparse.Namespace) -> int:
    from audiox_core.errors import InputError
    from audiox_core.workspace import studio_home
    from db.session import database_url

    roots = local_roots(database_url(studio_home()), args.root or [])
    try:
        server = make_server(roots, args.host, args.port)
    except OSError as e:
        raise InputError(f"{args.host}:{args.port}: cannot listen there: {e.strerror or e}") from e
    shown = ", ".join(str(r) for r in roots) or "none yet (give --root)"
    print(f"Serving the output folders ({shown}) on http://{args.host}:{server.server_port}/  (Ctrl-C stops)")
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
