"""Regenerate the API Gateway HTTP API (payload v2.0) sample events of ``ApiFunction``.

The image is scikit-image's ``astronaut`` (one face), downscaled to 320 px and saved as JPEG quality 85
so the events stay small. Bodies are base64 (``isBase64Encoded: true``), as API Gateway sends binary
bodies. Usage (main venv)::

    .venv/bin/python events/make_events.py [--out-dir events]
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import cv2
from skimage import data

EVENTS_DIR = Path(__file__).resolve().parent
# The same JPEG, which the API's SnapStart hook uploads to itself before the snapshot (meaa_api.snapstart).
SNAPSTART_FACE = EVENTS_DIR.parent / "functions" / "api" / "meaa_api" / "snapstart_face.jpg"
UPLOAD_PATH = "/upload-meaa-image"
MULTIPART_BOUNDARY = "----MeaaSampleBoundary7MA4YWxkTrZu0gW"


def astronaut_jpeg(side: int = 320, quality: int = 85) -> bytes:
    """The astronaut photo as a small JPEG (deterministic for a given OpenCV build)."""
    rgb = data.astronaut()
    small = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def multipart_body(image: bytes, boundary: str = MULTIPART_BOUNDARY, filename: str = "astronaut.jpg") -> bytes:
    """A multipart/form-data body with one ``file`` part, like OkHttp/curl -F send it."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode("ascii")
    return head + image + f"\r\n--{boundary}--\r\n".encode("ascii")


def http_api_event(method: str, path: str, *, content_type: str | None = None, body: bytes | None = None) -> dict:
    """An API Gateway HTTP API payload v2.0 event for the ``$default`` stage."""
    headers = {
        "accept": "application/json",
        "host": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "okhttp/4.12.0",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if content_type is not None:
        headers["content-type"] = content_type
    if body is not None:
        headers["content-length"] = str(len(body))
    event: dict = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "okhttp/4.12.0",
            },
            "requestId": f"sample-{method.lower()}-{path.strip('/').replace('/', '-') or 'root'}",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "26/Nov/2026:06:00:00 +0000",
            "timeEpoch": 1795672800000,
        },
        "isBase64Encoded": body is not None,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode("ascii")
    return event


def build_events() -> dict[str, dict]:
    image = astronaut_jpeg()
    json_body = json.dumps({"image_base64": base64.b64encode(image).decode("ascii")}).encode("ascii")
    return {
        "api_upload_multipart.json": http_api_event(
            "POST",
            UPLOAD_PATH,
            content_type=f"multipart/form-data; boundary={MULTIPART_BOUNDARY}",
            body=multipart_body(image),
        ),
        "api_upload_raw_jpeg.json": http_api_event("POST", UPLOAD_PATH, content_type="image/jpeg", body=image),
        "api_upload_json.json": http_api_event("POST", UPLOAD_PATH, content_type="application/json", body=json_body),
        "api_health.json": http_api_event("GET", "/health"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=EVENTS_DIR)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, event in build_events().items():
        path = args.out_dir / name
        path.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        print(f"{path} ({path.stat().st_size} bytes)")
    SNAPSTART_FACE.write_bytes(astronaut_jpeg())
    print(f"{SNAPSTART_FACE} ({SNAPSTART_FACE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
