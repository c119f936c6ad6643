"""The pages the API serves (/docs and the try-it page) load nothing from outside its own origin.

Every ``src``/``href`` of the HTML is same-origin and answers 200 from the app itself; inline scripts name no
other host; the Content-Security-Policy header allows this origin, the page's inline scripts by hash and
local schemes (data:, blob:, mediastream:) only, so even a script that tried could not reach a third party.
``tests/browser/test_docs_page.py`` checks the same in Chromium, from the network's side.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from meaa.config import Settings
from meaa_api.app import create_app

ORIGIN = "http://testserver"
LOCAL_SCHEMES = {"data:", "blob:", "mediastream:"}
URL_ATTRIBUTES = {"src", "href", "action", "poster", "data", "formaction"}


class _PageParser(HTMLParser):
    """Every URL attribute and every inline script's text of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls.extend(value for name, value in attrs if name in URL_ATTRIBUTES and value)
        self._in_inline_script = tag == "script" and "src" not in values
        if self._in_inline_script:
            self.inline_scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def parse_csp(header: str) -> dict[str, list[str]]:
    directives = {}
    for directive in filter(None, (part.strip() for part in header.split(";"))):
        name, *sources = directive.split()
        directives[name] = sources
    return directives


def script_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture(scope="module")
def page_client():
    """The API with the try-it page on (as ``make serve`` and ``EnableTryItPage=true``); no model is loaded."""
    with TestClient(create_app(Settings.from_env({"MEAA_UI": "1"})), base_url=ORIGIN) as client:
        yield client


@pytest.mark.parametrize("path", ["/docs", "/"])
def test_page_loads_only_same_origin_resources_that_the_app_serves(page_client: TestClient, path: str) -> None:
    response = page_client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    parser = _PageParser()
    parser.feed(response.text)

    assert parser.urls, "the page references its script and style"
    for url in parser.urls:
        absolute = urljoin(f"{ORIGIN}{path}", url)
        assert urlsplit(absolute)[:2] == urlsplit(ORIGIN)[:2], f"{url} is not same-origin"
        assert page_client.get(absolute).status_code == 200, f"{url} is not served by the app"
    for script in parser.inline_scripts:
        assert not re.search(r"(https?:)?//[\w.-]+\.\w", script), "an inline script names another host"


@pytest.mark.parametrize("path", ["/docs", "/"])
def test_content_security_policy_allows_self_hashes_and_local_schemes_only(page_client: TestClient, path: str) -> None:
    response = page_client.get(path)
    policy = parse_csp(response.headers["content-security-policy"])
    parser = _PageParser()
    parser.feed(response.text)

    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive, sources in policy.items():
        for source in sources:
            allowed = source in ("'self'", "'none'") or source.startswith("'sha256-") or source in LOCAL_SCHEMES
            assert allowed, f"{directive} allows {source}"
    script_sources = policy.get("script-src", policy["default-src"])
    assert sorted(script_sources) == sorted(["'self'", *(script_hash(text) for text in parser.inline_scripts)])


def test_docs_page_turns_off_swagger_uis_online_validator(page_client: TestClient) -> None:
    parser = _PageParser()
    parser.feed(page_client.get("/docs").text)
    (config,) = parser.inline_scripts
    assert '"validatorUrl": null' in config  # else Swagger UI sends the API's URL to validator.swagger.io


def test_docs_assets_are_swagger_uis_only(page_client: TestClient) -> None:
    assert page_client.get("/docs/redoc.standalone.js").status_code == 404
    assert page_client.get("/docs/..%2Fconsts.py").status_code == 404
    script = page_client.get("/docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in script.text
