"""``POST /uploads``: the presigned POST policy, read back and checked condition by condition.

moto's server accepts presigned POSTs without enforcing their conditions, so what S3 will enforce is checked
here on the policy document itself (base64 JSON in ``fields["policy"]``): the exact key, the size range, the
Content-Type, the expiry, and nothing that would widen them (no ``starts-with``). The end-to-end flow over
HTTP is tests/integration/test_direct_upload_moto_server.py.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devkit.aws import BUCKET
from meaa.config import Settings
from tests.support.access_world import SUBJECT_A, SUBJECT_B, JwtApi, jwt_api_world
from tests.support.gateway import token_claims

EXPIRES_S = 300
PATIENT_A = token_claims(SUBJECT_A)
ADMIN = token_claims("admin-1", ["admins"])


@pytest.fixture(scope="module")
def api() -> Iterator[JwtApi]:
    with jwt_api_world(MEAA_UPLOAD_URL_EXPIRES_S=str(EXPIRES_S), MEAA_MAX_OBJECT_BYTES="150000000") as world:
        yield world


def _ticket(api: JwtApi, body: dict[str, Any], claims: dict[str, Any] = PATIENT_A) -> dict[str, Any]:
    status, answer = api.call("POST", "/uploads", claims=claims, json_body=body)
    assert status == 201, answer
    return answer


def _policy(ticket: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(ticket["fields"]["policy"]))


@pytest.mark.parametrize(
    "filename, content_type, max_bytes",
    [
        ("clip.mp4", "video/mp4", 150_000_000),
        ("Visit 3.MOV", "video/quicktime", 150_000_000),
        ("IMG_0001.JPG", "image/jpeg", Settings().decoding.max_image_bytes),  # the decoder's cap binds images
        ("scan.png", "image/png", Settings().decoding.max_image_bytes),
    ],
)
def test_policy_pins_key_size_type_and_expiry(api: JwtApi, filename: str, content_type: str, max_bytes: int) -> None:
    before = datetime.now(UTC)
    ticket = _ticket(api, {"filename": filename, "session": "visit-3"})
    policy = _policy(ticket)
    key = ticket["key"]
    stem, suffix = filename.rsplit(".", 1)
    pattern = rf"incoming/{SUBJECT_A}/visit-3/([0-9a-f-]{{36}})-{re.escape(stem.replace(' ', '_'))}\.{suffix.lower()}"
    match = re.fullmatch(pattern, key)
    assert match and uuid.UUID(match.group(1)).version == 4

    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(seconds=EXPIRES_S - 5) <= expiration - before <= timedelta(seconds=EXPIRES_S + 5)
    assert expiration - before <= timedelta(minutes=15)
    assert ticket["expires_in"] == EXPIRES_S

    conditions = policy["conditions"]
    exact = {
        name: value for condition in conditions if isinstance(condition, dict) for name, value in condition.items()
    }
    ranges = [condition for condition in conditions if isinstance(condition, list)]
    assert exact["bucket"] == BUCKET
    assert exact["key"] == key  # the exact key: no prefix, no ${filename}
    assert exact["Content-Type"] == content_type == ticket["content_type"]
    assert exact["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert exact["x-amz-credential"] and exact["x-amz-date"]
    assert ranges == [["content-length-range", 1, max_bytes]] and ticket["max_bytes"] == max_bytes
    assert not any(condition[0] == "starts-with" for condition in ranges)
    # Nothing beyond what is listed: a condition more (an ACL, a redirect) would be a change to review.
    assert set(exact) <= {"bucket", "key", "Content-Type", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
                          "x-amz-security-token"}  # fmt: skip

    fields = ticket["fields"]
    assert fields["key"] == key and fields["Content-Type"] == content_type
    assert fields["x-amz-signature"] and fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    for name, value in exact.items():  # every exact condition has its field (S3 checks the form against them)
        if name != "bucket":
            assert fields[name] == value, name
    assert BUCKET in ticket["url"]


def test_the_session_defaults_to_today_and_the_subject_to_the_patients_own(api: JwtApi) -> None:
    ticket = _ticket(api, {"filename": "clip.mp4"})
    today = datetime.now(UTC).date().isoformat()
    assert ticket["key"].startswith(f"incoming/{SUBJECT_A}/{today}/") or ticket["key"].startswith(
        f"incoming/{SUBJECT_A}/{(datetime.now(UTC) - timedelta(minutes=1)).date().isoformat()}/"
    )
    admin = _ticket(api, {"filename": "clip.mp4", "subject": SUBJECT_B, "session": "ward-round"}, claims=ADMIN)
    assert admin["key"].startswith(f"incoming/{SUBJECT_B}/ward-round/")


def test_an_untrusted_filename_never_leaves_the_subjects_folder(api: JwtApi) -> None:
    for name in ("../../subject-b/x/evil.JPG", "subject-b/ward/evil.jpg", "..\\..\\evil.jpg", "%2F..%2Fevil.jpg"):
        key = _ticket(api, {"filename": name, "session": "s1"})["key"]
        assert key.startswith(f"incoming/{SUBJECT_A}/s1/") and key.count("/") == 3, key
        assert key.endswith("evil.jpg")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"filename": "clip.gif"}, 415, "unsupported_format"),
        ({"filename": "clip"}, 415, "unsupported_format"),
        ({"filename": ""}, 422, "invalid_input"),
        ({"filename": "x" * 256 + ".mp4"}, 422, "invalid_input"),
        ({"filename": 7}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
        ({"filename": "clip.mp4", "session": "../other"}, 422, "invalid_input"),
        ({"filename": "clip.mp4", "session": "x" * 65}, 422, "invalid_input"),
        ({"filename": "clip.mp4", "subject": "a/b"}, 422, "invalid_input"),
        ({"filename": "clip.mp4", "bucket": "elsewhere"}, 422, "invalid_input"),  # no field beyond the three
        ({"filename": "clip.mp4", "key": "incoming/subject-b/x/y.mp4"}, 422, "invalid_input"),
    ],
)
def test_bad_upload_requests_are_typed_4xx(api: JwtApi, body: Any, status: int, code: str) -> None:
    got, answer = api.call("POST", "/uploads", claims=PATIENT_A, json_body=body)
    assert (got, answer["error"]["code"]) == (status, code), answer


def test_in_aws_the_ticket_is_sigv4_on_the_buckets_regional_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an endpoint override (moto's), the URL is https://<bucket>.s3.<region>.amazonaws.com/ and the
    policy SigV4 (boto3 signs POST policies with SigV2 unless told, which S3 refuses in newer regions)."""
    from meaa_aws.clients import s3_signing_client

    lambda_environment = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_DEFAULT_REGION": "eu-central-2"}
    for name, value in lambda_environment.items():  # Lambda sets AWS_DEFAULT_REGION (and AWS_REGION)
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    signed = s3_signing_client().generate_presigned_post(Bucket="meaa-drop-123456789012-eu-central-2", Key="k")
    assert signed["url"] == "https://meaa-drop-123456789012-eu-central-2.s3.eu-central-2.amazonaws.com/"
    assert signed["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and "signature" not in signed["fields"]
