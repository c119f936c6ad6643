"""The try-it page: ``GET /`` and its script and style under ``/static`` (plain files, no build step).

Served only when ``ApiSettings.try_it_page`` is on (``MEAA_UI``). Everything the page needs is in
``static/``: no CDN, so it works offline and its Content-Security-Policy can be ``'self'`` only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# blob: for the chosen photo, mediastream:/blob: for the webcam; requests go to this API only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def try_it_page() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
