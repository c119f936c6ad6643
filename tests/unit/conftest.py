"""Fixtures shared by the API's unit tests: the ApiFunction handler imported the way Lambda imports it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.lambda_loader import load_function_module


@pytest.fixture(scope="module")
def api_module():
    """ApiFunction's handler module (template.yaml's CodeUri and Handler), imported as Lambda does."""
    return load_function_module("ApiFunction")


@pytest.fixture(scope="module")
def api_handler(api_module):
    return api_module.handler


@pytest.fixture(scope="module")
def api_client(api_module) -> Iterator[TestClient]:
    """A TestClient on the handler module's FastAPI app; server faults come back as responses."""
    with TestClient(api_module.app, raise_server_exceptions=False) as test_client:
        yield test_client
