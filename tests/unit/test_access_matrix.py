"""Who may see whose moods: the access matrix through the API's Lambda entry, on moto.

Two patients' photos (and one stray object outside the ``<subject>/<session>/`` layout) are scored by the
batch handler into moto's DynamoDB; the API's handler (imported as Lambda does, ``MEAA_AUTH_MODE=jwt``) is
then invoked with API Gateway HTTP API events whose ``requestContext.authorizer.jwt.claims`` are rendered
the way the JWT authorizer renders them (``tests.support.gateway``). Each row says who asks for what and
the status it must get; a refusal carries no data. The clinician rows run as one story: unassigned, then
assigned by an admin, then revoked, each change counting from the very next request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devkit.aws import ASSIGNMENTS_TABLE, TABLE
from tests.support.access_world import (
    DAY,
    KEY_A,
    KEY_B,
    OUTSIDE_KEY,
    STRAY_KEY,
    SUBJECT_A,
    SUBJECT_B,
    JwtApi,
    jwt_api_world,
)
from tests.support.gateway import token_claims

PATIENT_A = token_claims(SUBJECT_A)
PATIENT_B = token_claims(SUBJECT_B)
CLINICIAN = token_claims("clinician-c", ["clinicians"])
OTHER_CLINICIAN = token_claims("clinician-d", ["clinicians"])
ADMIN = token_claims("admin-1", ["admins"])
ADMIN_JSON_GROUPS = token_claims("admin-2", None, **{"cognito:groups": '["clinicians", "admins"]'})


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")  # noqa: E731
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


# Headers a client can send but that must never count: a groups "claim", an OIDC header, a made-up token.
FORGED_HEADERS = {
    "cognito:groups": "[admins]",
    "x-cognito-groups": "admins",
    "x-amzn-oidc-data": _unsigned_jwt({"sub": "admin-1", "cognito:groups": ["admins"]}),
    "authorization": "Bearer " + _unsigned_jwt({"sub": "admin-1", "cognito:groups": ["admins"]}),
}


@pytest.fixture(scope="module")
def world() -> Iterator[JwtApi]:
    with jwt_api_world() as api:
        yield api


def call(world: JwtApi, method: str, path: str, **request: Any) -> tuple[int, Any]:
    return world.call(method, path, **request)


def moods(subject: str) -> tuple[str, str, dict[str, Any]]:
    return "GET", f"/subjects/{subject}/moods", {"query": DAY}


def objects(key: str) -> tuple[str, str, dict[str, Any]]:
    return "GET", f"/objects/{key}", {}


# (who, claims or a raw authorizer context, extra headers, request, expected status)
READ_MATRIX = [
    ("patient A", PATIENT_A, None, moods(SUBJECT_A), 200),
    ("patient A", PATIENT_A, None, moods(SUBJECT_B), 403),
    ("patient A", PATIENT_A, None, objects(KEY_A), 200),
    ("patient A", PATIENT_A, None, objects(KEY_B), 403),
    ("patient A", PATIENT_A, None, objects(STRAY_KEY), 403),
    ("patient A", PATIENT_A, None, objects(OUTSIDE_KEY), 403),
    ("patient A", PATIENT_A, None, objects(f"incoming/{SUBJECT_A}/ward/never.jpg"), 404),
    ("patient B", PATIENT_B, None, moods(SUBJECT_B), 200),
    ("patient B", PATIENT_B, None, moods(SUBJECT_A), 403),
    ("patient B", PATIENT_B, None, objects(KEY_A), 403),
    ("unassigned clinician", OTHER_CLINICIAN, None, moods(SUBJECT_A), 403),
    ("unassigned clinician", OTHER_CLINICIAN, None, objects(KEY_A), 403),
    ("admin", ADMIN, None, moods(SUBJECT_A), 200),
    ("admin", ADMIN, None, moods(SUBJECT_B), 200),
    ("admin", ADMIN, None, objects(KEY_B), 200),
    ("admin", ADMIN, None, objects(STRAY_KEY), 200),
    ("admin", ADMIN, None, objects(OUTSIDE_KEY), 404),
    ("admin, groups as a JSON list", ADMIN_JSON_GROUPS, None, moods(SUBJECT_B), 200),
    ("no authorizer context", None, None, moods(SUBJECT_A), 401),
    ("no authorizer context", None, None, objects(KEY_A), 401),
    ("empty claims", {"jwt": {"claims": {}}}, None, moods(SUBJECT_A), 401),
    ("claims not an object", {"jwt": {"claims": "sub=subject-a"}}, None, moods(SUBJECT_A), 401),
    ("groups claim a number", {"jwt": {"claims": {"sub": "x", "cognito:groups": 7}}}, None, moods(SUBJECT_A), 401),
    (
        "groups claim broken JSON",
        {"jwt": {"claims": {"sub": "x", "cognito:groups": '["admins'}}},
        None,
        moods(SUBJECT_A),
        401,
    ),
    ("sub claim missing", {"jwt": {"claims": {"cognito:groups": "[admins]"}}}, None, moods(SUBJECT_A), 401),
    (
        "sub claim a list",
        {"jwt": {"claims": {"sub": ["admin-1"], "cognito:groups": "[admins]"}}},
        None,
        moods(SUBJECT_A),
        401,
    ),
    (
        "lambda authorizer context, no jwt",
        {"lambda": {"sub": "admin-1", "groups": "admins"}},
        None,
        moods(SUBJECT_A),
        401,
    ),
    ("patient A + forged admin headers", PATIENT_A, FORGED_HEADERS, moods(SUBJECT_B), 403),
    ("patient A + forged admin headers", PATIENT_A, FORGED_HEADERS, objects(STRAY_KEY), 403),
    ("forged admin headers, no authorizer", None, FORGED_HEADERS, moods(SUBJECT_B), 401),
]


def _request(who: Any, headers: dict[str, str] | None, extra: dict[str, Any]) -> dict[str, Any]:
    request = {**extra, "headers": headers}
    if isinstance(who, dict) and "sub" in who:
        request["claims"] = who
    elif who is not None:
        request["authorizer"] = who
    return request


def _assert_refusal_without_data(status: int, body: Any, expected_code: str) -> None:
    assert body["error"]["code"] == expected_code, body
    assert set(body) == {"error", "request_id"}, "a refusal carries no data"


@pytest.mark.parametrize(
    "who, claims, headers, target, expected", READ_MATRIX, ids=[f"{r[0]}: {r[3][1]}" for r in READ_MATRIX]
)
def test_read_matrix(world, who: str, claims: Any, headers: Any, target: tuple, expected: int) -> None:
    method, path, extra = target
    status, body = call(world, method, path, **_request(claims, headers, extra))
    assert status == expected, (who, path, body)
    if expected == 200:
        if "subject" in body:
            assert body["subject"] == path.split("/")[2] and sum(b["objects"] for b in body["buckets"]) == 1
        else:
            assert body["items"] and {item["key"] for item in body["items"]} == {path.removeprefix("/objects/")}
    elif expected in (401, 403):
        _assert_refusal_without_data(status, body, {401: "unauthenticated", 403: "forbidden"}[expected])


def test_clinician_story_unassigned_assigned_revoked(world) -> None:
    clinician = CLINICIAN["sub"]
    assignment = f"/clinicians/{clinician}/subjects/{SUBJECT_A}"
    assert call(world, *moods(SUBJECT_A)[:2], claims=CLINICIAN, query=DAY)[0] == 403

    status, body = call(world, "PUT", assignment, claims=ADMIN)
    assert status == 200 and body["created"] is True and body["assigned_by"] == ADMIN["sub"]
    assert call(world, "PUT", assignment, claims=ADMIN)[1]["created"] is False  # idempotent

    # The very next request: the assigned subject and its objects, and still nothing else.
    status, body = call(world, *moods(SUBJECT_A)[:2], claims=CLINICIAN, query=DAY)
    assert status == 200 and sum(bucket["objects"] for bucket in body["buckets"]) == 1
    assert call(world, *objects(KEY_A)[:2], claims=CLINICIAN)[0] == 200
    assert call(world, *moods(SUBJECT_B)[:2], claims=CLINICIAN, query=DAY)[0] == 403
    assert call(world, *objects(KEY_B)[:2], claims=CLINICIAN)[0] == 403
    assert call(world, *objects(STRAY_KEY)[:2], claims=CLINICIAN)[0] == 403
    assert call(world, *moods(SUBJECT_A)[:2], claims=OTHER_CLINICIAN, query=DAY)[0] == 403  # per clinician

    status, body = call(world, "GET", f"/clinicians/{clinician}/subjects", claims=CLINICIAN)  # its own list
    assert status == 200 and [entry["subject"] for entry in body["subjects"]] == [SUBJECT_A]

    assert call(world, "DELETE", assignment, claims=ADMIN)[0] == 204
    status, body = call(world, *moods(SUBJECT_A)[:2], claims=CLINICIAN, query=DAY)
    assert status == 403 and body["error"]["code"] == "forbidden"  # revoked: the next request is refused
    assert call(world, *objects(KEY_A)[:2], claims=CLINICIAN)[0] == 403
    status, body = call(world, "DELETE", assignment, claims=ADMIN)
    assert status == 404 and body["error"]["code"] == "assignment_not_found"


# (who, claims, method, path, expected status)
ASSIGNMENT_MATRIX = [
    ("patient", PATIENT_A, "PUT", f"/clinicians/clinician-c/subjects/{SUBJECT_A}", 403),
    ("clinician", CLINICIAN, "PUT", f"/clinicians/clinician-c/subjects/{SUBJECT_B}", 403),
    ("clinician", CLINICIAN, "DELETE", f"/clinicians/clinician-c/subjects/{SUBJECT_A}", 403),
    ("another clinician", OTHER_CLINICIAN, "GET", "/clinicians/clinician-c/subjects", 403),
    ("patient", PATIENT_A, "GET", "/clinicians/clinician-c/subjects", 403),
    ("no authorizer context", None, "PUT", f"/clinicians/clinician-c/subjects/{SUBJECT_A}", 401),
    ("no authorizer context", None, "GET", "/clinicians/clinician-c/subjects", 401),
    ("admin", ADMIN, "GET", "/clinicians/clinician-d/subjects", 200),
    ("admin", ADMIN, "PUT", "/clinicians/clinician-d/subjects/..", 422),
]


@pytest.mark.parametrize("who, claims, method, path, expected", ASSIGNMENT_MATRIX)
def test_assignment_matrix(world, who: str, claims: Any, method: str, path: str, expected: int) -> None:
    status, body = call(world, method, path, claims=claims)
    assert status == expected, (who, method, path, body)
    if expected in (401, 403):
        _assert_refusal_without_data(status, body, {401: "unauthenticated", 403: "forbidden"}[expected])


# (who, claims, body, expected status)
UPLOAD_MATRIX = [
    ("patient A, own subject implied", PATIENT_A, {"filename": "clip.mp4"}, 201),
    ("patient A, own subject named", PATIENT_A, {"filename": "clip.mp4", "subject": SUBJECT_A}, 201),
    ("patient A, another subject", PATIENT_A, {"filename": "clip.mp4", "subject": SUBJECT_B}, 403),
    ("unassigned clinician", OTHER_CLINICIAN, {"filename": "clip.mp4", "subject": SUBJECT_A}, 403),
    ("clinician, no subject", OTHER_CLINICIAN, {"filename": "clip.mp4"}, 422),
    ("admin, any subject", ADMIN, {"filename": "clip.mp4", "subject": SUBJECT_B}, 201),
    ("no authorizer context", None, {"filename": "clip.mp4"}, 401),
    ("patient A, forged admin headers", PATIENT_A, {"filename": "clip.mp4", "subject": SUBJECT_B}, 403),
]


@pytest.mark.parametrize("who, claims, body, expected", UPLOAD_MATRIX)
def test_upload_matrix(world, who: str, claims: Any, body: dict[str, Any], expected: int) -> None:
    headers = FORGED_HEADERS if "forged" in who else None
    status, answer_body = call(world, "POST", "/uploads", claims=claims, json_body=body, headers=headers)
    assert status == expected, (who, answer_body)
    if status == 201:
        subject = body.get("subject") or claims["sub"]
        assert answer_body["key"].startswith(f"incoming/{subject}/")
    elif expected in (401, 403):
        _assert_refusal_without_data(status, answer_body, {401: "unauthenticated", 403: "forbidden"}[expected])


def test_me_says_who_the_api_takes_the_caller_for(world) -> None:
    assert call(world, "GET", "/me", claims=PATIENT_A) == (
        200,
        {"sub": SUBJECT_A, "role": "patient", "subject": SUBJECT_A},
    )
    assert call(world, "GET", "/me", claims=CLINICIAN)[1]["role"] == "clinician"
    assert call(world, "GET", "/me", claims=ADMIN_JSON_GROUPS)[1]["role"] == "admin"
    assert call(world, "GET", "/me", headers=FORGED_HEADERS)[0] == 401


def test_the_api_makes_exactly_the_dynamodb_calls_its_role_allows(world) -> None:
    """The template grants Query on the results table and index, and Query, PutItem, DeleteItem on the
    assignments table (tests/unit/test_template.py); the routes above used exactly those."""
    call(world, "PUT", f"/clinicians/clinician-x/subjects/{SUBJECT_B}", claims=ADMIN)
    call(world, *moods(SUBJECT_B)[:2], claims=token_claims("clinician-x", ["clinicians"]), query=DAY)
    call(world, "GET", "/clinicians/clinician-x/subjects", claims=ADMIN)
    call(world, "DELETE", f"/clinicians/clinician-x/subjects/{SUBJECT_B}", claims=ADMIN)
    used = set(world.calls)
    assert {table for _, table in used} == {TABLE, ASSIGNMENTS_TABLE}
    assert {operation for operation, table in used if table == TABLE} == {"Query"}
    assert {operation for operation, table in used if table == ASSIGNMENTS_TABLE} == {"Query", "PutItem", "DeleteItem"}
