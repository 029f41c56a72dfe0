"""``audiox-studio watch``: S3 uploads become Prefect events that start the s3-drop deployment.

Queue mode reads S3 ObjectCreated notifications from SQS (also wrapped in SNS); polling mode lists a
prefix and compares ETags with what it saw before. Each object version gives one event,
``audiox.footage.uploaded``, whose id is derived from bucket, key and version: sent twice, it is
still one event, so the same object version never starts two runs. An SQS message is deleted only
after its events are confirmed by the Prefect API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from audiox_core.errors import PipelineError
from audiox_core.media.probe import is_footage
from audiox_core.s3 import list_objects, s3_error

log = logging.getLogger(__name__)

EVENT = "audiox.footage.uploaded"
NAMESPACE = uuid.UUID("6b1e4a52-3f9e-4c5a-9d62-0c4f1d2b7a11")  # ours: ids of footage events


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    version: str  # the S3 version id, else the ETag, else the notification's sequencer
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
        version = obj.get("versionId") or obj.get("eTag") or obj.get("sequencer") or ""
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


async def _emit_confirmed(uploads: list[Upload], timeout_s: float = 60.0) -> None:
    """Send the events and wait until the API has stored every one of them."""
    from prefect.client.orchestration import get_client
    from prefect.events.clients import get_events_client
    from prefect.events.filters import EventFilter, EventIDFilter, EventOccurredFilter

    if not uploads:
        return
    events = [footage_event(u) for u in uploads]
    async with get_events_client() as client:
        for event in events:
            await client.emit(event)
    wanted = {e.id for e in events}
    since = min(e.occurred for e in events) - timedelta(minutes=1)
    deadline = time.monotonic() + timeout_s
    async with get_client() as api:
        while True:
            page = await api.read_events(
                EventFilter(id=EventIDFilter(id=list(wanted)), occurred=EventOccurredFilter(since=since)),
                limit=len(wanted),
            )
            wanted -= {e.id for e in page.events}
            if not wanted:
                return
            if time.monotonic() > deadline:
                raise PipelineError(f"Prefect did not confirm {len(wanted)} footage event(s) within {timeout_s:.0f} s")
            await asyncio.sleep(0.5)


def watch_queue(queue_url: str, *, once: bool = False, wait_s: int = 20) -> int:
    """Turn SQS notifications into events until stopped (or one receive with ``once``); returns events sent."""
    import boto3

    sqs = boto3.client("sqs")
    sent = 0
    while True:
        try:
            reply = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s, VisibilityTimeout=120
            )
        except Exception as e:
            raise s3_error(queue_url, e) from e
        for message in reply.get("Messages", []):
            try:
                uploads = uploads_in_notification(message["Body"])
            except (ValueError, KeyError, TypeError) as e:  # deleted below: a redelivery would fail the same way
                log.warning("skipping an SQS message that is not an S3 notification (%s: %s)", type(e).__name__, e)
                uploads = []
            asyncio.run(_emit_confirmed(uploads))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            sent += len(uploads)
            for u in uploads:
                log.info("event for %s (version %s)", u.uri, u.version)
        if once:
            return sent


def poll_prefix(prefix_uri: str, state_file: Path, *, once: bool = False, interval_s: float = 60.0) -> int:
    """For buckets without notifications: list the prefix, emit events for objects new or changed
    since the last listing (ETags remembered in ``state_file``); returns events sent."""
    seen: dict[str, Any] = json.loads(state_file.read_text()) if state_file.is_file() else {}
    sent = 0
    while True:
        current = {o.uri: o for o in list_objects(prefix_uri) if is_footage(o.key)}
        fresh = [Upload(o.bucket, o.key, o.etag, o.size) for uri, o in current.items() if seen.get(uri) != o.etag]
        asyncio.run(_emit_confirmed(fresh))
        seen.update({u.uri: u.version for u in fresh})
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(seen, indent=1))
        sent += len(fresh)
        if once:
            return sent
        time.sleep(interval_s)
