"""The drop watcher's reading of S3 notifications: footage uploads out, anything else a ValueError-like
refusal that the watcher logs and deletes (it must never crash on a message it cannot read)."""

import json

import pytest

from cli.watch import uploads_in_notification


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


def test_records_that_are_not_objects_are_ignored() -> None:
    assert uploads_in_notification(json.dumps({"Records": ["x", 3, None]})) == []


def test_a_malformed_record_is_a_type_or_key_error_the_watcher_catches() -> None:
    with pytest.raises((KeyError, TypeError)):
        uploads_in_notification(notification({"eventName": "ObjectCreated:Put", "s3": "oops"}))
