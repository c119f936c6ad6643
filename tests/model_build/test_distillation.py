"""The distillation pipeline on tiny generated data: split, teacher, bank, student, and the evaluation helpers.

Runs in model_build's venv: ``model_build/.venv/bin/python -m pytest tests/model_build``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from meaa.labels import EMOTIONS, MOODS
from model_build import bank, cpu_numerics, distill, evaluate, splits, train
from model_build.augment import AugmentConfig, PipelineCrops, augment_batch
from model_build.scoring import load_checkpoint
from tests.model_build.test_training import _pattern_images


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("distill")
    images, labels = _pattern_images(192, seed=3)
    rng = np.random.default_rng(0)
    np.savez(
        folder / "fit.npz",
        images=images,
        labels=labels,
        crop_found=rng.random(192) < 0.9,
        crop_scale=rng.uniform(0.8, 1.2, 192).astype(np.float32),
        crop_center=rng.normal(0, 0.05, (192, 2)).astype(np.float32),
    )
    holdout, holdout_labels = _pattern_images(64, seed=4)
    np.savez(folder / "holdout.npz", images=holdout, labels=holdout_labels)
    jaffe, jaffe_labels = _pattern_images(12, seed=5)
    views = np.stack([np.stack([np.roll(image, shift, axis=1) for shift in range(3)]) for image in jaffe])
    np.savez(
        folder / "jaffe_views.npz",
        views=views,
        labels=jaffe_labels,
        subjects=np.array(["KA", "KL", "KM"] * 4),
        names=np.array([f"X.{i}" for i in range(12)]),
    )
    return {
        "dir": folder,
        "fit": folder / "fit.npz",
        "holdout": folder / "holdout.npz",
        "jaffe": folder / "jaffe_views.npz",
    }


def _teacher_args(tiny: dict[str, Path], tmp: Path, name: str, *extra: str) -> list[str]:
    """train.py on the tiny fit split, cosine, 3 epochs (``extra`` overrides: argparse keeps the last)."""
    common = ["--target", "emotions7", "--width", "0.5", "--epochs", "3", "--batch-size", "32", "--device", "cpu"]
    return [
        *("--train", str(tiny["fit"]), "--val", str(tiny["holdout"]), "--name", name, *common),
        *("--schedule", "cosine", "--pipeline-crop-prob", "0.5", "--no-progress"),
        *("--checkpoint-dir", str(tmp / name), "--log-dir", str(tmp / "runs"), *extra),
    ]


def _student_args(tiny: dict[str, Path], tmp: Path, name: str, views: Path, *extra: str) -> list[str]:
    """distill.py on the tiny bank with 20 % posed faces, 3 epochs (``extra`` overrides)."""
    common = ["--width", "0.5", "--epochs", "3", "--batch-size", "32", "--device", "cpu"]
    return [
        *("--name", name, "--views", str(views), "--fit", str(tiny["fit"]), "--val", str(tiny["holdout"]), *common),
        *("--jaffe", str(tiny["jaffe"]), "--jaffe-fraction", "0.2"),
        *("--out-dir", str(tmp / name), "--log-dir", str(tmp / "runs"), *extra),
    ]


def test_holdout_split_keeps_duplicates_and_ids_together() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(400, 4, 4), dtype=np.uint8)
    images[300:320] = images[0:20]  # pixel duplicates under other ids
    ids = np.arange(400)
    ids[350:360] = ids[100:110]  # repeated ids, other pixels
    split = splits.split_train(images, ids, fraction=0.3)
    assert np.array_equal(split.holdout[300:320], split.holdout[0:20])
    assert np.array_equal(split.holdout[350:360], split.holdout[100:110])
    assert np.all(split.fit ^ split.holdout)
    assert 0.15 < split.holdout.mean() < 0.45
    # A pure function of the data: the same split again, whatever the order of the calls.
    assert np.array_equal(splits.split_train(images, ids, fraction=0.3).holdout, split.holdout)


def test_pipeline_crops_cut_the_detector_square() -> None:
    """With every face 'found' at half the side around the centre, the crop is the 2x zoom of the centre."""
    image = np.zeros((1, 1, 48, 48), np.uint8)
    image[0, 0, 12:36, 12:36] = 255  # a bright square filling the centre half
    crops = PipelineCrops(torch.tensor([True]), torch.tensor([0.5]), torch.zeros(1, 2))
    config = AugmentConfig(
        pipeline_crop_prob=1.0,
        pipeline_jitter_scale=0.0,
        pipeline_jitter_shift=0.0,
        pipeline_rotation_deg=0.0,
        flip=False,
        brightness=0.0,
        contrast=0.0,
        blur_prob=0.0,
    )
    out = augment_batch(torch.from_numpy(image), 48, config, torch.Generator().manual_seed(0), crops)
    assert out.shape == (1, 1, 48, 48)
    assert out[0, 0, 4:44, 4:44].min() > 0.9  # the centre square now fills the whole crop


def test_teacher_bank_student_end_to_end(tiny, tmp_path) -> None:
    log = train.main(_teacher_args(tiny, tmp_path, "ck_teacher", "--epochs", "2", "--lr", "3e-3"))
    assert log["epochs_run"] == 2 and log["history"][-1]["lr"] < 3e-3 * 0.1  # annealed to ~0 by the last step
    # A cosine run is resumable too: its progress is counted in steps, and last.pt holds the optimizer.
    assert (tmp_path / "ck_teacher" / "best.pt").exists() and (tmp_path / "ck_teacher" / "last.pt").exists()

    views = tmp_path / "views.npy"
    bank.main(["views", "--train", str(tiny["fit"]), "--out", str(views), "--views", "3", "--device", "cpu"])
    drawn = np.load(views)
    with np.load(tiny["fit"]) as data:
        assert np.array_equal(drawn[0], data["images"])  # view 0 is the face itself
    assert drawn.shape == (3, 192, 48, 48) and not np.array_equal(drawn[1], drawn[0])
    bank.main(
        ["views", "--train", str(tiny["fit"]), "--out", str(tmp_path / "again.npy"), "--views", "3", "--device", "cpu"]
    )
    assert np.array_equal(np.load(tmp_path / "again.npy"), drawn)  # seeded: the same bank every time

    prefix = str(tmp_path / "teachers" / "teacher")
    summary = bank.main(
        [
            "logits",
            "--checkpoint",
            str(tmp_path / "ck_teacher" / "best.pt"),
            "--views",
            str(views),
            "--jaffe",
            str(tiny["jaffe"]),
            "--val",
            str(tiny["holdout"]),
            "--out",
            prefix,
            "--device",
            "cpu",
        ]
    )
    assert summary["views_scored"] == 3
    assert np.load(prefix + ".fer.npy").shape == (3, 192, 7)
    assert np.load(prefix + ".jaffe.npy").shape == (12, 3, 7)
    # On a CPU the bank is scored in small batches (bank.default_batch): the same logits as one large batch.
    teacher = load_checkpoint(tmp_path / "ck_teacher" / "best.pt")[0].eval()
    whole = bank.teacher_logits(teacher, torch.from_numpy(drawn[1]), 48, batch_size=len(drawn[1])).numpy()
    assert bank.default_batch(torch.device("cpu")) < len(drawn[1])
    np.testing.assert_allclose(np.load(prefix + ".fer.npy")[1].astype(np.float32), whole, rtol=2e-3, atol=2e-3)
    timed = bank.main(["time", "--checkpoint", str(tmp_path / "ck_teacher" / "best.pt"), "--views", str(views)])
    assert set(timed["seconds_per_face"]) == {2048, 256, 64}

    targets, _, scored = distill.teacher_targets((prefix, prefix), temperature=2.0)
    assert scored == 3
    np.testing.assert_allclose(targets.sum(axis=-1), 1.0, atol=1e-5)  # two copies of one teacher: its own softmax

    extra = ("--teachers", prefix, "--jaffe-exclude", "KA", "--lr", "3e-3")
    student = distill.main(_student_args(tiny, tmp_path, "student", views, *extra))
    assert student["jaffe_subjects_in_training"] == ["KL", "KM"]
    assert student["epochs_run"] == 3 and student["bank_views"] == 3
    history = json.loads((tmp_path / "runs" / "student.json").read_text())["history"]
    # 18 steps on four easy patterns: the loss falls and the holdout figure climbs off the one-class floor.
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_weighted_f1"] > history[0]["val_weighted_f1"]
    checkpoint = torch.load(tmp_path / "student" / "best.pt", weights_only=False)
    assert checkpoint["target"] == "emotions7" and checkpoint["arch"]["num_classes"] == len(EMOTIONS)


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_data() -> None:
    rng = np.random.default_rng(1)
    small, large = rng.random(50) < 0.7, rng.random(5000) < 0.7
    low_s, high_s = evaluate.bootstrap_interval(lambda i: float(small[i].mean()), len(small))
    low_l, high_l = evaluate.bootstrap_interval(lambda i: float(large[i].mean()), len(large))
    assert low_s <= small.mean() <= high_s and low_l <= large.mean() <= high_l
    assert high_l - low_l < (high_s - low_s) / 3
    # Resampling whole groups: with two groups of opposite values the interval spans both.
    values = np.array([0.0] * 10 + [1.0] * 10)
    low, high = evaluate.bootstrap_interval(lambda i: float(values[i].mean()), 20, groups=np.repeat([0, 1], 10))
    assert low == 0.0 and high == 1.0


def test_missed_faces_count_against_weighted_f1() -> None:
    labels = np.array([0, 0, 1, 1])
    assert evaluate.weighted_f1_of(labels, np.array([0, 0, 1, 1])) == 1.0
    assert evaluate.weighted_f1_of(labels, np.array([0, 0, 1, evaluate.MISSED])) < 1.0


def test_margin_choice_prefers_the_default_on_ties() -> None:
    assert evaluate.choose_margin({-0.05: 0.8, 0.0: 0.8, 0.05: 0.7}) == 0.0
    assert evaluate.choose_margin({-0.05: 0.9, 0.0: 0.8}) == -0.05
    assert evaluate.choose_margin({-0.1: 0.8, 0.1: 0.8}) == -0.1


def test_cpu_numerics_compare_reports_differences(tmp_path) -> None:
    base = {
        "cpu": {"machine": "x86_64", "features": {"avx2": True}},
        "models": {"m": {"sha256": "a", "weighted_f1_4": 0.5}},
    }
    other = {
        "cpu": {"machine": "aarch64", "features": {"asimddp (dot product)": True}},
        "models": {"m": {"sha256": "a", "weighted_f1_4": 0.4}},
    }
    probabilities = np.full((4, len(MOODS)), 0.25, np.float32)
    probabilities[:, 0] = 0.4
    probabilities[:, 1:] = 0.2
    moved = probabilities.copy()
    moved[0] = [0.1, 0.6, 0.2, 0.1]
    for name, summary, outputs in (("a", base, probabilities), ("b", other, moved)):
        np.savez(tmp_path / f"{name}.npz", m=outputs)
        (tmp_path / f"{name}.json").write_text(json.dumps(summary))
    result = cpu_numerics.compare([str(tmp_path / "a"), str(tmp_path / "b")])
    row = result["models"]["m"][0]
    assert row["argmax_7_disagreements"] == 1 and not row["within_tolerance"]
    assert row["max_abs_difference"] == pytest.approx(0.4)


def test_cpu_features_name_the_simd_that_integer_kernels_use() -> None:
    features = cpu_numerics.cpu_features()
    assert features["machine"]
    assert "onnxruntime" in features
    if features["machine"] == "x86_64":
        assert {"avx2", "avx512f", "avx512_vnni"} <= set(features["features"])


def test_verify_metrics_fails_on_a_figure_beyond_tolerance_and_never_on_timings() -> None:
    from model_build.verify_metrics import compare

    recorded = {
        "accuracy": 0.5,
        "f1": {"ci": [0.1, 0.2]},
        "ms_per_face_1_thread": 1.0,
        "measured_on": {"machine": "x"},
        "text": "same",
    }
    measured = {"accuracy": 0.5015, "f1": {"ci": [0.1, 0.203]}, "ms_per_face_1_thread": 5.0, "text": "same"}
    failures, notes = compare(recorded, measured)
    assert failures == ["f1.ci[1]: recorded 0.2, measured 0.203"]
    assert len(notes) == 1 and "timing" in notes[0]
    assert compare({"missing": 1.0}, {})[0] == ["missing: recorded but not recomputed"]


def test_model_card_check_catches_a_hand_typed_figure(tmp_path, monkeypatch) -> None:
    from model_build import model_card

    manifest = json.loads(model_card.MANIFEST.read_text())
    document = tmp_path / "CARD.md"
    marker = "<!-- generated:shipped (test) -->\n"
    document.write_text(f"# card\n{marker}| stale | 0.999 |\n<!-- /generated:shipped -->\n")
    monkeypatch.setattr(model_card, "DOCUMENTS", (document,))
    monkeypatch.setitem(model_card.SECTIONS, document, {"shipped": model_card.shipped_table})
    assert model_card.check(manifest) == ["CARD.md: table 'shipped' differs from its records (model_card.py --write)"]
    model_card.write(manifest)
    assert model_card.check(manifest) == []
    assert "0.999" not in document.read_text() and marker in document.read_text()


@pytest.mark.parametrize("module", [train, distill])
def test_one_loop_resumes_to_the_same_weights(tiny, tmp_path, monkeypatch, module) -> None:
    """A run stopped after its second epoch and run again ends with the weights of a run never stopped."""
    views = tmp_path / "views.npy"
    bank.main(["views", "--train", str(tiny["fit"]), "--out", str(views), "--views", "2", "--device", "cpu"])

    def args(name: str) -> list[str]:
        if module is train:  # dropout draws from torch's own generator, which last.pt keeps too
            return _teacher_args(tiny, tmp_path, name, "--dropout", "0.2", "--mixup-alpha", "0.4")
        return _student_args(tiny, tmp_path, name, views)

    module.main(args("straight"))
    calls = {"n": 0}
    real_report = module.mood_report

    def report_then_die(*report_args, **kwargs):  # the third epoch trains, then the process dies before saving it
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_report(*report_args, **kwargs)

    monkeypatch.setattr(module, "mood_report", report_then_die)
    with pytest.raises(KeyboardInterrupt):
        module.main(args("stopped"))
    assert torch.load(tmp_path / "stopped" / "last.pt", weights_only=False)["epoch"] == 2
    monkeypatch.setattr(module, "mood_report", real_report)
    log = module.main(args("stopped"))

    assert log["epochs_run"] == 3 and [row["epoch"] for row in log["history"]] == [1, 2, 3]
    straight = torch.load(tmp_path / "straight" / "best.pt", weights_only=False)["model"]
    resumed = torch.load(tmp_path / "stopped" / "best.pt", weights_only=False)["model"]
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    straight_log = json.loads((tmp_path / "runs" / "straight.json").read_text())
    assert [row["train_loss"] for row in straight_log["history"]] == [row["train_loss"] for row in log["history"]]
