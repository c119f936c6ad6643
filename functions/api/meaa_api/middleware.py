"""Request id, one JSON log line and the metrics of each request, and the catch-all JSON 500.

Pure ASGI rather than ``@app.middleware``: an unexpected exception is caught here, logged with its
traceback, and answered with a JSON 500 that does not leak details.
"""

from __future__ import annotations

import time
import uuid

from aws_lambda_powertools.metrics import MetricUnit
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meaa.errors import InternalError
from meaa_aws.observability import record_analysis, record_error

from . import audit
from .observability import LOGGER, METRICS, SERVICE


class RequestContextMiddleware:
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
            state["error_code"] = InternalError.code
            LOGGER.exception("unhandled error", extra={"request_id": request_id})
            if not response["started"]:
                body = {"error": {"code": InternalError.code, "message": "Internal error"}, "request_id": request_id}
                await JSONResponse(body, status_code=500)(scope, receive, send_with_request_id)
        finally:
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            analysis = state.get("analysis")
            LOGGER.info(
                "request",
                extra={
                    "request_id": request_id,
                    "lambda_request_id": lambda_request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": response["status"],
                    "latency_ms": latency_ms,
                    "face_count": analysis["face_count"] if analysis else None,
                    "upload_style": state.get("upload_style"),
                    "image_bytes": state.get("image_bytes"),
                    "error_code": state.get("error_code"),
                    "principal_sub": getattr(state.get("principal"), "sub", None),
                },
            )
            if state.get("audit") is not None:
                audit.write(state["audit"], response["status"], state.get("error_code"), request_id)
            _record_metrics(analysis, state.get("error_code"), latency_ms, response["status"])


def _record_metrics(analysis: dict | None, error_code: str | None, latency_ms: float, status: int) -> None:
    """This request's metrics, flushed now: one EMF line per request, in Lambda and locally alike."""
    METRICS.add_metric(name="RequestLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if analysis is not None:
        record_analysis(METRICS, analysis)
    if status in (401, 403):  # refused by the access checks (a burst raises the AccessDeniedAlarm)
        METRICS.add_metric(name="AccessDenied", unit=MetricUnit.Count, value=1)
    METRICS.flush_metrics()
    if error_code:
        record_error(SERVICE, error_code)


def _request_ids(scope: Scope) -> tuple[str, str | None]:
    """API Gateway's request id (the one in its access log) when behind it, else a fresh one; and Lambda's."""
    event = scope.get("aws.event") or {}
    context = scope.get("aws.context")
    lambda_request_id = getattr(context, "aws_request_id", None)
    gateway_request_id = (event.get("requestContext") or {}).get("requestId") if isinstance(event, dict) else None
    return gateway_request_id or lambda_request_id or str(uuid.uuid4()), lambda_request_id
