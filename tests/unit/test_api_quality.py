"""The API's answer for faces the quality gate marks unreliable (the handler imported as Lambda does)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return encoded.tobytes()


def test_a_blurred_portrait_lists_the_face_as_unreliable_and_answers_no_mood(api_client):
    from meaa_api import schemas

    blurred = cv2.GaussianBlur(data.astronaut(), (0, 0), 5.0)
    response = api_client.post("/upload-meaa-image", content=_jpeg(blurred), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    answer = response.json()
    schemas.AnalysisResponse.model_validate(answer)  # the documented models describe this answer too
    assert answer["face_count"] == 1 and len(answer["faces"]) == 1
    face = answer["faces"][0]
    assert face["reliable"] is False and "blurred" in face["unreliable_reasons"]
    assert face["mood"] in face["moods"]  # the face's own mood is still there, for who wants it
    assert answer["mood"] is None and answer["moods"] is None


def test_the_openapi_document_describes_quality_and_the_reasons(api_client):
    document = api_client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    face = components["FaceResult"]["properties"]
    assert {"quality", "reliable", "unreliable_reasons"} <= set(face)
    reasons = face["unreliable_reasons"]["items"]["enum"]
    assert {"blurred", "dark", "small", "out_of_frame", "turned"} <= set(reasons)
    quality = components["FaceQuality"]["properties"]
    assert set(quality) == {
        "sharpness", "brightness", "contrast", "clipped_fraction", "face_px", "outside_fraction", "pose",
        "detection_score",
    }  # fmt: skip
