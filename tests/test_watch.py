"""The drop watcher's reading of S3 notifications: footage uploads out, anything else a ValueError-like
refusal that the watcher logs and deletes (it must never crash on a message it cannot read)."""

import asyncio
import json
import logging
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from audiox_core.errors import InputError
from cli.watch import Backoff, Upload, load_poll_state, poll_prefix, uploads_in_notification, watch_queue

FAST = Backoff(first_s=0.2, max_s=1.0)


def notification(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def created(key: str, version: str = "v1") -> dict:
    return {
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-12-02T10:00:00.000Z",
        "s3": {"bucket": {"name": "footage"}, "object": {"key": key, "size": 10, "versionId": version}},
    }


def test_footage_uploads_are_read_from_raw_and_sns_wrapped_notifications() -> None:
    raw = notification(
        created("reels/day+1/reel1.mp4"), created("reels/notes.txt"), {"eventName": "ObjectRemoved:Delete"}
    )
    uploads = uploads_in_notification(raw)
    assert [(u.bucket, u.key, u.version) for u in uploads] == [("footage", "reels/day 1/reel1.mp4", "v1")]
    assert uploads_in_notification(json.dumps({"Type": "Notification", "Message": raw})) == uploads


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "42",
        json.dumps({"Message": "[]"}),
        json.dumps({"Message": 7}),
        json.dumps({"Records": {"a": 1}}),
    ],
)
def test_a_body_that_is_no_notification_object_is_a_value_error(body: str) -> None:
    with pytest.raises(ValueError):
        uploads_in_notification(body)


def stored_as(**obj: str) -> dict:
    """An ObjectCreated record of footage/reels/reel1.mp4 whose object has exactly these fields."""
    record = created("reels/reel1.mp4")
    record["s3"]["object"] = {"key": "reels/reel1.mp4", "size": 10, **obj}
    return record


def test_one_content_is_one_event_id_whichever_version_id_and_mode() -> None:
    """Expected: the ETag is the version (quotes stripped), so a byte-identical re-upload with a new
    version id has the first upload's event id, which is also the id polling gives that object; a
    record without an ETag falls back to the version id, then the sequencer."""
    (a,), (b,), (c,) = (
        uploads_in_notification(notification(stored_as(versionId=version, eTag=etag)))
        for version, etag in (("v-a", '"e1"'), ("v-b", "e1"), ("v-c", "e2"))
    )
    assert a.version == b.version == "e1" and a.event_id == b.event_id != c.event_id
    assert a.event_id == Upload("footage", "reels/reel1.mp4", "e1").event_id  # poll mode: key and ETag
    (d,), (e,) = (
        uploads_in_notification(notification(stored_as(**o))) for o in ({"versionId": "v-a"}, {"sequencer": "0A1B"})
    )
    assert (d.version, e.version) == ("v-a", "0A1B")


@pytest.mark.parametrize(
    "uri",
    ["s3://AKIAEXAMPLE:SECRETKEY@footage/incoming/", "https://footage.s3.amazonaws.com/in/?X-Amz-Signature=SECRETKEY"],
)
def test_a_secret_bearing_uri_is_refused_before_anything(uri: str, tmp_path, caplog) -> None:
    """Expected: polling or reading a queue at a URI with credentials or a signature is one InputError
    naming the URI cleaned; nothing is listed, received, logged or written first."""
    state = tmp_path / "poll-state.json"
    for watch in (lambda: poll_prefix(uri, state, once=True), lambda: watch_queue(uri, once=True, backoff=FAST)):
        with pytest.raises(InputError, match="with credentials or a signature is refused") as e:
            watch()
        assert "SECRETKEY" not in str(e.value) and "\n" not in str(e.value)
    assert not state.exists() and "SECRETKEY" not in caplog.text


@pytest.mark.parametrize("text", ['{"s3://footage/a.mp4": "e1", "s3://foo', "[1]", ""])
def test_an_unreadable_poll_state_is_a_warning_and_an_empty_state(text: str, tmp_path, caplog) -> None:
    """Expected: a state file cut short by a crash, or not an object, is logged and read as empty
    (the watcher starts instead of failing on every restart under its supervisor)."""
    state = tmp_path / "poll-state.json"
    state.write_text(text)
    with caplog.at_level(logging.WARNING, logger="cli.watch"):
        assert load_poll_state(state) == {}
    assert f"poll state {state} is unreadable" in caplog.text and "starting from an empty state" in caplog.text
    assert load_poll_state(tmp_path / "missing.json") == {}


@pytest.mark.integration
def test_polling_after_a_corrupt_state_sends_no_second_event(prefect_api, s3_endpoint, tmp_path, caplog) -> None:
    """Expected: the first listing sends one event and leaves a complete JSON state; with that state
    corrupted, the next listing starts empty, sends the event again under the same id and the API's
    copy makes it a logged duplicate: 0 sent, one stored event."""
    import boto3

    bucket = f"drops-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("s3").put_object(Bucket=bucket, Key="incoming/reel1.mp4", Body=b"footage")
    state = tmp_path / "poll-state.json"
    assert poll_prefix(f"s3://{bucket}/incoming/", state, once=True) == 1
    (etag,) = json.loads(state.read_text()).values()
    state.write_text(state.read_text()[:5])
    with caplog.at_level(logging.INFO, logger="cli.watch"):
        assert poll_prefix(f"s3://{bucket}/incoming/", state, once=True) == 0
    assert "starting from an empty state" in caplog.text and "duplicate: " in caplog.text
    assert len(stored_events(Upload(bucket, "incoming/reel1.mp4", etag).event_id)) == 1


def test_records_that_are_not_objects_are_ignored() -> None:
    assert uploads_in_notification(json.dumps({"Records": ["x", 3, None]})) == []


def test_a_malformed_record_is_a_type_or_key_error_the_watcher_catches() -> None:
    with pytest.raises((KeyError, TypeError)):
        uploads_in_notification(notification({"eventName": "ObjectCreated:Put", "s3": "oops"}))


# The watcher against a real Prefect API (the test harness) and a real SQS queue (moto_server).


def sent_at(key: str, when: datetime, version: str = "v1") -> str:
    """An S3 notification of footage/``key`` at ``version``, sent at ``when``."""
    record = created(key, version)
    record["eventTime"] = when.isoformat().replace("+00:00", "Z")
    return notification(record)


@pytest.fixture
def queue(s3_endpoint) -> str:
    import boto3

    return boto3.client("sqs").create_queue(QueueName=f"drops-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def send(queue: str, body: str) -> None:
    import boto3

    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=body)


def queue_is_empty(queue: str) -> bool:
    import boto3

    return "Messages" not in boto3.client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=1)


def stored_events(event_id: uuid.UUID) -> list:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventIDFilter

    from cli.watch import stored_window

    async def read() -> list:
        async with get_client() as api:
            page = await api.read_events(
                EventFilter(id=EventIDFilter(id=[event_id]), occurred=stored_window()), limit=50
            )
            return page.events

    return asyncio.run(read())


@pytest.mark.integration
def test_a_reupload_of_the_same_version_is_acknowledged_without_a_second_event(prefect_api, queue, caplog) -> None:
    """Expected: the first notification gives one event; the same object version notified again
    hours later (a byte-identical re-upload) is logged as a duplicate, its message deleted, no second
    event, and the watcher returns normally; the stored event keeps its first occurrence time."""
    key = f"incoming/{uuid.uuid4().hex[:8]}.mp4"  # the harness is shared by the session
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    send(queue, sent_at(key, first))
    with caplog.at_level(logging.INFO, logger="cli.watch"):
        assert watch_queue(queue, once=True, wait_s=1, backoff=FAST) == 1
        send(queue, sent_at(key, datetime.now(UTC)))
        assert watch_queue(queue, once=True, wait_s=1, backoff=FAST) == 0
    assert queue_is_empty(queue)
    (upload,) = uploads_in_notification(sent_at(key, first))
    events = stored_events(upload.event_id)
    assert [e.occurred for e in events] == [first]  # one event: a deployment trigger sees one, starts one run
    lines = [r.getMessage() for r in caplog.records if r.name == "cli.watch"]
    assert lines == [
        f"event sent: s3://footage/{key} (version v1)",
        f"duplicate: s3://footage/{key} (version v1) already has its event; skipped",
    ]


@pytest.mark.integration
def test_a_malformed_message_is_deleted_and_the_watcher_goes_on(prefect_api, queue, caplog) -> None:
    """Expected: a body that is no JSON object is logged and deleted; the good message after it
    still gives its event."""
    key = f"incoming/{uuid.uuid4().hex[:8]}.mp4"
    send(queue, "[1, 2]")
    send(queue, sent_at(key, datetime.now(UTC)))
    sent = 0
    for _ in range(3):  # moto may hand out the two messages in separate receives
        sent += watch_queue(queue, once=True, wait_s=1, backoff=FAST)
    assert sent == 1 and queue_is_empty(queue)
    assert (
        "skipping an SQS message that is not an S3 notification (ValueError: JSON list, not an object)" in caplog.text
    )


class LateProxy:
    """A TCP forwarder to ``target`` that starts listening only ``delay_s`` after it is made: until
    then every connection to its port is refused, as with a Prefect API being restarted."""

    def __init__(self, target: tuple[str, int], delay_s: float) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.target = target
        self.timer = threading.Timer(delay_s, self.serve)
        self.timer.daemon = True
        self.timer.start()

    def serve(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self.accept, args=(listener,), daemon=True).start()

    def accept(self, listener: socket.socket) -> None:
        while True:
            client, _ = listener.accept()
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # the other side closed: the connection is over
        finally:
            sink.close()


@pytest.mark.integration
def test_an_api_that_is_down_at_first_is_retried_until_it_answers(prefect_api, queue, caplog) -> None:
    """Expected: while the Prefect API refuses connections, the watcher logs a warning and retries
    with a pause; once it answers, the event is sent and the message deleted."""
    from urllib.parse import urlparse

    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = urlparse(PREFECT_API_URL.value())
    proxy = LateProxy((api.hostname, api.port), delay_s=2.0)
    key = f"incoming/{uuid.uuid4().hex[:8]}.mp4"
    send(queue, sent_at(key, datetime.now(UTC)))
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{proxy.port}{api.path}"}):
        assert watch_queue(queue, once=True, wait_s=1, backoff=FAST) == 1
    assert queue_is_empty(queue)
    assert "sending footage events to Prefect failed (ConnectError" in caplog.text and "retrying in" in caplog.text
    (upload,) = uploads_in_notification(sent_at(key, datetime.now(UTC)))
    assert len(stored_events(upload.event_id)) == 1


def test_a_refusal_that_retrying_cannot_mend_is_one_line(queue) -> None:
    """Expected: a queue that does not exist is an InputError naming it, not a retry loop."""
    from audiox_core.errors import InputError

    missing = queue.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(InputError, match=r"^http://127\.0\.0\.1:\d+/\d+/no-such-queue: "):
        watch_queue(missing, once=True, wait_s=0, backoff=FAST)


@pytest.mark.integration
def test_the_watch_command_prints_one_line_per_event(prefect_api, queue, capsys) -> None:
    """Expected: without --debug, `audiox-studio watch` still shows the event it sent and the count."""
    from cli.main import main

    key = f"incoming/{uuid.uuid4().hex[:8]}.mp4"
    send(queue, sent_at(key, datetime.now(UTC)))
    assert main(["watch", "--queue", queue, "--once"]) == 0
    out, err = capsys.readouterr()
    assert out == "1 footage event(s) sent\n"
    assert f"INFO event sent: s3://footage/{key} (version v1)" in err
