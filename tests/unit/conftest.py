"""Fixtures shared by the unit tests: the ApiFunction handler imported the way Lambda imports it, and moto's AWS
for the batch function."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from devkit.aws import apply_environment, create_drop_bucket_and_tables, moto_environment
from devkit.lambda_loader import load_function_module


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


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """moto S3 + DynamoDB with the drop bucket and both tables; yields (s3 client, dynamodb resource)."""
    apply_environment(monkeypatch, moto_environment())
    with mock_aws():
        s3 = boto3.client("s3")
        create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
        yield s3, boto3.resource("dynamodb")
