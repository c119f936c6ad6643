"""The results routes' HTTP side: query parameters parsed and checked (a bad one is a 400 before DynamoDB is
asked), opaque page cursors, and the answers' shape around ``meaa.store``'s reads. Every answer names the model
version whose results it shows (one per answer: results of different versions are never mixed)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from meaa import store
from meaa.errors import InvalidCursor, InvalidQuery
from meaa.store import Attr

MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKET = timedelta(days=1)
MAX_BUCKETS = 10_080  # a week of 1-minute buckets
MAX_SUBJECT_CHARS = 256
MAX_KEY_BYTES = 1024  # S3's limit on key length
DEFAULT_PAGE_ITEMS = 500
MAX_PAGE_ITEMS = 1000
DEFAULT_RANGE = timedelta(days=1)
MAX_CURSOR_CHARS = 4096
_BUCKET_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_BUCKET_PATTERN = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNENCODED_PLUS = re.compile(r"(?<=\d) (\d\d:?\d\d)$")
# The key attributes of a page's last item, which a cursor carries back as DynamoDB's ExclusiveStartKey.
TIMELINE_CURSOR_KEYS = (Attr.PK, Attr.SK, Attr.SUBJECT, Attr.SUBJECT_TIME)
OBJECT_CURSOR_KEYS = (Attr.PK, Attr.SK)


# ---------------------------------------------------------------- parameters


def parse_time(value: str, name: str) -> datetime:
    """ISO 8601 date or date-time; without an offset it is UTC. Returned in UTC.

    A "+hh:mm" offset typed into a URL unencoded arrives as " hh:mm" (a query's "+" is a space): read back.
    """
    value = _UNENCODED_PLUS.sub(r"+\1", value)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidQuery(
            f"{name} must be an ISO 8601 date or date-time between years 1 and 9999 in UTC, "
            f"e.g. 2026-11-26T08:00:00Z; got {value[:64]!r}"
        ) from None


def parse_bucket(value: str) -> timedelta:
    """``<n>m``, ``<n>h`` or ``<n>d``, from 1 minute to 1 day."""
    match = _BUCKET_PATTERN.match(value or "")
    if not match:
        raise InvalidQuery(f"bucket must look like 1m, 5m, 1h or 1d (minutes, hours, days); got {value[:32]!r}")
    size = int(match.group(1)) * _BUCKET_UNITS[match.group(2)]
    if not MIN_BUCKET <= size <= MAX_BUCKET:
        raise InvalidQuery(f"bucket must be between 1m and 1d; got {value!r}")
    return size


def parse_time_range(start: str | None, end: str | None, bucket: str, now: datetime | None = None) -> store.TimeRange:
    """``from``, ``to`` and ``bucket`` -> the range: ``to`` defaults to now, ``from`` to a day before ``to``."""
    size = parse_bucket(bucket)
    end_time = parse_time(end, "to") if end else (now or datetime.now(UTC))
    try:
        start_time = parse_time(start, "from") if start else end_time - DEFAULT_RANGE
    except OverflowError:
        raise InvalidQuery("to is too early for the default range of one day: give from as well") from None
    if start_time >= end_time:
        raise InvalidQuery("from must be before to")
    count = math.ceil((end_time - start_time) / size)
    if count > MAX_BUCKETS:
        raise InvalidQuery(f"from..to holds {count} buckets of {bucket}; at most {MAX_BUCKETS}: use a larger bucket")
    try:
        start_time + count * size  # the last bucket's end must be a date too
    except OverflowError:
        raise InvalidQuery("to is too close to the year 9999 for that bucket size") from None
    return store.TimeRange(start_time, end_time, size)


def check_subject(subject: str) -> str:
    if not subject or len(subject) > MAX_SUBJECT_CHARS or "/" in subject:
        raise InvalidQuery(f"subject must be 1 to {MAX_SUBJECT_CHARS} characters without '/'")
    return subject


def check_key(key: str) -> str:
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidQuery(f"key must be 1 to {MAX_KEY_BYTES} bytes")
    return key


def check_model_version(model_version: str) -> str:
    if not store.is_model_version(model_version):
        raise InvalidQuery("model_version must be 1 to 200 characters of letters, digits and _ . : + @ -")
    return model_version


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_ITEMS
    if not 1 <= limit <= MAX_PAGE_ITEMS:
        raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE_ITEMS}; got {limit}")
    return limit


# ---------------------------------------------------------------- cursors


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    text = json.dumps(store.from_dynamodb(last_evaluated_key), separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, expected: dict[str, str], required: tuple[str, ...]) -> dict[str, str]:
    """The ExclusiveStartKey in ``cursor``; its key attributes must be exactly ``required`` (strings),
    and those named in ``expected`` must have those values (the subject or object being queried)."""
    not_ours = InvalidCursor("cursor is not one this API returned")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise not_ours
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error, RecursionError):  # RecursionError: nesting bombs
        raise not_ours from None
    if not isinstance(key, dict) or set(key) != set(required) or not all(isinstance(v, str) for v in key.values()):
        raise not_ours
    for name, value in expected.items():
        if key[name] != value:
            raise InvalidCursor("cursor belongs to another query")
    return key


def timeline_start_key(cursor: str | None, subject: str, time_range: store.TimeRange) -> dict[str, str] | None:
    """Where a timeline page starts: a cursor of this subject's timeline, inside this query's range."""
    if not cursor:
        return None
    start_key = decode_cursor(cursor, {Attr.SUBJECT: subject}, TIMELINE_CURSOR_KEYS)
    lower, upper = time_range.index_bounds
    if not lower <= start_key[Attr.SUBJECT_TIME] <= upper:
        raise InvalidCursor("cursor belongs to another query")
    return start_key


# ---------------------------------------------------------------- answers


def subject_moods(
    table: store.QueryableTable,
    subject: str,
    time_range: store.TimeRange,
    model_version: str,
    limit: int,
    cursor: str | None,
    include_unreliable: bool = False,
) -> dict[str, Any]:
    """One page of a subject's timeline in ``model_version``'s results, as the API answers it
    (``schemas.SubjectMoods``)."""
    check_subject(subject)
    check_model_version(model_version)
    start_key = timeline_start_key(cursor, subject, time_range)
    page = store.subject_timeline(table, subject, time_range, model_version, limit, start_key, include_unreliable)
    return {
        "subject": subject,
        "from": store.iso_z(time_range.start),
        "to": store.iso_z(time_range.end),
        "bucket_seconds": int(time_range.bucket.total_seconds()),
        "model_version": model_version,
        "include_unreliable": include_unreliable,
        "buckets": [bucket.to_dict(time_range.bucket) for bucket in page.buckets],
        "other_model_versions": page.other_model_versions,
        "items_read": page.items_read,
        "next_cursor": encode_cursor(page.last_key),
    }


def object_start_key(cursor: str | None, bucket: str, key: str, model_version: str) -> dict[str, str] | None:
    """Where an object page starts: a cursor of this object, inside this model version's items or the legacy
    ones (``meaa.store.object_items`` reads them in that order)."""
    if not cursor:
        return None
    start_key = decode_cursor(cursor, {Attr.PK: store.object_partition_key(bucket, key)}, OBJECT_CURSOR_KEYS)
    if not start_key[Attr.SK].startswith((store.model_sort_prefix(model_version), store.LEGACY_PREFIX)):
        raise InvalidCursor("cursor belongs to another query")
    return start_key


def object_results(
    table: store.QueryableTable, bucket: str, key: str, model_version: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    """One page of an object's items of ``model_version`` as the API answers it (``schemas.ObjectItems``)."""
    check_key(key)
    check_model_version(model_version)
    start_key = object_start_key(cursor, bucket, key, model_version)
    page = store.object_items(table, bucket, key, model_version, limit, start_key)
    return {
        "bucket": bucket,
        "key": key,
        "model_version": model_version,
        "items": page.items,
        "next_cursor": encode_cursor(page.last_key),
    }
