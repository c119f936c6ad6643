"""Who may reach which data: the access dependencies of the results, upload and assignment routes.

| role      | subjects' moods and objects            | upload tickets              | assignments                 |
| --------- | -------------------------------------- | --------------------------- | --------------------------- |
| patient   | its own subject only                   | its own subject only        | no                          |
| clinician | the subjects assigned to its ``sub``   | the subjects assigned to it | list its own                |
| admin     | every subject, every object key        | any subject                 | assign, revoke, list any    |

Each dependency runs before the route's own parameters are read and before any data is: it opens the audit
record, authenticates (401) and authorizes from the path alone (403). A 403 therefore says nothing about
whether data exists (a 404 would not hide more), and a key that does not parse to a subject
(``meaa.object_keys.owner_of``) is out of reach for everyone but an admin. A clinician's reach is one
consistent Query of the assignments table per request (``meaa_aws.assignments``), so a revocation applies
to the next request.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from meaa.config import Settings
from meaa.errors import Forbidden, NotConfigured
from meaa.object_keys import owner_of
from meaa_aws.assignments import AssignmentStore
from meaa_aws.clients import dynamodb_table

from . import audit
from .auth import Principal, Role, authenticate
from .dependencies import settings


def assignment_store(request: Request, current: Settings) -> AssignmentStore:
    """The assignments table's client, made on first use and kept by the app (a warm container reuses it)."""
    if not current.store.assignments_table:
        raise NotConfigured("no assignments table is configured (set MEAA_ASSIGNMENTS_TABLE)")
    state = request.app.state
    if getattr(state, "assignment_store", None) is None:
        state.assignment_store = AssignmentStore(dynamodb_table(current.store.assignments_table))
    return state.assignment_store


def authorize_subject(request: Request, who: Principal, subject: str, current: Settings) -> None:
    """403 unless ``who`` may read (and upload for) ``subject``."""
    if who.role is Role.ADMIN:
        return
    if who.role is Role.PATIENT:
        allowed = subject == who.subject
    else:
        allowed = assignment_store(request, current).is_assigned(who.sub, subject)
    if not allowed:
        raise Forbidden(f"this {who.role.value} may not read subject {subject!r}")


def _authenticated(request: Request, record: audit.AuditRecord, current: Settings) -> Principal:
    record.principal = authenticate(request, current)
    request.state.principal = record.principal
    return record.principal


def subject_reader(request: Request, current: Settings = Depends(settings)) -> audit.AuditRecord:
    """``/subjects/{subject}/...``: the caller may read that subject."""
    subject = str(request.path_params.get("subject", ""))
    record = audit.begin(request, "read_timeline", subject=subject)
    authorize_subject(request, _authenticated(request, record, current), subject, current)
    return record


def object_reader(request: Request, current: Settings = Depends(settings)) -> audit.AuditRecord:
    """``/objects/{key}``: the key's subject is one the caller may read (only admins reach other keys)."""
    key = str(request.path_params.get("key", ""))
    owner = owner_of(key, current.batch.incoming_prefix)
    record = audit.begin(request, "read_object", key=key, subject=owner)
    who = _authenticated(request, record, current)
    if who.role is Role.ADMIN:
        return record
    if owner is None:
        raise Forbidden(f"only an admin may read objects outside {current.batch.incoming_prefix}<subject>/<session>/")
    authorize_subject(request, who, owner, current)
    return record


def uploader(request: Request, current: Settings = Depends(settings)) -> audit.AuditRecord:
    """``POST /uploads``: authenticated here; the subject (from the body) is authorized by the route."""
    record = audit.begin(request, "request_upload")
    _authenticated(request, record, current)
    return record


def _assignment_record(request: Request, action: str, current: Settings) -> tuple[audit.AuditRecord, Principal]:
    clinician = str(request.path_params.get("clinician", ""))
    subject = request.path_params.get("subject")
    record = audit.begin(request, action, clinician=clinician, subject=str(subject) if subject is not None else None)
    return record, _authenticated(request, record, current)


def assignment_changer(action: str) -> Any:
    """``PUT``/``DELETE /clinicians/{clinician}/subjects/{subject}``: admins only."""

    def dependency(request: Request, current: Settings = Depends(settings)) -> audit.AuditRecord:
        record, who = _assignment_record(request, action, current)
        if who.role is not Role.ADMIN:
            raise Forbidden("only an admin may change assignments")
        return record

    return dependency


def assignment_lister(request: Request, current: Settings = Depends(settings)) -> audit.AuditRecord:
    """``GET /clinicians/{clinician}/subjects``: an admin, or that clinician itself."""
    record, who = _assignment_record(request, "list_assignments", current)
    if who.role is Role.ADMIN or (who.role is Role.CLINICIAN and who.sub == record.clinician):
        return record
    raise Forbidden("only an admin, or the clinician itself, may list a clinician's subjects")
