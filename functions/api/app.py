"""HTTP API of MEAA: ``POST /upload-meaa-image`` and ``GET /health`` (and, when ``features`` switches them
on, the try-it page and the results routes).

One app, two entry points: ``uvicorn app:app --app-dir functions/api`` locally (with ``PYTHONPATH=layers``)
and ``handler`` (Mangum) in Lambda behind an API Gateway HTTP API. The handler stays thin: parse the body
(``upload_parsing``), call ``meaa``, shape the answer. Every error is ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import dataclasses
import platform
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from meaa import ImageTooLarge, MeaaError, MoodEstimator
from meaa.errors import error_for_status
from meaa.config import Settings
from meaa.logs import json_logger
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import schemas
import timeline_routes
import try_it
import upload_parsing


UPLOAD_PATH = "/upload-meaa-image"
# The HTTP API uses the $default stage, so paths arrive without a stage prefix.
API_GATEWAY_BASE_PATH = "/"


LOGGER = json_logger("meaa.api")

SETTINGS = Settings.from_env()
MAX_UPLOAD_BYTES = min(SETTINGS.api.max_upload_bytes, SETTINGS.decoding.max_image_bytes)
MAX_BODY_BYTES = upload_parsing.max_body_bytes(MAX_UPLOAD_BYTES)
ESTIMATOR = MoodEstimator(SETTINGS)


@dataclasses.dataclass
class ModelState:
    """What /health reports; filled by the warm-up and by every successful analysis."""

    loaded: bool = False
    version: str | None = None


MODEL_STATE = ModelState()


def warm_up() -> None:
    """Load the models now (container start) rather than in the first request's latency budget."""
    started = time.perf_counter()
    try:
        ESTIMATOR.warm_up()
        version = ESTIMATOR.model_version
    except Exception:  # noqa: BLE001 - a broken model must not stop /health from answering
        LOGGER.exception("model warm-up failed", extra={"fields": {"event": "warm_up"}})
        return
    MODEL_STATE.loaded, MODEL_STATE.version = True, version
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    LOGGER.info("models loaded", extra={"fields": {"event": "warm_up", "latency_ms": elapsed_ms}})


def _error_response(status: int, code: str, message: str, request: Request, headers: dict | None = None) -> JSONResponse:
    request.state.error_code = code
    request_id = getattr(request.state, "request_id", None)
    body = {"error": {"code": code, "message": message}, "request_id": request_id}
    return JSONResponse(body, status_code=status, headers=headers)



app = FastAPI(
    redirect_slashes=False,  # exact paths only: a 307 is no answer for an API client (API Gateway has no such route)
    title="MEAA facial mood API",
    version="1.0.0",
    description=(
        "Detects faces (MTCNN) and estimates each face's mood (positive, negative, neutral, other). "
        f"Images up to {MAX_UPLOAD_BYTES} bytes: JPEG, PNG, WebP or BMP."
    ),
)


@app.exception_handler(MeaaError)
async def meaa_error_handler(request: Request, error: MeaaError) -> JSONResponse:
    return _error_response(error.http_status, error.code, error.message, request)


@app.exception_handler(StarletteHTTPException)
async def http_error_handler(request: Request, error: StarletteHTTPException) -> JSONResponse:
    known = error_for_status(error.status_code)
    code = known.code if known else f"http_{error.status_code}"
    return _error_response(error.status_code, code, str(error.detail), request, headers=error.headers)


@app.exception_handler(RequestValidationError)
async def validation_error_handler(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()[:5])
    return _error_response(422, "invalid_input", problems or "Invalid request", request)


class RequestContextMiddleware:
    """Request id, one JSON log line per request, X-Request-ID header and the catch-all 500.

    Pure ASGI rather than ``@app.middleware``: an unexpected exception is caught here, logged with its
    traceback, and answered with a JSON 500 that does not leak details.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id, lambda_request_id = _request_ids(scope)
        state["request_id"] = request_id
        started = time.perf_counter()
        response = {"status": 500, "started": False}

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["started"] = message["status"], True
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:  # noqa: BLE001 - the one catch-all: log, answer 500, keep the container alive
            state["error_code"] = "internal_error"
            LOGGER.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            if not response["started"]:
                body = {"error": {"code": "internal_error", "message": "Internal error"}, "request_id": request_id}
                await JSONResponse(body, status_code=500)(scope, receive, send_with_request_id)
        finally:
            fields = {
                "request_id": request_id,
                "lambda_request_id": lambda_request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": response["status"],
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                "face_count": state.get("face_count"),
                "upload_style": state.get("upload_style"),
                "image_bytes": state.get("image_bytes"),
                "error_code": state.get("error_code"),
            }
            LOGGER.info("request", extra={"fields": fields})


def _request_ids(scope: Scope) -> tuple[str, str | None]:
    """API Gateway's request id (the one in its access log) when behind it, else a fresh one; and Lambda's."""
    event = scope.get("aws.event") or {}
    context = scope.get("aws.context")
    lambda_request_id = getattr(context, "aws_request_id", None)
    gateway_request_id = (event.get("requestContext") or {}).get("requestId")
    return gateway_request_id or lambda_request_id or str(uuid.uuid4()), lambda_request_id


app.add_middleware(RequestContextMiddleware)

_RAW_BODY_SCHEMA = {"type": "string", "format": "binary"}
_UPLOAD_REQUEST_BODY = {
    "required": True,
    "description": (
        "The image, in one of three ways: multipart/form-data with a `file` field (what the Android app "
        "sends; `curl -F file=@face.jpg`), the raw image bytes with an image Content-Type, or JSON "
        f"`{{\"image_base64\": ...}}`. At most {MAX_UPLOAD_BYTES} bytes of image."
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [upload_parsing.UPLOAD_FIELD],
                "properties": {upload_parsing.UPLOAD_FIELD: _RAW_BODY_SCHEMA},
            }
        },
        **{media_type: {"schema": _RAW_BODY_SCHEMA} for media_type in ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")},
        "application/json": {"schema": schemas.UploadJson.model_json_schema()},
    },
}
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorResponse, "description": "Not an image, malformed multipart, invalid JSON or base64"},
    413: {"model": schemas.ErrorResponse, "description": "Image or body too large, or too many pixels"},
    415: {"model": schemas.ErrorResponse, "description": "Unsupported Content-Type or image format"},
    422: {"model": schemas.ErrorResponse, "description": "Missing `file` / `image_base64`, or wrong JSON shape"},
    500: {"model": schemas.ErrorResponse, "description": "Server fault (never a client's)"},
}


@app.post(
    UPLOAD_PATH,
    response_model=schemas.AnalysisResponse,
    responses=_ERROR_RESPONSES,
    openapi_extra={"requestBody": _UPLOAD_REQUEST_BODY},
    summary="Detect faces and estimate their moods",
)
async def upload_meaa_image(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type")
    upload_parsing.upload_style(content_type)  # 415 before reading a body we would not understand
    body = await _read_body(request)
    upload = upload_parsing.parse_upload(content_type, body, max_image_bytes=MAX_UPLOAD_BYTES)
    del body
    request.state.upload_style, request.state.image_bytes = upload.style, len(upload.image)
    analysis = await run_in_threadpool(ESTIMATOR.analyze, upload.image)
    MODEL_STATE.loaded, MODEL_STATE.version = True, analysis.model_version
    request.state.face_count = len(analysis.faces)
    return JSONResponse({**analysis.to_dict(), "request_id": request.state.request_id})


async def _read_body(request: Request) -> bytes:
    """The body, refusing (413) as soon as Content-Length or the bytes received pass the cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ImageTooLarge(f"The request body is {declared} bytes; the limit is {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > MAX_BODY_BYTES:
            raise ImageTooLarge(f"The request body is over the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@app.get("/health", response_model=schemas.HealthResponse, summary="Liveness and model state (never loads models)")
async def health() -> dict[str, Any]:
    return {
        "status": "ok",
        "models_loaded": MODEL_STATE.loaded,
        "model_version": MODEL_STATE.version,
        "python_version": platform.python_version(),
        "max_image_bytes": MAX_UPLOAD_BYTES,
    }


# Optional parts (meaa.config.ApiSettings): the results routes only with auth or locally; the page only when asked for.
app.state.settings = SETTINGS
if SETTINGS.api.results_routes:
    app.include_router(timeline_routes.router)
if SETTINGS.api.try_it_page:
    try_it.install(app)

warm_up()
handler = Mangum(app, lifespan="off", api_gateway_base_path=API_GATEWAY_BASE_PATH)
