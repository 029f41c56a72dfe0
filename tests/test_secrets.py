"""No secret is stored or printed: credential-bearing and presigned URIs are refused, and neither the
console, our provenance database nor Prefect's database (parameters, states, logs, events) keeps
any part of the credentials."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import scaled_timeout

from audiox_core.errors import InputError
from audiox_core.store.local import local_path
from audiox_core.store.uri import public_uri, scrub, secret_in_uri

SECRETS = ("AKIAEXAMPLE", "SECRETEXAMPLE", "SIGSECRET", "CREDSECRET", "TOKENSECRET")
PRESIGNED = (
    "https://bucket.s3.amazonaws.com/reel.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=CREDSECRET%2F20261128%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=TOKENSECRET"
    "&X-Amz-Signature=SIGSECRET"
)
# (given URI, the cleaned URI the message and the run row show)
REFUSED = [
    pytest.param(PRESIGNED, "https://bucket.s3.amazonaws.com/reel.mp4", id="presigned-https"),
    pytest.param("s3://AKIAEXAMPLE:SECRETEXAMPLE@bucket/k.mp4", "s3://bucket/k.mp4", id="s3-userinfo"),
    pytest.param("s3://bucket/k.mp4?X-Amz-Signature=SIGSECRET", "s3://bucket/k.mp4", id="s3-signature-query"),
]


@pytest.mark.parametrize(
    ("uri", "cleaned", "secret"),
    [
        (PRESIGNED, "https://bucket.s3.amazonaws.com/reel.mp4", True),
        ("s3://AKIAEXAMPLE:SECRETEXAMPLE@bucket/k.mp4", "s3://bucket/k.mp4", True),
        ("s3://AKIAEXAMPLE:SECRET/EX+AMPLE@bucket/k.mp4", "s3://bucket/k.mp4", True),  # '/' in the secret key
        ("s3://bucket/k.mp4?X-Amz-Signature=SIGSECRET", "s3://bucket/k.mp4", True),
        ("https://h/v.mp4?sig=SIGSECRET&se=2026", "https://h/v.mp4", True),  # Azure SAS
        ("postgresql+psycopg://studio:hunter2@db:5432/prov", "postgresql+psycopg://db:5432/prov", True),
        ("s3://bucket/k.mp4?versionId=3#frag", "s3://bucket/k.mp4", False),
        ("s3://bucket/a:b@c.mp4", "s3://bucket/a:b@c.mp4", False),  # '@' and ':' in a key are not userinfo
        ("/local/reel?.mp4", "/local/reel?.mp4", False),
    ],
)
def test_public_uri_and_secret_in_uri(uri: str, cleaned: str, secret: bool) -> None:
    assert public_uri(uri) == cleaned
    assert secret_in_uri(uri) is secret


def test_scrub_removes_credentials_from_any_text() -> None:
    text = (
        f"error: {PRESIGNED} and s3://AKIAEXAMPLE:SECRETEXAMPLE@bucket/k.mp4 failed; "
        "aws_secret_access_key=SECRETEXAMPLE {'X-Amz-Signature': 'SIGSECRET'} AKIAIOSFODNN7EXAMPLE token=TOKENSECRET"
    )
    cleaned = scrub(text)
    assert not [s for s in (*SECRETS, "AKIAIOSFODNN7EXAMPLE") if s in cleaned], cleaned
    assert "https://bucket.s3.amazonaws.com/reel.mp4 and s3://bucket/k.mp4 failed" in cleaned
    assert scrub("tokens: 5, hide_password=True") == "tokens: 5, hide_password=True"  # names alike, no secret


def test_unsupported_scheme_message_shows_the_cleaned_uri() -> None:
    with pytest.raises(InputError) as e:
        local_path(PRESIGNED)
    assert str(e.value).startswith("https://bucket.s3.amazonaws.com/reel.mp4: unsupported URI scheme")
    assert not [s for s in SECRETS if s in str(e.value)]


def dump_sqlite(path: Path) -> str:
    """Every row of every table (events and logs included) as text."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(f"{t}: {row!r}" for t in tables for row in conn.execute(f'SELECT * FROM "{t}"'))


def flow_run_failed_dump(prefect_db: Path, flow_run_id: str) -> str | None:
    """The dump of Prefect's database once it holds the flow run's Failed event and its last log line
    (both are sent in batches and written a moment later), else None."""
    dump = dump_sqlite(prefect_db)
    lines = [ln for ln in dump.splitlines() if flow_run_id in ln]
    event = any(ln.startswith("events:") and "prefect.flow-run.Failed" in ln for ln in lines)
    log = any(ln.startswith("log:") and "Finished in state Failed" in ln for ln in lines)
    return dump if event and log else None


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def last_run(home: Path) -> dict:
    with sqlite3.connect(home / "studio.db") as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone())


ROLES = {"source": "source", "out": "destination", "cues": "cue sheet"}


@pytest.mark.integration
@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize(("uri", "cleaned"), REFUSED)
def test_cli_refuses_before_the_flow_and_leaks_nothing(
    home: Path, tmp_path: Path, reel, uri: str, cleaned: str, role: str
) -> None:
    """Expected: exit 1, one line naming the cleaned URI, a failed run with the cleaned URI, and no
    flow run at all (the Prefect home stays empty): no secret on the console or in either database."""
    prefect_home = tmp_path / "prefect"
    env = {**os.environ, "AUDIOX_HOME": str(home), "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    given = {"source": str(reel.path), "out": str(tmp_path / "out"), role: uri}
    cues = ["--cues", given["cues"]] if "cues" in given else []
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "run", given["source"], "--out", given["out"], *cues, "--model", "tiny"],
        capture_output=True,
        text=True,
        env=env,
        timeout=scaled_timeout(120),
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {cleaned}: a {ROLES[role]} URI")
    assert "environment or an AWS profile" in lines[0]
    assert leaked(proc.stdout + proc.stderr) == []
    assert leaked(dump_sqlite(home / "studio.db")) == []
    run = last_run(home)
    assert run["status"] == "failed" and cleaned in run["error"]
    if role != "cues":
        assert (run["source_uri"] if role == "source" else run["out_uri"]) == cleaned
    assert not list(prefect_home.rglob("*.db"))  # Prefect never saw the run


@pytest.mark.integration
@pytest.mark.parametrize("role", ["source", "cues"])
@pytest.mark.parametrize(("uri", "cleaned"), REFUSED)
def test_flow_called_directly_refuses_and_cleans_its_parameters(
    prefect_api, home: Path, reel, uri: str, cleaned: str, role: str
) -> None:
    """An API or deployment caller passes the secret straight to the flow (as the source, or as the cue
    sheet). Expected: InputError naming the cleaned URI, a failed run row, and no secret anywhere in
    Prefect's database (parameters, states, task runs, logs, events) once its queues are flushed."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    from flows.soundtrack import soundtrack

    source, cues = (uri, None) if role == "source" else (str(reel.path), uri)
    with pytest.raises(InputError, match="refused") as e:
        soundtrack(source, str(home / "out"), {"model": "tiny"}, cues=cues)
    assert str(e.value).startswith(cleaned) and leaked(str(e.value)) == []
    run = last_run(home)
    assert run["status"] == "failed" and cleaned in run["error"]
    assert run["source_uri"] == public_uri(source)
    assert leaked(dump_sqlite(home / "studio.db")) == []

    prefect_db = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])
    deadline = time.monotonic() + scaled_timeout(30)
    while not (dump := flow_run_failed_dump(prefect_db, run["flow_run_id"])):
        assert time.monotonic() < deadline, "the flow run's Failed event never reached Prefect's database"
        time.sleep(0.5)
    assert leaked(dump) == []
    assert cleaned in dump  # the cleaned parameters replaced the given ones


@pytest.mark.parametrize(("given", "expires"), [(None, "259200"), ("3600", "3600"), ("604800", "604800")])
def test_presigned_links_live_no_longer_than_a_review_needs(
    monkeypatch: pytest.MonkeyPatch, given: str | None, expires: str
) -> None:
    """Expected: review and artifact links expire after three days unless AUDIOX_LINK_EXPIRY_S says
    otherwise (at most S3's seven days); they were seven days whatever the need."""
    from urllib.parse import parse_qs, urlparse

    from audiox_core.store.s3 import S3Store, s3_client

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if given is None:
        monkeypatch.delenv("AUDIOX_LINK_EXPIRY_S", raising=False)
    else:
        monkeypatch.setenv("AUDIOX_LINK_EXPIRY_S", given)
    s3_client.cache_clear()
    try:
        query = parse_qs(urlparse(S3Store().link("s3://footage/soundtracks/r/review.html")).query)
    finally:
        s3_client.cache_clear()
    assert query["X-Amz-Expires"] == [expires]


@pytest.mark.parametrize("given", ["604801", "0", "soon", "nan"])
def test_a_link_expiry_s3_cannot_sign_is_one_line(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    from audiox_core.store.s3 import link_expiry_s

    monkeypatch.setenv("AUDIOX_LINK_EXPIRY_S", given)
    with pytest.raises(InputError, match=r"^AUDIOX_LINK_EXPIRY_S="):
        link_expiry_s()
