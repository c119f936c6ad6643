"""``GET /me``: who the API takes the caller for, from the authorizer's verified claims (the try-it page and
the phone app use it to show the role and find a patient's own subject)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from meaa.errors import Unauthenticated

from .. import schemas
from ..auth import Principal, principal
from ..errors import error_responses

router = APIRouter(tags=["access"])


@router.get(
    "/me",
    response_model=schemas.Caller,
    responses=error_responses(Unauthenticated),
    summary="Who the API takes the caller for (role, and a patient's own subject)",
)
def me(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
    return {"sub": who.sub, "role": who.role.value, "subject": who.subject}
