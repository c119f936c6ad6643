"""``POST /upload-meaa-image``: one image in (multipart, raw bytes or JSON base64), faces and moods out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from meaa import MoodEstimator
from meaa.config import Settings
from meaa.errors import ImageTooLarge, Unauthenticated, UnsupportedFormat

from .. import schemas, upload_parsing
from ..auth import caller_required
from ..dependencies import AppState, app_state, estimator, settings
from ..errors import error_responses

UPLOAD_PATH = "/upload-meaa-image"

router = APIRouter()


_RAW_BODY_SCHEMA = {"type": "string", "format": "binary"}
_UPLOAD_REQUEST_BODY = {
    "required": True,
    "description": (
        "The image, in one of three ways: multipart/form-data with a `file` field (what the Android app "
        "sends; `curl -F file=@face.jpg`), the raw image bytes with an image Content-Type, or JSON "
        '`{"image_base64": ...}`.'
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [upload_parsing.UPLOAD_FIELD],
                "properties": {upload_parsing.UPLOAD_FIELD: _RAW_BODY_SCHEMA},
            }
        },
        **{media_type: {"schema": _RAW_BODY_SCHEMA} for media_type in sorted(upload_parsing.RAW_IMAGE_TYPES)},
        "application/json": {"schema": schemas.UploadJson.model_json_schema()},
    },
}


@router.post(
    UPLOAD_PATH,
    response_model=schemas.AnalysisResponse,
    responses=error_responses(*upload_parsing.PARSE_ERRORS, UnsupportedFormat, Unauthenticated),
    openapi_extra={"requestBody": _UPLOAD_REQUEST_BODY},
    summary="Detect faces and estimate their moods",
    dependencies=[Depends(caller_required)],  # behind the JWT authorizer: its claims, before the body is read
)
async def upload_meaa_image(
    request: Request,
    state: AppState = Depends(app_state),
    current: Settings = Depends(settings),
    mood_estimator: MoodEstimator = Depends(estimator),
) -> JSONResponse:
    content_type = request.headers.get("content-type")
    upload_parsing.upload_style(content_type)  # 415 before reading a body we would not understand
    cap = current.max_upload_image_bytes
    body = await _read_body(request, upload_parsing.max_body_bytes(cap))
    upload = upload_parsing.parse_upload(content_type, body, max_image_bytes=cap)
    del body
    request.state.upload_style, request.state.image_bytes = upload.style, len(upload.image)
    analysis = (await run_in_threadpool(mood_estimator.analyze, upload.image)).to_dict()
    state.mark_loaded(analysis["model_version"])
    request.state.analysis = analysis
    return JSONResponse({**analysis, "request_id": request.state.request_id})


async def _read_body(request: Request, max_body_bytes: int) -> bytes:
    """The body, refusing (413) as soon as Content-Length or the bytes received pass the cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body_bytes:
        raise ImageTooLarge(f"The request body is {declared} bytes; the limit is {max_body_bytes} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body_bytes:
            raise ImageTooLarge(f"The request body is over the limit of {max_body_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
