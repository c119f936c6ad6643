"""The audit trail: one JSON line per read of health data, per upload ticket and per assignment change.

A route's access dependency opens an ``AuditRecord`` on the request (``begin``) before it decides anything,
fills in the principal once known, and the route adds the item count; the request middleware writes the
line when the answer's status is known (``write``), so a refusal (401/403) and a failure are audited like a
success. The line holds ids, the route, the status and counts: never a token, a claim other than ``sub``,
or any result or image content. Read them with CloudWatch Logs Insights (README, "Access and audit").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from .auth import Principal
from .observability import LOGGER

AUDIT_MESSAGE = "audit"


@dataclass
class AuditRecord:
    """What one request did to which data, on whose behalf."""

    action: str  # read_timeline | read_object | request_upload | assign | revoke | list_assignments
    route: str  # "GET /subjects/{subject}/moods": the route's template, not the raw path
    subject: str | None = None
    key: str | None = None
    clinician: str | None = None
    principal: Principal | None = None
    item_count: int | None = None


def begin(request: Request, action: str, **target: str | None) -> AuditRecord:
    """Open this request's audit record (before authentication, so a 401 is audited too)."""
    route = request.scope.get("route")
    record = AuditRecord(action, f"{request.method} {getattr(route, 'path', request.url.path)}", **target)
    request.state.audit = record
    return record


def write(record: AuditRecord, status: int, error_code: str | None, request_id: str) -> None:
    """The audit line of a finished request."""
    who = record.principal
    fields: dict[str, Any] = {
        "audit": True,
        "action": record.action,
        "route": record.route,
        "principal_sub": who.sub if who else None,
        "principal_role": who.role.value if who else None,
        "subject": record.subject,
        "key": record.key,
        "clinician": record.clinician,
        "status": status,
        "outcome": "allowed" if status < 400 else "denied" if status in (401, 403) else "failed",
        "error_code": error_code,
        "item_count": record.item_count if status < 400 else 0,
        "request_id": request_id,
    }
    LOGGER.info(AUDIT_MESSAGE, extra=fields)
