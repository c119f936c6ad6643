"""The API as served locally: uvicorn in a subprocess on 127.0.0.1, a real photo posted over HTTP.

This is the README's local command (``uvicorn app:app --app-dir functions/api`` with ``PYTHONPATH=layers``)
exercised end to end, including the real multipart encoding of an HTTP client (``curl -F file=@...``).
"""

from __future__ import annotations

import base64

import cv2
import httpx
import pytest
from skimage import data

from tests.support.servers import local_api_server


@pytest.fixture(scope="module")
def server_url():
    with local_api_server() as url:
        yield url


def test_multipart_upload_of_a_face_photo(server_url, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    with photo.open("rb") as handle:  # what `curl -F file=@astronaut.jpg` sends
        response = httpx.post(f"{server_url}/upload-meaa-image", files={"file": handle}, timeout=60)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["width"], answer["height"], answer["face_count"]) == (512, 512, 1)
    box = answer["faces"][0]["box"]
    assert box["x"] <= 225 <= box["x"] + box["w"] and box["y"] <= 125 <= box["y"] + box["h"]
    assert answer["mood"] in ("positive", "negative", "neutral", "other")
    assert response.headers["x-request-id"] == answer["request_id"]


def test_raw_and_json_uploads_agree_with_multipart(server_url):
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    image = jpeg.tobytes()
    upload = f"{server_url}/upload-meaa-image"
    multipart = httpx.post(upload, files={"file": ("a.jpg", image, "image/jpeg")}, timeout=60).json()
    raw = httpx.post(upload, content=image, headers={"content-type": "image/jpeg"}, timeout=60).json()
    as_json = httpx.post(upload, json={"image_base64": base64.b64encode(image).decode()}, timeout=60).json()
    assert multipart["faces"] == raw["faces"] == as_json["faces"]
    assert len(multipart["faces"]) == 1


def test_server_errors_are_json(server_url):
    response = httpx.post(f"{server_url}/upload-meaa-image", content=b"nope", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    health = httpx.get(f"{server_url}/health").json()
    assert health["models_loaded"] is True
