"""Which clinician may read which subject: ``/clinicians/{clinician}/subjects[/{subject}]`` (admins).

Assignments live in their own DynamoDB table (``meaa_aws.assignments``); a change applies to the
clinician's next request. Each change and each listing writes an audit line (``meaa_api.audit``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from meaa.config import Settings
from meaa.errors import (
    AssignmentNotFound,
    Forbidden,
    InvalidCursor,
    InvalidInput,
    NotConfigured,
    Unauthenticated,
)
from meaa.object_keys import is_valid_subject
from meaa_aws.assignments import CLINICIAN, SUBJECT

from .. import query, schemas
from ..access import assignment_changer, assignment_lister, assignment_store
from ..audit import AuditRecord
from ..dependencies import settings
from ..errors import error_responses

router = APIRouter(tags=["access"])

MAX_PAGE = 1000
ASSIGNMENT_PATH = "/clinicians/{clinician}/subjects/{subject}"
_ID = {"min_length": 1, "max_length": schemas.ID_MAX_CHARS, "pattern": schemas.ID_PATTERN}
ClinicianId = Annotated[str, Path(description="The clinician's `sub` (the token's sub claim)", **_ID)]
SubjectId = Annotated[str, Path(description="The subject id (the <subject> of its keys)", **_ID)]


def _checked(*ids: str) -> None:
    for value in ids:
        if not is_valid_subject(value):  # what the pattern cannot say: not "." or ".."
            raise InvalidInput(f"{value!r} cannot be an id")


@router.put(
    ASSIGNMENT_PATH,
    response_model=schemas.AssignmentChange,
    responses=error_responses(Unauthenticated, Forbidden, InvalidInput, NotConfigured),
    summary="Let a clinician read a subject (admins)",
)
def assign(
    access: Annotated[AuditRecord, Depends(assignment_changer("assign"))],
    clinician: ClinicianId,
    subject: SubjectId,
    request: Request,
    current: Settings = Depends(settings),
) -> dict[str, Any]:
    _checked(clinician, subject)
    assignment, created = assignment_store(request, current).assign(clinician, subject, access.principal.sub)
    access.item_count = 1
    return {**asdict(assignment), "created": created}


@router.delete(
    ASSIGNMENT_PATH,
    status_code=204,
    response_class=Response,
    responses=error_responses(Unauthenticated, Forbidden, InvalidInput, AssignmentNotFound, NotConfigured),
    summary="Stop a clinician reading a subject (admins); applies to the clinician's next request",
)
def revoke(
    access: Annotated[AuditRecord, Depends(assignment_changer("revoke"))],
    clinician: ClinicianId,
    subject: SubjectId,
    request: Request,
    current: Settings = Depends(settings),
) -> Response:
    _checked(clinician, subject)
    if not assignment_store(request, current).revoke(clinician, subject):
        raise AssignmentNotFound(f"clinician {clinician!r} is not assigned subject {subject!r}")
    access.item_count = 1
    return Response(status_code=204)


@router.get(
    "/clinicians/{clinician}/subjects",
    response_model=schemas.ClinicianSubjects,
    responses=error_responses(Unauthenticated, Forbidden, InvalidInput, InvalidCursor, NotConfigured),
    summary="The subjects a clinician may read (admins, or that clinician), paged",
)
def list_subjects(
    access: Annotated[AuditRecord, Depends(assignment_lister)],
    clinician: ClinicianId,
    request: Request,
    limit: int = Query(100, ge=1, le=MAX_PAGE, description=f"Subjects per page, 1..{MAX_PAGE}"),
    cursor: str | None = Query(
        None, max_length=query.MAX_CURSOR_CHARS, description="`next_cursor` of the previous page"
    ),
    current: Settings = Depends(settings),
) -> dict[str, Any]:
    _checked(clinician)
    start_key = query.decode_cursor(cursor, {CLINICIAN: clinician}, (CLINICIAN, SUBJECT)) if cursor else None
    page = assignment_store(request, current).subjects_of(clinician, limit, start_key)
    access.item_count = len(page.assignments)
    return {
        "clinician": clinician,
        "subjects": [asdict(assignment) for assignment in page.assignments],
        "next_cursor": query.encode_cursor(page.last_key),
    }
