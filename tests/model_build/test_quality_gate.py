"""model_build/quality_gate.py: the degradations, the threshold fit, the array form of the gate, and a quick
run end to end on real face crops (the astronaut crops committed in tests/data/reference_outputs.npz).

Runs in model_build's venv: ``model_build/.venv/bin/python -m pytest tests/model_build``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from meaa.config import QualitySettings
from meaa.labels import EMOTIONS
from meaa.quality import QUALITY_RULES, FaceQuality, HeadPose, QualityRule, unreliable_reasons
from model_build import quality_gate

ROOT = Path(__file__).resolve().parents[2]
BOX = (60.0, 50.0, 180.0, 170.0)  # a 120 px face in a 256 x 256 photo


def _photo() -> np.ndarray:
    rows, cols = np.mgrid[0:256, 0:256]
    return (128 + 60 * np.sin(rows / 9.0) * np.cos(cols / 7.0)).astype(np.uint8)


def _by_name() -> dict[str, quality_gate.Degradation]:
    return {f"{d.family} {d.level}": d for d in quality_gate.jaffe_degradations()}


def test_every_degradation_keeps_the_photo_gray_uint8_and_clean_is_untouched() -> None:
    photo = _photo()
    for name, degradation in _by_name().items():
        spoiled = degradation.apply(photo, BOX, 3)
        assert spoiled.dtype == np.uint8 and spoiled.ndim == 2, name
    assert np.array_equal(_by_name()["clean -"].apply(photo, BOX, 0), photo)


@pytest.mark.parametrize("index,kept", [(0, (256, 256 - 84)), (1, (256 - 74, 256)), (2, (256, 156)), (3, (146, 256))])
def test_an_edge_cut_removes_the_asked_share_of_the_face_on_each_side(index: int, kept: tuple[int, int]) -> None:
    spoiled = _by_name()["cut at the image edge 20 %"].apply(_photo(), BOX, index)
    assert spoiled.shape == kept  # 20 % of the 120 px face: 24 px of it gone, from the left, top, right, bottom


def test_a_small_face_has_the_asked_size_and_pixelated_keeps_the_photo_size() -> None:
    photo = _photo()
    small = _by_name()["small face 40 px"].apply(photo, BOX, 0)
    assert small.shape == (round(256 * 40 / 120), round(256 * 40 / 120))
    assert _by_name()["pixelated 20 px"].apply(photo, BOX, 0).shape == photo.shape


def test_the_perspective_tilt_keeps_the_face_centre_and_foreshortens_one_side() -> None:
    homography = quality_gate.tilt_homography(BOX, 40.0, "y")
    points = np.array([[[120.0, 110.0], [60.0, 110.0], [180.0, 110.0]]], np.float32)
    centre, left, right = cv2.perspectiveTransform(points, homography)[0]
    assert centre == pytest.approx((120.0, 110.0), abs=1e-3)
    assert 120 - left[0] != pytest.approx(right[0] - 120, abs=1.0)  # the near side is larger than the far side
    assert max(120 - left[0], right[0] - 120) < 60  # both sides narrower than the flat face (cos 40)


def test_the_fit_finds_the_threshold_between_harmless_and_harmful_conditions() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.uniform(0.3, 1.0, 300)  # clean and mildly blurred faces, right 85 % of the time
    blurred = rng.uniform(0.0, 0.1, 200)  # strongly blurred, right 40 % of the time
    metrics = {name: np.full(500, math.nan) for name in quality_gate.METRICS}
    metrics["sharpness"] = np.concatenate([sharp, blurred])
    target = np.concatenate([np.full(300, 0.85), np.full(200, 0.40)])
    clean = np.zeros(500, bool)
    clean[:100] = True
    fit = quality_gate.fit_thresholds(metrics, target, [(clean, 0.95)], tau=0.6)
    assert blurred.max() < fit.thresholds["min_sharpness"] < sharp.min()
    assert fit.retention == [1.0]
    # Every other rule saw no metric (nan never fails), so each stays off.
    off = {rule.setting: quality_gate.OFF[rule.bound] for rule in QUALITY_RULES if rule.setting != "min_sharpness"}
    assert {k: v for k, v in fit.thresholds.items() if k != "min_sharpness"} == off


def test_the_fit_keeps_the_clean_faces_it_is_told_to_keep() -> None:
    rng = np.random.default_rng(1)
    metrics = {name: np.full(400, math.nan) for name in quality_gate.METRICS}
    metrics["sharpness"] = rng.uniform(0.0, 1.0, 400)
    target = np.where(metrics["sharpness"] < 0.5, 0.3, 0.9)  # harmful below 0.5...
    clean = metrics["sharpness"] < 0.6  # ...but most clean faces live there
    strict = quality_gate.fit_thresholds(metrics, target, [(clean, 0.9)], tau=0.6)
    assert strict.retention[0] >= 0.9
    free = quality_gate.fit_thresholds(metrics, target, [], tau=0.6)
    assert free.thresholds["min_sharpness"] == pytest.approx(0.5, abs=0.02)
    assert strict.thresholds["min_sharpness"] < free.thresholds["min_sharpness"]


def test_the_array_gate_agrees_with_meaa_face_by_face() -> None:
    rng = np.random.default_rng(2)
    qualities = [
        FaceQuality(
            sharpness=float(rng.uniform(0, 0.5)), brightness=float(rng.uniform(0, 0.2)),
            contrast=float(rng.uniform(0, 0.5)), clipped_fraction=float(rng.uniform(0, 0.6)),
            face_px=int(rng.integers(10, 60)), outside_fraction=float(rng.uniform(0, 0.8)),
            pose=HeadPose(*(float(v) for v in rng.uniform(-60, 60, 3))), detection_score=float(rng.uniform(0.9, 1)),
        )
        for _ in range(300)
    ]  # fmt: skip
    thresholds = {
        "min_sharpness": 0.1, "min_brightness": 0.05, "max_clipped_fraction": 0.4, "min_contrast": 0.15,
        "min_face_px": 24.0, "max_outside_fraction": 0.4, "max_yaw": 35.0, "max_pitch": 30.0, "max_roll": 30.0,
        "min_detection_score": 0.95,
    }  # fmt: skip
    metrics = {name: np.array([q.metrics()[name] for q in qualities]) for name in quality_gate.METRICS}
    reliable, reasons = quality_gate.judge(metrics, thresholds)
    settings = QualitySettings(**thresholds)
    expected = [unreliable_reasons(q, settings) for q in qualities]
    assert [tuple(r) for r in reasons] == expected
    assert reliable.tolist() == [not r for r in expected]
    assert 0 < reliable.sum() < len(qualities)  # both outcomes occur


def test_wilson_interval_matches_a_known_value() -> None:
    assert quality_gate.wilson(81, 100) == pytest.approx([0.7222, 0.8750], abs=1e-3)
    assert quality_gate.wilson(0, 0) is None


def test_rule_values_use_the_absolute_angle() -> None:
    rule = QualityRule("turned", "yaw", "max_abs", "max_yaw")
    assert quality_gate.fails(rule, {"yaw": np.array([-50.0, 10.0, 50.0, math.nan])}, 40.0).tolist() == [
        True, False, True, False,
    ]  # fmt: skip


def _tiny_jaffe(folder: Path) -> Path:
    """Six 'portraits' of two subjects from the astronaut crops in reference_outputs.npz: each 64 px face
    enlarged to 120 px on a plain 256 x 256 background."""
    with np.load(ROOT / "tests" / "data" / "reference_outputs.npz") as reference:
        faces = reference["emotion_image"][[0, 1, 2, 4, 5, 7]]
    images = np.full((len(faces), 256, 256), 110, np.uint8)
    for index, face in enumerate(faces):
        images[index, 60:180, 68:188] = cv2.resize(face, (120, 120), interpolation=cv2.INTER_CUBIC)
    labels = np.full(len(faces), EMOTIONS.index("happy"), np.uint8)
    names = np.array([f"{'AA' if i < 3 else 'BB'}.HA{i}.{i}.tiff" for i in range(len(faces))])
    path = folder / "tiny_jaffe.npz"
    np.savez(path, images=images, labels=labels, names=names, classes=np.array(EMOTIONS))
    return path


def test_a_quick_run_end_to_end_writes_thresholds_folds_and_tables(tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    result = quality_gate.main(["--jaffe", str(_tiny_jaffe(tmp_path)), "--mood-model", "emotion", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written["thresholds"] == result["thresholds"]
    assert set(written["thresholds"]) == {rule.setting for rule in QUALITY_RULES}
    QualitySettings(**written["thresholds"])  # they are settings
    jaffe = written["jaffe_dev"]
    assert [fold["held_out"] for fold in jaffe["folds"]] == ["AA", "BB"]
    rows = {row["name"]: row for row in jaffe["out_of_fold"]}
    assert rows["clean"]["faces"] == rows["clean"]["photos"] == 6  # every clean portrait's face is found
    assert rows["all degraded"]["photos"] == 6 * (len(quality_gate.jaffe_degradations()) - 1)
    for row in rows.values():
        assert row["reliable"] + row["unreliable"] == row["faces"] <= row["photos"]
    # In-plane rotation of a real face: the landmark roll follows the rotation.
    assert all(error < 5 for error in jaffe["pose"]["roll_error_median_by_rotation"].values())


def test_each_subject_is_scored_by_its_own_fold_model_when_given(tmp_path: Path) -> None:
    folds = tmp_path / "folds"
    folds.mkdir()
    for subject in ("AA", "BB"):  # stand-ins: the converted network under each fold's name
        (folds / f"fold_{subject}.onnx").write_bytes((ROOT / "layers/meaa/models/emotion.onnx").read_bytes())
    assert quality_gate.jaffe_models_of("emotion", str(folds), ["AA", "BB"]) == {
        "AA": str(folds / "fold_AA.onnx"), "BB": str(folds / "fold_BB.onnx"),
    }  # fmt: skip
    assert quality_gate.jaffe_models_of("emotion", None, ["AA"]) == {"AA": "emotion"}
    out = tmp_path / "gate.json"
    quality_gate.main(["--jaffe", str(_tiny_jaffe(tmp_path)), "--mood-model", "emotion", "--jaffe-fold-models",
                       str(folds), "--json", str(out)])  # fmt: skip
    scored_by = json.loads(out.read_text())["jaffe_dev"]["scored_by"]
    assert set(scored_by) == {"AA", "BB"} and scored_by["AA"].endswith("fold_AA.onnx")
    # The shipped default trained on every jaffe_dev subject: the manifest names the fold models that did not.
    assert quality_gate.manifest_fold_dir("mini_xception_w2_kd").endswith("fold_models/mini_xception_w2_kd")
    assert quality_gate.manifest_fold_dir("emotion") is None
