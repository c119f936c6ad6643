"""What the deployed API serves, from the environment template.yaml gives the ApiFunction.

The results routes expose health data: with ``AuthMode=none`` (the template's default) the function
must not serve them at all (404, like any unknown path), and the try-it page is off unless
``EnableTryItPage=true``. The environment is resolved from the template for each parameter set (its
``!If``/``!Ref``, by ``tests.support.sam_template``), so a change of the template's variables is what these tests see.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devkit.lambda_loader import lambda_context, load_function_module, load_handler, load_template
from meaa import store
from tests.support.access_world import PROTECTED_REQUESTS
from tests.support.gateway import answer as lambda_answer
from tests.support.gateway import http_event, token_claims
from tests.support.sam_template import TemplateResolver

RESULTS_PATHS = ("/subjects/subject-1/moods", "/objects/incoming/subject-1/ward/photo.jpg")
PAGE_PATHS = ("/", "/static/app.js", "/static/index.html")
# Variables a developer's shell might carry into the test that the deployed function would not have.
LOCAL_ONLY_VARIABLES = ("MEAA_LOCAL", "MEAA_UI", "MEAA_AUTH_MODE", "MEAA_TABLE_NAME", "MEAA_DROP_BUCKET")


def _as_deployed(value: Any, resolver: TemplateResolver) -> str:
    """A variable's value: parameters by value; resources, pseudo parameters and other intrinsics as placeholders."""
    if isinstance(value, dict):
        ((function, argument),) = value.items()
        if function == "Ref":
            return resolver.parameters.get(argument, f"<{argument}>")
        if function == "Fn::Sub" and isinstance(argument, str):  # parameters substituted; resources stay names
            return re.sub(r"\$\{([^}]+)\}", lambda m: resolver.parameters.get(m.group(1), f"<{m.group(1)}>"), argument)
        return f"<{function}>"  # GetAtt: names of resources, not switches
    return str(value)


def deployed_environment(**parameters: str) -> dict[str, str]:
    template = load_template()
    resolver = TemplateResolver(template, **parameters)
    variables: dict[str, Any] = {}
    for source in (template["Globals"]["Function"], template["Resources"]["ApiFunction"]["Properties"]):
        variables.update((source.get("Environment") or {}).get("Variables") or {})
    return {name: _as_deployed(resolver.value(value), resolver) for name, value in variables.items()}


@pytest.fixture
def deployed_client(monkeypatch: pytest.MonkeyPatch):
    """A factory: the API app imported (as Lambda does) with exactly the template's environment."""
    clients: list[TestClient] = []

    def make(**parameters: str) -> TestClient:
        for name in LOCAL_ONLY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in deployed_environment(**parameters).items():
            monkeypatch.setenv(name, value)
        client = TestClient(load_function_module("ApiFunction").app, raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_template_defaults_are_no_auth_and_no_page() -> None:
    environment = deployed_environment()
    assert environment["MEAA_AUTH_MODE"] == "none"
    assert environment["MEAA_UI"] == "0"
    assert "MEAA_LOCAL" not in environment


def test_without_auth_the_results_routes_do_not_exist(deployed_client) -> None:
    client = deployed_client(AuthMode="none")
    for path in RESULTS_PATHS:
        for query in ("", "?from=2026-11-25&to=2026-11-26&bucket=1h"):
            response = client.get(path + query)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths == {"/upload-meaa-image", "/health"}
    for method, path, body in PROTECTED_REQUESTS[:-1]:  # none of them exists; the image upload stays open
        response = client.request(method, path, json=body)
        assert response.status_code in (404, 405) and response.json()["error"]["code"] in (
            "not_found",
            "method_not_allowed",
        )
    assert client.get("/health").status_code == 200  # the app itself is up


def test_with_jwt_auth_the_protected_routes_exist_and_answer_401_without_claims(deployed_client) -> None:
    """Behind the authorizer every route that reads, stores or signs needs its verified claims: a request
    that reaches the function without them (another integration, a misconfigured route) gets 401 first,
    whatever its parameters."""
    client = deployed_client(AuthMode="jwt")
    for method, path, body in PROTECTED_REQUESTS:
        response = client.request(method, path, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
    documented = client.get("/openapi.json").json()["paths"]
    assert {"/subjects/{subject}/moods", "/objects/{key}", "/uploads", "/me"} <= set(documented)
    assert {"/clinicians/{clinician}/subjects/{subject}", "/clinicians/{clinician}/subjects"} <= set(documented)
    assert client.get("/health").status_code == 200


def test_try_it_page_is_off_by_default_and_on_when_enabled(deployed_client) -> None:
    off = deployed_client()
    for path in PAGE_PATHS:
        response = off.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", path
    on = deployed_client(EnableTryItPage="true")
    page = on.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="photo-input"' in page.text and "static/app.js" in page.text
    script = on.get("/static/app.js")
    assert script.status_code == 200 and "upload-meaa-image" in script.text
    assert on.get("/static/style.css").headers["content-type"].startswith("text/css")
    missing = on.get("/static/no-such-file.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    # The page alone does not switch the results routes on.
    assert on.get(RESULTS_PATHS[0]).status_code == 404


def test_page_references_only_its_own_files() -> None:
    """No CDN: every src/href in the page is a relative path under static/ (it must work offline)."""
    html = (
        Path(__file__).resolve().parents[2] / "functions" / "api" / "meaa_api" / "static" / "index.html"
    ).read_text()
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert references and all(ref.startswith("static/") and "//" not in ref for ref in references)


def _get_event(path: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) GET, built from the repository's sample health event."""
    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "api_health.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /" if path == "/" else "GET /static/{file+}"
    return event


def test_lambda_entry_point_serves_the_page_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LOCAL_ONLY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in deployed_environment(EnableTryItPage="true").items():
        monkeypatch.setenv(name, value)
    handler = load_handler("ApiFunction")
    page = handler(_get_event("/"), lambda_context("ApiFunction"))
    assert page["statusCode"] == 200 and page["headers"]["content-type"].startswith("text/html")
    body = base64.b64decode(page["body"]).decode() if page.get("isBase64Encoded") else page["body"]
    assert 'id="photo-input"' in body
    script = handler(_get_event("/static/app.js"), lambda_context("ApiFunction"))
    assert script["statusCode"] == 200 and "text/javascript" in script["headers"]["content-type"]


def test_results_routes_document_and_check_the_model_version_they_read(deployed_client) -> None:
    client = deployed_client(AuthMode="jwt")
    document = client.get("/openapi.json").json()
    for path in ("/subjects/{subject}/moods", "/objects/{key}"):
        operation = document["paths"][path]["get"]
        (parameter,) = [parameter for parameter in operation["parameters"] if parameter["name"] == "model_version"]
        schema = parameter["schema"]
        assert schema["type"] == "string" and schema["pattern"] == store.MODEL_VERSION_PATTERN
        assert (schema["minLength"], schema["maxLength"], parameter["required"]) == (1, 200, False)
        assert "`invalid_query`" in operation["responses"]["400"]["description"]
    schemas = document["components"]["schemas"]
    for answer in ("SubjectMoods", "ObjectItems"):
        assert "model_version" in schemas[answer]["required"]
        assert schemas[answer]["properties"]["model_version"]["pattern"] == store.MODEL_VERSION_PATTERN
    assert "objects_without_result" in schemas["MoodBucket"]["required"]
    assert schemas["MoodBucket"]["properties"]["objects_without_result"]["minimum"] == 0
    # Through the Lambda entry as an admin (the authorizer's claims): access passes, then the parameter is refused.
    handler = load_handler("ApiFunction")
    admin = token_claims("admin-1", ["admins"])
    for bad in ("v#x", "a" * 201, "", "v x"):
        event = http_event("GET", "/subjects/subject-1/moods", claims=admin, query={"model_version": bad})
        status, body = lambda_answer(handler(event, lambda_context("ApiFunction")))
        assert status == 400, (bad, body)  # before any AWS client exists
        assert body["error"]["code"] == "invalid_query"
