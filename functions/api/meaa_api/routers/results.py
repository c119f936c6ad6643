"""``GET /subjects/{subject}/moods`` and ``GET /objects/{key}``: the batch results, read from DynamoDB.

Included only when ``ApiSettings.results_routes`` is on (JWT auth or local serving). Reading and bucketing
are ``meaa.store``'s (the batch function writes through it too); parameters, cursors and the answers' shape
are ``meaa_api.query``'s; this module declares the routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from meaa import store
from meaa.config import Settings
from meaa.errors import InvalidCursor, InvalidQuery, ObjectNotFound, TimelineUnavailable
from meaa_aws.clients import dynamodb_table

from .. import query, schemas
from ..dependencies import settings
from ..errors import error_responses

router = APIRouter(tags=["results"])


def results_table(request: Request, current: Settings = Depends(settings)) -> Any:
    """The results table's client, made on first use and kept by the app (a warm container reuses it)."""
    if not current.store.table_name:
        raise TimelineUnavailable("no results table is configured (set MEAA_TABLE_NAME)")
    state = request.app.state
    if getattr(state, "results_table", None) is None:
        state.results_table = dynamodb_table(current.store.table_name)
    return state.results_table


def time_range(
    from_: str | None = Query(None, alias="from", description="ISO 8601; default: 24 h before `to`"),
    to: str | None = Query(None, description="ISO 8601, exclusive; default: now. Without an offset: UTC"),
    bucket: str = Query("5m", description="Bucket size: <n>m, <n>h or <n>d, from 1m to 1d"),
) -> store.TimeRange:
    return query.parse_time_range(from_, to, bucket)


def page_limit(
    limit: int | None = Query(None, description=f"Items read per page, 1..{query.MAX_PAGE_ITEMS}"),
) -> int:
    return query.check_limit(limit)


# Parameters are dependencies declared before the table, so a bad query is a 400 before any AWS client exists.
@router.get(
    "/subjects/{subject}/moods",
    response_model=schemas.SubjectMoods,
    responses=error_responses(InvalidQuery, InvalidCursor, TimelineUnavailable),
    summary="A subject's moods per time bucket, from the batch results (paged)",
)
def subject_moods(
    subject: str,
    span: store.TimeRange = Depends(time_range),
    limit: int = Depends(page_limit),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
    include_unreliable: bool = Query(False, description="Also count faces the quality gate marked unreliable"),
    table: Any = Depends(results_table),
) -> dict[str, Any]:
    return query.subject_moods(table, subject, span, limit, cursor, include_unreliable)


@router.get(
    "/objects/{key:path}",
    response_model=schemas.ObjectItems,
    responses=error_responses(InvalidQuery, InvalidCursor, ObjectNotFound, TimelineUnavailable),
    summary="The result items of one uploaded object (every revision; a video's frames), paged",
)
def object_results(
    key: str,
    limit: int = Depends(page_limit),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
    current: Settings = Depends(settings),
    table: Any = Depends(results_table),
) -> dict[str, Any]:
    if not current.store.drop_bucket:
        raise TimelineUnavailable("no drop bucket is configured (set MEAA_DROP_BUCKET)")
    return query.object_results(table, current.store.drop_bucket, key, limit, cursor)
