"""What the deployed API serves, from the environment template.yaml gives the ApiFunction.

The results routes expose health data: with ``AuthMode=none`` (the template's default) the function
must not serve them at all (404, like any unknown path), and the try-it page is off unless
``EnableTryItPage=true``. The environment is resolved from the template for each parameter set (its
``!If``/``!Ref``), so a change of the template's variables is what these tests see.
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

RESULTS_PATHS = ("/subjects/subject-1/moods", "/objects/incoming/subject-1/ward/photo.jpg")
PAGE_PATHS = ("/", "/static/app.js", "/static/index.html")
# Variables a developer's shell might carry into the test that the deployed function would not have.
LOCAL_ONLY_VARIABLES = ("MEAA_LOCAL", "MEAA_UI", "MEAA_AUTH_MODE", "MEAA_TABLE_NAME", "MEAA_DROP_BUCKET")


class _Resolver:
    """Evaluates the intrinsic functions the ApiFunction's environment uses, for given parameters."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
        self.parameters = {**defaults, **parameters}
        self.conditions = template.get("Conditions", {})

    def value(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ((function, argument),) = node.items()
        if function == "Ref":
            return self.parameters.get(argument, f"<{argument}>")  # resources and pseudo parameters: a placeholder
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return self.value(when_true if self.condition(condition) else when_false)
        if function == "Fn::Equals":
            left, right = (self.value(part) for part in argument)
            return str(left) == str(right)
        return f"<{function}>"  # Sub, GetAtt: names of resources, not switches

    def condition(self, name: str) -> bool:
        return bool(self.value(self.conditions[name]))


def deployed_environment(**parameters: str) -> dict[str, str]:
    template = load_template()
    resolver = _Resolver(template, parameters)
    variables: dict[str, Any] = {}
    for source in (template["Globals"]["Function"], template["Resources"]["ApiFunction"]["Properties"]):
        variables.update((source.get("Environment") or {}).get("Variables") or {})
    return {name: str(resolver.value(value)) for name, value in variables.items()}


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
    assert not any(path.startswith(("/subjects", "/objects")) for path in paths)
    assert client.get("/health").status_code == 200  # the app itself is up


def test_with_jwt_auth_the_results_routes_exist(deployed_client) -> None:
    client = deployed_client(AuthMode="jwt")
    response = client.get("/subjects/subject-1/moods?bucket=90s")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_query"
    assert {"/subjects/{subject}/moods", "/objects/{key}"} <= set(client.get("/openapi.json").json()["paths"])


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
