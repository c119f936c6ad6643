"""Video tracking (``MTCNNDetector.track_faces``, ``MoodEstimator.analyze_frames``) on real moving faces.

Clips are scikit-image's astronaut in a 640x480 selfie frame, translated a few pixels per frame; the
reference for every frame is the full cascade (``analyze`` on that frame alone).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from devkit.sample_faces import no_face_images, one_face_frame
from meaa import InvalidInput, MoodEstimator
from meaa.config import Settings
from meaa.detector import FaceDetections


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inter_w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def panned(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_CONSTANT)


@pytest.fixture(scope="module")
def estimator() -> MoodEstimator:
    return MoodEstimator(Settings())


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    """Eight frames of the selfie drifting right and down by 6 and 3 px per frame."""
    base = one_face_frame(640, 480)
    return [panned(base, 6 * index, 3 * index) for index in range(8)]


def test_tracked_frames_agree_with_full_detection(estimator: MoodEstimator, clip: list[np.ndarray]) -> None:
    tracked = list(estimator.analyze_frames(clip, redetect_every=100))
    assert "detect" in tracked[0].timings_ms
    assert all("track" in analysis.timings_ms and "detect" not in analysis.timings_ms for analysis in tracked[1:])
    for frame, analysis in zip(clip, tracked, strict=True):
        reference = estimator.analyze(frame)
        assert len(analysis.faces) == len(reference.faces) == 1
        face, expected = analysis.faces[0], reference.faces[0]
        assert iou(face.box, expected.box) > 0.7, (face.box, expected.box)
        assert face.mood == expected.mood == "positive"
        assert face.score > 0.9
        assert np.abs(np.subtract(face.landmarks, expected.landmarks)).max() < 0.1 * expected.box[2]


def test_full_detection_every_n_frames(estimator: MoodEstimator, clip: list[np.ndarray]) -> None:
    tracked = list(estimator.analyze_frames(clip, redetect_every=3))
    detected = [index for index, analysis in enumerate(tracked) if "detect" in analysis.timings_ms]
    assert detected == [0, 3, 6]
    assert all(len(analysis.faces) == 1 for analysis in tracked)


def test_a_lost_face_is_detected_again(estimator: MoodEstimator, clip: list[np.ndarray]) -> None:
    coffee = cv2.resize(no_face_images()["coffee"], (640, 480), interpolation=cv2.INTER_AREA)
    frames = [clip[0], clip[1], coffee, coffee, clip[2]]
    tracked = list(estimator.analyze_frames(frames, redetect_every=100))
    assert [len(analysis.faces) for analysis in tracked] == [1, 1, 0, 0, 1]
    # The empty frame: tracking lost the face, so full detection ran too; then nothing to track.
    assert {"track", "detect"} <= set(tracked[2].timings_ms)
    assert "track" not in tracked[3].timings_ms and "detect" in tracked[3].timings_ms
    assert "detect" in tracked[4].timings_ms


def test_track_faces_needs_a_previous_face_inside_the_frame(estimator: MoodEstimator) -> None:
    detector = estimator._engine.detector
    frame = one_face_frame(640, 480)
    found = detector.detect_faces(frame)
    assert len(found) == 1
    again = detector.track_faces(frame, found)
    assert len(again) == 1
    np.testing.assert_allclose(again.boxes, found.boxes, atol=0.1 * float(found.boxes[0, 2] - found.boxes[0, 0]))
    assert len(detector.track_faces(frame, FaceDetections.empty())) == 0
    # The same face, its box moved across the right edge: not followed (the caller re-detects).
    beyond = found.boxes.copy()
    beyond[:, [0, 2]] += 640 - beyond[0, 0] - 20
    assert len(detector.track_faces(frame, FaceDetections(beyond, found.scores, found.landmarks))) == 0


def test_tracking_on_a_gray_clip_and_bad_arguments(estimator: MoodEstimator, clip: list[np.ndarray]) -> None:
    gray = [cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in clip[:3]]
    assert [len(analysis.faces) for analysis in estimator.analyze_frames(gray)] == [1, 1, 1]
    with pytest.raises(InvalidInput):
        next(estimator.analyze_frames(clip, redetect_every=0))
