"""Two patients' photos scored by the batch handler into moto, and the API's Lambda entry behind the JWT
authorizer (``MEAA_AUTH_MODE=jwt``): the world the access, upload and audit tests ask questions of.

``subject-a`` and ``subject-b`` each have one photo under ``incoming/<subject>/ward/``; a third photo lies
outside the ``<subject>/<session>/`` layout (nobody's but an admin's). The API is called with API Gateway
events whose claims the authorizer rendered (``tests.support.gateway``). Every DynamoDB operation the API
makes is recorded with its table (botocore's ``provide-client-params`` event), for the IAM tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devkit.aws import (
    apply_environment,
    create_drop_bucket_and_tables,
    event_for,
    face_jpeg,
    moto_environment,
    put_object,
)
from devkit.lambda_loader import lambda_context, load_function_module, load_handler
from tests.support.gateway import answer, http_event

SUBJECT_A, SUBJECT_B = "subject-a", "subject-b"
KEY_A = f"incoming/{SUBJECT_A}/ward/a.jpg"
KEY_B = f"incoming/{SUBJECT_B}/ward/b.jpg"
STRAY_KEY = "incoming/stray.jpg"  # no <subject>/<session>/ layout: nobody's but an admin's
OUTSIDE_KEY = f"elsewhere/{SUBJECT_A}/ward/a.jpg"  # outside the incoming prefix
CREATED_AT = "2026-11-25T10:00:00.000Z"
DAY = {"from": "2026-11-25T00:00:00Z", "to": "2026-11-26T00:00:00Z", "bucket": "1d"}

# Every route that reads health data, stores or signs, with a request that would be valid (and one with a
# bad parameter: authentication comes first).
PROTECTED_REQUESTS = (
    ("GET", "/subjects/subject-1/moods", None),
    ("GET", "/subjects/subject-1/moods?bucket=90s", None),
    ("GET", "/objects/incoming/subject-1/ward/photo.jpg", None),
    ("POST", "/uploads", {"filename": "clip.mp4"}),
    ("POST", "/uploads", {"filename": 7}),
    ("GET", "/me", None),
    ("PUT", "/clinicians/clinician-1/subjects/subject-1", None),
    ("DELETE", "/clinicians/clinician-1/subjects/subject-1", None),
    ("GET", "/clinicians/clinician-1/subjects?limit=0", None),
    ("POST", "/upload-meaa-image", {"image_base64": "aGVsbG8="}),
)


@dataclass
class JwtApi:
    """The API's Lambda entry in that world, and the DynamoDB calls it made as (operation, table)."""

    handler: Any
    calls: list[tuple[str, str]] = field(default_factory=list)

    def call(self, method: str, path: str, **request: Any) -> tuple[int, Any]:
        """One request (``tests.support.gateway.http_event``'s arguments); (status, JSON body)."""
        return answer(self.handler(http_event(method, path, **request), lambda_context("ApiFunction")))


@contextlib.contextmanager
def jwt_api_world(**environment: str) -> Iterator[JwtApi]:
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        apply_environment(patch, moto_environment(MEAA_AUTH_MODE="jwt", **environment))
        s3 = boto3.client("s3")
        create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
        photo = face_jpeg()
        batch = load_handler("BatchFunction")
        for key in (KEY_A, KEY_B, STRAY_KEY):
            entry = {**put_object(s3, key, photo), "event_time": CREATED_AT}
            (outcome,) = batch(event_for([entry]), lambda_context("BatchFunction"))["outcomes"]
            assert outcome["status"] == "scored", outcome
        api = JwtApi(handler=None)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            api.calls.append((model.name, params.get("TableName", "")))

        events = boto3._get_default_session().events
        events.register("provide-client-params.dynamodb", record)
        try:
            api.handler = load_function_module("ApiFunction").handler  # its clients are made after the hook
            yield api
        finally:
            events.unregister("provide-client-params.dynamodb", record)
