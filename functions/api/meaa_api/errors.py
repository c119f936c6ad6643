"""Every error answer is ``{"error": {"code", "message"}, "request_id"}``, its code and status from the one
registry, ``meaa.errors.ERRORS``; the OpenAPI error responses of each route are generated from it too."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from meaa.errors import ERRORS, InvalidInput, InvalidJson, MeaaError, MethodNotAllowed, error_for_status

from .schemas import ErrorResponse


def error_response(request: Request, status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    request.state.error_code = code
    body = {"error": {"code": code, "message": message}, "request_id": getattr(request.state, "request_id", None)}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MeaaError)
    async def meaa_error(request: Request, error: MeaaError) -> JSONResponse:
        return error_response(request, error.http_status, error.code, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        known = error_for_status(error.status_code)
        code = known.code if known else f"http_{error.status_code}"
        headers = error.headers
        if error.status_code == MethodNotAllowed.http_status:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(request, error.status_code, code, str(error.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()[:5])
        # A body that is not JSON at all is the same error as on the upload route; a JSON of the wrong shape is 422.
        kind = InvalidJson if any(item.get("type") == "json_invalid" for item in error.errors()) else InvalidInput
        return error_response(request, kind.http_status, kind.code, problems or "Invalid request")


def allowed_methods(request: Request) -> str:
    """Every method of the path: FastAPI makes one route per method and Starlette's 405 names only the first
    route whose path matched (``PUT`` alone where ``DELETE`` is allowed too)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers' routes, with their full paths
        if route.path and route.methods and compile_path(route.path)[0].match(request.url.path):
            methods |= route.methods
    return ", ".join(sorted(methods))


def error_responses(*errors: type[MeaaError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that can answer ``errors`` (plus the server's own 500), grouped by
    status, each description listing the codes: generated from the registry, so it cannot go stale."""
    by_status: dict[int, list[type[MeaaError]]] = {}
    for error in (*errors, ERRORS["internal_error"]):
        by_status.setdefault(error.http_status, []).append(error)
    return {
        status: {
            "model": ErrorResponse,
            "description": "; ".join(f"`{error.code}`: {error.summary()}" for error in group),
        }
        for status, group in sorted(by_status.items())
    }
