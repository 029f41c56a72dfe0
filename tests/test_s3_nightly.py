"""S3 storage against moto_server, and the nightly flow under Prefect's test harness."""

from __future__ import annotations

import urllib.request
from fractions import Fraction
from pathlib import Path

import pytest
from harness import scaled_timeout

from audiox_core.errors import InputError
from audiox_core.reel.naming import reel_folder
from audiox_core.store.s3 import S3Store, download, list_objects, parse_s3, read_current, s3_client, upload_folder
from audiox_core.video.lavfi_reel import make_reel
from tasks.review import artifact_slug

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(s3_endpoint) -> str:
    import uuid

    name = f"studio-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=name)
    return name


def test_keys_cannot_escape_the_work_folder() -> None:
    with pytest.raises(InputError, match="leading '/' or a '..' segment"):
        parse_s3("s3://bucket/reels/../../etc/passwd")
    with pytest.raises(InputError, match="leading '/'"):
        parse_s3("s3://bucket//etc/passwd")
    assert parse_s3("s3://bucket/reels/a.mp4") == ("bucket", "reels/a.mp4")


def test_download_caches_by_etag_and_size(bucket, tmp_path: Path, reel) -> None:
    s3_client().upload_file(str(reel.path), bucket, "in/reel.mp4")
    first, obj = download(f"s3://{bucket}/in/reel.mp4", tmp_path)
    assert first.read_bytes() == reel.path.read_bytes() and obj.size == reel.path.stat().st_size
    inode = first.stat().st_ino
    again, _ = download(f"s3://{bucket}/in/reel.mp4", tmp_path)
    assert again == first and again.stat().st_ino == inode  # served from the cache (a download renames a new file in)
    s3_client().put_object(Bucket=bucket, Key="in/reel.mp4", Body=b"changed content")
    changed, _ = download(f"s3://{bucket}/in/reel.mp4", tmp_path)
    assert changed != first and changed.read_bytes() == b"changed content"


def test_each_download_has_its_own_partial_removed_on_an_interrupt(bucket, tmp_path: Path, monkeypatch) -> None:
    """Two downloads of one object, each interrupted (KeyboardInterrupt, a BaseException) just before
    the file is put in the cache. Expected: two distinct `.<name>.<process tag>.<random>.partial` files
    (concurrent downloads never share one, a sweep can read the owner), both removed, nothing cached."""
    from audiox_core.lifecycle import owner_tag, process_tag
    from audiox_core.store import cache

    s3_client().put_object(Bucket=bucket, Key="in/reel.mp4", Body=b"reel bytes")
    partials: list[Path] = []

    def interrupted(tmp: Path, path: Path) -> None:
        assert tmp.read_bytes() == b"reel bytes"
        partials.append(tmp)
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "record_file", interrupted)
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            download(f"s3://{bucket}/in/reel.mp4", tmp_path)
    assert len(set(partials)) == 2
    assert all(p.name.endswith(".partial") and owner_tag(p.name) == process_tag() for p in partials)
    assert list(tmp_path.iterdir()) == []


def test_missing_bucket_and_key_are_clear_input_errors(bucket, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="s3://no-such-bucket-here/x.mp4"):
        download("s3://no-such-bucket-here/x.mp4", tmp_path)
    with pytest.raises(InputError, match=f"s3://{bucket}/missing.mp4"):
        download(f"s3://{bucket}/missing.mp4", tmp_path)


def test_upload_folder_and_presign(bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "stems").mkdir()
    (tmp_path / "stems" / "music.wav").write_bytes(b"m" * 10)
    (tmp_path / "provenance.json").write_text("{}")
    published = upload_folder(tmp_path, f"s3://{bucket}/out/reel")
    assert [(f.key, f.size) for f in published] == [("out/reel/stems/music.wav", 10), ("out/reel/provenance.json", 2)]
    assert {o.key for o in list_objects(f"s3://{bucket}/out/reel/")} == {f.key for f in published}
    monkeypatch.setenv("AUDIOX_LINK_EXPIRY_S", "60")
    url = S3Store().link(f"s3://{bucket}/out/reel/stems/music.wav")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60&" in url
    assert urllib.request.urlopen(url, timeout=scaled_timeout(10)).read() == b"m" * 10  # the link opens the file


def _published(out_uri: str, source_uri: str) -> set[str]:
    """The files of a source's current version (relative to its prefix), each of them in S3."""
    current = read_current(f"{out_uri}/{reel_folder(source_uri)}")
    assert current is not None, source_uri
    bucket = parse_s3(out_uri)[0]
    assert {f.key for f in current.files} <= {o.key for o in list_objects(f"s3://{bucket}/{current.prefix}")}
    return {f.key.removeprefix(current.prefix) for f in current.files}


@pytest.fixture
def footage(bucket, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("footage")
    for name, shots in (("alpha", (20, 15, 20)), ("beta", (25, 25))):
        r = make_reel(folder / f"{name}.mp4", shot_frames=shots, fps=Fraction(25), size=(320, 180))
        s3_client().upload_file(str(r.path), bucket, f"reels/{name}.mp4")
    s3_client().put_object(Bucket=bucket, Key="reels/notes.mp4", Body=b"this is not a video\n")
    s3_client().put_object(Bucket=bucket, Key="reels/readme.txt", Body=b"ignored: not a video extension\n")
    return bucket


def test_nightly_processes_new_footage_once_and_carries_on_past_bad_reels(prefect_api, home, footage) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from db import repository
    from db.session import database_url
    from flows.nightly import nightly

    first = nightly(footage, "reels/", settings={"steps": 2}, max_parallel=2)
    assert (first["listed"], first["succeeded"], first["failed"]) == (3, 2, 1)
    bad = next(r for r in first["runs"] if r["status"] == "failed")
    assert "notes.mp4" in bad["error"] and "cannot be read as media" in bad["error"]
    for name in ("alpha", "beta"):
        assert {
            "soundtrack.mp4",
            "mix.wav",
            "stems/music.wav",
            "provenance.json",
            "soundtrack.otio",
            "soundtrack.aaf",
        } <= _published(f"s3://{footage}/soundtracks", f"s3://{footage}/reels/{name}.mp4")
    url = database_url(home)
    run = repository.get_run(url, next(r for r in first["runs"] if r["status"] == "succeeded")["run_id"])
    assert (
        run.status == "succeeded" and run.trigger == "nightly" and run.source_uri.startswith(f"s3://{footage}/reels/")
    )
    assert all(o.uri.startswith(f"s3://{footage}/soundtracks/") for o in run.outputs)
    current = read_current(f"s3://{footage}/soundtracks/{reel_folder(f's3://{footage}/reels/alpha.mp4')}")
    edl = s3_client().get_object(Bucket=footage, Key=current.prefix + "scenes.edl")["Body"].read().decode()
    assert "* FROM CLIP NAME: alpha.mp4" in edl  # the source's own name, not the download cache's
    timeline = s3_client().get_object(Bucket=footage, Key=current.prefix + "soundtrack.otio")
    assert timeline["ContentType"] == "application/json" and b'"OTIO_SCHEMA": "Timeline.1"' in timeline["Body"].read()
    alpha = artifact_slug(reel_folder(f"s3://{footage}/reels/alpha.mp4"))
    alpha_run = next(r["run_id"] for r in first["runs"] if r["source"].endswith("alpha.mp4"))
    with get_client(sync_client=True) as client:
        (card,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"review-{alpha}-run{alpha_run}"]))
        )
    for name in ("mix.wav", "soundtrack.otio", "soundtrack.aaf"):
        assert f"[{name}](" in card.data, name  # the version's one card links every deliverable
    assert "![waveform](" in card.data
    with get_client(sync_client=True) as client:
        [summary] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"nightly-{footage}-reels"]))
        )
    rows = [line for line in summary.data.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[1] for r in rows] == ["succeeded", "succeeded", "failed"], rows
    assert "[review page](" in rows[0] and "cannot be read as media" in rows[2]
    assert rows[0].split(" | ")[-1].startswith("not yet")  # no version of alpha approved so far
    from db import repository
    from db.session import database_url
    from flows.nightly import _approval

    db_url = database_url(home)
    delivered = f"s3://{footage}/soundtracks/delivered/alpha"
    review = {"run_id": alpha_run, "decision": "approved", "reviewer": "Ana (producer)", "delivered_uri": delivered}
    repository.record_review(db_url, review)
    shown = _approval(db_url, f"s3://{footage}/reels/alpha.mp4")  # what the next night's row says
    assert shown.startswith("Ana (producer), 20") and f"run {alpha_run}, delivered to {delivered}" in shown
    second = nightly(footage, "reels/", settings={"steps": 2})
    assert second["skipped"] == 2 and second["succeeded"] == 0  # nothing redone; the bad reel is tried again


def test_access_denied_is_one_line_the_run_failed_and_the_batch_carries_on(
    prefect_api, home, s3_endpoint, bucket, reel, monkeypatch
) -> None:
    """moto_server enforcing IAM (its reset-auth switch): an editor's key may read everything under
    reels/ except one object; nightly fails that reel with one clear line and finishes the other."""
    import json
    import urllib.request

    import boto3
    from sqlalchemy import select

    from db.models import Run
    from db.session import database_url, sessions
    from flows.nightly import nightly

    s3_client().upload_file(str(reel.path), bucket, "reels/open.mp4")
    s3_client().upload_file(str(reel.path), bucket, "reels/locked.mp4")
    iam = boto3.client("iam")
    iam.create_user(UserName="editor")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/reels/locked.mp4"},
        ],
    }
    iam.put_user_policy(UserName="editor", PolicyName="footage", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="editor")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # its credentials were resolved from the old variables
    s3_client.cache_clear()

    def enforce(after: str) -> None:
        request = urllib.request.Request(
            f"{s3_endpoint}/moto-api/reset-auth",
            data=after.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=scaled_timeout(10)).close()

    enforce("0")  # from now on every request is authenticated and checked against IAM
    try:
        with pytest.raises(InputError) as denied:
            download(f"s3://{bucket}/reels/locked.mp4", home / "cache")
        assert str(denied.value).startswith(f"s3://{bucket}/reels/locked.mp4: access denied (")
        assert "\n" not in str(denied.value)
        # "reels", not "reels/": moto's signature check mis-encodes a '/' in a listing's query string.
        result = nightly(bucket, "reels", settings={"steps": 2}, max_parallel=2)
    finally:
        enforce("inf")
        s3_client.cache_clear()
        boto3.DEFAULT_SESSION = None
    assert (result["listed"], result["succeeded"], result["failed"]) == (2, 1, 1)
    failed = next(r for r in result["runs"] if r["status"] == "failed")
    assert failed["error"].startswith(f"s3://{bucket}/reels/locked.mp4: access denied (")
    with sessions(database_url(home))() as session:
        run = session.scalars(select(Run).where(Run.source_uri == f"s3://{bucket}/reels/locked.mp4")).one()
    assert run.status == "failed" and run.error.startswith(f"s3://{bucket}/reels/locked.mp4: access denied (")
    assert {"soundtrack.mp4", "mix.wav"} <= _published(f"s3://{bucket}/soundtracks", f"s3://{bucket}/reels/open.mp4")
    locked = reel_folder(f"s3://{bucket}/reels/locked.mp4")
    assert not list_objects(f"s3://{bucket}/soundtracks/{locked}/")
