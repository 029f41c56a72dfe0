"""`audiox-studio serve`: which folders it serves (the reel folders runs published, and `--root`s that
hold neither the home folder nor a database) and how it answers odd requests, over real HTTP on
loopback against a real SQLite studio database."""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest
from harness import scaled_timeout

from audiox_core.errors import InputError
from cli.serve import byte_range, local_roots, make_server
from db import repository
from db.session import database_url

Get = Callable[..., tuple[int, bytes]]
REEL = "reel1-0123456789"  # a reel folder's name: stem, '-', 10 hex of the source's hash


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of our own (HOME), with a credentials file, and Prefect's home at its default."""
    folder = tmp_path / "user"
    (folder / ".aws").mkdir(parents=True)
    (folder / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = secret\n")
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    return folder


@pytest.fixture
def studio_db(home: Path, user: Path) -> str:
    """The studio database under the test's AUDIOX_HOME, as `serve` finds it."""
    return database_url(home)


@pytest.fixture
def serve() -> Iterator[Callable[[Sequence[Path]], Get]]:
    """Start `serve`'s server on a free loopback port for some roots; a GET (raw path, headers) gives
    (status, body). Every server started is stopped, whatever the test did."""
    servers = []

    def start(roots: Sequence[Path]) -> Get:
        server = make_server(roots, port=0)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        def get(path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=scaled_timeout(10))
            try:
                conn.request(method, path, headers=headers or {})
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()

        return get

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _published_run(
    db_url: str, out: Path, files: dict[str, bytes], version: str = "20261207T100000000000Z-run1"
) -> Path:
    """A succeeded run that published ``files`` as ``version`` of ``out/REEL`` (as a run publishes:
    its own folder behind the reel's link), recorded as outputs."""
    from audiox_core.store.local import LocalStore

    store = LocalStore()
    folder_uri = store.child(str(out), REEL)
    version_folder = store.assembly_folder(folder_uri, version, out)
    outputs = []
    for name, data in files.items():
        (version_folder / name).parent.mkdir(parents=True, exist_ok=True)
        (version_folder / name).write_bytes(data)
        uri = (version_folder / name).resolve().as_uri()
        outputs.append({"kind": str(Path(name).with_suffix("")), "uri": uri, "sha256": "0" * 64, "bytes": len(data)})
    store.publish(version_folder, folder_uri, version)
    folder = out / REEL
    run = repository.start_run(
        db_url, source_uri="/footage/reel1.mp4", out_uri=str(out), settings={}, code_version="t", flow_run_id=None
    )
    repository.record_outputs(db_url, run, outputs)
    repository.finish_run(db_url, run)
    return folder


def _failed_run(db_url: str, out_uri: str) -> None:
    """A run that failed at its first check (`run missing.mp4 --out <out_uri>`): nothing published."""
    run = repository.start_run(
        db_url, source_uri="missing.mp4", out_uri=out_uri, settings={}, code_version="t", flow_run_id=None
    )
    repository.finish_run(db_url, run, error="missing.mp4: no such file")


def test_failed_runs_to_the_root_or_home_open_nothing(
    studio_db: str, home: Path, user: Path, tmp_path: Path, serve: Callable[[Sequence[Path]], Get]
) -> None:
    """Expected: after failed runs recorded with ``--out /`` and ``--out ~`` (and a run that published
    into ``out``), only the published reel folder is served: /etc/passwd, the studio database, the
    credentials in the home folder and a file beside the reel folder are 404; the reel's files 200."""
    folder = _published_run(studio_db, tmp_path / "out", {"mix.wav": b"RIFF mix", "stems/music.wav": b"RIFF music"})
    (tmp_path / "out" / "notes.txt").write_text("beside the reel folder, not published")
    _failed_run(studio_db, "/")
    _failed_run(studio_db, str(user))
    get = serve(local_roots(studio_db, []))
    for path in ("/etc/passwd", home / "studio.db", user / ".aws" / "credentials", tmp_path / "out" / "notes.txt"):
        assert get(str(path))[0] == 404, path
    assert get(str((folder / "mix.wav").resolve())) == (200, b"RIFF mix")
    assert get(str((folder / "stems" / "music.wav").resolve())) == (200, b"RIFF music")


def test_the_served_roots_are_the_published_reel_folders(studio_db: str, tmp_path: Path) -> None:
    """Expected: a reel folder per run that published (not its parent ``--out``), S3 outputs left to
    S3, nothing for runs that published nothing; an explicit ``--root`` added."""
    folder = _published_run(studio_db, tmp_path / "out", {"mix.wav": b"m", "cues/scene0000_music.wav": b"c"})
    run = repository.start_run(
        studio_db, source_uri="s3://b/reel2.mp4", out_uri="s3://b/out", settings={}, code_version="t", flow_run_id=None
    )
    s3 = "s3://b/out/reel2-0123456789/versions/v1/mix.wav"
    repository.record_outputs(studio_db, run, [{"kind": "mix", "uri": s3, "sha256": "1" * 64, "bytes": 1}])
    _failed_run(studio_db, str(tmp_path / "elsewhere"))
    (tmp_path / "extra").mkdir()
    assert local_roots(studio_db, [str(tmp_path / "extra")]) == [
        (tmp_path / "extra").resolve(),
        folder.resolve().parent,
    ]  # all the reel's versions


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (lambda t: Path("/"), "the file system's root"),
        (lambda t: t / "user", "the home folder"),
        (lambda t: t, "holds the home folder"),
        (lambda t: t / "home", "holds the studio's data folder"),
        (lambda t: t / "user" / ".prefect", "holds Prefect's home"),
        (lambda t: t / "user" / ".prefect" / ".." / ".prefect", "holds Prefect's home"),
    ],
    ids=["fs-root", "home", "above-home", "studio-home", "prefect-home", "prefect-home-via-dots"],
)
def test_a_root_holding_the_home_folder_or_a_database_is_refused_in_one_line(
    studio_db: str, tmp_path: Path, given: Callable[[Path], Path], reason: str
) -> None:
    root = given(tmp_path)
    with pytest.raises(InputError) as e:
        local_roots(studio_db, [str(root)])
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"--root {root}: ") and reason in message, message


def test_a_root_holding_a_database_elsewhere_is_refused(
    studio_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expected: the folder of an ``AUDIOX_DB_URL`` SQLite file and of Prefect's SQLite database (its
    connection URL set) are refused as roots."""
    monkeypatch.setenv("AUDIOX_DB_URL", f"sqlite:///{tmp_path / 'data' / 'studio.db'}")
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{tmp_path / 'pf' / 'p.db'}")
    for root in (tmp_path / "data", tmp_path / "pf"):
        with pytest.raises(InputError, match="holds the folder of a database"):
            local_roots(database_url(tmp_path / "unused"), [str(root)])


def test_a_refused_recorded_folder_is_skipped_with_a_warning(
    studio_db: str, home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Expected: outputs recorded at the file system's root and in the studio's data folder name
    folders that are not served; each is skipped with one warning, the rest still served."""
    folder = _published_run(studio_db, tmp_path / "out", {"mix.wav": b"m"})
    run = repository.start_run(studio_db, source_uri="x", out_uri=None, settings={}, code_version="t", flow_run_id=None)
    odd = [("file:///mix.wav", "mix"), (f"{home.resolve().as_uri()}/stems/music.wav", "stems/music")]
    repository.record_outputs(studio_db, run, [{"kind": k, "uri": u, "sha256": "2" * 64, "bytes": 1} for u, k in odd])
    with caplog.at_level(logging.WARNING, logger="cli.serve"):
        assert local_roots(studio_db, []) == [folder.resolve().parent]
    warned = [r.getMessage() for r in caplog.records if r.name == "cli.serve" and r.levelno == logging.WARNING]
    assert len(warned) == 2 and "file system's root" in warned[0] and "data folder" in warned[1], warned


@pytest.fixture
def odd(tmp_path: Path, serve: Callable[[Sequence[Path]], Get]) -> tuple[Get, Path]:
    """A served reel folder with a file, a hidden file and staging folder, links out of it and a link loop."""
    root = tmp_path / "out" / REEL
    (root / "stems").mkdir(parents=True)
    (root / "mix.wav").write_bytes(bytes(range(100)))
    (root / ".mix.wav.1234.tmp").write_bytes(b"half written")
    (root / ".stems.host-1-2.partial").mkdir()
    (root / ".stems.host-1-2.partial" / "music.wav").write_bytes(b"staged")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "out.txt").symlink_to(tmp_path / "secret.txt")
    (root / "up").symlink_to(tmp_path)
    (root / "loop").symlink_to(root / "loop")
    return serve([root]), root.resolve()


def test_hidden_files_and_links_out_of_a_root_are_not_served(odd: tuple[Get, Path]) -> None:
    get, root = odd
    for name in (".mix.wav.1234.tmp", ".stems.host-1-2.partial/music.wav", "out.txt", "up/secret.txt", "stems"):
        assert get(f"{root}/{name}")[0] == 404, name
    assert get(f"{root}/stems/../mix.wav") == (200, bytes(range(100)))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("{root}/mix.wav%00.txt", 400),  # a NUL byte: no file name holds one
        ("{root}/mix.wav%0", 400),  # a malformed escape
        ("{root}/mix%C3%28.wav", 400),  # an escape that is not UTF-8
        ("mix.wav", 400),  # not an absolute path (never resolved against the server's folder)
        ("http://127.0.0.1{root}/mix.wav", 400),
        ("{root}/" + "a" * 5000, 404),  # a name longer than the file system allows
        ("{root}/" + "a/" * 3000, 404),  # a path longer than the file system allows
        ("{root}/loop", 404),  # a link to itself
        ("{root}/loop/mix.wav", 404),
        ("{root}", 404),  # a folder
        ("{root}/", 404),
        ("{root}/mix.wav?" + "q" * 5000, 200),  # the query is not part of the path
    ],
)
def test_odd_paths_get_a_clean_answer(
    odd: tuple[Get, Path], path: str, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    get, root = odd
    assert get(path.format(root=root))[0] == status
    assert get(f"{root}/mix.wav")[0] == 200  # the server still answers
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("header", "status", "body"),
    [
        ("bytes=" + "9" * 5000 + "-", 416, b""),  # past the end, with more digits than int() takes
        ("bytes=0-" + "9" * 5000, 206, bytes(range(100))),  # a last byte past the end means the end
        ("bytes=-" + "9" * 5000, 206, bytes(range(100))),  # more than the whole file: the whole file
        ("bytes=" + "0" * 5000 + "5-9", 206, bytes(range(5, 10))),
    ],
)
def test_odd_ranges_get_a_clean_answer(
    odd: tuple[Get, Path], header: str, status: int, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    get, root = odd
    assert get(f"{root}/mix.wav", {"Range": header}) == (status, body)
    assert "Traceback" not in capsys.readouterr().err


def test_a_range_with_thousands_of_digits_is_unsatisfiable_or_clipped() -> None:
    assert byte_range("bytes=" + "9" * 5000 + "-", 100) is False
    assert byte_range("bytes=0-" + "9" * 5000, 100) == (0, 99)
    assert byte_range("bytes=-" + "9" * 5000, 100) == (0, 99)


def test_a_reel_published_after_serve_started_is_served_and_listed(
    studio_db: str, tmp_path: Path, serve: Callable[[Sequence[Path]], Get]
) -> None:
    from cli.serve import LiveRoots

    get = serve(LiveRoots(studio_db, [], refresh_s=0))
    status, page = get("/")
    assert status == 200 and b"no reel published yet" in page
    folder = _published_run(
        studio_db, tmp_path / "new-out", {"review.html": b"<html>review</html>", "mix.wav": b"RIFF"}
    )
    review = folder.resolve() / "review.html"
    assert get(quote(str(review))) == (200, b"<html>review</html>")
    status, page = get("/")
    assert status == 200 and f'href="{quote(str(review))}"'.encode() in page and REEL.encode() in page
    assert get(quote(str(tmp_path / "new-out")))[0] == 404  # the output root itself is no listing
    assert get(quote(str(folder.resolve())))[0] == 404  # nor is a reel folder
    later = _published_run(
        studio_db, tmp_path / "new-out", {"review.html": b"<html>v2</html>"}, "20261207T110000000000Z-run2"
    )
    second = later.resolve() / "review.html"
    assert second != review and get(quote(str(second))) == (200, b"<html>v2</html>")
    assert get(quote(str(review))) == (200, b"<html>review</html>")  # the earlier version is kept and served
    status, page = get("/")
    rows = page.decode().split("<tr>")[2:]
    assert len(rows) == 2 and "run 2" in rows[0] and "current" in rows[0] and "current" not in rows[1]
    assert f'href="{quote(str(second))}"' in rows[0] and f'href="{quote(str(review))}"' in rows[1]
