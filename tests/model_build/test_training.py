"""The training pipeline end to end on a tiny generated data set: train, resume, export, evaluate.

Runs in model_build's venv: ``model_build/.venv/bin/python -m pytest tests/model_build``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from meaa.labels import EMOTIONS, MOODS
from meaa.onnx_model import OnnxModel
from model_build import datapack, evaluate, export, metrics, scoring, train
from model_build.mini_xception import ArchConfig, MiniXception

ROOT = Path(__file__).resolve().parents[2]

# One emotion per mood, each drawn as a pattern that survives flips, small rotations and blur.
PATTERN_EMOTIONS = (
    EMOTIONS.index("happy"),
    EMOTIONS.index("angry"),
    EMOTIONS.index("neutral"),
    EMOTIONS.index("surprise"),
)


def _pattern_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:48, 0:48]
    patterns = [
        ((rows // 6) % 2) * 255,  # horizontal stripes
        ((cols // 6) % 2) * 255,  # vertical stripes
        (((rows // 8) + (cols // 8)) % 2) * 255,  # checkerboard
        np.full((48, 48), 128),  # flat
    ]
    kinds = rng.integers(0, 4, size=count)
    noise = rng.normal(0, 20, size=(count, 48, 48))
    images = np.clip(np.stack([patterns[k] for k in kinds]) * 0.6 + 50 + noise, 0, 255).astype(np.uint8)
    labels = np.array([PATTERN_EMOTIONS[k] for k in kinds], dtype=np.uint8)
    return images, labels


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("data")
    for name, count, seed in (("train", 256, 1), ("val", 96, 2)):
        images, labels = _pattern_images(count, seed)
        np.savez(folder / f"{name}.npz", images=images, labels=labels, classes=np.array(EMOTIONS))
    return folder / "train.npz", folder / "val.npz"


def _train_args(train_npz: Path, val_npz: Path, tmp: Path, epochs: int, target: str = "moods4") -> list[str]:
    return [
        "--train",
        str(train_npz),
        "--val",
        str(val_npz),
        "--name",
        f"tiny_{target}",
        "--target",
        target,
        "--width",
        "0.5",
        "--epochs",
        str(epochs),
        "--batch-size",
        "32",
        "--lr",
        "3e-3",
        "--device",
        "cpu",
        "--checkpoint-dir",
        str(tmp / "ck"),
        "--log-dir",
        str(tmp / "runs"),
        "--no-progress",
    ]


@pytest.mark.parametrize("target", ["moods4", "emotions7"])
def test_train_resume_export_evaluate(tiny_data, tmp_path, target):
    train_npz, val_npz = tiny_data
    log = train.main(_train_args(train_npz, val_npz, tmp_path, epochs=2, target=target))
    assert log["epochs_run"] == 2 and (tmp_path / "ck" / "best.pt").exists()

    # A rerun with more epochs resumes from last.pt instead of starting again.
    log = train.main(_train_args(train_npz, val_npz, tmp_path, epochs=6, target=target))
    saved = json.loads((tmp_path / "runs" / f"tiny_{target}.json").read_text())
    assert [row["epoch"] for row in saved["history"]] == [1, 2, 3, 4, 5, 6]
    # The patterns are easy: six epochs must beat guessing among four moods by a wide margin.
    assert saved["best_val_weighted_f1"] > 0.6

    onnx_path = tmp_path / "model.onnx"
    result = export.export_checkpoint(tmp_path / "ck" / "best.pt", str(val_npz), onnx_path)
    assert result["onnx_torch_max_abs_diff"] < 1e-4
    assert result["classes"] == list(MOODS if target == "moods4" else EMOTIONS)
    assert 0.25 <= result["temperature"] <= 4.0
    assert result["val_after_temperature"]["ece"] <= result["val_before_temperature"]["ece"] + 1e-9

    spec = evaluate.resolve_model(str(onnx_path))
    with np.load(val_npz) as data:
        report = evaluate.evaluate_classifier(spec, data["images"], data["labels"].astype(np.int64), timing=False)
    # evaluate.py's onnxruntime answer agrees with training's own figures for the same checkpoint.
    assert report["moods4"]["weighted_f1"] == pytest.approx(result["val_after_temperature"]["weighted_f1"], abs=0.02)
    assert ("emotions7" in report) == (target == "emotions7")


def test_exported_onnx_matches_torch_on_random_input(tmp_path, tiny_data):
    _, val_npz = tiny_data
    model = MiniXception(ArchConfig(num_classes=4, input_size=64, width=1.0))
    torch.manual_seed(0)
    for module in model.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.eval()
    checkpoint = tmp_path / "random.pt"
    torch.save({"arch": model.config.to_dict(), "model": model.state_dict(), "target": "moods4"}, checkpoint)
    onnx_path = tmp_path / "random.onnx"
    result = export.export_checkpoint(checkpoint, str(val_npz), onnx_path, tta_flip=True)
    batch = np.random.default_rng(0).uniform(-1, 1, size=(5, 1, 64, 64)).astype(np.float32)
    got = OnnxModel(onnx_path, threads=1)(batch)["probabilities"]
    loaded, _ = scoring.load_checkpoint(checkpoint)
    temperature = result["temperature"]
    with torch.no_grad():
        x = torch.from_numpy(batch)
        logits = (loaded(x) + loaded(torch.flip(x, dims=[3]))) / 2
        want = torch.softmax(logits / temperature, dim=1).numpy()
    assert got.shape == (5, 4)
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("size,final", [(48, 3), (64, 4)])
def test_keras_same_padding_shapes(size, final):
    model = MiniXception(ArchConfig(num_classes=7, input_size=size)).eval()
    x = torch.zeros(2, 1, size, size)
    features = torch.relu(model.bn2(model.conv2(torch.relu(model.bn1(model.conv1(x))))))
    for module in model.modules_:
        features = module(features)
    assert features.shape[-1] == final
    assert model(x).shape == (2, 7)


def test_metrics_on_hand_computed_example():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    report = metrics.classification_report(probabilities, labels, ("a", "b"))
    assert report.confusion == [[1, 1], [0, 2]]
    assert report.accuracy == pytest.approx(0.75)
    # F1(a) = 2*1/(1+2) = 2/3; F1(b) = 2*2/(3+2) = 4/5
    assert report.per_class_f1 == pytest.approx({"a": 2 / 3, "b": 0.8})
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    # bins: 0.9 -> correct; 0.6, 0.8, 0.7 in separate bins (width 1/15): wrong, right, right
    assert report.ece == pytest.approx((0.1 + 0.6 + 0.2 + 0.3) / 4)


def test_temperature_fit_reduces_overconfidence():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=2000)
    logits = rng.normal(0, 1, size=(2000, 4))
    logits[np.arange(2000), labels] += 1.0
    sharp = logits * 4  # over-confident
    temperature = metrics.fit_temperature(sharp, labels, lambda p: p)
    assert 3.0 < temperature < 5.5
    before = metrics.expected_calibration_error(metrics.softmax(sharp), labels)
    after = metrics.expected_calibration_error(metrics.softmax(sharp, temperature), labels)
    assert after < before / 2


def test_datapack_round_trip(tmp_path):
    images, labels = _pattern_images(50, 3)
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    datapack.pack(str(tmp_path / "d.npz"), str(tmp_path / "packed"))
    datapack.unpack(str(tmp_path / "packed"), str(tmp_path / "back.npz"))
    back = np.load(tmp_path / "back.npz")
    np.testing.assert_array_equal(back["images"], images)
    np.testing.assert_array_equal(back["labels"], labels)


def test_pipeline_counts_a_missed_face_as_wrong(tmp_path, tiny_data):
    """Blank photos have no face: every answer is wrong and counted as missed."""
    images = np.full((3, 128, 128), 200, np.uint8)
    labels = np.array([3, 0, 6])
    spec = evaluate.resolve_model("emotion")
    result = evaluate.evaluate_pipeline(spec, images, labels, {"crop_margin": 0.3})
    assert result["faces_missed"] == 3
    assert result["accuracy"] == 0.0 and result["weighted_f1"] == 0.0


def test_ensemble_graph_matches_torch(tmp_path, tiny_data):
    """A 64 px base + a 48 px flip-averaged member export as one graph that agrees with torch."""
    from model_build import ensemble

    _, val_npz = tiny_data
    paths = []
    for name, size, width in (("base", 64, 1.0), ("member", 48, 0.5)):
        model = MiniXception(ArchConfig(num_classes=7, input_size=size, width=width)).eval()
        path = tmp_path / f"{name}.pt"
        torch.save({"arch": model.config.to_dict(), "model": model.state_dict(), "target": "emotions7"}, path)
        paths.append(str(path))
    out = tmp_path / "ens.onnx"
    result = ensemble.main(
        ["--base", paths[0], "--member", paths[1], "--member-tta-flip", "--val", str(val_npz), "--out", str(out)]
    )
    assert result["onnx_torch_max_abs_diff"] < 1e-4
    assert result["input_size"] == 64 and result["classes"] == list(EMOTIONS)
    probabilities = OnnxModel(out, threads=1)(np.zeros((3, 1, 64, 64), np.float32))["probabilities"]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
