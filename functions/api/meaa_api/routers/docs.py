"""``GET /docs``: Swagger UI served by the function itself, from the files of a pinned package.

FastAPI's default page loads Swagger UI from a CDN: blank without internet, and a third-party script next to
patient data. This follows FastAPI's "self-hosting JavaScript and CSS for docs" recipe with the assets that
``fastapi-offline`` ships (only its files are used), and a Content-Security-Policy that allows this origin and
the page's one inline script (by hash) and nothing else. Swagger UI's online validator badge is off: it would
send the API's URL to validator.swagger.io (and the policy would block the image anyway). Only Swagger UI's
files are served; the build prunes the package's ReDoc bundle (infra/lambda_build.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
DOCS_PATH = "/docs"


def _content_security_policy(html: str) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def install(app: FastAPI) -> None:
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - docs",
        swagger_js_url=f"{DOCS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_PATH}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = page.body.decode()
    headers = {"Content-Security-Policy": _content_security_policy(html), "Cache-Control": "no-cache"}

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    @app.get(DOCS_PATH + "/{name}", include_in_schema=False)
    def swagger_ui_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, "Not Found")
        return FileResponse(ASSETS_DIR / name, media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"})
