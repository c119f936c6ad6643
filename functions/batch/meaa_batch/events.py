"""What the batch function is handed -> ``meaa.store.ObjectRef``: S3 notifications, one record at a time, through
Powertools' typed event classes; and the re-score state machine's map items, one listed object each.

A malformed record (missing or mistyped fields, a record that is not an object) is reported as a
``MalformedRecord`` and skipped: it names nothing that can be scored, and retrying cannot fix it.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from meaa.store import ObjectRef, iso_z

# The ``source`` of the items infra/statemachines/rescore.asl.json's ItemSelector builds: {"source", "bucket",
# "object": one entry of the listObjectsV2 listing (Key, Etag, Size, LastModified), "since": ISO 8601 or null}.
RESCORE_SOURCE = "meaa.rescore"

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


@dataclass(frozen=True)
class ListedBeforeSince:
    """A listed object last modified before the re-score's ``since``: not scored."""

    key: str
    last_modified: str


def is_listed_object(event: Any) -> bool:
    """Whether ``event`` is a re-score map item rather than an S3 notification."""
    return isinstance(event, dict) and event.get("source") == RESCORE_SOURCE and "Records" not in event


def parse_time(value: Any, name: str) -> datetime:
    """A listing's or an operator's time: epoch seconds, ISO 8601 (no offset: UTC) or an HTTP date; in UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} is not a time: {value[:64]!r}") from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    raise ValueError(f"{name} must be epoch seconds or an ISO 8601 time")


def parse_listed_object(item: Any, incoming_prefix: str) -> ObjectRef | MalformedRecord | ListedBeforeSince:
    """One re-score map item -> the object revision it lists (its ETag names the revision; the drop bucket is
    not versioned), or why not. Step Functions' listing names the ETag ``Etag``; moto's, ``ETag``."""
    try:
        if not is_listed_object(item) or not isinstance(item.get("object"), dict):
            raise ValueError(f"a map item has source {RESCORE_SOURCE!r}, bucket and object")
        listed = item["object"]
        key = _text(listed.get("Key"), "object.Key")
        etag = _text(listed.get("Etag") or listed.get("ETag"), "object.Etag").strip('"')
        size = listed.get("Size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("object.Size must be a non-negative integer")
        if len(key.encode("utf-8")) > MAX_KEY_BYTES or len(etag) > MAX_REVISION_CHARS:
            raise ValueError("the key or ETag is longer than S3 allows")
        modified = parse_time(listed.get("LastModified"), "object.LastModified")
        since = item.get("since")
        if since is not None and modified < parse_time(since, "since"):
            return ListedBeforeSince(key, iso_z(modified))
        bucket = _text(item.get("bucket"), "bucket")
        # A revision never scored takes the listing's time; ObjectScorer prefers its first scoring's.
        return ObjectRef.from_key(bucket, key, incoming_prefix, etag=etag, size=size, created_at=iso_z(modified))
    except (ValueError, TypeError, OverflowError, OSError) as error:
        return MalformedRecord(-1, str(error) or type(error).__name__)
