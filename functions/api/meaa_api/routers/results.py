"""``GET /subjects/{subject}/moods`` and ``GET /objects/{key}``: the batch results, read from DynamoDB.

Included only when ``ApiSettings.results_routes`` is on (JWT auth or local serving); who may read what is
``meaa_api.access``'s, checked first. Reading and bucketing
are ``meaa.store``'s (the batch function writes through it too); parameters, cursors and the answers' shape
are ``meaa_api.query``'s; this module declares the routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from meaa import store
from meaa.config import Settings
from meaa.errors import (
    Forbidden,
    InvalidCursor,
    InvalidInput,
    InvalidQuery,
    ObjectNotFound,
    TimelineUnavailable,
    Unauthenticated,
)
from meaa.pipeline import model_version_of
from meaa_aws.clients import dynamodb_table

from .. import query, schemas
from ..access import object_reader, subject_reader
from ..audit import AuditRecord
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


def model_version(
    version: str = Query(
        None,  # type: ignore[assignment] - absent means the deployed version; the schema stays a plain string
        alias="model_version",
        description="Whose results to read (`model_version` of a result); default: the deployed models' version",
        # Documented here, checked by query.check_model_version: a 400 before any AWS client exists.
        json_schema_extra={"pattern": store.MODEL_VERSION_PATTERN, "minLength": 1, "maxLength": 200},
    ),
    current: Settings = Depends(settings),
) -> str:
    """The model version a results route reads: the one asked for, else the one the batch function scores with
    (same layer and settings), read from the models' manifest."""
    return query.check_model_version(version) if version is not None else model_version_of(current)


def page_limit(
    limit: int | None = Query(None, description=f"Items read per page, 1..{query.MAX_PAGE_ITEMS}"),
) -> int:
    return query.check_limit(limit)


# Parameters are dependencies declared before the table, so a bad query is a 400 before any AWS client exists.
@router.get(
    "/subjects/{subject}/moods",
    response_model=schemas.SubjectMoods,
    responses=error_responses(
        Unauthenticated, Forbidden, InvalidQuery, InvalidCursor, InvalidInput, TimelineUnavailable
    ),
    summary="A subject's moods per time bucket in one model version's batch results (paged)",
)
def subject_moods(
    access: Annotated[AuditRecord, Depends(subject_reader)],  # first: 401/403 before parameters and tables
    subject: str,
    span: store.TimeRange = Depends(time_range),
    version: str = Depends(model_version),
    limit: int = Depends(page_limit),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
    include_unreliable: bool = Query(False, description="Also count faces the quality gate marked unreliable"),
    table: Any = Depends(results_table),
) -> dict[str, Any]:
    answer = query.subject_moods(table, subject, span, version, limit, cursor, include_unreliable)
    access.item_count = answer["items_read"]
    return answer


@router.get(
    "/objects/{key:path}",
    response_model=schemas.ObjectItems,
    responses=error_responses(
        Unauthenticated, Forbidden, InvalidQuery, InvalidCursor, InvalidInput, ObjectNotFound, TimelineUnavailable
    ),
    summary="The result items of one uploaded object in one model version (every revision; a video's frames), paged",
)
def object_results(
    access: Annotated[AuditRecord, Depends(object_reader)],  # first: 401/403 before parameters and tables
    key: str,
    version: str = Depends(model_version),
    limit: int = Depends(page_limit),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
    current: Settings = Depends(settings),
    table: Any = Depends(results_table),
) -> dict[str, Any]:
    if not current.store.drop_bucket:
        raise TimelineUnavailable("no drop bucket is configured (set MEAA_DROP_BUCKET)")
    answer = query.object_results(table, current.store.drop_bucket, key, version, limit, cursor)
    access.item_count = len(answer["items"])
    return answer
