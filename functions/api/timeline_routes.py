"""``GET /subjects/{subject}/moods`` and ``GET /objects/{key}``: the batch results, read from DynamoDB.

Included in the app only when ``features.ApiFeatures.results_routes`` is on (JWT auth or local
serving). The reading and bucketing is in ``timeline``; this module is the HTTP shape. The table is
``MEAA_TABLE_NAME`` (as for the batch function) and objects are looked up in the drop bucket ``MEAA_DROP_BUCKET``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

import schemas
import timeline

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorResponse, "description": "Bad from/to/bucket/limit, or a cursor this API did not return"},
    404: {"model": schemas.ErrorResponse, "description": "No results for that object"},
    503: {"model": schemas.ErrorResponse, "description": "No results table configured (MEAA_TABLE_NAME)"},
}

router = APIRouter(tags=["results"])


class MoodBucket(BaseModel):
    start: str = Field(description="Bucket start, UTC (buckets are counted from `from`)")
    end: str
    objects: int = Field(description="Images and videos created in the bucket (failures included)")
    failed: int = Field(description="Objects that could not be scored")
    face_count: int = Field(description="Faces seen: every face of an image; a video's main face once per sampled frame")
    mood_counts: dict[str, int]
    moods: dict[str, float] = Field(description="Share of the faces with each mood (sums to 1 when face_count > 0)")
    dominant_mood: str | None


class SubjectMoods(BaseModel):
    subject: str
    from_: str = Field(alias="from")
    to: str
    bucket_seconds: int
    buckets: list[MoodBucket] = Field(description="Buckets with at least one object, in time order")
    items_read: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class ObjectItems(BaseModel):
    bucket: str
    key: str
    items: list[dict[str, Any]]
    next_cursor: str | None


@lru_cache(maxsize=1)
def _table(table_name: str):
    return boto3.resource("dynamodb", config=_BOTO_CONFIG).Table(table_name)


def _results_table(request: Request):
    name = request.app.state.settings.store.table_name
    if not name:
        raise timeline.TimelineUnavailable("no results table is configured (set MEAA_TABLE_NAME)")
    return _table(name)


@router.get(
    "/subjects/{subject}/moods",
    response_model=SubjectMoods,
    responses=_ERRORS,
    summary="A subject's moods per time bucket, from the batch results (paged)",
)
def subject_moods(
    request: Request,
    subject: str,
    from_: str | None = Query(None, alias="from", description="ISO 8601; default: 24 h before `to`"),
    to: str | None = Query(None, description="ISO 8601, exclusive; default: now. Without an offset: UTC"),
    bucket: str = Query("5m", description="Bucket size: <n>m, <n>h or <n>d, from 1m to 1d"),
    limit: int | None = Query(None, description=f"Items read per page, 1..{timeline.MAX_PAGE_ITEMS}"),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
) -> dict[str, Any]:
    time_range = timeline.TimeRange.from_params(from_, to, bucket)
    answer = timeline.subject_timeline(_results_table(request), subject, time_range, timeline.check_limit(limit), cursor)
    request.state.face_count = sum(b["face_count"] for b in answer["buckets"])
    return answer


@router.get(
    "/objects/{key:path}",
    response_model=ObjectItems,
    responses=_ERRORS,
    summary="The result items of one uploaded object (every revision; a video's frames), paged",
)
def object_results(
    request: Request,
    key: str,
    limit: int | None = Query(None, description=f"Items per page, 1..{timeline.MAX_PAGE_ITEMS}"),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
) -> dict[str, Any]:
    drop_bucket = request.app.state.settings.store.drop_bucket
    if not drop_bucket:
        raise timeline.TimelineUnavailable("no drop bucket is configured (set MEAA_DROP_BUCKET)")
    return timeline.object_items(_results_table(request), drop_bucket, key, timeline.check_limit(limit), cursor)
