"""The audit trail: one JSON line per read of health data, per upload ticket and per assignment change, and an
``AccessDenied`` metric per refusal, as the Lambda entry writes them to stdout (CloudWatch Logs in AWS).

Checked on the lines themselves: who (``principal_sub``, ``principal_role``), what (action, route, subject
or key), the status and outcome, the item count; that a refusal is audited as well as a success; and that
no line carries a token, another claim or any result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.access_world import DAY, KEY_A, SUBJECT_A, SUBJECT_B, JwtApi, jwt_api_world
from tests.support.gateway import token_claims
from tests.unit.test_observability import emf_metrics, json_lines

PATIENT_A = token_claims(SUBJECT_A, email="patient-a@example.org")
CLINICIAN = token_claims("clinician-c", ["clinicians"])
ADMIN = token_claims("admin-1", ["admins"])
TOKEN = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdWJqZWN0LWEifQ.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def api() -> Iterator[JwtApi]:
    with jwt_api_world() as world:
        yield world


def _audit_lines(stdout: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(stdout) if line.get("message") == "audit"]


def _denied(stdout: str) -> list[tuple[Any, str, dict[str, str]]]:
    documents = emf_metrics(json_lines(stdout))
    return [(m.values, m.unit, m.dimensions) for document in documents for m in document if m.name == "AccessDenied"]


def _one_request(api: JwtApi, capsys: pytest.CaptureFixture[str], method: str, path: str, **request: Any):
    capsys.readouterr()
    status, body = api.call(method, path, headers={"authorization": TOKEN}, **request)
    out = capsys.readouterr().out
    return status, body, out


def test_a_timeline_read_is_one_audit_line_with_who_what_and_how_many(api: JwtApi, capsys) -> None:
    status, body, out = _one_request(api, capsys, "GET", f"/subjects/{SUBJECT_A}/moods", claims=PATIENT_A, query=DAY)
    assert status == 200
    (line,) = _audit_lines(out)
    assert line["level"] == "INFO" and line["service"] == "meaa-api" and line["audit"] is True
    expected = {
        "action": "read_timeline",
        "route": "GET /subjects/{subject}/moods",
        "principal_sub": SUBJECT_A,
        "principal_role": "patient",
        "subject": SUBJECT_A,
        "key": None,
        "status": 200,
        "outcome": "allowed",
        "error_code": None,
        "item_count": body["items_read"],
    }
    assert {name: line.get(name) for name in expected} == expected and body["items_read"] == 1  # None: left out
    assert line["request_id"] == line["correlation_id"]  # API Gateway's request id, as in its access log


def test_refusals_are_audited_and_counted(api: JwtApi, capsys) -> None:
    status, _, out = _one_request(api, capsys, "GET", f"/subjects/{SUBJECT_B}/moods", claims=PATIENT_A, query=DAY)
    assert status == 403
    (line,) = _audit_lines(out)
    assert (line["principal_sub"], line["subject"], line["outcome"], line["error_code"], line["item_count"]) == (
        SUBJECT_A,
        SUBJECT_B,
        "denied",
        "forbidden",
        0,
    )
    assert _denied(out) == [((1.0,), "Count", {"service": "meaa-api"})]  # what AccessDeniedAlarm sums

    status, _, out = _one_request(api, capsys, "GET", f"/objects/{KEY_A}")  # no authorizer context at all
    assert status == 401
    (line,) = _audit_lines(out)
    assert (line.get("principal_sub"), line.get("principal_role"), line["key"], line["subject"], line["status"]) == (
        None,
        None,
        KEY_A,
        SUBJECT_A,
        401,
    )
    assert len(_denied(out)) == 1
    _, _, out = _one_request(api, capsys, "GET", f"/objects/{KEY_A}", claims=PATIENT_A)
    assert _denied(out) == []


def test_assignment_changes_and_upload_tickets_are_audited(api: JwtApi, capsys) -> None:
    path = f"/clinicians/{CLINICIAN['sub']}/subjects/{SUBJECT_B}"
    lines = []
    for method, route_path, claims, body in (
        ("PUT", path, ADMIN, None),
        ("DELETE", path, ADMIN, None),
        ("PUT", path, CLINICIAN, None),
        ("POST", "/uploads", PATIENT_A, {"filename": "clip.mp4"}),
    ):
        _, _, out = _one_request(api, capsys, method, route_path, claims=claims, json_body=body)
        (line,) = _audit_lines(out)
        lines.append(line)
    assign, revoke, refused, upload = lines
    assert (assign["action"], assign["principal_role"], assign["clinician"], assign["subject"]) == (
        "assign",
        "admin",
        CLINICIAN["sub"],
        SUBJECT_B,
    )
    assert (assign["status"], revoke["action"], revoke["status"]) == (200, "revoke", 204)
    assert (refused["principal_role"], refused["status"], refused["outcome"]) == ("clinician", 403, "denied")
    assert upload["action"] == "request_upload" and upload["status"] == 201
    assert upload["key"].startswith(f"incoming/{SUBJECT_A}/") and upload["subject"] == SUBJECT_A


def test_no_line_carries_a_token_a_claim_or_a_result(api: JwtApi, capsys) -> None:
    _, body, out = _one_request(api, capsys, "GET", f"/objects/{KEY_A}", claims=PATIENT_A)
    assert body["items"]
    for secret in (TOKEN.split()[1], "patient-a@example.org", "exampleclientid", "cognito-idp"):
        assert secret not in out
    for result_field in ("landmarks", "moods", "emotions", "faces"):
        assert f'"{result_field}"' not in out


def test_only_health_data_routes_are_audited(api: JwtApi, capsys) -> None:
    for path in ("/health", "/me"):
        _, _, out = _one_request(api, capsys, "GET", path, claims=PATIENT_A)
        assert _audit_lines(out) == [], path
