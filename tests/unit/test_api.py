"""The HTTP API with the real models: the three upload styles, the Lambda entry point and its events.

The app is imported the way Lambda imports it (``lambda_loader`` reads template.yaml); TestClient drives
the same FastAPI app that Mangum wraps.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from skimage import data

from devkit.lambda_loader import lambda_context, load_function_module

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = REPO_ROOT / "events"
UPLOAD = "/upload-meaa-image"
# The astronaut's face in skimage's 512x512 photo, read off the image by eye: the box must hold the left
# eye, the right eye and the mouth, and be face-sized (not the helmet, not the whole portrait).
ASTRONAUT_FACE_POINTS = ((205, 105), (245, 105), (225, 150))
ASTRONAUT_FACE_SIDE = (50, 150)


def jpeg_of(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


def png_of(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="module")
def schemas_module():
    from meaa_api import schemas

    return schemas


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    return jpeg_of(data.astronaut())


def upload_multipart(
    api_client: TestClient, image: bytes, filename: str = "face.jpg", content_type: str = "image/jpeg"
):
    return api_client.post(UPLOAD, files={"file": (filename, image, content_type)})


def upload_raw(api_client: TestClient, image: bytes, content_type: str = "image/jpeg"):
    return api_client.post(UPLOAD, content=image, headers={"content-type": content_type})


def upload_json(api_client: TestClient, image: bytes):
    return api_client.post(UPLOAD, json={"image_base64": base64.b64encode(image).decode("ascii")})


UPLOADERS = {"multipart": upload_multipart, "raw": upload_raw, "json": upload_json}


def assert_astronaut_answer(answer: dict, width: int = 512, height: int = 512) -> None:
    assert (answer["width"], answer["height"]) == (width, height)
    assert answer["face_count"] == 1 == len(answer["faces"])
    face = answer["faces"][0]
    box = face["box"]
    right, bottom = box["x"] + box["w"], box["y"] + box["h"]
    scale_x, scale_y = width / 512, height / 512
    for px, py in ASTRONAUT_FACE_POINTS:
        assert box["x"] <= px * scale_x <= right and box["y"] <= py * scale_y <= bottom, box
    low, high = ASTRONAUT_FACE_SIDE
    assert low * scale_x <= box["w"] <= high * scale_x and low * scale_y <= box["h"] <= high * scale_y, box
    assert face["score"] > 0.9
    for x, y in face["landmarks"]:  # eyes, nose and mouth corners lie inside the box
        assert box["x"] <= x <= right and box["y"] <= y <= bottom
    assert answer["mood"] == face["mood"] == max(face["moods"], key=face["moods"].get)
    assert answer["moods"] == face["moods"]
    # The quality gate: a clean portrait is reliable, and what it measured is in the answer.
    assert face["reliable"] is True and face["unreliable_reasons"] == []
    quality = face["quality"]
    assert set(quality) == {
        "sharpness", "brightness", "contrast", "clipped_fraction", "face_px", "outside_fraction", "pose",
        "detection_score",
    }  # fmt: skip
    assert set(quality["pose"]) == {"yaw", "pitch", "roll"} and all(abs(v) < 45 for v in quality["pose"].values())
    assert abs(quality["face_px"] - min(box["w"], box["h"])) <= 2 and quality["outside_fraction"] == 0.0
    assert quality["sharpness"] > 0 and 0.2 < quality["brightness"] < 0.8 and 0.1 < quality["contrast"] < 1.0
    assert quality["detection_score"] == face["score"]
    assert answer["timings_ms"]["quality"] >= 0
    assert sum(face["moods"].values()) == pytest.approx(1.0, abs=1e-3)
    assert answer["model_version"]
    assert answer["request_id"]


@pytest.mark.parametrize("style", sorted(UPLOADERS))
def test_each_upload_style_finds_the_astronauts_face(api_client, astronaut_jpeg, style, schemas_module):
    response = UPLOADERS[style](api_client, astronaut_jpeg)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    schemas_module.AnalysisResponse.model_validate(answer)  # the OpenAPI models describe the real answer
    assert_astronaut_answer(answer)
    assert response.headers["x-request-id"] == answer["request_id"]


def test_the_three_styles_give_the_same_faces(api_client, astronaut_jpeg):
    answers = [UPLOADERS[style](api_client, astronaut_jpeg).json() for style in sorted(UPLOADERS)]
    assert answers[0]["faces"] == answers[1]["faces"] == answers[2]["faces"]
    assert len({answer["request_id"] for answer in answers}) == 3


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream", "image/jpeg"])
def test_raw_png_is_sniffed_whatever_the_declared_image_type(api_client, content_type):
    response = upload_raw(api_client, png_of(data.astronaut()), content_type=content_type)
    assert response.status_code == 200, response.text
    assert_astronaut_answer(response.json())


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: "data:image/jpeg;base64," + base64.b64encode(b).decode(), id="data-url"),
        pytest.param(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="), id="urlsafe-unpadded"),
        pytest.param(lambda b: base64.encodebytes(b).decode(), id="mime-line-breaks"),
    ],
)
def test_json_accepts_the_base64_variants_phones_send(api_client, astronaut_jpeg, encode):
    response = api_client.post(UPLOAD, json={"image_base64": encode(astronaut_jpeg)})
    assert response.status_code == 200, response.text
    assert_astronaut_answer(response.json())


def test_json_with_charset_and_extra_keys(api_client, astronaut_jpeg):
    body = json.dumps({"image_base64": base64.b64encode(astronaut_jpeg).decode(), "client": "android"})
    response = api_client.post(
        UPLOAD, content=body.encode(), headers={"content-type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    assert_astronaut_answer(response.json())


def test_multipart_with_other_fields_and_no_part_content_type(api_client, astronaut_jpeg):
    response = api_client.post(
        UPLOAD, data={"subject": "p01", "session": "s1"}, files={"file": ("face.jpg", astronaut_jpeg, "")}
    )
    assert response.status_code == 200, response.text
    assert_astronaut_answer(response.json())


def test_multipart_with_a_preamble_before_the_first_boundary(api_client, astronaut_jpeg):
    """RFC 2046: text before the first delimiter is a preamble, to be ignored."""
    body = (
        b"This is a multi-part message in MIME format.\r\n--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="face.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        + astronaut_jpeg
        + b"\r\n--XyZ--\r\n"
    )
    response = api_client.post(UPLOAD, content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert response.status_code == 200, response.text
    assert_astronaut_answer(response.json())


@pytest.mark.parametrize("image_name", ["coffee", "chelsea"])
@pytest.mark.parametrize("style", sorted(UPLOADERS))
def test_images_without_a_face_answer_zero_faces_and_null_mood(api_client, image_name, style):
    rgb = getattr(data, image_name)()
    response = UPLOADERS[style](api_client, jpeg_of(rgb))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["height"], answer["width"]) == rgb.shape[:2]
    assert answer["face_count"] == 0 and answer["faces"] == []
    assert answer["mood"] is None and answer["moods"] is None
    assert answer["timings_ms"]["quality"] >= 0


def test_health_reports_the_loaded_models(api_client, schemas_module):
    response = api_client.get("/health")
    assert response.status_code == 200
    health = response.json()
    schemas_module.HealthResponse.model_validate(health)
    assert health["models_loaded"] is True  # warmed at import, like a Lambda init
    assert health["model_version"] == upload_multipart(api_client, jpeg_of(data.coffee())).json()["model_version"]
    assert health["python_version"].startswith("3.")
    assert health["max_upload_image_bytes"] == 4 * 1024 * 1024 == health["max_image_bytes"]  # the old name stays


def test_openapi_documents_the_three_bodies_and_the_models(api_client):
    document = api_client.get("/openapi.json").json()
    operation = document["paths"][UPLOAD]["post"]
    assert {"multipart/form-data", "image/jpeg", "image/png", "application/json"} <= set(
        operation["requestBody"]["content"]
    )
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("AnalysisResponse")
    for status in ("400", "413", "415", "422"):
        assert operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    assert "/health" in document["paths"]
    docs = api_client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.fixture()
def api_log_lines(capsys: pytest.CaptureFixture[str]):
    """The API's JSON log lines during one test (Powertools writes them to stdout, as in Lambda); the
    embedded-format metric lines (``_aws``) are left out."""
    seen: list[dict] = []

    def lines() -> list[dict]:
        seen.extend(json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
        return [line for line in seen if "_aws" not in line]

    return lines


def test_one_json_log_line_per_request_without_image_bytes(api_client, astronaut_jpeg, api_log_lines):
    encoded = base64.b64encode(astronaut_jpeg).decode()
    api_client.post(UPLOAD, json={"image_base64": encoded})
    api_client.post(UPLOAD, content=b"not an image", headers={"content-type": "image/jpeg"})
    requests = [line for line in api_log_lines() if line["message"] == "request"]
    assert len(requests) == 2
    ok, bad = requests
    assert (ok["status"], ok["face_count"], ok.get("error_code"), ok["upload_style"]) == (200, 1, None, "json")
    assert (bad["status"], bad["error_code"]) == (400, "invalid_image")
    for line in requests:
        assert line["method"] == "POST" and line["path"] == UPLOAD
        assert line["request_id"] and line["latency_ms"] >= 0 and line["level"] == "INFO"
        assert encoded[:40] not in json.dumps(line)


# --- Through the Lambda entry point, with the committed events ----------------------------------------


def load_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def invoke(api_handler, event: dict) -> tuple[int, dict, dict]:
    context = lambda_context("ApiFunction")
    result = api_handler(event, context)
    body = base64.b64decode(result["body"]) if result.get("isBase64Encoded") else result["body"]
    return result["statusCode"], result["headers"], json.loads(body)


@pytest.mark.parametrize(
    "event_name", ["api_upload_multipart.json", "api_upload_raw_jpeg.json", "api_upload_json.json"]
)
def test_lambda_handler_scores_the_sample_events(api_handler, event_name):
    event = load_event(event_name)
    assert event["isBase64Encoded"] is True and event["requestContext"]["stage"] == "$default"
    status, headers, answer = invoke(api_handler, event)
    assert status == 200, answer
    assert headers["content-type"] == "application/json"
    assert_astronaut_answer(answer, width=320, height=320)
    # Behind API Gateway the request id is the gateway's, so its access log and ours correlate.
    assert answer["request_id"] == headers["x-request-id"] == event["requestContext"]["requestId"]


def test_lambda_events_give_the_same_faces(api_handler):
    names = ["api_upload_multipart.json", "api_upload_raw_jpeg.json", "api_upload_json.json"]
    faces = [invoke(api_handler, load_event(name))[2]["faces"] for name in names]
    assert faces[0] == faces[1] == faces[2]


def test_lambda_health_event(api_handler):
    status, _, health = invoke(api_handler, load_event("api_health.json"))
    assert status == 200
    assert health["models_loaded"] is True and health["model_version"]


def test_sample_events_match_their_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_events", EVENTS_DIR / "make_events.py")
    make_events = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_events)
    for name, event in make_events.build_events().items():
        assert load_event(name) == event, f"events/{name} is stale: run events/make_events.py"


def test_a_server_fault_is_a_json_500_that_leaks_nothing(monkeypatch, tmp_path, api_log_lines):
    """Models missing from the package is the server's fault: /health says so, uploads get a bare 500."""
    monkeypatch.setenv("MEAA_MODELS_DIR", str(tmp_path / "no-models-here"))
    broken = load_function_module("ApiFunction")
    with TestClient(broken.app, raise_server_exceptions=False) as broken_client:
        health = broken_client.get("/health").json()
        assert health["models_loaded"] is False and health["model_version"] is None
        response = upload_raw(broken_client, jpeg_of(data.coffee()))
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Internal error"},
        "request_id": response.headers["x-request-id"],
    }
    lines = api_log_lines()
    assert any(line["message"] == "model warm-up failed" and "exception" in line for line in lines)
    failure = [line for line in lines if line["message"] == "unhandled error"]
    assert len(failure) == 1 and "no-models-here" in failure[0]["exception"]  # details go to the log only
    request_line = [line for line in lines if line["message"] == "request" and line["path"] == UPLOAD]
    assert request_line[-1]["status"] == 500 and request_line[-1]["error_code"] == "internal_error"


def test_lambda_log_line_carries_both_request_ids(api_handler, api_log_lines):
    event = load_event("api_upload_raw_jpeg.json")
    context = lambda_context("ApiFunction")
    assert api_handler(event, context)["statusCode"] == 200
    (line,) = [line for line in api_log_lines() if line["message"] == "request"]
    assert line["request_id"] == event["requestContext"]["requestId"]
    assert line["lambda_request_id"] == context.aws_request_id
    assert (line["status"], line["face_count"], line["upload_style"], line["path"]) == (200, 1, "raw", UPLOAD)
