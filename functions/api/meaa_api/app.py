"""The application factory: wires settings, the estimator, middleware, error handlers and routers.

Locally: ``uvicorn --factory meaa_api.app:create_app_from_env`` (``make serve``); in Lambda:
``meaa_api.lambda_handler.handler``. Optional routers (``meaa.config.ApiSettings``): the results, direct-upload,
assignment and ``/me`` routes exist only behind JWT auth or locally (``meaa_api.access`` decides who reaches
what), the try-it page only when asked for; their modules (and boto3) are imported only then, which keeps the
upload route's cold start small.
"""

from __future__ import annotations

from fastapi import FastAPI

from meaa import MoodEstimator
from meaa.config import Settings

from .dependencies import AppState
from .errors import install_error_handlers
from .middleware import RequestContextMiddleware
from .observability import LOGGER
from .routers import health, upload


def create_app(settings: Settings, estimator: MoodEstimator | None = None) -> FastAPI:
    """A FastAPI app for ``settings``; the estimator's models load lazily (or by ``AppState.warm_up``)."""
    app = FastAPI(
        # Exact paths only: a 307 is no answer for an API client (and API Gateway has no such route).
        redirect_slashes=False,
        title="MEAA facial mood API",
        version="2.0.0",
        description=(
            "Detects faces (MTCNN) and estimates each face's mood (positive, negative, neutral, other), with a "
            f"quality verdict per face. Images up to {settings.max_upload_image_bytes} bytes: JPEG, PNG, WebP or BMP."
        ),
        docs_url=None,  # served from the package's own Swagger UI files (routers/docs.py), never a CDN
        redoc_url=None,
    )
    app.state.meaa = AppState(settings=settings, estimator=estimator or MoodEstimator(settings))
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(upload.router)
    app.include_router(health.router)
    if settings.api.results_routes:
        from .routers import assignments, direct_uploads, me, results

        for module in (results, direct_uploads, assignments, me):
            app.include_router(module.router)
    if settings.api.try_it_page:
        from .routers import try_it

        try_it.install(app)
    from .routers import docs

    docs.install(app)
    LOGGER.debug("app created", extra={"results_routes": settings.api.results_routes, "page": settings.api.try_it_page})
    return app


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory``: the settings of this process's environment."""
    return create_app(Settings.from_env())
