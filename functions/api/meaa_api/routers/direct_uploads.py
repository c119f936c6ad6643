"""``POST /uploads``: a presigned S3 POST that lets a phone put one file straight into the drop folder.

The phone has no AWS credentials; the API, behind the authorizer, signs a POST policy with its own role
(which may only ``s3:PutObject`` under ``incoming/``) for one key it chose itself,
``incoming/<subject>/<session>/<uuid>-<sanitized name>``. The policy pins that exact key, a
``content-length-range`` up to the batch function's limit for the file's kind, the Content-Type of its
media suffix, and expires in ``MEAA_UPLOAD_URL_EXPIRES_S`` (at most 15 minutes). The object then reaches
the batch scorer by the bucket's notification, like any other drop. boto3's ``generate_presigned_post``
builds and signs the policy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from meaa.config import Settings
from meaa.errors import Forbidden, InvalidInput, MissingField, NotConfigured, Unauthenticated, UnsupportedFormat
from meaa.object_keys import MEDIA_TYPES, suffix_of, upload_key
from meaa_aws.clients import s3_signing_client
from meaa_aws.s3_objects import object_byte_limit

from .. import schemas
from ..access import authorize_subject, uploader
from ..audit import AuditRecord
from ..auth import Principal, Role
from ..dependencies import settings
from ..errors import error_responses

router = APIRouter(tags=["uploads"])


def _s3(request: Request) -> Any:
    """The S3 client that signs, made on first use and kept by the app (a warm container reuses it)."""
    state = request.app.state
    if getattr(state, "s3_signing_client", None) is None:
        state.s3_signing_client = s3_signing_client()
    return state.s3_signing_client


def target_subject(who: Principal, named: str | None) -> str:
    """Whose upload: a patient's own subject (naming another is 403); clinicians and admins must name one."""
    if who.role is Role.PATIENT:
        if named is not None and named != who.subject:
            raise Forbidden("a patient may only upload for its own subject")
        return str(who.subject)
    if named is None:
        raise MissingField(f"a {who.role.value} must name the subject the upload belongs to")
    return named


@router.post(
    "/uploads",
    status_code=201,
    response_model=schemas.UploadTicket,
    responses=error_responses(Unauthenticated, Forbidden, InvalidInput, MissingField, UnsupportedFormat, NotConfigured),
    summary="A presigned S3 POST for one image or video of a subject (scored by the batch function)",
)
def create_upload(
    access: Annotated[AuditRecord, Depends(uploader)],  # first: 401 before the body is read
    body: schemas.UploadRequest,
    request: Request,
    current: Settings = Depends(settings),
) -> dict[str, Any]:
    subject = target_subject(access.principal, body.subject)  # the dependency authenticated: never None here
    access.subject = subject
    authorize_subject(request, access.principal, subject, current)
    if not current.store.drop_bucket:
        raise NotConfigured("no drop bucket is configured (set MEAA_DROP_BUCKET)")
    session = body.session or datetime.now(UTC).date().isoformat()
    key = upload_key(current.batch.incoming_prefix, subject, session, body.filename)
    access.key = key
    suffix = suffix_of(key)
    content_type, max_bytes = MEDIA_TYPES[suffix], object_byte_limit(suffix, current)
    expires_in = current.api.upload_url_expires_s
    signed = _s3(request).generate_presigned_post(
        Bucket=current.store.drop_bucket,
        Key=key,  # boto3 adds {"key": key} (exact) and {"bucket": ...} to the conditions
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_in,
    )
    access.item_count = 1
    return {
        "url": signed["url"],
        "fields": signed["fields"],
        "key": key,
        "expires_in": expires_in,
        "expires_at": (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat(timespec="seconds"),
        "max_bytes": max_bytes,
        "content_type": content_type,
    }
