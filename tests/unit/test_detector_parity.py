"""The MTCNN cascade against facenet-pytorch's own detections (stored by model_build/verify.py).

Same settings as facenet-pytorch's ``MTCNN()`` defaults, full resolution, and the exact cascade
(``MEAA_DETECT_CASCADE=exact``): the same faces, boxes and landmarks within one pixel. The fast cascade is held
to the exact one by ``tests/unit/test_faces_found.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meaa.config import DetectionSettings, Settings
from meaa.detector import MTCNNDetector, non_max_suppression
from model_build import reference_images

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference_outputs.npz"
IMAGES = {
    "astronaut": reference_images.astronaut_rgb,
    "composite": reference_images.composite_rgb,
    "coffee": reference_images.no_face_rgb,
}


@pytest.fixture(scope="module")
def facenet_settings_detector() -> MTCNNDetector:
    return MTCNNDetector(Settings().models_dir, DetectionSettings.facenet_pytorch(), threads=1)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_same_faces_as_facenet_pytorch_within_one_pixel(facenet_settings_detector: MTCNNDetector, name: str) -> None:
    reference = np.load(REFERENCE)
    expected_boxes = reference[f"detect_{name}_boxes"]
    expected_landmarks = reference[f"detect_{name}_landmarks"]
    rgb = IMAGES[name]()
    found = facenet_settings_detector.detect_faces(np.ascontiguousarray(rgb[:, :, ::-1]))
    assert len(found) == len(expected_boxes)
    if not len(found):
        return
    # Match by order of x then y (both lists hold the same faces; order may differ).
    order_found = np.lexsort((found.boxes[:, 1], found.boxes[:, 0]))
    order_expected = np.lexsort((expected_boxes[:, 1], expected_boxes[:, 0]))
    np.testing.assert_allclose(found.boxes[order_found], expected_boxes[order_expected], atol=1.0)
    np.testing.assert_allclose(found.landmarks[order_found], expected_landmarks[order_expected], atol=1.0)
    np.testing.assert_allclose(found.scores[order_found], reference[f"detect_{name}_scores"][order_expected], atol=1e-3)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.7], np.float32)
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [1, 2, 3]
    # "min" mode drops a box nested inside a better one, which IoU keeps.
    assert non_max_suppression(boxes, scores, 0.7, mode="min").tolist() == [1, 2]
    assert non_max_suppression(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []
