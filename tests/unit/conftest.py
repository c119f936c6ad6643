"""Fixtures shared by the API's unit tests: the ApiFunction handler imported the way Lambda imports it."""

from __future__ import annotations

from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.lambda_loader import load_handler


@pytest.fixture(scope="module")
def api_handler():
    """``app.handler`` of ApiFunction (template.yaml's CodeUri, Handler and layer)."""
    return load_handler("ApiFunction")


@pytest.fixture(scope="module")
def api_client(api_handler) -> Iterator[TestClient]:
    """A TestClient on the handler's FastAPI app; server faults come back as responses."""
    with TestClient(api_handler.app, raise_server_exceptions=False) as test_client:
        yield test_client
