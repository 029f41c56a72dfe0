"""``audiox-studio watch``: S3 uploads become Prefect events that start the s3-drop deployment.

Queue mode reads S3 ObjectCreated notifications from SQS (also wrapped in SNS); polling mode lists a
prefix and compares ETags with what it saw before. Each object content gives one event,
``audiox.footage.uploaded``, whose id is derived from bucket, key and version, the version being
the object's ETag (its content) where known, else its version id, else the notification's
sequencer: both modes give one id per content, and a byte-identical re-upload (a new version id in
a versioned bucket) has the id of the first. Before sending, the watcher asks the Prefect API which
of those ids it already holds (the stored event keeps its first occurrence time, so the lookup
covers every stored event, not the new message's minute) and skips them. The horizon is Prefect's
event retention (PREFECT_EVENTS_RETENTION_PERIOD, 7 days by default): a re-upload after its event
was pruned starts a second run. An SQS message is deleted once its new events are confirmed stored, or at once when it is no
S3 notification (a redelivery would fail the same way). Transient failures of the Prefect API or
SQS (refused connections, timeouts, 5xx) are logged and retried with a growing pause, never a crash;
anything else is one line. Every event sent and every duplicate skipped is one INFO line.
URIs with credentials or signatures are refused before anything; logs show URIs cleaned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_plus

from audiox_core.errors import InputError, PipelineError, TransientError
from audiox_core.reel.preflight import refuse_secret
from audiox_core.store.files import write_atomic
from audiox_core.store.s3 import list_objects, s3_error
from audiox_core.store.uri import public_uri
from audiox_core.video.probe import is_footage

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.events.filters import EventOccurredFilter

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENT = "audiox.footage.uploaded"
NAMESPACE = uuid.UUID("6b1e4a52-3f9e-4c5a-9d62-0c4f1d2b7a11")  # ours: ids of footage events
STORED_SINCE = datetime(2020, 1, 1, tzinfo=UTC)  # before any footage event of ours
PAGE = 50  # event ids per lookup


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    version: str  # the ETag (content), else the S3 version id, else the notification's sequencer
    size: int = 0
    occurred: datetime | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"{self.bucket}/{self.key}#{self.version}")


def uploads_in_notification(body: str) -> list[Upload]:
    """The ObjectCreated records of an S3 notification message (raw or wrapped in SNS)."""
    message = _json_object(body)
    if "Message" in message and "Records" not in message:  # SNS envelope
        message = _json_object(message["Message"])
    records = message.get("Records", [])
    if not isinstance(records, list):
        raise ValueError("'Records' is not a list")
    uploads = []
    for record in records:
        if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        version = str(obj.get("eTag") or "").strip('"') or obj.get("versionId") or obj.get("sequencer") or ""
        occurred = (
            datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")) if record.get("eventTime") else None
        )
        key = unquote_plus(obj["key"])
        if is_footage(key):  # outputs landing in the same bucket must not start runs of their own
            uploads.append(Upload(s3["bucket"]["name"], key, str(version), int(obj.get("size", 0)), occurred))
    return uploads


def _json_object(text: object) -> dict[str, Any]:
    """The JSON object ``text`` holds; ValueError for anything else (a list, a string, not JSON)."""
    if not isinstance(text, str):
        raise ValueError(f"a {type(text).__name__} where JSON text belongs")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"JSON {type(value).__name__}, not an object")
    return value


def footage_event(upload: Upload):
    from prefect.events import Event

    return Event(
        id=upload.event_id,
        event=EVENT,
        occurred=upload.occurred or datetime.now(UTC),
        resource={
            "prefect.resource.id": upload.uri,
            "prefect.resource.name": upload.key,
            "audiox.version": upload.version,
        },
        payload={"bucket": upload.bucket, "key": upload.key, "version": upload.version, "size": upload.size},
    )


def stored_window() -> EventOccurredFilter:
    """An occurred window that holds any stored footage event: from long before the first upload to
    a day ahead (S3 clocks may run ahead of the API's)."""
    from prefect.events.filters import EventOccurredFilter

    return EventOccurredFilter(since=STORED_SINCE, until=datetime.now(UTC) + timedelta(days=1))


async def _stored_ids(api: PrefectClient, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these event ids the Prefect API holds."""
    from prefect.events.filters import EventFilter, EventIDFilter

    found: set[uuid.UUID] = set()
    for start in range(0, len(ids), PAGE):
        chunk = ids[start : start + PAGE]
        page = await api.read_events(
            EventFilter(id=EventIDFilter(id=chunk), occurred=stored_window()), limit=len(chunk)
        )
        found |= {e.id for e in page.events}
    return found


async def emit_new(uploads: list[Upload], timeout_s: float = 60.0) -> list[Upload]:
    """Send the events of uploads the API does not hold yet and wait until it holds every one of
    them; returns the uploads sent (the others were duplicates, logged and skipped)."""
    from prefect.client.orchestration import get_client
    from prefect.events.clients import get_events_client

    unique = list({u.event_id: u for u in uploads}.values())
    if not unique:
        return []
    async with get_client() as api:
        stored = await _stored_ids(api, [u.event_id for u in unique])
        for u in unique:
            if u.event_id in stored:
                log.info("duplicate: %s (version %s) already has its event; skipped", u.uri, u.version)
        new = [u for u in unique if u.event_id not in stored]
        if not new:
            return []
        async with get_events_client() as client:
            for u in new:
                await client.emit(footage_event(u))
        waiting = {u.event_id for u in new}
        deadline = time.monotonic() + timeout_s
        while waiting := waiting - await _stored_ids(api, list(waiting)):
            if time.monotonic() > deadline:
                raise TransientError(
                    f"Prefect did not confirm {len(waiting)} footage event(s) within {timeout_s:.0f} s"
                )
            await asyncio.sleep(0.5)
    for u in new:
        log.info("event sent: %s (version %s)", u.uri, u.version)
    return new


@dataclass
class Backoff:
    """Retries of transient failures, each pause twice the last (``first_s`` up to ``max_s``), for
    as long as they last: a watcher waits out an API restart instead of dying."""

    first_s: float = 1.0
    max_s: float = 60.0

    def call(self, what: str, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``action(*args, **kwargs)``, retried while it fails transiently; ``what`` names it in logs and errors."""
        pause = self.first_s
        while True:
            try:
                return action(*args, **kwargs)
            except Exception as e:
                if not is_transient(e):
                    raise permanent(what, e) from e
                log.warning("%s failed (%s); retrying in %g s", what, one_line(e), pause)
            time.sleep(pause)
            pause = min(2 * pause, self.max_s)


def is_transient(e: BaseException) -> bool:
    """Whether retrying may help: refused or dropped connections, timeouts, 5xx and throttling."""
    import httpx
    from websockets.exceptions import WebSocketException

    if isinstance(e, httpx.HTTPStatusError):
        return e.response.status_code >= 500 or e.response.status_code == 429
    return isinstance(e, (TransientError, OSError, TimeoutError, httpx.TransportError, WebSocketException))


def permanent(what: str, e: Exception) -> Exception:
    """The error to stop with: ours as it is, an HTTP refusal as one line, anything else unchanged."""
    import httpx

    if isinstance(e, httpx.HTTPStatusError):
        return PipelineError(f"{what}: the Prefect API refused it ({one_line(e)})")
    return e


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _sqs_client():
    import boto3
    from botocore.config import Config

    return boto3.client("sqs", config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10))


def _sqs(queue_url: str, method: Callable[..., T], **kwargs: Any) -> T:
    """An SQS call on the queue, its botocore failure as our InputError or TransientError."""
    try:
        return method(QueueUrl=queue_url, **kwargs)
    except Exception as e:
        raise s3_error(queue_url, e) from e


def send_events(uploads: list[Upload]) -> list[Upload]:
    """``emit_new`` from synchronous code."""
    return asyncio.run(emit_new(uploads))


def watch_queue(queue_url: str, *, once: bool = False, wait_s: int = 20, backoff: Backoff | None = None) -> int:
    """Turn SQS notifications into events until stopped (or one receive with ``once``); returns events sent."""
    refuse_secret(queue_url, "queue")
    sqs = _sqs_client()
    backoff = backoff or Backoff()
    sent = 0
    while True:
        reply = backoff.call(
            f"receiving from {public_uri(queue_url)}",
            _sqs,
            queue_url,
            sqs.receive_message,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=120,
        )
        for message in reply.get("Messages", []):
            try:
                uploads = uploads_in_notification(message["Body"])
            except (ValueError, KeyError, TypeError) as e:  # deleted below: a redelivery would fail the same way
                log.warning("skipping an SQS message that is not an S3 notification (%s: %s)", type(e).__name__, e)
                uploads = []
            sent += len(backoff.call("sending footage events to Prefect", send_events, uploads))
            backoff.call(
                f"deleting a message from {public_uri(queue_url)}",
                _sqs,
                queue_url,
                sqs.delete_message,
                ReceiptHandle=message["ReceiptHandle"],
            )
        if once:
            return sent


def require_api() -> None:
    """The watcher sends events to a running Prefect server: without PREFECT_API_URL they would go to
    a temporary one that no deployment listens to."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise InputError(
            "watch: PREFECT_API_URL is not set; point it at the Prefect server running the s3-drop deployment"
        )


@contextmanager
def events_on_console(debug: bool) -> Iterator[None]:
    """The watcher's own INFO lines (events sent, duplicates skipped, retries) on the console, with
    their time; with ``debug`` the console shows every INFO line already."""
    if debug:
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the console handler of `main` would print the warnings a second time
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def poll_prefix(prefix_uri: str, state_file: Path, *, once: bool = False, interval_s: float = 60.0) -> int:
    """For buckets without notifications: list the prefix, emit events for objects new or changed
    since the last listing (ETags remembered in ``state_file``); returns events sent."""
    refuse_secret(prefix_uri, "watched prefix")
    seen = load_poll_state(state_file)
    backoff = Backoff()
    sent = 0
    while True:
        listing = backoff.call(f"listing {public_uri(prefix_uri)}", list_objects, prefix_uri)
        current = {o.uri: o for o in listing if is_footage(o.key)}
        fresh = [Upload(o.bucket, o.key, o.etag, o.size) for uri, o in current.items() if seen.get(uri) != o.etag]
        sent += len(backoff.call("sending footage events to Prefect", send_events, fresh))
        seen.update({u.uri: u.version for u in fresh})
        write_atomic(state_file, json.dumps(seen, indent=1).encode())  # a crash mid-write leaves the old state
        if once:
            return sent
        time.sleep(interval_s)


def load_poll_state(state_file: Path) -> dict[str, str]:
    """The ETag last seen of each polled object; a missing file is an empty state, and so is an
    unreadable one, with a warning: the events it would re-emit have ids the API holds already,
    so they are skipped as duplicates instead of the watcher failing on every restart."""
    try:
        seen = _json_object(state_file.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as e:
        log.warning("poll state %s is unreadable (%s); starting from an empty state", state_file, one_line(e))
        return {}
    return {uri: etag for uri, etag in seen.items() if isinstance(uri, str) and isinstance(etag, str)}
