"""What routes share, reached through FastAPI's dependencies rather than module globals."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Query, Request

from meaa import MoodEstimator
from meaa.config import Settings

from . import query
from .observability import LOGGER


@dataclass
class AppState:
    """The app's settings and estimator, what /health reports (filled by the warm-up and by analyses), and the
    AWS clients the routes made (kept for the container's life; ``forget_clients`` drops them)."""

    settings: Settings
    estimator: MoodEstimator
    models_loaded: bool = False
    model_version: str | None = None
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str, make: Callable[[], Any]) -> Any:
        """The client kept under ``name``, made by ``make`` on first use."""
        if name not in self.clients:
            self.clients[name] = make()
        return self.clients[name]

    def forget_clients(self) -> None:
        """Drop every kept client: the next use makes a new one, with new connections (after a snapshot restore)."""
        self.clients.clear()

    def warm_up(self) -> None:
        """Load the models now (container start) rather than in the first request's latency budget."""
        started = time.perf_counter()
        try:
            self.estimator.warm_up()
        except Exception:  # noqa: BLE001 - a broken model must not stop /health from answering
            LOGGER.exception("model warm-up failed")
            return
        self.mark_loaded(self.estimator.model_version)
        LOGGER.info("models loaded", extra={"latency_ms": round((time.perf_counter() - started) * 1000, 1)})

    def mark_loaded(self, model_version: str) -> None:
        self.models_loaded, self.model_version = True, model_version


def app_state(request: Request) -> AppState:
    return request.app.state.meaa


def settings(request: Request) -> Settings:
    return app_state(request).settings


def estimator(request: Request) -> MoodEstimator:
    return app_state(request).estimator


def page_cursor(
    cursor: str = Query(
        None,  # type: ignore[assignment] - absent means the first page; the schema stays a plain string
        description="`next_cursor` of the previous page of the same query (any other is 400 `invalid_cursor`)",
        json_schema_extra={"pattern": query.CURSOR_PATTERN, "maxLength": query.MAX_CURSOR_CHARS},
    ),
) -> str | None:
    """A paged route's cursor, documented once; checked by ``query.decode_cursor`` (400 ``invalid_cursor``)."""
    return cursor
