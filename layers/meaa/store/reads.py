"""What the API reads back: a subject's timeline (mood counts per time bucket, from the BySubject index) and
an object's items, of one model version, a page at a time. Parameters arrive parsed and checked
(``meaa_api.query``).

Results are kept per model version (``schema``): a reader names the version it shows, counts only that
version's results, and counts per bucket the objects that have results of other versions only (never mixed in).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from meaa.errors import ObjectNotFound
from meaa.labels import MOODS

from .items import mood_counts
from .schema import (
    LEGACY_PREFIX,
    SUBJECT_INDEX,
    Attr,
    Kind,
    from_dynamodb,
    model_sort_prefix,
    object_partition_key,
)

# What the timeline needs of a RESULT item (the index projects all attributes; fetch only these). The table and
# index keys are fetched too: a page's cursor can then be any row's key.
_TIMELINE_ATTRIBUTES = (
    Attr.PK,
    Attr.SK,
    Attr.SUBJECT,
    Attr.SUBJECT_TIME,
    Attr.REVISION,
    Attr.OBJECT_CREATED_AT,
    Attr.KIND,
    Attr.MODEL_VERSION,
    Attr.MOOD_COUNTS,
    Attr.MOOD_COUNTS_ALL,
)
_INDEX_KEY = (Attr.PK, Attr.SK, Attr.SUBJECT, Attr.SUBJECT_TIME)
# The rows of one object revision share their subject_time; at most one per model version ever scored, so
# finishing a revision cut by a page boundary reads a handful of rows.
_MAX_REST_QUERIES = 10


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


def reads_as(item: dict[str, Any], model_version: str) -> bool:
    """Whether ``item`` is a result of ``model_version``: written by it, or a legacy item that no model wrote
    (a failure, or a video without a scored frame: no ``model_version``), which reads as every version's."""
    written_by = item.get(Attr.MODEL_VERSION)
    legacy = str(item.get(Attr.SK, "")).startswith(LEGACY_PREFIX)
    return written_by == model_version or (written_by is None and legacy)


@dataclass
class Bucket:
    """Faces seen in one time bucket, by mood, in one model version's results. A video counts its main face once
    per sampled frame. ``unscored`` counts the objects of the bucket that have results of other model versions
    only: they are in no other count."""

    start: datetime
    objects: int = 0
    failed: int = 0
    mood_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOODS, 0))
    unscored: int = 0

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
            "objects_without_result": self.unscored,
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
    """One page of a subject's timeline: the buckets its items fall in (empty ones left out)."""

    buckets: list[Bucket]
    items_read: int
    last_key: dict[str, Any] | None  # where the next page starts (a DynamoDB key); None at the end
    other_model_versions: list[str]  # model versions of the objects counted as without a result


@dataclass(frozen=True)
class ObjectPage:
    """One page of an object's items of one model version, Decimals converted for JSON."""

    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


def _index_key(item: dict[str, Any]) -> dict[str, Any]:
    return {name.value: item[name] for name in _INDEX_KEY}


def _rest_of_revision(
    table: QueryableTable, query: dict[str, Any], items: list[dict[str, Any]], last_key: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows after ``last_key`` that share the last row's subject_time (the other model versions' results of
    the revision a page boundary cut), and the key the next page starts after."""
    rest_query = {key: value for key, value in query.items() if key not in ("Limit", "ExclusiveStartKey")}
    rest_query["KeyConditionExpression"] = "#subject = :subject AND #subject_time = :tail"
    rest_query["ExpressionAttributeValues"] = {
        ":subject": query["ExpressionAttributeValues"][":subject"],
        ":tail": items[-1][Attr.SUBJECT_TIME],
    }
    rest: list[dict[str, Any]] = []
    start: dict[str, Any] | None = last_key
    for _ in range(_MAX_REST_QUERIES):
        page = table.query(**rest_query, ExclusiveStartKey=start)
        rest.extend(page.get("Items", []))
        start = page.get("LastEvaluatedKey") or None
        if start is None:
            break
    if start is not None:  # more rows of one subject_time than model versions exist: stop where reading stopped
        return rest, start
    return rest, (_index_key(rest[-1]) if rest else last_key)


def _revisions(items: Iterable[dict[str, Any]]) -> dict[tuple[Any, Any], list[dict[str, Any]]]:
    """RESULT rows grouped by object revision (every model version's result of it), in index order."""
    grouped: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for item in items:
        grouped.setdefault((item.get(Attr.PK), item.get(Attr.REVISION)), []).append(item)
    return grouped


def subject_timeline(
    table: QueryableTable,
    subject: str,
    time_range: TimeRange,
    model_version: str,
    limit: int,
    start_key: dict[str, Any] | None = None,
    include_unreliable: bool = False,
) -> TimelinePage:
    """One page of a subject's timeline in ``model_version``'s results, read from the BySubject index.

    Each object revision counts once: its result of ``model_version`` (see ``reads_as``), or, when it has
    none, in its bucket's ``unscored``. A page never cuts a revision's rows: one Query of ``limit`` rows, then
    the rest of the last revision's rows (a Query on its subject_time). A bucket can straddle two pages: a client
    adds up the counts of buckets with the same ``start``. Faces the quality gate marked unreliable are counted
    only with ``include_unreliable``.
    """
    lower, upper = time_range.index_bounds
    names = {f"#{name}": str(name) for name in _TIMELINE_ATTRIBUTES}
    query: dict[str, Any] = {
        "IndexName": SUBJECT_INDEX,
        "KeyConditionExpression": "#subject = :subject AND #subject_time BETWEEN :lower AND :upper",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":subject": subject, ":lower": lower, ":upper": upper},
        "ProjectionExpression": ", ".join(names),
        "Limit": limit,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    page = table.query(**query)
    items = list(page.get("Items", []))
    last_key = page.get("LastEvaluatedKey") or None
    if last_key and items:
        rest, last_key = _rest_of_revision(table, query, items, last_key)
        items.extend(rest)
    buckets: dict[datetime, Bucket] = {}
    others: set[str] = set()
    for rows in _revisions(items).values():
        created = _created_at(rows[0])
        if created is None or not time_range.contains(created):
            continue  # the key bounds are string bounds; the exact range is checked on the parsed time
        start = time_range.bucket_start(created)
        bucket = buckets.setdefault(start, Bucket(start))
        chosen = next((row for row in rows if reads_as(row, model_version)), None)
        if chosen is None:
            bucket.unscored += 1
            others.update(str(row[Attr.MODEL_VERSION]) for row in rows if row.get(Attr.MODEL_VERSION))
        else:
            bucket.add(chosen, include_unreliable)
    return TimelinePage(
        buckets=[buckets[start] for start in sorted(buckets)],
        items_read=len(items),
        last_key=last_key,
        other_model_versions=sorted(others),
    )


# A cursor that starts an object's legacy items (those written before results were kept per model version).
LEGACY_START = LEGACY_PREFIX


def _range_page(
    table: QueryableTable, pk: str, prefix: str, limit: int, start_key: dict[str, Any] | None, **filters: Any
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One Query page of the object's items whose sort key starts with ``prefix`` (``filters``: a
    FilterExpression with its names and values)."""
    query: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": pk, ":prefix": prefix, **filters.pop("values", {})},
        "Limit": limit,
        **filters,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    page = table.query(**query)
    return page.get("Items", []), page.get("LastEvaluatedKey") or None


def _legacy_items(
    table: QueryableTable, pk: str, model_version: str, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Legacy items that read as ``model_version``'s (a filter: a page may hold fewer than ``limit``)."""
    return _range_page(
        table,
        pk,
        LEGACY_PREFIX,
        limit,
        start_key,
        FilterExpression="#model = :model OR attribute_not_exists(#model) OR attribute_type(#model, :null)",
        ExpressionAttributeNames={"#model": Attr.MODEL_VERSION.value},
        values={":model": model_version, ":null": "NULL"},
    )


def object_items(
    table: QueryableTable,
    bucket: str,
    key: str,
    model_version: str,
    limit: int,
    start_key: dict[str, Any] | None = None,
) -> ObjectPage:
    """One page of an object's items of ``model_version`` (every revision: RESULT, and FRAME items of videos),
    in key order: first those under the model version's key prefix, then the legacy items that read as its.

    Raises ObjectNotFound when there is none.
    """
    pk = object_partition_key(bucket, key)
    found: list[dict[str, Any]] = []
    legacy_start = start_key
    if not start_key or not str(start_key.get(Attr.SK, "")).startswith(LEGACY_PREFIX):
        found, last_key = _range_page(table, pk, model_sort_prefix(model_version), limit, start_key)
        if last_key is not None or len(found) >= limit:
            return ObjectPage([from_dynamodb(item) for item in found], last_key or _legacy_start(pk))
        legacy_start = None
    elif start_key.get(Attr.SK) == LEGACY_START:
        legacy_start = None
    legacy, last_key = _legacy_items(table, pk, model_version, limit - len(found), legacy_start)
    found.extend(legacy)
    if not found and not start_key and last_key is None:
        raise ObjectNotFound(_not_found_message(table, pk, key, model_version))
    return ObjectPage(items=[from_dynamodb(item) for item in found], last_key=last_key)


def _legacy_start(pk: str) -> dict[str, str]:
    """The cursor of a page that ends with the model version's items: the legacy items are next."""
    return {Attr.PK.value: pk, Attr.SK.value: LEGACY_START}


def _not_found_message(table: QueryableTable, pk: str, key: str, model_version: str) -> str:
    """Say whether the object has results of another model version (one small Query, on the 404 path only)."""
    other = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": pk}, Limit=1, ProjectionExpression="pk"
    )
    if other.get("Items"):
        return f"{key!r} has no results of model version {model_version} yet, only of other versions: re-score it"
    return f"no results for {key!r}"
