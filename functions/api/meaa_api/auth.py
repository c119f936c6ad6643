"""Who is calling: a ``Principal`` built only from the claims API Gateway's JWT authorizer verified.

Behind the authorizer (``MEAA_AUTH_MODE=jwt``), API Gateway checks the token's signature, issuer, audience
and expiry, then passes its claims to the function in the event, ``requestContext.authorizer.jwt.claims``;
Mangum hands that event to the app as ``scope["aws.event"]``. Nothing else identifies a caller: not a
header (an ``Authorization`` header is never decoded here, and a forged ``cognito:groups`` header is just a
header), not a query parameter. No claims, empty claims or a claim of the wrong type is 401
``unauthenticated``. Locally (``MEAA_LOCAL=1`` without jwt, ``make serve``) the caller is the machine's
user, with an admin's reach.

Roles, the highest group wins: ``admins`` > ``clinicians`` > patient (any other token). A patient's subject
is the claim ``MEAA_SUBJECT_CLAIM`` names (default ``sub``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import Depends, Request

from meaa.config import Settings
from meaa.errors import Unauthenticated
from meaa.object_keys import is_valid_subject

from .dependencies import settings

GROUPS_CLAIM = "cognito:groups"
ADMINS_GROUP = "admins"
CLINICIANS_GROUP = "clinicians"
MAX_GROUPS_CLAIM_CHARS = 4096


class Role(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The caller: its ``sub``, its role and, for a patient, the subject it is."""

    sub: str
    role: Role
    subject: str | None = None


LOCAL_PRINCIPAL = Principal(sub="local", role=Role.ADMIN)


def authorizer_claims(scope: dict[str, Any]) -> Any:
    """The verified claims of the API Gateway event (payload 2.0, JWT authorizer), or None."""
    event = scope.get("aws.event")
    if not isinstance(event, dict):
        return None
    path: Any = event
    for name in ("requestContext", "authorizer", "jwt", "claims"):
        path = path.get(name) if isinstance(path, dict) else None
    return path


def parse_groups(value: Any) -> frozenset[str]:
    """``cognito:groups`` as API Gateway passes it (``"[admins clinicians]"``), as a JSON list (a list, or a
    string holding one), or absent. Any other type or shape is not a claim this API can trust: 401."""
    malformed = Unauthenticated(f"the {GROUPS_CLAIM} claim is not a list of group names")
    if value is None:
        return frozenset()
    if isinstance(value, list):
        items: Any = value
    elif isinstance(value, str):
        if len(value) > MAX_GROUPS_CLAIM_CHARS:
            raise malformed
        items = _groups_from_text(value.strip(), malformed)
    else:
        raise malformed
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise malformed
    return frozenset(items)


def _groups_from_text(text: str, malformed: Unauthenticated) -> Any:
    if not text.startswith("["):
        return text.split()  # one bare group name (group names hold no whitespace)
    try:
        return json.loads(text)  # '["admins", "clinicians"]'
    except ValueError:
        pass
    if not text.endswith("]") or '"' in text:
        raise malformed
    return text[1:-1].split()  # API Gateway's rendering of a list claim: "[admins clinicians]"


def principal_from_claims(claims: Any, subject_claim: str) -> Principal:
    """The principal the claims describe; 401 when they cannot describe one."""
    if not isinstance(claims, dict) or not claims:
        raise Unauthenticated("no verified token claims reached the API: send a bearer token from the user pool")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not is_valid_subject(sub):
        raise Unauthenticated("the token has no usable sub claim")
    groups = parse_groups(claims.get(GROUPS_CLAIM))
    if ADMINS_GROUP in groups:
        return Principal(sub, Role.ADMIN)
    if CLINICIANS_GROUP in groups:
        return Principal(sub, Role.CLINICIAN)
    subject = claims.get(subject_claim)
    if not isinstance(subject, str) or not is_valid_subject(subject):
        raise Unauthenticated(f"the token has no usable {subject_claim!r} claim to name the patient's subject")
    return Principal(sub, Role.PATIENT, subject)


def authenticate(request: Request, current: Settings) -> Principal:
    """The caller of this request (see the module's docstring); raises ``Unauthenticated``."""
    if current.api.jwt:
        return principal_from_claims(authorizer_claims(request.scope), current.api.subject_claim)
    if current.api.local:
        return LOCAL_PRINCIPAL
    raise Unauthenticated("this route needs the JWT authorizer (MEAA_AUTH_MODE=jwt)")


def principal(request: Request, current: Settings = Depends(settings)) -> Principal:
    """FastAPI dependency: the authenticated caller (401 otherwise)."""
    who = authenticate(request, current)
    request.state.principal = who
    return who


def caller_required(request: Request, current: Settings = Depends(settings)) -> None:
    """FastAPI dependency for routes that need a caller only behind the authorizer (the image upload, which
    stores nothing): with ``AuthMode=jwt`` a request without verified claims is 401, as on every route."""
    if current.api.jwt:
        principal(request, current)
