"""The quality gate's fit (model_build/quality_data.py, quality_fit.py, quality_gate.py): the degradations, the
threshold fit, the test a rule must pass to ship, the array form of the gate, writing the defaults, and a quick
run end to end on real face crops (the astronaut crops committed in tests/data/reference_outputs.npz).

Runs in model_build's venv: ``model_build/.venv/bin/python -m pytest tests/model_build``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from meaa.config import QualitySettings
from meaa.labels import EMOTIONS
from meaa.quality import QUALITY_RULES, FaceQuality, HeadPose, QualityRule, unreliable_reasons
from model_build import quality_data, quality_fit, quality_gate
from model_build.quality_data import FIT_DOMAIN, METRICS, POSED_DOMAIN, TEST_DOMAIN, Measured
from model_build.splits import split_train

ROOT = Path(__file__).resolve().parents[2]
BOX = (60.0, 50.0, 180.0, 170.0)  # a 120 px face in a 256 x 256 photo


def _photo() -> np.ndarray:
    rows, cols = np.mgrid[0:256, 0:256]
    return (128 + 60 * np.sin(rows / 9.0) * np.cos(cols / 7.0)).astype(np.uint8)


def _by_name() -> dict[str, quality_data.Degradation]:
    return {f"{d.family} {d.level}": d for d in quality_data.degradations()}


# --- degradations and frames -------------------------------------------------------------------------


def test_every_degradation_keeps_the_photo_gray_uint8_and_clean_is_untouched() -> None:
    photo = _photo()
    for name, degradation in _by_name().items():
        spoiled = degradation.apply(photo, BOX, 3)
        assert spoiled.dtype == np.uint8 and spoiled.ndim == 2, name
    assert np.array_equal(_by_name()["clean -"].apply(photo, BOX, 0), photo)
    proxies = {d.family for d in quality_data.degradations() if d.proxy}
    assert proxies == {f"turned ({kind})" for kind in ("yaw proxy: perspective", "yaw proxy: squeeze",
                                                       "pitch proxy: perspective")}  # fmt: skip


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
    homography = quality_data.tilt_homography(BOX, 40.0, "y")
    points = np.array([[[120.0, 110.0], [60.0, 110.0], [180.0, 110.0]]], np.float32)
    centre, left, right = cv2.perspectiveTransform(points, homography)[0]
    assert centre == pytest.approx((120.0, 110.0), abs=1e-3)
    assert 120 - left[0] != pytest.approx(right[0] - 120, abs=1.0)  # the near side is larger than the far side
    assert max(120 - left[0], right[0] - 120) < 60  # both sides narrower than the flat face (cos 40)


def test_a_fer_face_is_enlarged_and_padded_with_its_mean() -> None:
    crop = np.random.default_rng(0).integers(0, 256, (48, 48)).astype(np.uint8)
    frame = quality_data.fer_frame(crop)
    side = 48 * quality_data.FER_SCALE + 2 * quality_data.FER_PAD
    assert frame.shape == (side, side) and frame.dtype == np.uint8
    assert frame[0, 0] == frame[-1, -1] == round(float(crop.mean()))


def test_degraded_copies_are_dealt_evenly_after_the_clean_photo() -> None:
    conditions = [d for d in quality_data.degradations() if d is not quality_data.CLEAN and not d.proxy]
    plans = quality_data.deal(len(conditions) * 3, conditions, 2, seed=0)
    assert all(plan[0] is quality_data.CLEAN and len(plan) == 3 for plan in plans)
    counts = {d.name: 0 for d in conditions}
    for plan in plans:
        for degradation in plan[1:]:
            counts[degradation.name] += 1
    assert set(counts.values()) == {6}
    assert plans == quality_data.deal(len(conditions) * 3, conditions, 2, seed=0)  # seeded: the cache key holds


# --- the threshold fit -------------------------------------------------------------------------------


def test_the_fit_finds_the_threshold_between_harmless_and_harmful_conditions() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.uniform(0.3, 1.0, 300)  # clean and mildly blurred faces, right 85 % of the time
    blurred = rng.uniform(0.0, 0.1, 200)  # strongly blurred, right 40 % of the time
    metrics = {name: np.full(500, math.nan) for name in METRICS}
    metrics["sharpness"] = np.concatenate([sharp, blurred])
    target = np.concatenate([np.full(300, 0.85), np.full(200, 0.40)])
    clean = np.zeros(500, bool)
    clean[:100] = True
    fit = quality_fit.fit_thresholds(metrics, target, [(clean, 0.95)], tau=0.6)
    assert blurred.max() < fit.thresholds["min_sharpness"] < sharp.min()
    assert fit.retention == [1.0]
    # Every other rule saw no metric (nan never fails), so each stays off.
    off = {rule.setting: quality_fit.OFF[rule.bound] for rule in QUALITY_RULES if rule.setting != "min_sharpness"}
    assert {k: v for k, v in fit.thresholds.items() if k != "min_sharpness"} == off
    inactive = quality_fit.fit_thresholds(metrics, target, [(clean, 0.95)], tau=0.6, active=("min_brightness",))
    assert inactive.thresholds["min_sharpness"] == 0.0  # a rule left out of the fit stays off


def test_the_fit_keeps_the_clean_faces_it_is_told_to_keep() -> None:
    rng = np.random.default_rng(1)
    metrics = {name: np.full(400, math.nan) for name in METRICS}
    metrics["sharpness"] = rng.uniform(0.0, 1.0, 400)
    target = np.where(metrics["sharpness"] < 0.5, 0.3, 0.9)  # harmful below 0.5...
    clean = metrics["sharpness"] < 0.6  # ...but most clean faces live there
    strict = quality_fit.fit_thresholds(metrics, target, [(clean, 0.9)], tau=0.6)
    assert strict.retention[0] >= 0.9
    free = quality_fit.fit_thresholds(metrics, target, [], tau=0.6)
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
    metrics = {name: np.array([q.metrics()[name] for q in qualities]) for name in METRICS}
    reliable, reasons = quality_fit.judge(metrics, thresholds)
    settings = QualitySettings(**thresholds)
    expected = [unreliable_reasons(q, settings) for q in qualities]
    assert [tuple(r) for r in reasons] == expected
    assert reliable.tolist() == [not r for r in expected]
    assert 0 < reliable.sum() < len(qualities)  # both outcomes occur


def test_wilson_interval_matches_a_known_value() -> None:
    assert quality_fit.wilson(81, 100) == pytest.approx([0.7222, 0.8750], abs=1e-3)
    assert quality_fit.wilson(0, 0) is None


def test_rule_values_use_the_absolute_angle() -> None:
    rule = QualityRule("turned", "yaw", "max_abs", "max_yaw")
    assert quality_fit.fails(rule, {"yaw": np.array([-50.0, 10.0, 50.0, math.nan])}, 40.0).tolist() == [
        True, False, True, False,
    ]  # fmt: skip


# --- does a rule earn its place? ---------------------------------------------------------------------


def _rows(domain: np.ndarray, right: np.ndarray, clean: np.ndarray, metrics: dict[str, np.ndarray]) -> Measured:
    count = len(domain)
    full = {name: np.full(count, math.nan) for name in METRICS} | metrics
    label = np.arange(count) % 4
    return Measured(
        domain=domain, photo=np.arange(count), group=np.array([f"g{i % 50}" for i in range(count)]),
        family=np.where(clean, "clean", "blur"), level=np.where(clean, "-", "sigma 5 px"), proxy=np.zeros(count, bool),
        label=label, found=np.ones(count, bool), metrics=full, predicted=np.where(right, label, (label + 1) % 4),
    )  # fmt: skip


def test_the_gap_compares_flagged_faces_with_kept_faces_of_their_own_domain() -> None:
    """FER2013 faces are right less often than posed portraits: a rule that flags mostly FER2013 faces, as
    accurate as the kept FER2013 faces, must show no gap, however the pooled accuracies differ."""
    rng = np.random.default_rng(3)
    domain = np.array([FIT_DOMAIN] * 2000 + [POSED_DOMAIN] * 2000)
    right = np.concatenate([rng.random(2000) < 0.6, rng.random(2000) < 0.95])
    flagged = np.concatenate([rng.random(2000) < 0.3, rng.random(2000) < 0.02])  # independent of being right
    rows = _rows(domain, right, np.ones(4000, bool), {})
    separation = quality_fit.Bootstrap(rows, 300, 0).separation(right, ~flagged, flagged)
    assert right[flagged].mean() < right[~flagged].mean() - 0.1  # pooled, the flagged look far worse...
    assert abs(separation.gap) < 0.05 and separation.ci95[0] < 0 < separation.ci95[1]  # ...within a domain they are not
    assert not separation.earns(quality_fit.MIN_GAP)
    worse = flagged & (rng.random(4000) < 0.5)
    right_worse = np.where(worse, False, right)
    assert quality_fit.Bootstrap(rows, 300, 0).separation(right_worse, ~flagged, flagged).earns(quality_fit.MIN_GAP)


def test_rule_selection_keeps_a_rule_that_finds_wrong_faces_and_drops_one_that_does_not() -> None:
    """Sharpness below 0.2 makes a FER2013 face wrong; yaw says nothing about it. Both would be fitted on;
    only sharpness ships."""
    rng = np.random.default_rng(4)
    count = 3000
    sharpness = rng.uniform(0.0, 1.0, count)
    yaw = rng.normal(0.0, 15.0, count)
    right = np.where(sharpness < 0.2, rng.random(count) < 0.35, rng.random(count) < 0.8)
    clean = sharpness >= 0.2
    rows = _rows(np.full(count, FIT_DOMAIN), right, clean, {"sharpness": sharpness, "yaw": yaw})
    settings = quality_fit.FitSettings(retention=0.9, draws=300)
    gate = quality_fit.select_rules(rows, np.ones(count, bool), settings)
    assert gate.ships["min_sharpness"] and 0.15 < gate.thresholds["min_sharpness"] < 0.25
    assert not gate.ships["max_yaw"] and gate.thresholds["max_yaw"] == 180.0
    assert all(not gate.ships[s] for s in gate.ships if s != "min_sharpness")


# --- writing the defaults ----------------------------------------------------------------------------


def test_settings_source_changes_only_the_quality_defaults(tmp_path: Path, monkeypatch) -> None:
    text = quality_gate.CONFIG.read_text()
    current = {rule.setting: getattr(QualitySettings(), rule.setting) for rule in QUALITY_RULES}
    assert quality_gate.settings_source(text, current) == text  # the shipped defaults are written back unchanged
    changed = quality_gate.settings_source(text, {**current, "max_yaw": 180.0, "min_sharpness": 0.0123})
    (tmp_path / "edited_config.py").write_text(changed)  # the edited module must still import
    spec = importlib.util.spec_from_file_location("edited_config", tmp_path / "edited_config.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "edited_config", module)
    spec.loader.exec_module(module)
    settings = module.QualitySettings()
    assert settings.max_yaw == 180.0 and settings.min_sharpness == 0.0123
    assert settings.min_brightness == QualitySettings().min_brightness
    assert len(changed.splitlines()) == len(text.splitlines())


def test_records_differ_only_beyond_the_tolerance() -> None:
    recorded = {"a": 0.5, "b": [1, {"c": "x"}], "command": "one", "d": True}
    assert quality_gate.differences(recorded, {"a": 0.501, "b": [1, {"c": "x"}], "command": "two", "d": True}) == []
    assert quality_gate.differences(recorded, {"a": 0.51, "b": [1, {"c": "y"}], "d": False}) == [
        "a: recorded 0.5, measured 0.51", "b[1].c: recorded 'x', measured 'y'", "d: recorded True, measured False",
    ]  # fmt: skip


# --- a quick run end to end --------------------------------------------------------------------------


def _faces() -> np.ndarray:
    with np.load(ROOT / "tests" / "data" / "reference_outputs.npz") as reference:
        faces = reference["emotion_image"]
    return np.stack([cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA) for face in faces])


def _tiny_data(folder: Path) -> Path:
    """jaffe_dev: six 'portraits' of two subjects (each astronaut crop enlarged to 120 px on a plain 256 x 256
    background); FER2013: the crops themselves, as a training file whose ids put 12 in the holdout, and a
    validation file of 12."""
    faces = _faces()
    portraits = np.full((6, 256, 256), 110, np.uint8)
    for index in range(6):
        portraits[index, 60:180, 68:188] = cv2.resize(faces[index % len(faces)], (120, 120), cv2.INTER_CUBIC)
    happy = EMOTIONS.index("happy")
    names = np.array([f"{'AA' if i < 3 else 'BB'}.HA{i}.{i}.tiff" for i in range(6)])
    np.savez(folder / "jaffe_dev.npz", images=portraits, labels=np.full(6, happy, np.uint8), names=names)
    ids = np.arange(400)
    holdout = np.flatnonzero(split_train(ids.reshape(-1, 1, 1), ids).holdout)[:12]  # distinct "images"
    train = np.stack([np.roll(faces[i % len(faces)], i, axis=1) for i in range(12)])
    labels = np.array([happy, EMOTIONS.index("sad")] * 6, np.uint8)
    np.savez(folder / "fer2013_train.npz", images=train, labels=labels, ids=ids[holdout])
    np.savez(folder / "fer2013_val.npz", images=train[::-1].copy(), labels=labels)
    return folder


def test_a_quick_run_end_to_end_records_every_rule_and_the_gate(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(quality_data, "CACHE_DIR", tmp_path / "cache")
    data = _tiny_data(tmp_path)
    out = tmp_path / "gate.json"
    arguments = ["--data", str(data), "--mood-model", "emotion", "--jaffe-fold-models", "none", "--json", str(out)]
    assert quality_gate.main(arguments) == 0
    record = json.loads(out.read_text())
    assert set(record["thresholds"]) == {rule.setting for rule in QUALITY_RULES}
    QualitySettings(**record["thresholds"])  # they are settings
    assert record["data"][FIT_DOMAIN]["photos"] == 12 and record["data"][TEST_DOMAIN]["photos"] == 12
    assert record["data"][POSED_DOMAIN]["rows"] == 6 * len(quality_data.degradations())
    assert [fold["held_out"] for fold in record["jaffe_dev"]["folds"]] == ["AA", "BB"]
    for rule in record["rules"]:
        assert rule["threshold"] == (rule["fitted"] if rule["ships"] else quality_fit.OFF[rule["bound"]])
    assert record["gate"]["ordinary"]["faces"] == record["data"][TEST_DOMAIN]["clean_faces_found"]
    assert list(tmp_path.joinpath("cache").glob("*.npz"))  # measured once...
    assert quality_gate.main(arguments) == 0  # ...and the second run reads the cache
    assert json.loads(out.read_text())["thresholds"] == record["thresholds"]


def test_each_jaffe_subject_is_scored_by_its_own_fold_model_when_given(tmp_path: Path) -> None:
    data = _tiny_data(tmp_path)
    photos = quality_data.jaffe_photos(data, "emotion", str(tmp_path / "folds"))
    assert photos.scorers == [str(tmp_path / "folds" / f"fold_{s}.onnx") for s in ["AA"] * 3 + ["BB"] * 3]
    assert quality_data.jaffe_photos(data, "emotion", None).scorers == ["emotion"] * 6
    # The shipped default trained on every jaffe_dev subject: the manifest names the fold models that did not.
    assert quality_data.manifest_fold_dir("mini_xception_w2_recipe").endswith("fold_models/mini_xception_w2_recipe")
    assert quality_data.manifest_fold_dir("emotion") is None
