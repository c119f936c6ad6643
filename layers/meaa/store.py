"""The results store: how analyses are kept in DynamoDB and read back, in one place for both functions.

The batch function writes through ``ResultWriter``-style builders here (``image_item``, ``video_item``,
``failure_item``, ``frame_item``); the API's results routes read through ``subject_timeline`` and
``object_items``. Keys, attribute names (``Attr``), Decimal conversion both ways, video summaries and the
timeline's aggregation live nowhere else. No AWS SDK here: callers pass a boto3 ``Table`` (or anything with
its ``query``), so the core stays importable without AWS packages.

Key layout::

    pk = OBJECT#<bucket>/<key>
    sk = REV#<revision>#RESULT                  image result | video summary | failure (one per revision)
         REV#<revision>#FRAME#<ms, 10 digits>   one per sampled video frame
    GSI BySubject: subject (hash), subject_time = <object created, ISO 8601>#<key> (range);
         only RESULT items carry subject_time, so the index holds one row per object, not per frame.

``revision`` is the S3 version id when the bucket is versioned, else the ETag. A key attribute that would
pass DynamoDB's limits (an index sort key holds 1,024 bytes) is stored as a SHA-256 of its long part; the
item keeps the full S3 key in ``key``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import unquote_plus

from meaa.errors import InvalidCursor, InvalidQuery, ObjectNotFound
from meaa.labels import MOODS
from meaa.object_keys import split_layout

SUBJECT_INDEX = "BySubject"
NO_FACE = "none"  # the mood of a video segment without a face
MAX_INDEX_SORT_KEY_BYTES = 1024  # DynamoDB's limit for a sort key (table and index)
# DynamoDB items hold 400 KB; a face's stored answer is ~0.6 KB, so a crowd photo keeps its largest faces'
# details (counts always cover every face).
MAX_STORED_FACES = 100


class Attr(StrEnum):
    """Attribute names of the results table's items."""

    PK = "pk"
    SK = "sk"
    KIND = "kind"
    BUCKET = "bucket"
    KEY = "key"
    REVISION = "revision"
    ETAG = "etag"
    VERSION_ID = "version_id"
    SIZE_BYTES = "size_bytes"
    OBJECT_CREATED_AT = "object_created_at"
    PROCESSED_AT = "processed_at"
    SUBJECT = "subject"
    SESSION = "session"
    SUBJECT_TIME = "subject_time"
    EXPIRES_AT = "expires_at"  # the table's TTL attribute (epoch seconds)
    # analysis
    WIDTH = "width"
    HEIGHT = "height"
    FACE_COUNT = "face_count"
    MOOD = "mood"
    MOODS = "moods"
    FACES = "faces"
    FACES_STORED = "faces_stored"
    MODEL_VERSION = "model_version"
    # counts the timeline adds up: reliable faces only, and every face
    MOOD_COUNTS = "mood_counts"
    MOOD_COUNTS_ALL = "mood_counts_all"
    # video frames and summaries
    FRAME_MS = "frame_ms"
    FRAME_INDEX = "frame_index"
    FRAMES_SAMPLED = "frames_sampled"
    FRAMES_WITH_FACE = "frames_with_face"
    FRAMES_WITH_RELIABLE_FACE = "frames_with_reliable_face"
    MOOD_SHARES = "mood_shares"
    MEAN_MOODS = "mean_moods"
    TIMELINE = "timeline"
    # failures
    ERROR = "error"


class Kind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    FRAME = "frame"
    FAILURE = "failure"


class QueryableTable(Protocol):
    """The part of boto3's ``dynamodb.Table`` the readers use (tests can see what is asked of DynamoDB)."""

    def query(self, **kwargs: Any) -> dict[str, Any]: ...


# ---------------------------------------------------------------- keys


def object_partition_key(bucket: str, key: str) -> str:
    return f"OBJECT#{bucket}/{key}"


def _bounded(text: str, limit: int) -> str:
    """``text``, or a fixed-size digest of it when it would not fit ``limit`` UTF-8 bytes."""
    if len(text.encode("utf-8")) <= limit:
        return text
    return "SHA256#" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def result_sort_key(revision: str) -> str:
    return f"REV#{_bounded(revision, 256)}#RESULT"


def frame_sort_key(revision: str, time_ms: int) -> str:
    return f"REV#{_bounded(revision, 256)}#FRAME#{time_ms:010d}"


def subject_time(object_created_at: str, key: str) -> str:
    """The BySubject range key: the object's creation time (ISO 8601, UTC), then its key (hashed if long)."""
    room = MAX_INDEX_SORT_KEY_BYTES - len(object_created_at.encode("utf-8")) - 1
    return f"{object_created_at}#{_bounded(key, room)}"


@dataclass(frozen=True)
class ObjectRef:
    """One revision of an uploaded object, its key parsed as ``<incoming prefix><subject>/<session>/<file>``."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    size: int = 0
    created_at: str = ""
    subject: str | None = None
    session: str | None = None

    @classmethod
    def from_event_key(cls, bucket: str, event_key: str, incoming_prefix: str, **fields: Any) -> ObjectRef:
        """From an S3 event's URL-encoded key ("+" is a space); subject and session from the layout."""
        key = unquote_plus(event_key)
        relative = key[len(incoming_prefix) :] if key.startswith(incoming_prefix) else key
        subject, session = split_layout(relative) or (None, None)
        return cls(bucket=bucket, key=key, subject=subject, session=session, **fields)

    @property
    def revision(self) -> str:
        return self.version_id or self.etag

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def extension(self) -> str:
        name = self.file_name.lower()
        return name[name.rfind(".") :] if "." in name else ""

    @property
    def partition_key(self) -> str:
        return object_partition_key(self.bucket, self.key)

    @property
    def result_key(self) -> dict[str, str]:
        return {Attr.PK: self.partition_key, Attr.SK: result_sort_key(self.revision)}


# ---------------------------------------------------------------- values


def to_dynamodb(value: Any) -> Any:
    """Floats -> Decimal (rounded to 4 places; DynamoDB has no float), recursively; NaN/inf -> None."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, Decimal)):
        return value
    if isinstance(value, float):
        return Decimal(str(round(value, 4))) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_dynamodb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamodb(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return to_dynamodb(value.item())
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_dynamodb(value: Any) -> Any:
    """DynamoDB's Decimals -> int or float, recursively, for a JSON answer."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [from_dynamodb(v) for v in value]
    return value


# ---------------------------------------------------------------- items the batch function writes


@dataclass(frozen=True)
class ItemContext:
    """What every item of one scoring carries besides its own results."""

    obj: ObjectRef
    processed_at: str
    expires_at: int | None = None  # epoch seconds for the table's TTL; None keeps the item

    def base(self, sort_key: str, kind: Kind) -> dict[str, Any]:
        obj = self.obj
        item: dict[str, Any] = {
            Attr.PK: obj.partition_key,
            Attr.SK: sort_key,
            Attr.KIND: kind,
            Attr.BUCKET: obj.bucket,
            Attr.KEY: obj.key,
            Attr.REVISION: obj.revision,
            Attr.ETAG: obj.etag,
            Attr.SIZE_BYTES: obj.size,
            Attr.OBJECT_CREATED_AT: obj.created_at,
            Attr.PROCESSED_AT: self.processed_at,
        }
        if obj.version_id:
            item[Attr.VERSION_ID] = obj.version_id
        if obj.subject is not None:
            item[Attr.SUBJECT] = obj.subject
            item[Attr.SESSION] = obj.session
        if self.expires_at is not None:
            item[Attr.EXPIRES_AT] = self.expires_at
        return item

    def result(self, kind: Kind, attributes: dict[str, Any]) -> dict[str, Any]:
        """The one RESULT item of the revision; also its row in the BySubject index."""
        item = self.base(result_sort_key(self.obj.revision), kind)
        if self.obj.subject is not None:
            item[Attr.SUBJECT_TIME] = subject_time(self.obj.created_at, self.obj.key)
        item.update(attributes)
        return to_dynamodb(item)


def retention_expiry(processed_at: datetime, retention_days: int) -> int | None:
    """The TTL value for items kept ``retention_days`` (0 = keep forever)."""
    if retention_days <= 0:
        return None
    return int((processed_at + timedelta(days=retention_days)).timestamp())


def _is_reliable(face: dict[str, Any]) -> bool:
    return bool(face.get("reliable", True))


def _mood_counts(moods: Iterable[str | None]) -> dict[str, int]:
    counts = dict.fromkeys(MOODS, 0)
    for mood in moods:
        if mood in counts:
            counts[mood] += 1
    return counts


def analysis_attributes(analysis: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``Analysis.to_dict()`` worth storing (timings are operational, not results), with the
    mood counts of reliable faces and of every face; a crowd keeps its ``MAX_STORED_FACES`` largest faces."""
    faces = analysis["faces"]
    stored = sorted(faces, key=lambda face: face["box"]["w"] * face["box"]["h"], reverse=True)[:MAX_STORED_FACES]
    return {
        Attr.WIDTH: analysis["width"],
        Attr.HEIGHT: analysis["height"],
        Attr.FACE_COUNT: analysis["face_count"],
        Attr.MOOD: analysis["mood"],
        Attr.MOODS: analysis["moods"],
        Attr.FACES: stored if len(stored) < len(faces) else faces,
        Attr.FACES_STORED: len(stored),
        Attr.MOOD_COUNTS: _mood_counts(face["mood"] for face in faces if _is_reliable(face)),
        Attr.MOOD_COUNTS_ALL: _mood_counts(face["mood"] for face in faces),
        Attr.MODEL_VERSION: analysis["model_version"],
    }


def image_item(context: ItemContext, analysis: dict[str, Any]) -> dict[str, Any]:
    return context.result(Kind.IMAGE, analysis_attributes(analysis))


def failure_item(context: ItemContext, error: dict[str, str]) -> dict[str, Any]:
    """A bad object's RESULT item: ``error`` is ``MeaaError.to_dict()`` (code and message)."""
    return context.result(Kind.FAILURE, {Attr.ERROR: error})


def frame_item(context: ItemContext, time_ms: int, frame_index: int, analysis: dict[str, Any]) -> dict[str, Any]:
    item = context.base(frame_sort_key(context.obj.revision, time_ms), Kind.FRAME)
    item.update({Attr.FRAME_MS: time_ms, Attr.FRAME_INDEX: frame_index, **analysis_attributes(analysis)})
    return to_dynamodb(item)


@dataclass
class VideoSummary:
    """Mood counts, mean moods and a run-length timeline of the main face's mood over the sampled frames.

    A frame's main face is the analysis's (its largest reliable face); ``mood_counts_all`` counts the largest
    face of every frame with a face, reliable or not.
    """

    max_segments: int
    frames_sampled: int = 0
    frames_with_face: int = 0
    frames_with_reliable_face: int = 0
    mood_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOODS, 0))
    mood_counts_all: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOODS, 0))
    _mood_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MOODS, 0.0))
    timeline: list[dict[str, Any]] = field(default_factory=list)
    segments_dropped: int = 0

    def add(self, time_ms: int, analysis: dict[str, Any]) -> None:
        self.frames_sampled += 1
        faces = analysis["faces"]
        if faces:
            self.frames_with_face += 1
            largest = max(faces, key=lambda face: face["box"]["w"] * face["box"]["h"])
            self.mood_counts_all[largest["mood"]] += 1
        mood, moods = analysis["mood"], analysis["moods"]
        if mood is not None and moods is not None:
            self.frames_with_reliable_face += 1
            self.mood_counts[mood] += 1
            for name in MOODS:
                self._mood_sums[name] += float(moods[name])
        label = mood or NO_FACE
        if self.timeline and self.timeline[-1]["mood"] == label and not self.segments_dropped:
            self.timeline[-1]["end_ms"] = time_ms
        elif len(self.timeline) < self.max_segments and not self.segments_dropped:
            self.timeline.append({"start_ms": time_ms, "end_ms": time_ms, "mood": label})
        elif not self.timeline or self.timeline[-1]["mood"] != label or self.segments_dropped:
            self.segments_dropped += 1  # the stored timeline ends here; the counts go on

    def attributes(self) -> dict[str, Any]:
        counted = self.frames_with_reliable_face
        return {
            Attr.FRAMES_SAMPLED: self.frames_sampled,
            Attr.FRAMES_WITH_FACE: self.frames_with_face,
            Attr.FRAMES_WITH_RELIABLE_FACE: counted,
            Attr.MOOD_COUNTS: dict(self.mood_counts),
            Attr.MOOD_COUNTS_ALL: dict(self.mood_counts_all),
            # Share of the frames with a reliable main face that have each mood (sums to 1 when any).
            Attr.MOOD_SHARES: {m: (self.mood_counts[m] / counted if counted else 0.0) for m in MOODS},
            Attr.MEAN_MOODS: {m: (self._mood_sums[m] / counted if counted else 0.0) for m in MOODS},
            Attr.MOOD: max(MOODS, key=lambda m: self.mood_counts[m]) if counted else None,
            Attr.TIMELINE: self.timeline,
        }


def video_item(context: ItemContext, attributes: dict[str, Any]) -> dict[str, Any]:
    """The video's RESULT item: ``meaa.video_scoring.VideoScore.attributes()`` (summary, size, fps, truncation)."""
    return context.result(Kind.VIDEO, attributes)


# ---------------------------------------------------------------- reading: parameters


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
# What the timeline needs of a RESULT item (the index projects all attributes; fetch only these).
_TIMELINE_ATTRIBUTES = (
    Attr.SUBJECT_TIME,
    Attr.OBJECT_CREATED_AT,
    Attr.KIND,
    Attr.MOOD_COUNTS,
    Attr.MOOD_COUNTS_ALL,
)


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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class TimeRange:
    """[start, end) cut into buckets of ``bucket`` counted from ``start``."""

    start: datetime
    end: datetime
    bucket: timedelta

    @classmethod
    def from_params(cls, start: str | None, end: str | None, bucket: str, now: datetime | None = None) -> TimeRange:
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
            raise InvalidQuery(
                f"from..to holds {count} buckets of {bucket}; at most {MAX_BUCKETS}: use a larger bucket"
            )
        try:
            start_time + count * size  # the last bucket's end must be a date too
        except OverflowError:
            raise InvalidQuery("to is too close to the year 9999 for that bucket size") from None
        return cls(start_time, end_time, size)

    def bucket_start(self, moment: datetime) -> datetime:
        return self.start + ((moment - self.start) // self.bucket) * self.bucket

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


# ---------------------------------------------------------------- reading: cursors


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    text = json.dumps(from_dynamodb(last_evaluated_key), separators=(",", ":"), sort_keys=True)
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


# ---------------------------------------------------------------- reading: the timeline


def _legacy_counts(item: dict[str, Any]) -> dict[str, int]:
    """Counts of items written before ``mood_counts`` existed (video shares x frames; image faces)."""
    if item.get(Attr.KIND) == Kind.VIDEO:
        frames = int(item.get(Attr.FRAMES_WITH_FACE) or 0)
        shares = item.get(Attr.MOOD_SHARES) or {}
        return {mood: round(float(shares.get(mood, 0)) * frames) for mood in MOODS}
    return _mood_counts(face.get("mood") for face in item.get(Attr.FACES) or [])


@dataclass
class Bucket:
    """Faces seen in one time bucket, by mood. A video counts its main face once per sampled frame."""

    start: datetime
    objects: int = 0
    failed: int = 0
    mood_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOODS, 0))

    @property
    def face_count(self) -> int:
        return sum(self.mood_counts.values())

    def add(self, item: dict[str, Any], include_unreliable: bool = False) -> None:
        self.objects += 1
        if item.get(Attr.KIND) == Kind.FAILURE:
            self.failed += 1
            return
        counts = item.get(Attr.MOOD_COUNTS_ALL if include_unreliable else Attr.MOOD_COUNTS)
        for mood, count in (counts if counts is not None else _legacy_counts(item)).items():
            if mood in self.mood_counts:
                self.mood_counts[mood] += int(count)

    def to_dict(self, size: timedelta) -> dict[str, Any]:
        faces = self.face_count
        return {
            "start": iso_z(self.start),
            "end": iso_z(self.start + size),
            "objects": self.objects,
            "failed": self.failed,
            "face_count": faces,
            "mood_counts": dict(self.mood_counts),
            "moods": {mood: (count / faces if faces else 0.0) for mood, count in self.mood_counts.items()},
            # Ties go to the first mood in MOODS order; null when the bucket saw no face.
            "dominant_mood": max(MOODS, key=lambda mood: self.mood_counts[mood]) if faces else None,
        }


def _created_at(item: dict[str, Any]) -> datetime | None:
    text = item.get(Attr.OBJECT_CREATED_AT) or str(item.get(Attr.SUBJECT_TIME, "")).split("#", 1)[0]
    try:
        return parse_time(text, "object_created_at")
    except InvalidQuery:
        return None


def subject_timeline(
    table: QueryableTable,
    subject: str,
    time_range: TimeRange,
    limit: int,
    cursor: str | None,
    include_unreliable: bool = False,
) -> dict[str, Any]:
    """One page of a subject's timeline: the buckets that the page's items fall in (empty ones left out).

    A bucket can straddle two pages: a client adds up ``mood_counts`` of buckets with the same ``start``.
    Faces the quality gate marked unreliable are counted only with ``include_unreliable``.
    """
    check_subject(subject)
    lower, upper = iso_z(time_range.start), iso_z(time_range.end)
    names = {f"#{name}": str(name) for name in _TIMELINE_ATTRIBUTES}
    query: dict[str, Any] = {
        "IndexName": SUBJECT_INDEX,
        "KeyConditionExpression": "#subject = :subject AND #subject_time BETWEEN :lower AND :upper",
        "ExpressionAttributeNames": {"#subject": Attr.SUBJECT.value, **names},
        "ExpressionAttributeValues": {":subject": subject, ":lower": lower, ":upper": upper},
        "ProjectionExpression": ", ".join(names),
        "Limit": limit,
    }
    if cursor:
        start_key = decode_cursor(cursor, {Attr.SUBJECT: subject}, (Attr.PK, Attr.SK, Attr.SUBJECT, Attr.SUBJECT_TIME))
        if not lower <= start_key[Attr.SUBJECT_TIME] <= upper:
            raise InvalidCursor("cursor belongs to another query")
        query["ExclusiveStartKey"] = start_key
    page = table.query(**query)
    buckets: dict[datetime, Bucket] = {}
    for item in page.get("Items", []):
        created = _created_at(item)
        if created is None or not time_range.contains(created):
            continue  # the key bounds are string bounds; the exact range is checked on the parsed time
        start = time_range.bucket_start(created)
        buckets.setdefault(start, Bucket(start)).add(item, include_unreliable)
    return {
        "subject": subject,
        "from": iso_z(time_range.start),
        "to": iso_z(time_range.end),
        "bucket_seconds": int(time_range.bucket.total_seconds()),
        "include_unreliable": include_unreliable,
        "buckets": [buckets[start].to_dict(time_range.bucket) for start in sorted(buckets)],
        "items_read": len(page.get("Items", [])),
        "next_cursor": encode_cursor(page.get("LastEvaluatedKey")),
    }


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
        query["ExclusiveStartKey"] = decode_cursor(cursor, {Attr.PK: pk}, (Attr.PK, Attr.SK))
    page = table.query(**query)
    found = [from_dynamodb(item) for item in page.get("Items", [])]
    if not found and not cursor:
        raise ObjectNotFound(f"no results for {key!r}")
    return {"bucket": bucket, "key": key, "items": found, "next_cursor": encode_cursor(page.get("LastEvaluatedKey"))}
