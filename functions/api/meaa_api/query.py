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
from meaa.errors import InvalidCursor, InvalidQuery, ObjectNotFound
from meaa.object_keys import MAX_SUBJECT_CHARS, is_valid_subject
from meaa.store import Attr

MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKET = timedelta(days=1)
MAX_BUCKETS = 10_080  # a week of 1-minute buckets
MAX_KEY_CHARS = 1024  # S3's limit is 1024 bytes of UTF-8: a key of more characters cannot exist
MAX_KEY_BYTES = 1024
DEFAULT_PAGE_ITEMS = 500
MAX_PAGE_ITEMS = 1000
DEFAULT_RANGE = timedelta(days=1)
MAX_CURSOR_CHARS = 4096
# The OpenAPI document states these patterns; the checks below use the same ones (re.fullmatch, so a "$" never
# admits a trailing newline). Written for both regex dialects: ECMA (the document's) and Python's.
# <n>m from 1 to 1440 minutes, <n>h from 1 to 24 hours, or 1d: exactly the sizes from 1 minute to 1 day.
BUCKET_PATTERN = r"^(?:(?:[1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m|(?:[1-9]|1[0-9]|2[0-4])h|1d)$"
# What encode_cursor writes: URL-safe base64 without padding.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
# RFC 3339's date-time (T or t, Z or z or +hh:mm / -hh:mm, any fraction of a second; 60 only as a leap second),
# or a full-date alone (its midnight, UTC). Nothing else: a time without an offset is ambiguous (the phone's or
# UTC?), and ISO 8601's other forms (week dates, basic format) are not in the document.
_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt](?P<hms>[0-9]{2}:[0-9]{2}):(?P<second>[0-9]{2})(?P<fraction>\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2}))?"
)
_UNENCODED_PLUS = re.compile(r"(?<=[0-9]) ([0-9]{2}:[0-9]{2})$")
_BUCKET_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
# The key attributes of a page's last item, which a cursor carries back as DynamoDB's ExclusiveStartKey.
TIMELINE_CURSOR_KEYS = (Attr.PK, Attr.SK, Attr.SUBJECT, Attr.SUBJECT_TIME)
OBJECT_CURSOR_KEYS = (Attr.PK, Attr.SK)


# ---------------------------------------------------------------- parameters


def parse_time(value: str, name: str) -> datetime:
    """An RFC 3339 date-time, or a date alone (midnight UTC); returned in UTC.

    A "+hh:mm" offset typed into a URL unencoded arrives as " hh:mm" (a query's "+" is a space): read back.
    A leap second (":60") is read as the last microsecond of its minute.
    """
    value = _UNENCODED_PLUS.sub(r"+\1", value)
    refused = InvalidQuery(
        f"{name} must be an RFC 3339 date-time with an offset (e.g. 2026-11-26T08:00:00Z) or a date "
        f"(2026-11-26, midnight UTC), between years 1 and 9999 in UTC; got {value[:64]!r}"
    )
    match = _TIME.fullmatch(value)
    if not match:
        raise refused
    if match["hms"] is None:
        text = match["date"]
    else:
        leap = match["second"] == "60"
        second, fraction = ("59", ".999999") if leap else (match["second"], match["fraction"] or "")
        offset = match["offset"].upper()
        text = f"{match['date']}T{match['hms']}:{second}{fraction[:7]}{offset}"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise refused from None


def parse_bucket(value: str) -> timedelta:
    """``<n>m``, ``<n>h`` or ``<n>d``, from 1 minute to 1 day (``BUCKET_PATTERN``)."""
    if not re.fullmatch(BUCKET_PATTERN, value or ""):
        raise InvalidQuery(f"bucket must be 1m to 1440m, 1h to 24h, or 1d (e.g. 5m, 1h); got {value[:32]!r}")
    return int(value[:-1]) * _BUCKET_UNITS[value[-1]]


def parse_time_range(start: str | None, end: str | None, bucket: str, now: datetime | None = None) -> store.TimeRange:
    """``from``, ``to`` and ``bucket`` -> the range: ``to`` defaults to now, ``from`` to a day before ``to``."""
    size = parse_bucket(bucket)
    end_time = parse_time(end, "to") if end is not None else (now or datetime.now(UTC))
    try:
        start_time = parse_time(start, "from") if start is not None else end_time - DEFAULT_RANGE
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
    if not is_valid_subject(subject):
        raise InvalidQuery(
            f"subject must be 1 to {MAX_SUBJECT_CHARS} characters, without '/' or control characters, "
            "and not '.' or '..'"
        )
    return subject


def check_key(key: str) -> str:
    """1 to 1024 characters; a key longer than S3's 1024 bytes of UTF-8 is one no object can have (404)."""
    if not key or len(key) > MAX_KEY_CHARS:
        raise InvalidQuery(f"key must be 1 to {MAX_KEY_CHARS} characters")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ObjectNotFound(f"no object has that key: S3 keys are at most {MAX_KEY_BYTES} bytes of UTF-8")
    return key


def check_model_version(model_version: str) -> str:
    if not store.is_model_version(model_version):
        raise InvalidQuery("model_version must be 1 to 200 characters of letters, digits and _ . : + @ -")
    return model_version


def check_limit(limit: int) -> int:
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
    if not 0 < len(cursor) <= MAX_CURSOR_CHARS or not re.fullmatch(CURSOR_PATTERN, cursor):
        raise not_ours  # base64's decoder would skip characters outside its alphabet: refused first
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
    if cursor is None:
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
    if cursor is None:
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
