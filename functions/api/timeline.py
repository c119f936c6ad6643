"""Reading the batch scorer's results back: a subject's moods per time bucket, and one object's items.

Only DynamoDB Queries (never a Scan): the timeline queries the ``BySubject`` index (subject, subject_time),
an object's items are a Query on its partition key. The key layout is ``meaa.result_keys``, shared with
the batch writer; the integration test writes items through the batch handler, so a drift between the
two functions fails there too.

Paging is DynamoDB's: one Query per request with ``Limit``; its ``LastEvaluatedKey`` goes back to the
client as an opaque cursor (base64url JSON) that is checked before it is handed to DynamoDB again.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Protocol

from meaa.errors import InvalidCursor, InvalidQuery, ObjectNotFound, TimelineUnavailable
from meaa.labels import MOODS
from meaa.result_keys import SUBJECT_INDEX, object_partition_key
MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKET = timedelta(days=1)
MAX_BUCKETS = 10_080  # a week of 1-minute buckets
MAX_SUBJECT_CHARS = 256
MAX_KEY_BYTES = 1024  # S3's limit on key length
DEFAULT_PAGE_ITEMS = 500
MAX_PAGE_ITEMS = 1000
DEFAULT_RANGE = timedelta(days=1)
_BUCKET_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_BUCKET_PATTERN = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNENCODED_PLUS = re.compile(r"(?<=\d) (\d\d:?\d\d)$")
MAX_CURSOR_CHARS = 4096
# What the timeline needs of a RESULT item (the index projects all attributes; fetch only these).
_TIMELINE_ATTRIBUTES = ("subject_time", "object_created_at", "kind", "face_count", "faces", "frames_with_face", "mood_shares")


class QueryableTable(Protocol):
    """The part of boto3's ``dynamodb.Table`` used here (so tests can see what is asked of DynamoDB)."""

    def query(self, **kwargs: Any) -> dict[str, Any]: ...


# ---------------------------------------------------------------- parameters


def parse_time(value: str, name: str) -> datetime:
    """ISO 8601 date or date-time; without an offset it is UTC. Returned in UTC.

    A "+hh:mm" offset typed into a URL unencoded arrives as " hh:mm" (a query's "+" is a space): read back.
    """
    value = _UNENCODED_PLUS.sub(r"+\1", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidQuery(f"{name} must be an ISO 8601 date or date-time, e.g. 2026-11-26T08:00:00Z; got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_bucket(value: str) -> timedelta:
    """``<n>m``, ``<n>h`` or ``<n>d``, from 1 minute to 1 day."""
    match = _BUCKET_PATTERN.match(value or "")
    if not match:
        raise InvalidQuery(f"bucket must look like 1m, 5m, 1h or 1d (minutes, hours, days); got {value!r}")
    size = int(match.group(1)) * _BUCKET_UNITS[match.group(2)]
    if not MIN_BUCKET <= size <= MAX_BUCKET:
        raise InvalidQuery(f"bucket must be between 1m and 1d; got {value!r}")
    return size


def check_subject(subject: str) -> str:
    if not subject or len(subject) > MAX_SUBJECT_CHARS or "/" in subject:
        raise InvalidQuery(f"subject must be 1 to {MAX_SUBJECT_CHARS} characters without '/'")
    return subject


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_ITEMS
    if not 1 <= limit <= MAX_PAGE_ITEMS:
        raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE_ITEMS}; got {limit}")
    return limit


def iso_z(moment: datetime) -> str:
    """The format S3 event times have (``2026-11-26T08:00:00.000Z``), so bounds sort like subject_time."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class TimeRange:
    """[start, end) cut into buckets of ``bucket`` counted from ``start``."""

    start: datetime
    end: datetime
    bucket: timedelta

    @classmethod
    def from_params(cls, start: str | None, end: str | None, bucket: str, now: datetime | None = None) -> "TimeRange":
        size = parse_bucket(bucket)
        end_time = parse_time(end, "to") if end else (now or datetime.now(timezone.utc))
        start_time = parse_time(start, "from") if start else end_time - DEFAULT_RANGE
        if start_time >= end_time:
            raise InvalidQuery("from must be before to")
        count = math.ceil((end_time - start_time) / size)
        if count > MAX_BUCKETS:
            raise InvalidQuery(f"from..to holds {count} buckets of {bucket}; at most {MAX_BUCKETS}: use a larger bucket")
        return cls(start_time, end_time, size)

    def bucket_start(self, moment: datetime) -> datetime:
        return self.start + ((moment - self.start) // self.bucket) * self.bucket

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


# ---------------------------------------------------------------- cursors


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    text = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True, default=_json_default)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, expected: dict[str, str], required: tuple[str, ...]) -> dict[str, str]:
    """The ExclusiveStartKey in ``cursor``; its key attributes must be exactly ``required`` (strings),
    and those named in ``expected`` must have those values (the subject or object being queried)."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("cursor is not one this API returned")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidCursor("cursor is not one this API returned") from None
    if not isinstance(key, dict) or set(key) != set(required) or not all(isinstance(v, str) for v in key.values()):
        raise InvalidCursor("cursor is not one this API returned")
    for name, value in expected.items():
        if key[name] != value:
            raise InvalidCursor("cursor belongs to another query")
    return key


# ---------------------------------------------------------------- the timeline


@dataclass
class Bucket:
    """Faces seen in one time bucket, by mood. A video counts its main face once per sampled frame."""

    start: datetime
    objects: int = 0
    failed: int = 0
    mood_counts: dict[str, int] = field(default_factory=lambda: {mood: 0 for mood in MOODS})

    @property
    def face_count(self) -> int:
        return sum(self.mood_counts.values())

    def add(self, item: dict[str, Any]) -> None:
        self.objects += 1
        kind = item.get("kind")
        if kind == "failure":
            self.failed += 1
        elif kind == "video":
            frames = int(item.get("frames_with_face") or 0)
            shares = item.get("mood_shares") or {}
            # mood_shares are count / frames_with_face, so this gives the counts back.
            for mood in MOODS:
                self.mood_counts[mood] += round(float(shares.get(mood, 0)) * frames)
        else:
            for face in item.get("faces") or []:
                if face.get("mood") in self.mood_counts:
                    self.mood_counts[face["mood"]] += 1

    def to_dict(self, size: timedelta) -> dict[str, Any]:
        faces = self.face_count
        shares = {mood: (count / faces if faces else 0.0) for mood, count in self.mood_counts.items()}
        return {
            "start": iso_z(self.start),
            "end": iso_z(self.start + size),
            "objects": self.objects,
            "failed": self.failed,
            "face_count": faces,
            "mood_counts": dict(self.mood_counts),
            "moods": shares,
            # Ties go to the first mood in MOODS order; null when the bucket saw no face.
            "dominant_mood": max(MOODS, key=lambda mood: self.mood_counts[mood]) if faces else None,
        }


def _created_at(item: dict[str, Any]) -> datetime | None:
    text = item.get("object_created_at") or str(item.get("subject_time", "")).split("#", 1)[0]
    try:
        return parse_time(text, "object_created_at")
    except InvalidQuery:
        return None


def subject_timeline(
    table: QueryableTable, subject: str, time_range: TimeRange, limit: int, cursor: str | None
) -> dict[str, Any]:
    """One page of a subject's timeline: the buckets that the page's items fall in (empty ones left out).

    A bucket can straddle two pages: a client adds up ``mood_counts`` of buckets with the same ``start``.
    """
    check_subject(subject)
    lower, upper = iso_z(time_range.start), iso_z(time_range.end)
    query: dict[str, Any] = {
        "IndexName": SUBJECT_INDEX,
        "KeyConditionExpression": "#subject = :subject AND #subject_time BETWEEN :lower AND :upper",
        "ExpressionAttributeNames": {"#subject": "subject", "#subject_time": "subject_time", **_projection_names()},
        "ExpressionAttributeValues": {":subject": subject, ":lower": lower, ":upper": upper},
        "ProjectionExpression": ", ".join(f"#{name}" for name in _TIMELINE_ATTRIBUTES),
        "Limit": limit,
    }
    if cursor:
        start_key = decode_cursor(cursor, {"subject": subject}, ("pk", "sk", "subject", "subject_time"))
        if not lower <= start_key["subject_time"] <= upper:
            raise InvalidCursor("cursor belongs to another query")
        query["ExclusiveStartKey"] = start_key
    page = table.query(**query)
    buckets: dict[datetime, Bucket] = {}
    for item in page.get("Items", []):
        created = _created_at(item)
        if created is None or not time_range.contains(created):
            continue  # the key bounds are string bounds; the exact range is checked on the parsed time
        start = time_range.bucket_start(created)
        buckets.setdefault(start, Bucket(start)).add(item)
    return {
        "subject": subject,
        "from": iso_z(time_range.start),
        "to": iso_z(time_range.end),
        "bucket_seconds": int(time_range.bucket.total_seconds()),
        "buckets": [buckets[start].to_dict(time_range.bucket) for start in sorted(buckets)],
        "items_read": len(page.get("Items", [])),
        "next_cursor": encode_cursor(page.get("LastEvaluatedKey")),
    }


def _projection_names() -> dict[str, str]:
    return {f"#{name}": name for name in _TIMELINE_ATTRIBUTES if name != "subject_time"}


# ---------------------------------------------------------------- one object


def object_items(table: QueryableTable, bucket: str, key: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of an object's items (every revision: RESULT, and FRAME items of videos), in key order."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidQuery(f"key must be 1 to {MAX_KEY_BYTES} bytes")
    pk = object_partition_key(bucket, key)
    query: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": pk},
        "Limit": limit,
    }
    if cursor:
        query["ExclusiveStartKey"] = decode_cursor(cursor, {"pk": pk}, ("pk", "sk"))
    page = table.query(**query)
    found = [plain_json(item) for item in page.get("Items", [])]
    if not found and not cursor:
        raise ObjectNotFound(f"no results for {key!r}")
    return {"bucket": bucket, "key": key, "items": found, "next_cursor": encode_cursor(page.get("LastEvaluatedKey"))}


def plain_json(value: Any) -> Any:
    """DynamoDB's Decimals -> int or float, recursively, for a JSON answer."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain_json(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_json(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a cursor")
