"""What the API reads back: a subject's timeline (mood counts per time bucket, from the BySubject index) and
an object's items, one DynamoDB Query per page. Parameters arrive parsed and checked (``meaa_api.query``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from meaa.errors import ObjectNotFound
from meaa.labels import MOODS

from .items import mood_counts
from .schema import SUBJECT_INDEX, Attr, Kind, from_dynamodb, object_partition_key

# What the timeline needs of a RESULT item (the index projects all attributes; fetch only these).
_TIMELINE_ATTRIBUTES = (
    Attr.SUBJECT_TIME,
    Attr.OBJECT_CREATED_AT,
    Attr.KIND,
    Attr.MOOD_COUNTS,
    Attr.MOOD_COUNTS_ALL,
)


class QueryableTable(Protocol):
    """The part of boto3's ``dynamodb.Table`` the readers use (tests can see what is asked of DynamoDB)."""

    def query(self, **kwargs: Any) -> dict[str, Any]: ...


def iso_z(moment: datetime) -> str:
    """The format S3 event times have (``2026-11-26T08:00:00.000Z``), so bounds sort like subject_time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class TimeRange:
    """[start, end) cut into buckets of ``bucket`` counted from ``start``."""

    start: datetime
    end: datetime
    bucket: timedelta

    @property
    def index_bounds(self) -> tuple[str, str]:
        """The BySubject sort-key bounds that hold the range (string bounds: the exact range is checked after)."""
        return iso_z(self.start), iso_z(self.end)

    def bucket_start(self, moment: datetime) -> datetime:
        return self.start + ((moment - self.start) // self.bucket) * self.bucket

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _legacy_counts(item: dict[str, Any]) -> dict[str, int]:
    """Counts of items written before ``mood_counts`` existed (video shares x frames; image faces)."""
    if item.get(Attr.KIND) == Kind.VIDEO:
        frames = int(item.get(Attr.FRAMES_WITH_FACE) or 0)
        shares = item.get(Attr.MOOD_SHARES) or {}
        return {mood: round(float(shares.get(mood, 0)) * frames) for mood in MOODS}
    return mood_counts(face.get("mood") for face in item.get(Attr.FACES) or [])


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
    """When the item's object was created (UTC), from its stored ISO 8601 time; None when unreadable."""
    text = item.get(Attr.OBJECT_CREATED_AT) or str(item.get(Attr.SUBJECT_TIME, "")).split("#", 1)[0]
    try:
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class TimelinePage:
    """One Query's page of a subject's timeline: the buckets its items fall in (empty ones left out)."""

    buckets: list[Bucket]
    items_read: int
    last_key: dict[str, Any] | None  # DynamoDB's LastEvaluatedKey: where the next page starts; None at the end


@dataclass(frozen=True)
class ObjectPage:
    """One Query's page of an object's items, Decimals converted for JSON."""

    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


def subject_timeline(
    table: QueryableTable,
    subject: str,
    time_range: TimeRange,
    limit: int,
    start_key: dict[str, Any] | None = None,
    include_unreliable: bool = False,
) -> TimelinePage:
    """One page of a subject's timeline, read from the BySubject index.

    A bucket can straddle two pages: a client adds up ``mood_counts`` of buckets with the same ``start``.
    Faces the quality gate marked unreliable are counted only with ``include_unreliable``.
    """
    lower, upper = time_range.index_bounds
    names = {f"#{name}": str(name) for name in _TIMELINE_ATTRIBUTES}
    query: dict[str, Any] = {
        "IndexName": SUBJECT_INDEX,
        "KeyConditionExpression": "#subject = :subject AND #subject_time BETWEEN :lower AND :upper",
        "ExpressionAttributeNames": {"#subject": Attr.SUBJECT.value, **names},
        "ExpressionAttributeValues": {":subject": subject, ":lower": lower, ":upper": upper},
        "ProjectionExpression": ", ".join(names),
        "Limit": limit,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    page = table.query(**query)
    buckets: dict[datetime, Bucket] = {}
    for item in page.get("Items", []):
        created = _created_at(item)
        if created is None or not time_range.contains(created):
            continue  # the key bounds are string bounds; the exact range is checked on the parsed time
        start = time_range.bucket_start(created)
        buckets.setdefault(start, Bucket(start)).add(item, include_unreliable)
    return TimelinePage(
        buckets=[buckets[start] for start in sorted(buckets)],
        items_read=len(page.get("Items", [])),
        last_key=page.get("LastEvaluatedKey") or None,
    )


def object_items(
    table: QueryableTable, bucket: str, key: str, limit: int, start_key: dict[str, Any] | None = None
) -> ObjectPage:
    """One page of an object's items (every revision: RESULT, and FRAME items of videos), in key order.

    Raises ObjectNotFound when the first page is empty.
    """
    query: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": object_partition_key(bucket, key)},
        "Limit": limit,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    page = table.query(**query)
    found = [from_dynamodb(item) for item in page.get("Items", [])]
    if not found and not start_key:
        raise ObjectNotFound(f"no results for {key!r}")
    return ObjectPage(items=found, last_key=page.get("LastEvaluatedKey") or None)
