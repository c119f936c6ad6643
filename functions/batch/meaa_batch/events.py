"""S3 notifications -> ``meaa.store.ObjectRef``, one record at a time, through Powertools' typed event classes.

A malformed record (missing or mistyped fields, a record that is not an object) is reported as a
``MalformedRecord`` and skipped: it names nothing that can be scored, and retrying cannot fix it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from meaa.store import ObjectRef

# A version id and an ETag are short in S3 (an ETag is 32 hex digits, "-<parts>" for multipart uploads).
MAX_REVISION_CHARS = 1024
MAX_KEY_BYTES = 1024  # S3's own limit: a longer key cannot name an object


@dataclass(frozen=True)
class MalformedRecord:
    index: int
    reason: str


@dataclass(frozen=True)
class SkippedRecord:
    """A well-formed record of an event this function does not score (e.g. a deletion)."""

    index: int
    event_name: str


@dataclass(frozen=True)
class EventRecord:
    """One record of a notification: what it names (or why nothing), and S3's request id for the upload
    (``responseElements.x-amz-request-id``, the id S3's own logs and CloudTrail show), the logs' correlation id."""

    parsed: ObjectRef | MalformedRecord | SkippedRecord
    request_id: str | None = None


def _text(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def parse_record(index: int, raw: Any, incoming_prefix: str) -> ObjectRef | MalformedRecord | SkippedRecord:
    if not isinstance(raw, dict):
        return MalformedRecord(index, f"record is {type(raw).__name__}, not an object")
    record = S3EventRecord(raw)
    try:
        event_name = _text(record.get("eventName"), "eventName")
        if not event_name.startswith("ObjectCreated"):
            return SkippedRecord(index, event_name)
        s3 = record.get("s3")
        if not isinstance(s3, dict) or not isinstance(s3.get("bucket"), dict) or not isinstance(s3.get("object"), dict):
            raise ValueError("s3.bucket and s3.object must be objects")
        obj = record.s3.get_object
        size = obj.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("s3.object.size must be a non-negative integer")
        etag = _text(obj.get("eTag") or obj.get("etag"), "s3.object.eTag", optional=True) or ""
        version_id = _text(obj.get("versionId"), "s3.object.versionId", optional=True)
        if len(etag) > MAX_REVISION_CHARS or len(version_id or "") > MAX_REVISION_CHARS:
            raise ValueError("s3.object.eTag or versionId is too long")
        ref = ObjectRef.from_event_key(
            _text(record.s3.bucket.get("name"), "s3.bucket.name"),
            _text(obj.get("key"), "s3.object.key"),
            incoming_prefix,
            etag=etag.strip('"'),
            # "null" is the version id of objects written while versioning was off or suspended.
            version_id=None if version_id in (None, "null") else version_id,
            size=size,
            created_at=_text(record.get("eventTime"), "eventTime", optional=True) or "",
        )
        if len(ref.key.encode("utf-8")) > MAX_KEY_BYTES or len(ref.bucket) > 63:
            raise ValueError("the key or bucket name is longer than S3 allows")
        return ref
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return MalformedRecord(index, str(error) or type(error).__name__)


def records_of(event: Any, incoming_prefix: str) -> Iterator[EventRecord]:
    """Each record of an S3 notification, parsed; a malformed event yields one ``MalformedRecord``."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        yield EventRecord(MalformedRecord(-1, "the event has no Records list"))
        return
    for index, raw in enumerate(records):
        elements = raw.get("responseElements") if isinstance(raw, dict) else None
        request_id = elements.get("x-amz-request-id") if isinstance(elements, dict) else None
        yield EventRecord(
            parse_record(index, raw, incoming_prefix), request_id if isinstance(request_id, str) else None
        )
