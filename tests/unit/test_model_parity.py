"""The committed ONNX models reproduce their SOURCE implementations (facenet-pytorch, fer's Keras model).

tests/data/reference_outputs.npz holds inputs cut from scikit-image's photos and the outputs that
facenet-pytorch's PNet/RNet/ONet and fer's Keras model gave for them (written by
`model_build/verify.py --write-reference` in the reference venv); here only onnxruntime runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from model_build import reference_images

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "layers" / "meaa" / "models"
REFERENCE = REPO_ROOT / "tests" / "data" / "reference_outputs.npz"
TOLERANCE = 1e-4
MAX_MODELS_BYTES = 3 * 1024 * 1024

EXPECTED_IO = {
    "pnet": (["image"], ["prob", "reg"]),
    "rnet": (["image"], ["prob", "reg"]),
    "onet": (["image"], ["prob", "reg", "landmarks"]),
    "emotion": (["image"], ["probabilities"]),
    "mini_xception_w2_recipe": (["image"], ["probabilities"]),
}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODELS_DIR / "manifest.json").read_text())


def session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(MODELS_DIR / f"{name}.onnx"), providers=["CPUExecutionProvider"])


def run(name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = session(name)
    outputs = [o.name for o in sess.get_outputs()]
    return dict(zip(outputs, sess.run(None, {sess.get_inputs()[0].name: x}), strict=False))


def assert_close(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray], prefix: str, names: list[str]) -> None:
    for output in names:
        expected = reference[f"{prefix}_{output}"]
        assert ours[output].shape == expected.shape, output
        np.testing.assert_allclose(ours[output], expected, rtol=0, atol=TOLERANCE, err_msg=f"{prefix} {output}")


@pytest.mark.parametrize("name", sorted(EXPECTED_IO))
def test_model_io_names_follow_the_contract(name: str) -> None:
    sess = session(name)
    inputs, outputs = EXPECTED_IO[name]
    assert [i.name for i in sess.get_inputs()] == inputs
    assert sorted(o.name for o in sess.get_outputs()) == sorted(outputs)


@pytest.mark.parametrize("key", ["pnet_a", "pnet_b"])
def test_pnet_matches_facenet_pytorch_on_pyramid_levels(reference, key: str) -> None:
    image = reference[f"{key}_image"]
    assert_close(run("pnet", reference_images.mtcnn_normalise(image)), reference, key, ["prob", "reg"])


def test_pnet_accepts_any_size_and_batch() -> None:
    x = np.zeros((3, 3, 31, 57), np.float32)
    out = run("pnet", x)
    assert out["prob"].shape == (3, 2, 11, 24)
    assert out["reg"].shape == (3, 4, 11, 24)
    np.testing.assert_allclose(out["prob"].sum(axis=1), 1.0, atol=1e-6)


def test_rnet_matches_facenet_pytorch_on_face_crops(reference) -> None:
    x = reference_images.mtcnn_normalise(reference["rnet_image"])
    assert_close(run("rnet", x), reference, "rnet", ["prob", "reg"])


def test_onet_matches_facenet_pytorch_on_face_crops(reference) -> None:
    x = reference_images.mtcnn_normalise(reference["onet_image"])
    assert_close(run("onet", x), reference, "onet", ["prob", "reg", "landmarks"])


def test_reference_crops_include_faces_and_non_faces(reference) -> None:
    """Guards the test data itself: a parity check on inputs that are all alike would prove little."""
    face_prob = reference["onet_prob"][:, 1]
    assert face_prob.max() > 0.9 and face_prob.min() < 0.1


def test_emotion_matches_fer_keras_model_on_gray_face_crops(reference) -> None:
    x = reference_images.emotion_normalise(reference["emotion_image"])
    assert_close(run("emotion", x), reference, "emotion", ["probabilities"])


def test_reference_detections_match_the_reference_images(reference) -> None:
    """The stored facenet-pytorch boxes lie on the faces of the images the helpers rebuild."""
    assert len(reference["detect_astronaut_boxes"]) == 1
    assert len(reference["detect_coffee_boxes"]) == 0
    x1, y1, x2, y2 = reference["detect_astronaut_boxes"][0]
    height, width = reference_images.astronaut_rgb().shape[:2]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    composite = reference_images.composite_rgb()
    assert composite.shape == (512, 1280, 3)
    boxes = reference["detect_composite_boxes"]
    assert len(boxes) >= 3
    assert np.all(boxes[:, 2] <= composite.shape[1] + 1) and np.all(boxes[:, 3] <= composite.shape[0] + 1)


def test_manifest_matches_model_files(manifest) -> None:
    assert sorted(manifest["models"]) == sorted(EXPECTED_IO)
    for name, entry in manifest["models"].items():
        data = (MODELS_DIR / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data), name
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert [i["name"] for i in entry["inputs"]] == EXPECTED_IO[name][0]
        assert [o["name"] for o in entry["outputs"]] == EXPECTED_IO[name][1]
        assert entry["source"]["licence"] == "MIT"
    emotion = manifest["models"]["emotion"]
    assert emotion["kind"] == "mood"
    assert emotion["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert emotion["input_size"] == [64, 64]


def test_models_fit_the_size_budget(manifest) -> None:
    total = sum((MODELS_DIR / entry["file"]).stat().st_size for entry in manifest["models"].values())
    assert total <= MAX_MODELS_BYTES
