"""``GET /subjects/{subject}/moods`` and ``GET /objects/{key}``: the batch results, read from DynamoDB.

Included only when ``ApiSettings.results_routes`` is on (JWT auth or local serving); who may read what is
``meaa_api.access``'s, checked first. Reading and bucketing
are ``meaa.store``'s (the batch function writes through it too); parameters, cursors and the answers' shape
are ``meaa_api.query``'s; this module declares the routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from meaa import store
from meaa.config import Settings
from meaa.errors import (
    Forbidden,
    InvalidCursor,
    InvalidInput,
    InvalidQuery,
    NotConfigured,
    ObjectNotFound,
    TimelineUnavailable,
    Unauthenticated,
)
from meaa.pipeline import model_version_of
from meaa_aws.clients import dynamodb_table

from .. import query, schemas
from ..access import object_reader, subject_reader
from ..audit import AuditRecord
from ..dependencies import AppState, app_state, page_cursor, settings
from ..errors import error_responses

router = APIRouter(tags=["results"])

SubjectPath = Path(
    description="The subject id (the <subject> of its keys): no '/' or control characters, not '.' or '..'",
    json_schema_extra={"pattern": schemas.ID_PATTERN, "minLength": 1, "maxLength": schemas.ID_MAX_CHARS},
    examples=["subject-1"],
)
KeyPath = Path(
    description="The object's S3 key as it is, '/' included (`incoming/<subject>/<session>/<file>`); at most "
    f"{query.MAX_KEY_CHARS} characters, and a key over S3's {query.MAX_KEY_BYTES} bytes of UTF-8 is 404",
    json_schema_extra={"minLength": 1, "maxLength": query.MAX_KEY_CHARS},
    examples=["incoming/subject-1/2026-11-25/photo.jpg"],
)


def results_table(state: AppState = Depends(app_state), current: Settings = Depends(settings)) -> Any:
    """The results table's client, made on first use and kept by the app (a warm container reuses it)."""
    if not current.store.table_name:
        raise TimelineUnavailable("no results table is configured (set MEAA_TABLE_NAME)")
    name = current.store.table_name
    return state.client("results_table", lambda: dynamodb_table(name))


# The parameters' constraints are documented here and checked in ``query`` (400 ``invalid_query`` before any
# AWS client exists), from the same constants and patterns.
_TIME = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
    "examples": ["2026-11-25T00:00:00Z"],
}


def time_range(
    from_: str = Query(
        None,  # type: ignore[assignment] - absent means a day before `to`; the schema stays a plain string
        alias="from",
        description="Start, inclusive: an RFC 3339 date-time with an offset, or a date (its midnight, UTC); "
        "default: 24 h before `to`. `from` must be before `to`, the range at most "
        f"{query.MAX_BUCKETS} buckets, both within years 1..9999 in UTC (else 400 `invalid_query`)",
        json_schema_extra=_TIME,
    ),
    to: str = Query(
        None,  # type: ignore[assignment] - absent means now
        description="End, exclusive: an RFC 3339 date-time with an offset, or a date (its midnight, UTC); default: now",
        json_schema_extra={**_TIME, "examples": ["2026-11-26T00:00:00Z"]},
    ),
    bucket: str = Query(
        "5m",
        description="Bucket size: <n>m (1 to 1440), <n>h (1 to 24) or 1d",
        json_schema_extra={"pattern": query.BUCKET_PATTERN, "examples": ["1h"]},
    ),
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
    limit: int = Query(
        query.DEFAULT_PAGE_ITEMS,
        description=f"Items read per page, 1..{query.MAX_PAGE_ITEMS}",
        json_schema_extra={"minimum": 1, "maximum": query.MAX_PAGE_ITEMS},
    ),
) -> int:
    return query.check_limit(limit)


# Parameters are dependencies declared before the table, so a bad query is a 400 before any AWS client exists.
@router.get(
    "/subjects/{subject}/moods",
    response_model=schemas.SubjectMoods,
    responses=error_responses(
        Unauthenticated, Forbidden, InvalidQuery, InvalidCursor, InvalidInput, NotConfigured, TimelineUnavailable
    ),
    summary="A subject's moods per time bucket in one model version's batch results (paged)",
    operation_id="getSubjectMoods",
)
def subject_moods(
    access: Annotated[AuditRecord, Depends(subject_reader)],  # first: 401/403 before parameters and tables
    subject: Annotated[str, SubjectPath],
    span: store.TimeRange = Depends(time_range),
    version: str = Depends(model_version),
    limit: int = Depends(page_limit),
    cursor: str | None = Depends(page_cursor),
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
        Unauthenticated,
        Forbidden,
        InvalidQuery,
        InvalidCursor,
        InvalidInput,
        ObjectNotFound,
        NotConfigured,
        TimelineUnavailable,
    ),
    summary="The result items of one uploaded object in one model version (every revision; a video's frames), paged",
    operation_id="getObjectResults",
)
def object_results(
    access: Annotated[AuditRecord, Depends(object_reader)],  # first: 401/403 before parameters and tables
    key: Annotated[str, KeyPath],
    version: str = Depends(model_version),
    limit: int = Depends(page_limit),
    cursor: str | None = Depends(page_cursor),
    current: Settings = Depends(settings),
    table: Any = Depends(results_table),
) -> dict[str, Any]:
    if not current.store.drop_bucket:
        raise TimelineUnavailable("no drop bucket is configured (set MEAA_DROP_BUCKET)")
    answer = query.object_results(table, current.store.drop_bucket, key, version, limit, cursor)
    access.item_count = len(answer["items"])
    return answer
