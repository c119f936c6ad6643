"""Direct uploads end to end over real HTTP, on moto's server; and the API under uvicorn with jwt auth.

The phone's flow: ask the API (its Lambda entry, behind the authorizer's claims) for an upload ticket, POST
the file to the presigned URL with httpx as multipart/form-data (the ticket's fields, then the file), the
S3 notification of that object goes to the batch handler (imported as Lambda does), and the result is read
back through the API on that patient's timeline, and refused to another patient. moto's server does not
enforce a POST policy's conditions: tests/unit/test_direct_uploads.py checks the policy document.

Then uvicorn (``make serve``'s command with ``MEAA_AUTH_MODE=jwt``): there is no authorizer in front of
it, so every route that reads, stores or signs answers 401, forged headers or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from devkit.aws import (
    BUCKET,
    apply_environment,
    create_drop_bucket_and_tables,
    event_for,
    face_jpeg,
    face_video_bytes,
    moto_environment,
    moto_server,
)
from devkit.lambda_loader import lambda_context, load_function_module, load_handler
from tests.support.access_world import PROTECTED_REQUESTS, JwtApi
from tests.support.gateway import token_claims
from tests.support.servers import local_api_server

PATIENT = token_claims("patient-7")
OTHER_PATIENT = token_claims("patient-8")


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch, moto_server() as endpoint:
        apply_environment(patch, moto_environment(endpoint, MEAA_AUTH_MODE="jwt"))
        create_drop_bucket_and_tables(boto3.client("s3"), boto3.client("dynamodb"))
        api = JwtApi(handler=load_function_module("ApiFunction").handler)
        yield {"endpoint": endpoint, "api": api, "batch": load_handler("BatchFunction")}


def _upload(world: dict[str, Any], filename: str, content: bytes, media_type: str) -> dict[str, Any]:
    """The phone's side: a ticket from the API, then the file to S3 over HTTP; the object's S3 record."""
    status, ticket = world["api"].call("POST", "/uploads", claims=PATIENT, json_body={"filename": filename})
    assert status == 201, ticket
    assert ticket["url"].startswith(world["endpoint"])  # the bucket on moto's server, over HTTP
    posted = httpx.post(
        ticket["url"], data=ticket["fields"], files={"file": (filename, content, media_type)}, timeout=60
    )
    assert posted.status_code == 204, posted.text  # S3's answer to a POST without success_action_status
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=ticket["key"])
    assert head["ContentLength"] == len(content) and head["ContentType"] == ticket["content_type"] == media_type
    return {
        "key": ticket["key"],
        "etag": head["ETag"].strip('"'),
        "size": len(content),
        "event_time": head["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def test_a_phone_uploads_a_photo_and_a_video_that_only_its_patient_reads(world, tmp_path: Path) -> None:
    photo = _upload(world, "front camera.JPG", face_jpeg(), "image/jpeg")
    clip = _upload(world, "DCIM/visit clip.mp4", face_video_bytes(tmp_path), "video/mp4")
    assert photo["key"].startswith("incoming/patient-7/") and photo["key"].endswith("-front_camera.jpg")
    assert clip["key"].endswith("-visit_clip.mp4")

    outcomes = world["batch"](event_for([photo, clip]), lambda_context("BatchFunction"))["outcomes"]
    assert [(outcome["key"], outcome["status"]) for outcome in outcomes] == [
        (photo["key"], "scored"),
        (clip["key"], "scored"),
    ]

    now = datetime.now(UTC)
    span = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
        "bucket": "1d",
    }
    api: JwtApi = world["api"]
    status, timeline = api.call("GET", "/subjects/patient-7/moods", claims=PATIENT, query=span)
    assert status == 200 and sum(bucket["objects"] for bucket in timeline["buckets"]) == 2
    assert sum(bucket["face_count"] for bucket in timeline["buckets"]) >= 2  # the photo's face, the video's frames
    status, items = api.call("GET", f"/objects/{photo['key']}", claims=PATIENT)
    assert status == 200 and items["items"][0]["subject"] == "patient-7" and items["items"][0]["face_count"] == 1

    # Another patient: refused, and its own timeline holds nothing of patient-7's.
    for path, query in (("/subjects/patient-7/moods", span), (f"/objects/{photo['key']}", None)):
        status, body = api.call("GET", path, claims=OTHER_PATIENT, query=query)
        assert (status, body["error"]["code"]) == (403, "forbidden"), path
    status, own = api.call("GET", "/subjects/patient-8/moods", claims=OTHER_PATIENT, query=span)
    assert status == 200 and own["buckets"] == []
    # And a ticket for patient-7's folder is not the other patient's to ask for.
    status, body = api.call(
        "POST", "/uploads", claims=OTHER_PATIENT, json_body={"filename": "x.jpg", "subject": "patient-7"}
    )
    assert status == 403


@pytest.fixture(scope="module")
def jwt_server_url() -> Iterator[str]:
    """``make serve``'s command with MEAA_AUTH_MODE=jwt (and MEAA_LOCAL=1 too: jwt wins)."""
    with local_api_server({"MEAA_AUTH_MODE": "jwt", "MEAA_LOCAL": "1", "MEAA_UI": "0"}) as url:
        yield url


FORGED = {
    "authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsImNvZ25pdG86Z3JvdXBzIjpbImFkbWlucyJdfQ.",
    "cognito-groups": "[admins]",
    "x-amzn-oidc-data": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
}


@pytest.mark.parametrize("headers", [None, FORGED], ids=["plain", "forged headers"])
def test_under_uvicorn_with_jwt_every_protected_route_is_401(jwt_server_url: str, headers) -> None:
    for method, path, body in PROTECTED_REQUESTS:
        response = httpx.request(method, jwt_server_url + path, json=body, headers=headers, timeout=60)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
    assert httpx.get(f"{jwt_server_url}/health", timeout=30).status_code == 200
