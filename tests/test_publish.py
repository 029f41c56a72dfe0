"""Outputs keyed by the source's full identity, and publishing that is all or nothing.

Names: distinct sources never share a folder or review key, whatever their script or length.
Local: the staged folder is flushed (fsync) and renamed; a failure leaves neither a stage nor a
half folder. S3: each version under its own prefix, current.json written last; faults are made for
real by a small HTTP proxy in front of moto_server that answers chosen PUTs with an error.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
from harness import scaled_timeout

from audiox_core.errors import InputError, TransientError
from audiox_core.lifecycle import process_tag
from audiox_core.reel.naming import FOLDER_MAX_BYTES, reel_folder, reel_title
from audiox_core.store import s3
from audiox_core.store.files import fsync_tree, staged_directory, write_atomic
from audiox_core.store.local import LocalStore
from audiox_core.store.s3 import S3Store, list_objects, read_current, s3_client
from tasks.review import artifact_slug

# ---------------------------------------------------------------- names


@pytest.mark.parametrize("root", ["/footage", "s3://footage"])
def test_same_file_name_in_two_folders_gives_two_folders_and_review_keys(root: str) -> None:
    """Expected: same readable stem, different folders and artifact keys; the same source spelt
    differently (file:// URI, credentials in the URI) keeps its folder."""
    a, b = f"{root}/dayA/reel1.mp4", f"{root}/dayB/reel1.mp4"
    assert reel_title(a) == reel_title(b) == "reel1"
    assert reel_folder(a) != reel_folder(b)
    assert reel_folder(a).startswith("reel1-") and reel_folder(b).startswith("reel1-")
    assert artifact_slug(reel_folder(a)) != artifact_slug(reel_folder(b))
    same = Path(a).as_uri() if root.startswith("/") else "s3://KEY:SECRET@footage/dayA/reel1.mp4?X-Amz-Signature=x"
    assert reel_folder(same) == reel_folder(a)


@pytest.mark.parametrize(
    ("name", "title"),
    [("夜の街.mp4", "夜の街"), ("Ночь.mov", "Ночь"), ("नमस्ते.mp4", "नमस्ते"), ("e\u0301te\u0301 2.mp4", "été_2")],
)
def test_names_in_any_script_keep_their_readable_stem_and_stay_unique(name: str, title: str) -> None:
    """Expected: the stem kept (NFC, spaces → '_'), never a shared fallback like "reel"."""
    assert reel_title(f"/a/{name}") == title
    assert reel_folder(f"/a/{name}").startswith(f"{title}-")
    assert reel_folder(f"/a/{name}") != reel_folder(f"/b/{name}")
    assert re.fullmatch(r"[a-z0-9-]+", artifact_slug(reel_folder(f"/a/{name}")))


@pytest.mark.parametrize("char", ["a", "夜"])
def test_a_250_character_name_gives_a_bounded_folder_that_can_be_staged(char: str, tmp_path: Path) -> None:
    """Expected: ≤ 100 bytes, the stem's beginning kept, the staging folder's name < 255 bytes,
    and (for a name the file system can hold) a real staged publish works."""
    source = f"/footage/{char * 250}.mp4"
    folder = reel_folder(source)
    assert len(folder.encode()) <= FOLDER_MAX_BYTES and folder.startswith(char * 20)
    assert len(f".{folder}.{process_tag()}.abcdefgh.partial".encode()) < 255
    with staged_directory(tmp_path / folder) as stage:
        (stage / "mix.wav").write_bytes(b"x")
    assert (tmp_path / folder / "mix.wav").read_bytes() == b"x"


# ---------------------------------------------------------------- local publishing


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths os.fsync was called on, in order."""
    calls: list[str] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_staged_folder_is_flushed_file_by_file_and_folder_by_folder_before_the_rename(
    tmp_path: Path, fsynced: list[str]
) -> None:
    """Expected: every file and folder of the stage fsynced while still staged, then the parent."""
    final = tmp_path / "out" / "reel1-0123456789"
    with staged_directory(final) as stage:
        (stage / "stems").mkdir()
        (stage / "stems" / "music.wav").write_bytes(b"m")
        (stage / "mix.wav").write_bytes(b"x")
        staged = stage
    flushed = {Path(p).relative_to(staged).as_posix() for p in fsynced if p.startswith(str(staged))}
    assert flushed == {".", "stems", "stems/music.wav", "mix.wav"}
    assert fsynced[-1] == str(final.parent)  # the rename itself made durable


def test_write_atomic_flushes_before_it_renames(tmp_path: Path, fsynced: list[str], monkeypatch) -> None:
    """Expected: the temporary file is fsynced before os.replace puts it in place."""
    at_replace: list[int] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (at_replace.append(len(fsynced)), real(a, b)))
    write_atomic(tmp_path / "loudness.json", b"{}")
    assert at_replace == [1] and ".loudness.json." in fsynced[0]


def test_a_failed_flush_leaves_no_stage_and_the_previous_folder_whole(tmp_path: Path, monkeypatch) -> None:
    """Expected: OSError from fsync (a disk error) → the previous version stays, no hidden folder."""
    final = tmp_path / "reel1-0123456789"
    with staged_directory(final) as stage:
        (stage / "mix.wav").write_bytes(b"old")

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        with staged_directory(final) as stage:
            (stage / "mix.wav").write_bytes(b"new")
    assert [p.name for p in tmp_path.iterdir()] == [final.name]
    assert (final / "mix.wav").read_bytes() == b"old"


def test_fsync_tree_skips_links(tmp_path: Path, fsynced: list[str]) -> None:
    """Expected: a dangling link in the folder is not opened (no error), the folder itself is flushed."""
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    fsync_tree(tmp_path)
    assert fsynced == [str(tmp_path)]


# ---------------------------------------------------------------- local check_writable


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): needs root")


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A folder for tmpfs mounts, unmounted at the end."""
    where = tmp_path / "mnt"
    yield where
    subprocess.run(["umount", str(where)], capture_output=True)


def test_local_root_that_is_a_file_or_under_a_file_is_refused(tmp_path: Path) -> None:
    """Expected: InputError naming the root as given, one line."""
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(InputError, match=r"^.*/out: output folder is not a folder$"):
        LocalStore().check_writable(str(tmp_path / "out"), 0)
    with pytest.raises(InputError, match=r"/out/deliveries: output folder cannot be made \(.*/out is not a folder\)$"):
        LocalStore().check_writable(str(tmp_path / "out" / "deliveries"), 0)


def test_local_root_on_a_read_only_file_system_is_refused(mounted: Path) -> None:
    """Expected: InputError 'not writable (Read-only file system)' (root ignores permission bits, a
    read-only mount it cannot)."""
    _mount_tmpfs(mounted, "ro,size=1m")
    with pytest.raises(InputError, match=r"mnt/out: output folder is not writable \(Read-only file system\)$"):
        LocalStore().check_writable(str(mounted / "out"), 0)


def test_local_root_without_room_for_the_outputs_is_refused(mounted: Path) -> None:
    """Expected: a 1 MiB tmpfs takes a small reel but refuses one needing 10 MiB; the probe leaves nothing."""
    _mount_tmpfs(mounted, "size=1m")
    LocalStore().check_writable(str(mounted / "out"), 100_000)
    assert list(mounted.iterdir()) == []  # neither the probe nor the (missing) root is left
    with pytest.raises(InputError, match=r"mnt/out: not enough free space for the outputs \(.* free, about 10.0 MiB"):
        LocalStore().check_writable(str(mounted / "out"), 10 << 20)


# ---------------------------------------------------------------- S3: a proxy that fails for real


@dataclass
class Fault:
    """Answer requests whose method and path match with ``status`` (None: drop the connection),
    ``times`` times (None: always)."""

    method: str
    path: str
    status: int | None
    times: int | None = None
    hits: int = 0


@dataclass
class FaultyProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    url: str = ""


_S3_ERRORS = {500: "InternalError", 503: "ServiceUnavailable", 403: "AccessDenied"}


def _handler(proxy: FaultyProxy) -> type[BaseHTTPRequestHandler]:
    up = urlparse(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # the test's output stays readable
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _fault(self) -> Fault | None:
            for f in proxy.faults:
                if f.method == self.command and re.search(f.path, self.path) and (f.times is None or f.hits < f.times):
                    f.hits += 1
                    return f
            return None

        def _forward(self) -> None:
            body = self._body()
            fault = self._fault()
            if fault is not None and fault.status is None:
                self.close_connection = True  # no answer at all: the client sees the connection drop
                return
            if fault is not None:
                code = _S3_ERRORS.get(fault.status, str(fault.status))
                text = f"<Error><Code>{code}</Code><Message>injected by the test</Message></Error>".encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
                return
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("expect", "transfer-encoding", "connection")
            }
            headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=scaled_timeout(30))
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            finally:
                conn.close()
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    self.send_header(k, v)
            length = answer.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    return Handler


@pytest.fixture
def proxy(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyProxy]:
    """S3 through the faulty proxy, with botocore's own retries off (one attempt per call), so each
    injected fault reaches our code, as a fault that outlasts botocore's retries would."""
    import boto3
    from botocore.config import Config

    p = FaultyProxy(s3_endpoint)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(p))
    p.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = boto3.client("s3", endpoint_url=p.url, config=Config(retries={"total_max_attempts": 1}))
    monkeypatch.setattr(s3, "s3_client", lambda: client)
    try:
        yield p
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"publish-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=name)
    return name


def _reel_folder(root: Path, version: str, files: dict[str, bytes]) -> Path:
    """An assembled reel folder whose provenance.json lists its own files under the version's URIs."""
    folder = root / version
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "provenance.json").write_text(json.dumps({"version": version, "outputs": sorted(files)}))
    return folder


def _keys(bucket: str, prefix: str) -> set[str]:
    return {o.key for o in list_objects(f"s3://{bucket}/{prefix}")}


def test_each_version_lists_exactly_its_own_files_and_old_versions_go(bucket: str, tmp_path: Path) -> None:
    """Expected: v2 has no stem of v1 in its manifest (though v1's objects stay as its grace copy);
    after v3, v1's objects are gone, v2's are kept, v3 is current."""
    store, folder_uri = S3Store(), f"s3://{bucket}/soundtracks/reel1-0123456789"
    v1 = _reel_folder(tmp_path, "v1", {"mix.wav": b"1", "stems/extra.wav": b"e"})
    store.publish(v1, folder_uri, "20250101T000000000000Z-run1")
    store.publish(_reel_folder(tmp_path, "v2", {"mix.wav": b"2"}), folder_uri, "20250102T000000000000Z-run2")
    current = read_current(folder_uri)
    assert current is not None and current.version == "20250102T000000000000Z-run2"
    assert current.previous == "20250101T000000000000Z-run1"
    prefix = "soundtracks/reel1-0123456789/versions/20250102T000000000000Z-run2/"
    assert {f.key for f in current.files} == {prefix + "mix.wav", prefix + "provenance.json"}
    assert current.provenance == prefix + "provenance.json" and current.prefix == prefix
    body = s3_client().get_object(Bucket=bucket, Key=current.provenance)["Body"].read()
    assert json.loads(body)["version"] == "v2"
    assert "soundtracks/reel1-0123456789/versions/20250101T000000000000Z-run1/stems/extra.wav" in _keys(
        bucket, "soundtracks/"
    )
    store.publish(_reel_folder(tmp_path, "v3", {"mix.wav": b"3"}), folder_uri, "20250103T000000000000Z-run3")
    versions = {k.split("/")[3] for k in _keys(bucket, "soundtracks/reel1-0123456789/versions/")}
    assert versions == {"20250102T000000000000Z-run2", "20250103T000000000000Z-run3"}
    assert store.versions(folder_uri) == sorted(versions)  # what a review page A/Bs against
    s3_client().put_object(  # a version still uploading (no provenance.json yet) is not offered
        Bucket=bucket, Key="soundtracks/reel1-0123456789/versions/20250104T000000000000Z-run4/mix.wav", Body=b"4"
    )
    assert store.versions(folder_uri) == sorted(versions)


def test_an_older_version_published_last_wins_the_pointer_and_deletes_neither(bucket: str, tmp_path: Path) -> None:
    """Run A started before run B (older version name) but publishes after it. Expected: current.json
    names A (the last publish wins), previous B; A's and B's objects all exist, every file current.json
    lists exists; only a version older than both (v0) is removed."""
    store, folder_uri = S3Store(), f"s3://{bucket}/out/reel1-0123456789"
    v0, a, b = "20250101T000000000000Z-run0", "20250102T000000000000Z-runA", "20250103T000000000000Z-runB"
    store.publish(_reel_folder(tmp_path, "v0", {"mix.wav": b"0"}), folder_uri, v0)
    store.publish(_reel_folder(tmp_path, "b", {"mix.wav": b"B"}), folder_uri, b)
    store.publish(_reel_folder(tmp_path, "a", {"mix.wav": b"A"}), folder_uri, a)
    current = read_current(folder_uri)
    assert current is not None and current.version == a and current.previous == b
    keys = _keys(bucket, "out/")
    assert {f.key for f in current.files} <= keys
    versions = {k.split("/")[3] for k in _keys(bucket, "out/reel1-0123456789/versions/")}
    assert versions == {a, b}
    assert (
        s3_client().get_object(Bucket=bucket, Key=f"out/reel1-0123456789/versions/{b}/mix.wav")["Body"].read() == b"B"
    )


@pytest.mark.parametrize("body", [b"not json {", b"[]", b'{"version": "v1"}'], ids=["not-json", "list", "fields"])
def test_a_damaged_current_json_is_treated_as_absent_and_replaced_by_the_next_publish(
    bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    """Expected: read_current → None with a warning naming current.json (not an internal error);
    the next publish succeeds, with no previous, and writes a whole current.json."""
    folder_uri = f"s3://{bucket}/out/reel1-0123456789"
    s3_client().put_object(Bucket=bucket, Key="out/reel1-0123456789/current.json", Body=body)
    assert read_current(folder_uri) is None
    assert any("current.json: cannot be parsed" in r.getMessage() for r in caplog.records)
    S3Store().publish(_reel_folder(tmp_path, "v2", {"mix.wav": b"2"}), folder_uri, "v2")
    current = read_current(folder_uri)
    assert current is not None and current.version == "v2" and current.previous is None
    assert {f.key for f in current.files} <= _keys(bucket, "out/")


def test_two_reels_with_one_stem_publish_two_complete_folders(bucket: str, tmp_path: Path) -> None:
    """Expected: dayA/reel1 and dayB/reel1 each current under their own folder, nothing shared."""
    store = S3Store()
    uris = {}
    for day in ("dayA", "dayB"):
        folder_uri = store.child(f"s3://{bucket}/soundtracks", reel_folder(f"s3://{bucket}/{day}/reel1.mp4"))
        store.publish(_reel_folder(tmp_path / day, "v", {"mix.wav": day.encode()}), folder_uri, "20250101T0Z-run1")
        uris[day] = folder_uri
    assert uris["dayA"] != uris["dayB"]
    for day, folder_uri in uris.items():
        current = read_current(folder_uri)
        assert current is not None
        mix = next(f for f in current.files if f.key.endswith("/mix.wav"))
        assert s3_client().get_object(Bucket=bucket, Key=mix.key)["Body"].read() == day.encode()
        assert all(f.key.startswith(folder_uri.split("/", 3)[3] + "/versions/") for f in current.files)


@pytest.mark.parametrize("status", [500, 503, None], ids=["500", "503", "dropped"])
def test_a_transient_upload_failure_is_one_line_and_a_retry_publishes(
    proxy: FaultyProxy, bucket: str, tmp_path: Path, status: int | None
) -> None:
    """Expected: TransientError, one line naming the s3:// object; current.json still on v1; the
    same publish again (what the task's retry does) succeeds and v2 is complete."""
    store, folder_uri = S3Store(), f"s3://{bucket}/out/reel1-0123456789"
    store.publish(_reel_folder(tmp_path, "v1", {"mix.wav": b"1", "stems/music.wav": b"m"}), folder_uri, "v1")
    proxy.faults.append(Fault("PUT", r"/versions/v2/stems/music\.wav", status, times=1))
    v2 = _reel_folder(tmp_path, "v2", {"mix.wav": b"2", "stems/music.wav": b"M"})
    with pytest.raises(TransientError) as failed:
        store.publish(v2, folder_uri, "v2")
    assert str(failed.value).startswith(f"s3://{bucket}/out/reel1-0123456789/versions/v2/stems/music.wav: ")
    assert "\n" not in str(failed.value)
    assert read_current(folder_uri).version == "v1"  # the half-uploaded v2 is listed nowhere
    store.publish(v2, folder_uri, "v2")
    current = read_current(folder_uri)
    assert current.version == "v2" and len(current.files) == 3 and current.previous == "v1"


def test_a_permanent_denial_is_one_input_error_and_the_previous_version_stays_current(
    proxy: FaultyProxy, bucket: str, tmp_path: Path
) -> None:
    """Expected: InputError 'access denied', one line naming the object; v1 current and complete,
    no provenance.json of v2 uploaded (it goes last within a version)."""
    store, folder_uri = S3Store(), f"s3://{bucket}/out/reel1-0123456789"
    store.publish(_reel_folder(tmp_path, "v1", {"mix.wav": b"1"}), folder_uri, "v1")
    proxy.faults.append(Fault("PUT", r"/versions/v2/mix\.wav", 403))
    with pytest.raises(InputError, match=r"^s3://.*/versions/v2/mix\.wav: access denied \(AccessDenied\)[^\n]*$"):
        store.publish(_reel_folder(tmp_path, "v2", {"mix.wav": b"2"}), folder_uri, "v2")
    current = read_current(folder_uri)
    assert current.version == "v1"
    assert {f.key for f in current.files} <= _keys(bucket, "out/")
    assert not [k for k in _keys(bucket, "out/") if "/versions/v2/" in k and k.endswith("provenance.json")]


def test_the_publish_task_retries_transient_failures_until_the_version_is_current(
    prefect_api, proxy: FaultyProxy, bucket: str, tmp_path: Path
) -> None:
    """Expected: two 500s on current.json (the last, most delicate write), then the task's third
    attempt succeeds; a 403 is not retried (one attempt)."""
    from prefect import flow

    from audiox_core.reel.destination import Destination
    from tasks.media import publish_task

    @flow
    def task(folder: Path, folder_uri: str, version: str) -> None:
        where = Destination(folder_uri, folder_uri, version, f"{folder_uri}/versions/{version}", folder)
        publish_task.with_options(retry_delay_seconds=[0, 0, 0])(where)

    folder_uri = f"s3://{bucket}/out/reel1-0123456789"
    flaky = Fault("PUT", r"/out/reel1-0123456789/current\.json", 500, times=2)
    proxy.faults.append(flaky)
    task(_reel_folder(tmp_path, "v1", {"mix.wav": b"1"}), folder_uri, "v1")
    assert flaky.hits == 2 and read_current(folder_uri).version == "v1"
    denied = Fault("PUT", r"/versions/v2/", 403)
    proxy.faults.append(denied)
    with pytest.raises(InputError, match="access denied"):
        task(_reel_folder(tmp_path, "v2", {"mix.wav": b"2"}), folder_uri, "v2")
    assert denied.hits == 1 and read_current(folder_uri).version == "v1"


def test_upload_failed_error_from_boto3_maps_to_one_line() -> None:
    """Expected: boto3's S3UploadFailedError (raised while handling the service's ClientError) is
    classified by that answer, and the local file name in its text is not shown."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError

    def wrapped(code: str, status: int) -> S3UploadFailedError:
        try:
            try:
                answer = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
                raise ClientError(answer, "PutObject")
            except ClientError as e:
                raise S3UploadFailedError(f"Failed to upload /work/x/mix.wav to b/k: {e}")  # noqa: B904 (as boto3)
        except S3UploadFailedError as e:
            return e

    busy = s3.s3_error("s3://b/k", wrapped("SlowDown", 503))
    assert isinstance(busy, TransientError) and str(busy) == "s3://b/k: S3 is busy or failing: m (SlowDown)"
    bad = s3.s3_error("s3://b/k", wrapped("InvalidRequest", 400))
    assert isinstance(bad, InputError) and str(bad) == "s3://b/k: m (InvalidRequest)"


# ---------------------------------------------------------------- S3 check_writable


def test_s3_root_checks(bucket: str) -> None:
    """Expected: a writable prefix passes and keeps no probe; a missing bucket, a '..' prefix and a
    URI without a bucket are one-line InputErrors naming the URI."""
    S3Store().check_writable(f"s3://{bucket}/soundtracks/", 10 << 30)
    assert _keys(bucket, "") == set()
    with pytest.raises(InputError, match=r"^s3://no-such-bucket-x1/out: no such bucket 'no-such-bucket-x1'$"):
        S3Store().check_writable("s3://no-such-bucket-x1/out", 0)
    with pytest.raises(InputError, match=r"'\.\.' segment"):
        S3Store().check_writable(f"s3://{bucket}/out/../../elsewhere", 0)
    with pytest.raises(InputError, match=r"^s3:///out: no bucket in the S3 URI"):
        S3Store().check_writable("s3:///out", 0)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "s3://KEY:SECRET@footage/out",
            r"^s3://footage/out(/x\.mp4)?: credentials in an S3 URI are refused; set AWS_PROFILE",
        ),
        (
            "s3://bad!bucket/out",
            r"^s3://bad!bucket/out(/x\.mp4)?: not a valid S3 bucket name or key \(ParamValidationError",
        ),
    ],
    ids=["userinfo", "invalid-name"],
)
def test_a_request_botocore_refuses_before_sending_is_one_input_error(
    s3_endpoint: str, uri: str, expected: str
) -> None:
    """Expected: botocore's ParamValidationError is an InputError (never retried as transient), one line
    naming the cleaned URI, the secret nowhere, for the root check and a download alike."""
    for check in (lambda: S3Store().check_writable(uri, 0), lambda: s3.download(f"{uri}/x.mp4", Path("/nonexistent"))):
        with pytest.raises(InputError, match=expected) as refused:
            check()
        assert "\n" not in str(refused.value) and "SECRET" not in str(refused.value)


def test_s3_root_where_writing_is_denied_is_refused(proxy: FaultyProxy, bucket: str) -> None:
    """Expected: the probe PUT answered 403 → InputError 'access denied' naming the root."""
    proxy.faults.append(Fault("PUT", r"/out/\.write-probe\.", 403))
    with pytest.raises(InputError, match=rf"^s3://{bucket}/out: access denied \(AccessDenied\)"):
        S3Store().check_writable(f"s3://{bucket}/out", 0)


# ---------------------------------------------------------------- the flow: two reels, one stem


@pytest.mark.integration
@pytest.mark.parametrize("destination", ["local", "s3"])
def test_flow_keeps_two_reels_with_one_stem_apart(
    prefect_api, home, s3_endpoint, bucket, reel, tmp_path: Path, destination: str
) -> None:
    """dayA/reel1.mp4 and dayB/reel1.mp4 through the flow, the same bytes at two paths (the second
    reuses the first's cues): outputs are keyed by the path, not the name or the content. Expected:
    two folders, two review keys, each provenance.json listing exactly its own version's files."""
    from flows.soundtrack import soundtrack

    out = str(tmp_path / "out") if destination == "local" else f"s3://{bucket}/soundtracks"
    results = {}
    for day in ("dayA", "dayB"):
        (tmp_path / day).mkdir()
        shutil.copy(reel.path, tmp_path / day / "reel1.mp4")
        results[day] = soundtrack(str(tmp_path / day / "reel1.mp4"), out, {"steps": 2})
    assert results["dayA"]["reel"] == results["dayB"]["reel"] == "reel1"
    assert results["dayA"]["out_dir"] != results["dayB"]["out_dir"]
    assert results["dayA"]["review_artifact"] != results["dayB"]["review_artifact"]
    for result in results.values():
        base = result["out_dir"]
        if destination == "local":
            files = {p.relative_to(base).as_posix() for p in Path(base).rglob("*") if p.is_file()}
            document = json.loads((Path(base) / "provenance.json").read_text())
            uri_of = {n: (Path(base) / n).as_uri() for n in files}
        else:
            folder_uri = base.split("/versions/")[0]
            current = read_current(folder_uri)
            prefix = current.prefix
            assert base == f"s3://{bucket}/{prefix.rstrip('/')}"
            files = {f.key.removeprefix(prefix) for f in current.files}
            assert files == {k.removeprefix(prefix) for k in _keys(bucket, prefix)}
            body = s3_client().get_object(Bucket=bucket, Key=current.provenance)["Body"].read()
            document = json.loads(body)
            uri_of = {n: f"{base}/{n}" for n in files}
        recorded = {o["uri"] for o in document["outputs"]}
        assert recorded == {uri_of[n] for n in files if n != "provenance.json"}


# ---------------------------------------------------------------- cue reuse after an old version went


def test_a_cue_whose_first_version_was_removed_is_found_in_a_later_output(
    bucket: str, home: Path, tmp_path: Path
) -> None:
    """A reused cue keeps the generation row of the run that made it, whose output_uri names that
    run's version; once the version is pruned, the same bytes are still an output of a later version.
    Expected: that later copy is found (by sha256); with no copy left, None (the cue is made again)."""
    from audiox_core.store.files import sha256_file
    from db import repository
    from db.session import upgrade
    from tasks.generation import _recorded_copy

    url = f"sqlite:///{tmp_path / 'studio.db'}"
    upgrade(url)
    cue = tmp_path / "scene0000_music.wav"
    cue.write_bytes(b"RIFF cue bytes")
    sha = sha256_file(cue)
    gone = f"s3://{bucket}/out/reel1-0123456789/versions/v1/cues/scene0000_music.wav"
    later = f"s3://{bucket}/out/reel1-0123456789/versions/v3/cues/scene0000_music.wav"
    s3_client().upload_file(str(cue), bucket, later.split("/", 3)[3])
    run = repository.start_run(
        url, source_uri="/a/reel1.mp4", out_uri=None, settings={}, code_version="t", flow_run_id=None
    )
    outputs = [{"kind": "cues/scene0000_music", "uri": u, "sha256": sha, "bytes": 14} for u in (gone, later)]
    repository.record_outputs(url, run, outputs)
    found = _recorded_copy(url, gone, sha)
    assert found is not None and found.read_bytes() == b"RIFF cue bytes"
    s3_client().delete_object(Bucket=bucket, Key=later.split("/", 3)[3])
    assert _recorded_copy(url, gone, sha) is None


def test_published_objects_carry_their_media_type_and_a_presigned_link_serves_it(bucket: str, tmp_path: Path) -> None:
    """Expected: each object is stored with the type of its extension (not binary/octet-stream), and a
    presigned GET answers with that Content-Type, so the browser plays or shows it."""
    import httpx

    store, folder_uri = S3Store(), f"s3://{bucket}/soundtracks/typed-0123456789"
    files = {"soundtrack.mp4": b"v", "mix.wav": b"a", "waveform.png": b"p", "scenes.csv": b"c", "scenes.edl": b"e"}
    store.publish(_reel_folder(tmp_path, "v1", files), folder_uri, "20250101T000000000000Z-run1")
    prefix = "soundtracks/typed-0123456789/versions/20250101T000000000000Z-run1/"
    expected = {
        "soundtrack.mp4": "video/mp4",
        "mix.wav": "audio/wav",
        "waveform.png": "image/png",
        "scenes.csv": "text/csv; charset=utf-8",
        "scenes.edl": "text/plain; charset=utf-8",
        "provenance.json": "application/json",
    }
    for name, kind in expected.items():
        assert s3_client().head_object(Bucket=bucket, Key=prefix + name)["ContentType"] == kind, name
    link = store.link(f"s3://{bucket}/{prefix}soundtrack.mp4")
    response = httpx.get(link)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
