"""The OpenAPI document against the server: schemathesis (pinned) generates requests from ``/openapi.json``
and runs every one of its checks on the answers, for a patient, a clinician and an admin.

The API's Lambda module (imported as Lambda does, ``MEAA_AUTH_MODE=jwt``) runs in process behind
``JwtGatewayAsgi``, which puts a bearer token's verified claims into ``scope["aws.event"]`` the way API
Gateway's authorizer and Mangum do; its results table on moto holds a day of batch results
(``devkit.timeline_day``), so the results routes answer 200s, not only 503s. A fixed seed and a fixed
number of examples per operation make the run the same each time; the last test asserts that every documented
operation was called for every role and answered a 2xx at least once.

What the document states in words because OpenAPI cannot, the server answers with a documented 4xx. When a
request the schema calls valid gets one of those (schemathesis's ``positive_data_acceptance``), the failure is
dropped only if this module's own oracle agrees the request breaks that rule: a cursor the API never returned
for that query, a time range out of its rules, bytes that are none of the real images the generators draw
from, an admin's or clinician's upload ticket without a subject. Every other failure fails the test.
"""

from __future__ import annotations

import base64
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import hypothesis.strategies as st
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from moto import mock_aws
from schemathesis.config import SchemathesisConfig
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.transport.serialization import Binary

from devkit.aws import apply_environment, event_for, face_jpeg, moto_environment, put_object
from devkit.images import encode, pattern_image
from devkit.lambda_loader import REPO_ROOT, lambda_context, load_function_module, load_handler
from devkit.sample_faces import one_face_frame
from devkit.timeline_day import SUBJECT, write_day
from meaa.config import Settings
from meaa_api.app import create_app
from meaa_api.schemas import EXAMPLE_JPEG_BASE64
from meaa_api.upload_parsing import RAW_IMAGE_TYPES
from tests.support.gateway import JwtGatewayAsgi, sign_token, token_claims

SEED = 20261207
EXAMPLES_PER_OPERATION = 25  # per role and generation phase (explicit examples, coverage, fuzzing)
MIN_CASES = 20  # per role: what the run must have sent to each operation with parameters or a body
REPORT = REPO_ROOT / "artifacts" / "contract-coverage.txt"  # the per-operation counts of the last run (gitignored)
SECRET, ISSUER, AUDIENCE = b"contract-test-secret", "https://issuer.example", "contract-client"
CLINICIAN_SUB = "clinician-1"  # the document's example clinician, so its own listing is tried
RUNS = ("patient", "clinician", "admin", "local")  # "local": the document without the authorizer, as an admin
ROLES = {
    "patient": token_claims(SUBJECT),
    "clinician": token_claims(CLINICIAN_SUB, ["clinicians"]),
    "admin": token_claims("admin-contract", ["admins"]),
}

# Real images of each decoded format (tiny, so a 200 costs little; one with a face, so a face's answer is
# checked too): what the document's `binary` and `byte` formats are drawn from, beside arbitrary bytes.
REAL_IMAGES = (
    base64.b64decode(EXAMPLE_JPEG_BASE64),
    encode(pattern_image(24, 32), ".png"),
    encode(pattern_image(16, 16, seed=1), ".webp"),
    encode(pattern_image(12, 20, seed=2), ".bmp"),
    encode(one_face_frame(160, 120), ".jpg"),
)
_IMAGES_OR_BYTES = st.one_of(st.sampled_from(REAL_IMAGES), st.binary(max_size=512))
schemathesis.openapi.format("binary", _IMAGES_OR_BYTES.map(Binary))
schemathesis.openapi.format("byte", _IMAGES_OR_BYTES.map(lambda data: base64.b64encode(data).decode()))
for _media_type in RAW_IMAGE_TYPES:  # raw bodies: the same draw, under every Content-Type the document lists
    schemathesis.openapi.media_type(_media_type, _IMAGES_OR_BYTES)


@dataclass
class Contract:
    """The API behind the gateway, the roles' tokens, and what the run saw."""

    app: Any
    tokens: dict[str, str]
    cursors: set[tuple[str, str, str]] = field(default_factory=set)  # (operation, path and query, cursor)
    calls: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # role -> operation -> n
    successes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    excused: Counter = field(default_factory=Counter)  # (operation, error code) -> dropped failures

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def role_of(self, case: schemathesis.Case) -> str | None:
        token = str((case.headers or {}).get("Authorization", "")).removeprefix("Bearer ")
        return next((role for role, known in self.tokens.items() if known == token), None)


def _cursor_scope(case: schemathesis.Case) -> str:
    """What a cursor belongs to: the operation's path and the query's range (not its page size)."""
    query = case.query or {}
    return f"{case.formatted_path}?from={query.get('from')}&to={query.get('to')}&v={query.get('model_version')}"


def _time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _breaks_range_rules(query: dict[str, Any]) -> bool:
    """The rules `from` states in words: before `to`, at most 10080 buckets, years 1..9999 in UTC."""
    units = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
    try:
        end = _time(query["to"]) if query.get("to") else datetime.now(UTC)
        start = _time(query["from"]) if query.get("from") else end - timedelta(days=1)
        bucket = str(query.get("bucket", "5m"))
        size = int(bucket[:-1]) * units[bucket[-1]]
        count = math.ceil((end - start) / size)
        _ = start + count * size
    except (OverflowError, ValueError):
        return True
    return not (start < end and count <= 10_080)


def _sent_image(case: schemathesis.Case) -> bytes | None:
    body = case.body
    if isinstance(body, dict):
        body = body.get("file", body.get("image_base64"))
    if isinstance(body, Binary):
        return body.data
    if isinstance(body, str):
        try:
            return base64.b64decode(body)
        except ValueError:
            return None
    return body if isinstance(body, bytes) else None


def _excused(world: Contract, case: schemathesis.Case, code: str) -> bool:
    """Whether a documented 4xx for schema-valid data is the rule the document states in words."""
    path, query, role = case.operation.path, case.query or {}, world.role_of(case)
    if code == "invalid_cursor" and query.get("cursor"):
        return (case.operation.label, _cursor_scope(case), query["cursor"]) not in world.cursors
    if code == "invalid_query" and path == "/subjects/{subject}/moods":
        return _breaks_range_rules(query)
    if code in ("invalid_image", "unsupported_format") and path == "/upload-meaa-image":
        return _sent_image(case) not in REAL_IMAGES
    if code == "missing_field" and path == "/uploads":
        return role != "patient" and isinstance(case.body, dict) and case.body.get("subject") is None
    return False


WORLD: dict[str, Contract] = {}


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    if not isinstance(failure, RejectedPositiveData) or "world" not in WORLD:
        return True
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return True
    if _excused(WORLD["world"], case, code):
        WORLD["world"].excused[(case.operation.label, code)] += 1
        return False
    return True


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contract]:
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        apply_environment(patch, ENVIRONMENT)
        write_day(Path(tmp_path_factory.mktemp("media")))
        _score_the_documented_object()
        gateway = JwtGatewayAsgi(load_function_module("ApiFunction").app, SECRET, ISSUER, AUDIENCE)
        contract = Contract(app=gateway, tokens=TOKENS)
        with TestClient(gateway) as client:
            assigned = client.put(f"/clinicians/{CLINICIAN_SUB}/subjects/{SUBJECT}", headers=contract.headers("admin"))
            assert assigned.status_code == 200, assigned.text
            assert client.get("/openapi.json").json() == DOCUMENT
        WORLD["world"], SERVER.app = contract, gateway
        LOCAL_SERVER.app = create_app(Settings.from_env(_defined(LOCAL_ENVIRONMENT)))
        yield contract
        WORLD.clear()


# The document of the deployed configuration (behind the authorizer, results routes on), loaded at import so
# schemathesis makes one test per operation (its lazy fixture loader does not run under this pytest); the
# world's server serves the same document (checked there).
ENVIRONMENT = moto_environment(MEAA_AUTH_MODE="jwt")
# And the document `make serve` and `make serve-demo` serve (MEAA_LOCAL=1: no authorizer, the caller an admin).
LOCAL_ENVIRONMENT = moto_environment(MEAA_LOCAL="1")


def _defined(environment: dict[str, str | None]) -> dict[str, str]:
    return {name: value for name, value in environment.items() if value is not None}


DOCUMENT = create_app(Settings.from_env(_defined(ENVIRONMENT))).openapi()
LOCAL_DOCUMENT = create_app(Settings.from_env(_defined(LOCAL_ENVIRONMENT))).openapi()


class LateApp:
    """The ASGI app schemathesis calls in process, there from import; the world's gateway once it exists."""

    app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


SERVER, LOCAL_SERVER = LateApp(), LateApp()
CONFIG = SchemathesisConfig.from_dict(
    {"base-url": "http://testserver", "seed": SEED, "generation": {"max-examples": EXAMPLES_PER_OPERATION}}
)


def _token(claims: dict[str, Any]) -> str:
    now = int(time.time())
    return sign_token({**claims, "iss": ISSUER, "client_id": AUDIENCE, "iat": now, "exp": now + 6 * 3600}, SECRET)


TOKENS = {role: _token(claims) for role, claims in ROLES.items()}


def _schema_for(role: str) -> Any:
    """The document, tested as ``role``: schemathesis sends its token where the document asks for one, and
    leaves it out or spoils it itself when it checks that the API refuses a request without a valid one."""
    role_schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
    role_schema.app = SERVER

    @role_schema.auth(refresh_interval=None, retry_on=[])
    class RoleToken:
        def get(self, case: schemathesis.Case, context: Any) -> str:
            return TOKENS[role]

        def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return role_schema


PATIENT, CLINICIAN, ADMIN = (_schema_for(role) for role in ROLES)
LOCAL = schemathesis.openapi.from_dict(LOCAL_DOCUMENT, config=CONFIG)
LOCAL.app = LOCAL_SERVER


def _score_the_documented_object() -> None:
    """The object the document's example key names, scored like any upload (so `GET /objects/{key}` has one)."""
    (parameter,) = [p for p in DOCUMENT["paths"]["/objects/{key}"]["get"]["parameters"] if p["name"] == "key"]
    entry = put_object(boto3.client("s3"), parameter["schema"]["examples"][0], face_jpeg())
    outcome = load_handler("BatchFunction")(event_for([entry]), lambda_context("BatchFunction"))["outcomes"][0]
    assert outcome["status"] == "scored", outcome


def _call_and_validate(case: schemathesis.Case, role: str, world: Contract) -> None:
    response = case.call_and_validate()
    label = case.operation.label
    world.calls[role][label] += 1
    if 200 <= response.status_code < 300:
        world.successes[role][label] += 1
        body = response.json() if response.content else None
        if isinstance(body, dict) and body.get("next_cursor"):
            world.cursors.add((label, _cursor_scope(case), body["next_cursor"]))


# No example database: the run is the seed's, not replays of earlier runs' failures.
_SETTINGS = settings(suppress_health_check=list(HealthCheck), deadline=None, database=None)


@PATIENT.parametrize()
@_SETTINGS
def test_a_patient_gets_what_the_document_says(case: schemathesis.Case, world: Contract) -> None:
    _call_and_validate(case, "patient", world)


@CLINICIAN.parametrize()
@_SETTINGS
def test_a_clinician_gets_what_the_document_says(case: schemathesis.Case, world: Contract) -> None:
    _call_and_validate(case, "clinician", world)


@ADMIN.parametrize()
@_SETTINGS
def test_an_admin_gets_what_the_document_says(case: schemathesis.Case, world: Contract) -> None:
    _call_and_validate(case, "admin", world)


@LOCAL.parametrize()
@_SETTINGS
def test_the_local_server_does_what_its_document_says(case: schemathesis.Case, world: Contract) -> None:
    _call_and_validate(case, "local", world)


def test_every_operation_was_called_and_succeeded_for_every_role(world: Contract) -> None:
    operations = {result.ok().label: result.ok() for result in ADMIN.get_all_operations()}
    assert len(operations) == 9
    lines = [f"schemathesis {schemathesis.__version__}, seed {SEED}, {EXAMPLES_PER_OPERATION} examples per phase"]
    for role in RUNS:
        for label in sorted(operations):
            lines.append(f"{role:9} {label:52} {world.calls[role][label]:4} cases {world.successes[role][label]:4} 2xx")
    lines.append(f"dropped as the document's stated rules: {dict(world.excused)}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    assert LOCAL_DOCUMENT["paths"].keys() == DOCUMENT["paths"].keys()
    for role in RUNS:
        calls, successes = world.calls[role], world.successes[role]
        # An operation without parameters or body has few distinct requests to make.
        minimum = {label: MIN_CASES if _has_inputs(operation) else 5 for label, operation in operations.items()}
        assert {label: calls[label] for label in operations if calls[label] < minimum[label]} == {}, role
        assert {label for label in operations if not successes[label]} == _only_admins_succeed(role), role


def _has_inputs(operation: Any) -> bool:
    return bool(operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"))


def _only_admins_succeed(role: str) -> set[str]:
    """What a patient or clinician may never do: change assignments; list a clinician's subjects (a patient)."""
    if role in ("admin", "local"):
        return set()
    return {
        "PUT /clinicians/{clinician}/subjects/{subject}",
        "DELETE /clinicians/{clinician}/subjects/{subject}",
        *({"GET /clinicians/{clinician}/subjects"} if role == "patient" else set()),
    }
