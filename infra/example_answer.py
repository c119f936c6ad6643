"""README's example API answer: scikit-image's astronaut as JPEG quality 90, sent as multipart to the app.

    .venv/bin/python -m infra.example_answer

Runs the real app (``meaa_api.app.create_app`` with this environment's settings) in process through
FastAPI's TestClient, warms it with one request and prints the second answer as one JSON line (timings
differ from run to run and machine to machine; the rest does not).
"""

from __future__ import annotations

import json
import logging
import os

import cv2
from fastapi.testclient import TestClient

from devkit.sample_faces import astronaut_bgr
from meaa.config import Settings
from meaa_api.app import create_app


def main() -> None:
    # Only the answer on stdout: no request log line, no metrics document.
    logging.getLogger("meaa-api").setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    jpeg = cv2.imencode(".jpg", astronaut_bgr(), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    upload = {"file": ("astronaut.jpg", jpeg, "image/jpeg")}
    with TestClient(create_app(Settings.from_env())) as client:
        client.post("/upload-meaa-image", files=upload)  # loads the models
        print(json.dumps(client.post("/upload-meaa-image", files=upload).json()))


if __name__ == "__main__":
    main()
