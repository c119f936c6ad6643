"""Every shipped mood model answers as it did when its figures were recorded, on this CPU.

The crops are rebuilt here from scikit-image's photos (cut as meaa cuts them) and from formulas
(``model_build.reference_images.mood_fixture_crops``); the expected outputs and the sha256 of the model
file that gave them are in tests/data/mood_reference_outputs.npz (``model_build/reference_outputs.py``), and
the manifest's ``evaluation`` names the file its figures were measured on (``make verify-metrics``). So a
model file changed without re-recording its outputs and figures fails here, and so does a CPU whose
kernels answer differently (float kernels agree to ~1e-6; integer ones can saturate without VNNI).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from meaa.classifier import MoodClassifier
from meaa.config import Settings
from model_build.reference_images import mood_fixture_crops

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "layers" / "meaa" / "models"
DETECTIONS = REPO_ROOT / "tests" / "data" / "reference_outputs.npz"
RECORDED = REPO_ROOT / "tests" / "data" / "mood_reference_outputs.npz"
# Float32 kernels reorder sums across CPUs (AVX2, AVX-512, NEON): probabilities move by ~1e-6.
FLOAT_TOLERANCE = 1e-4
# An integer model may differ from its float source by quantization, never by a CPU's saturation.
QUANTIZED_TOLERANCE = 0.05
INTEGER_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}

MANIFEST = json.loads((MODELS_DIR / "manifest.json").read_text())
MOOD_MODELS = sorted(name for name, entry in MANIFEST["models"].items() if entry.get("kind") == "mood")


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(RECORDED) as data:
        return {key: data[key] for key in data.files}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def network_outputs(entry: dict, crops: np.ndarray) -> np.ndarray:
    predictions = MoodClassifier(MODELS_DIR / entry["file"], tuple(entry["classes"]), threads=1).predict(crops)
    return predictions.emotions if predictions.emotions is not None else predictions.moods


def test_every_mood_model_has_recorded_outputs(recorded) -> None:
    stored = {key.split("__")[0] for key in recorded if "__" in key}
    assert stored == set(MOOD_MODELS)


@pytest.mark.parametrize("size", sorted({int(MANIFEST["models"][n]["input_size"][0]) for n in MOOD_MODELS}))
def test_fixture_crops_rebuild_from_a_fresh_clone(recorded, size: int) -> None:
    rebuilt = mood_fixture_crops(str(DETECTIONS), size)
    stored = recorded[f"crops_{size}"]
    assert rebuilt.shape == stored.shape
    # The same OpenCV warp on the same pixels; one grey level of slack for a different SIMD path.
    assert np.abs(rebuilt.astype(np.int16) - stored).max() <= 1
    # Real faces and drawn ones, each different: a pinning test on inputs that are all alike would prove little.
    assert len({crop.tobytes() for crop in stored}) == len(stored)


@pytest.mark.parametrize("name", MOOD_MODELS)
def test_model_file_is_the_one_recorded(recorded, name: str) -> None:
    entry = MANIFEST["models"][name]
    digest = sha256(MODELS_DIR / entry["file"])
    assert str(recorded[f"{name}__sha256"]) == digest, "model changed: run model_build.reference_outputs"
    assert entry["evaluation"]["model_sha256"] == digest, "model changed: run make verify-metrics ARGS=--write"


@pytest.mark.parametrize("name", MOOD_MODELS)
def test_outputs_match_the_recorded_ones(recorded, name: str) -> None:
    entry = MANIFEST["models"][name]
    crops = recorded[f"crops_{int(entry['input_size'][0])}"]
    got = network_outputs(entry, crops)
    expected = recorded[f"{name}__outputs"]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=FLOAT_TOLERANCE if not is_quantized(entry) else 2e-3)
    # The fixtures must make the model say different things, or the pin proves little.
    assert len(set(expected.argmax(axis=1).tolist())) >= 2


def is_quantized(entry: dict) -> bool:
    """Whether the graph has integer operators. The test venv has no onnx package (the layer needs none), and
    operator types are stored as plain strings in the protobuf, so the file's bytes are searched for them."""
    data = (MODELS_DIR / entry["file"]).read_bytes()
    return any(op.encode() in data for op in INTEGER_OPS)


@pytest.mark.parametrize("name", MOOD_MODELS)
def test_integer_models_stay_close_to_their_float_source(recorded, name: str) -> None:
    """A quantized mood model must ship with its float source's outputs, and match them on this CPU."""
    entry = MANIFEST["models"][name]
    if not is_quantized(entry):
        assert "quantized_from" not in entry
        return
    assert f"{name}__float_source_outputs" in recorded, "an INT8 model needs its float source's outputs recorded"
    crops = recorded[f"crops_{int(entry['input_size'][0])}"]
    difference = np.abs(network_outputs(entry, crops) - recorded[f"{name}__float_source_outputs"]).max()
    assert difference <= QUANTIZED_TOLERANCE


@pytest.mark.parametrize("name", MOOD_MODELS)
def test_recorded_figures_say_what_and_where(name: str) -> None:
    evaluation = MANIFEST["models"][name]["evaluation"]
    assert {"fer2013_val", "jaffe_dev_loso", "measured_on", "bytes"} <= set(evaluation)
    assert evaluation["bytes"] == (MODELS_DIR / MANIFEST["models"][name]["file"]).stat().st_size
    assert "features" in evaluation["measured_on"]
    for figure in ("weighted_f1_4_ci95", "accuracy_4_ci95", "ece_4_ci95"):
        low, high = evaluation["fer2013_val"][figure]
        assert low <= high
    low, high = evaluation["jaffe_dev_loso"]["weighted_f1_ci95_subjects"]
    assert low <= evaluation["jaffe_dev_loso"]["weighted_f1"] <= high


def test_default_mood_model_is_in_the_manifest_and_the_baseline_stays_selectable() -> None:
    assert Settings().mood_model in MOOD_MODELS
    assert "emotion" in MOOD_MODELS
