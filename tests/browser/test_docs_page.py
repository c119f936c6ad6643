"""/docs in headless Chromium: Swagger UI renders from the API's own files, and the browser asks no other host.

The API is served as ``make serve`` serves it (uvicorn, 127.0.0.1, real app); Chromium runs without network
access beyond that (``--host-resolver-rules`` maps every other name to nowhere), so a page that needed a CDN
would stay blank here. Every request the page makes is read from Chromium's own network log (DevTools
``Network.requestWillBeSent``), and its console must show no Content-Security-Policy violation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.chromium import require_chromium
from tests.support.servers import local_api_server

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -r requirements.txt)"
)

from selenium.webdriver.common.by import By  # noqa: E402 - after the skip above
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

RENDER_WAIT_S = 30  # the server is up already: a readiness wait for slow machines, not a performance assertion
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    # Only 127.0.0.1 resolves: any other host (a CDN) fails at once instead of waiting for a timeout.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


@pytest.fixture(scope="module", autouse=True)
def chromium() -> tuple[str, str]:
    """Before the server starts: skip without Chromium, or fail when MEAA_BROWSER_TESTS=1 asked for it."""
    return require_chromium()


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with local_api_server({"MEAA_UI": "0"}, drop_env=("MEAA_AUTH_MODE", "AWS_ENDPOINT_URL")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, chromium: tuple[str, str]) -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium_binary, chromedriver = chromium
    options = Options()
    options.binary_location = chromium_binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium') / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _requested_urls(browser: Any) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_docs_render_swagger_ui_from_the_api_alone(browser: Any, server_url: str) -> None:
    browser.get_log("performance")  # start from an empty network log
    browser.get(f"{server_url}/docs")

    wait = WebDriverWait(browser, RENDER_WAIT_S)
    title = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title"))
    assert "MEAA facial mood API" in title.text
    operations = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path") or None)
    assert "/upload-meaa-image" in {operation.text.strip() for operation in operations}

    urls = _requested_urls(browser)
    origin = urlsplit(server_url)
    assert {f"{server_url}/docs", f"{server_url}/openapi.json", f"{server_url}/docs/swagger-ui-bundle.js"} <= set(urls)
    outside = [url for url in urls if urlsplit(url)[:2] != origin[:2] and urlsplit(url).scheme != "data"]
    assert outside == [], f"the docs page asked other hosts: {outside}"
    violations = [
        entry["message"] for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]
    ]
    assert violations == [], violations
