"""Recompute every mood-model figure recorded in manifest.json and MODEL_CARD.md; fail on any difference.

    make verify-metrics      # = model_build/.venv/bin/python -m model_build.verify_metrics --data ../shared/data

Figures come from ``../shared/data`` through meaa's runtime path: ``MoodEstimator(Settings(mood_model=...))``
``.classify_faces`` for the classifier figures on fer2013_val (7-class accuracy through the same
``MoodClassifier``) and ``.analyze`` for jaffe_dev end to end (leave-one-subject-out, crop margin chosen per
fold: ``evaluate.loso_evaluation``). A figure differing by more than 0.002 from the recorded one fails the
run, and so does a model file whose sha256 is not the one its figures were recorded for. Speeds (ms per
face) are measured and printed beside the recorded ones but never fail: they depend on the machine and
its load. The CPU's features (AVX-512, VNNI, arm64 dot product) are printed and recorded, since integer
kernels answer differently on different processors (``cpu_numerics.py``).

``--write`` records the recomputed figures (after a model change, and only then), and regenerates the
tables of MODEL_CARD.md and README.md (``model_card.py``); without it, the run also checks that those tables
are what the records give.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from meaa.classifier import MoodClassifier
from meaa.config import Settings
from meaa.labels import MOODS, emotion_labels_to_moods
from meaa.pipeline import MoodEstimator
from model_build import model_card
from model_build.calibrate import calibration_figures
from model_build.cpu_numerics import cpu_features, describe_features
from model_build.evaluate import (
    MODELS_DIR,
    ModelSpec,
    bootstrap_interval,
    classifier_intervals,
    fold_specs_for,
    loso_evaluation,
    ms_per_face,
    paired_difference,
    weighted_f1_of,
)
from model_build.jaffe_views import subjects_of
from model_build.metrics import classification_report

REPO_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.002
# Timings are printed beside the recorded ones, never compared. Not recomputed here: where the figures were
# measured (printed), descriptions, and the parity with Keras / facenet-pytorch (make verify-models, which needs
# the reference venv).
TIMING_KEYS = ("ms_per_face_1_thread", "ms_per_face_vs_emotion")
UNCHECKED_KEYS = (
    "measured_on",
    "parity_max_abs_diff",
    "parity_reference",
    "measured_with",
    "keras",
    "protocol",
    "method",
    "fitted_on",
)


def mood_models(manifest: dict) -> dict[str, dict]:
    return {name: entry for name, entry in manifest["models"].items() if entry.get("kind") == "mood"}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rounded(value, digits: int = 4):
    """Figures are recorded to 4 decimals (and intervals as [low, high])."""
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    return value


def fer_val_figures(name: str, images: np.ndarray, emotion_labels: np.ndarray) -> dict:
    """Classifier figures of manifest model ``name`` on fer2013_val through the service's classes."""
    estimator = MoodEstimator(replace(Settings(), mood_model=name, models_dir=str(MODELS_DIR)))
    moods = estimator.classify_faces(images).astype(np.float64)
    mood_labels = emotion_labels_to_moods(emotion_labels)
    report = classification_report(moods, mood_labels, MOODS)
    figures = {
        "count": len(images),
        "accuracy_4": report.accuracy,
        "weighted_f1_4": report.weighted_f1,
        "macro_f1_4": report.macro_f1,
        "per_class_f1_4": report.per_class_f1,
        "ece_4": report.ece,
        "mean_confidence_4": report.mean_confidence,
    }
    intervals = classifier_intervals(moods, mood_labels)
    figures.update(
        {
            "accuracy_4_ci95": intervals["accuracy_ci95"],
            "weighted_f1_4_ci95": intervals["weighted_f1_ci95"],
            "ece_4_ci95": intervals["ece_ci95"],
        }
    )
    classifier = MoodClassifier.from_manifest(str(MODELS_DIR), name, threads=1)
    emotions = classifier.predict(images).emotions
    if emotions is not None:
        figures["accuracy_7"] = float((emotions.argmax(axis=1) == emotion_labels).mean())
    return figures


def legacy_fer_val_figures(entry: dict, images: np.ndarray, emotion_labels: np.ndarray) -> dict:
    """verify.py's uncalibrated onnx figures on fer2013_val (``metrics.fer2013_val.onnx``)."""
    raw = MoodClassifier(MODELS_DIR / entry["file"], tuple(entry["classes"]), threads=1)
    predictions = raw.predict(images)
    labels = emotion_labels_to_moods(emotion_labels)
    report = classification_report(predictions.moods.astype(np.float64), labels, MOODS)
    figures = {"accuracy_4": report.accuracy, "weighted_f1_4": report.weighted_f1, "macro_f1_4": report.macro_f1}
    figures.update({f"f1_{mood}": report.per_class_f1[mood] for mood in MOODS})
    if predictions.emotions is not None:
        figures["accuracy_7"] = float((predictions.emotions.argmax(axis=1) == emotion_labels).mean())
    return figures


def evaluation_block(name: str, entry: dict, data_dir: Path) -> dict:
    """Everything the manifest's ``evaluation`` block of a mood model records, measured now."""
    path = MODELS_DIR / entry["file"]
    with np.load(data_dir / "fer2013_val.npz") as data:
        val_images, val_labels = data["images"], data["labels"].astype(np.int64)
    with np.load(data_dir / "jaffe_dev.npz") as data:
        jaffe_images, jaffe_labels, names = data["images"], data["labels"].astype(np.int64), data["names"]
    subjects = subjects_of(names)
    # A model trained on jaffe_dev is scored on each subject by its fold model that never saw that subject.
    fold_dir = entry.get("jaffe_fold_models")
    folds = fold_specs_for(name, str(REPO_ROOT / fold_dir) if fold_dir else None, subjects)
    loso = loso_evaluation(folds, jaffe_images, jaffe_labels, subjects)
    block = {
        "model_sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "measured_on": cpu_features(),
        "fer2013_val": fer_val_figures(name, val_images, val_labels),
        "jaffe_dev_loso": {
            "protocol": (
                "leave one subject out over jaffe_dev's 5 subjects, end to end through MoodEstimator.analyze; "
                "the crop margin chosen per fold on the other 4 subjects from margins_grid; 95 % intervals "
                "resample subjects (and, for reference, photos)"
            ),
            **({"fold_models_dir": fold_dir} if fold_dir else {}),
            **{k: v for k, v in loso.items() if k != "fold_models"},
        },
    }
    if fold_dir:
        block["jaffe_dev_loso"]["fold_models_sha256"] = {
            subject: sha256_file(REPO_ROOT / fold_dir / f"fold_{subject}.onnx") for subject in sorted(folds)
        }
    return rounded(block)


def timing_pass(models: dict[str, dict], images: np.ndarray, rounds: int = 3) -> dict[str, float]:
    """ms per face (batch of 1, 1 thread) of each model: the lowest of ``rounds`` medians, the models
    interleaved, so that a busy shared host's bursts of load reach every model alike and the least
    disturbed round counts."""
    classifiers = {
        name: ModelSpec(name, MODELS_DIR / e["file"], tuple(e["classes"]), int(e["input_size"][0]), name).classifier(1)
        for name, e in models.items()
    }
    best = dict.fromkeys(models, float("inf"))
    for _ in range(rounds):
        for name, classifier in classifiers.items():
            best[name] = min(best[name], ms_per_face(classifier, images, 500))
    return best


def shipping_rule(default: str, baseline: str, blocks: dict[str, dict], data_dir: Path) -> dict:
    """The default against the baseline, paired: fer2013_val weighted F1 (faces resampled) must be higher
    with an interval above 0; the jaffe_dev out-of-fold weighted F1 (subjects resampled) must not be lower
    beyond its interval (the interval's upper end >= 0)."""
    with np.load(data_dir / "fer2013_val.npz") as data:
        images, labels = data["images"], emotion_labels_to_moods(data["labels"].astype(np.int64))
    answers = {
        name: MoodEstimator(replace(Settings(), mood_model=name, models_dir=str(MODELS_DIR)))
        .classify_faces(images)
        .argmax(axis=1)
        for name in (default, baseline)
    }

    def statistic(i: np.ndarray) -> float:
        return weighted_f1_of(labels[i], answers[default][i]) - weighted_f1_of(labels[i], answers[baseline][i])

    with np.load(data_dir / "jaffe_dev.npz") as data:
        jaffe_labels, subjects = emotion_labels_to_moods(data["labels"].astype(np.int64)), subjects_of(data["names"])
    jaffe = paired_difference(
        np.array(blocks[default]["jaffe_dev_loso"]["out_of_fold_predictions"]),
        np.array(blocks[baseline]["jaffe_dev_loso"]["out_of_fold_predictions"]),
        jaffe_labels,
        subjects,
    )
    return rounded(
        {
            "baseline": baseline,
            "fer2013_val_weighted_f1": {
                "difference": statistic(np.arange(len(labels))),
                "ci95_faces": bootstrap_interval(statistic, len(labels)),
            },
            "jaffe_dev_loso_weighted_f1": {"difference": jaffe["difference"], "ci95_subjects": jaffe["ci95_subjects"]},
        }
    )


def compare(recorded, measured, path: str = "") -> tuple[list[str], list[str]]:
    """(failures, notes): numbers must agree within TOLERANCE, everything else exactly."""
    failures: list[str] = []
    notes: list[str] = []
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            where = f"{path}.{key}" if path else key
            if key in UNCHECKED_KEYS:
                continue
            if key in TIMING_KEYS:
                now = measured.get(key) if isinstance(measured, dict) else None
                notes.append(f"{where}: recorded {value}, measured now {now} (timing: not compared)")
                continue
            if not isinstance(measured, dict) or key not in measured:
                failures.append(f"{where}: recorded but not recomputed")
                continue
            more_failures, more_notes = compare(value, measured[key], where)
            failures += more_failures
            notes += more_notes
        return failures, notes
    if isinstance(recorded, (list, tuple)) and isinstance(measured, (list, tuple)) and len(recorded) == len(measured):
        for index, (a, b) in enumerate(zip(recorded, measured, strict=True)):
            more_failures, more_notes = compare(a, b, f"{path}[{index}]")
            failures += more_failures
            notes += more_notes
        return failures, notes
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float)):
        if recorded != measured:
            failures.append(f"{path}: recorded {recorded!r}, measured {measured!r}")
        return failures, notes
    if not isinstance(measured, (int, float)) or abs(float(recorded) - float(measured)) > TOLERANCE:
        failures.append(f"{path}: recorded {recorded}, measured {measured}")
    return failures, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data"), help="folder with the npz files")
    parser.add_argument("--write", action="store_true", help="record the recomputed figures and regenerate the tables")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args(argv)
    data_dir = Path(args.data)
    features = cpu_features()
    print(f"CPU: {describe_features(features)}; onnxruntime {features['onnxruntime']}")
    manifest_path = MODELS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    with np.load(data_dir / "fer2013_val.npz") as data:
        val_images, val_labels = data["images"], data["labels"].astype(np.int64)
    models = mood_models(manifest)
    blocks: dict[str, dict] = {}
    extras: dict[str, dict[str, tuple[dict, dict]]] = {}
    for name, entry in models.items():
        print(f"== measuring {name} ({entry['file']})", flush=True)
        blocks[name] = evaluation_block(name, entry, data_dir)
        extras[name] = {}
        if "ece_before" in entry.get("calibration", {}):
            extras[name]["calibration"] = (
                entry["calibration"],
                rounded(calibration_figures(entry, val_images, val_labels)),
            )
        legacy = entry.get("metrics", {}).get("fer2013_val", {}).get("onnx")
        if legacy:
            extras[name]["metrics.fer2013_val.onnx"] = (
                legacy,
                rounded(legacy_fer_val_figures(entry, val_images, val_labels)),
            )
    default, baseline = Settings().mood_model, "emotion"
    if not args.no_timing:
        print("== timing (3 interleaved rounds)", flush=True)
        speeds = timing_pass(models, val_images)
        for name, block in blocks.items():
            block["ms_per_face_1_thread"] = round(speeds[name], 3)
            if baseline in speeds:  # load moves every timing; the ratio to the baseline timed beside it moves less
                block["ms_per_face_vs_emotion"] = round(speeds[name] / speeds[baseline], 2)
    if default != baseline and default in blocks and baseline in blocks:
        blocks[default]["shipping_rule"] = shipping_rule(default, baseline, blocks, data_dir)

    if args.write:
        for name, entry in models.items():
            entry["evaluation"] = blocks[name]
            if "calibration" in extras[name]:
                entry["calibration"].update(extras[name]["calibration"][1])
            print(
                f"recorded {name}: fer2013_val weighted F1 {blocks[name]['fer2013_val']['weighted_f1_4']}, "
                f"jaffe_dev out-of-fold weighted F1 {blocks[name]['jaffe_dev_loso']['weighted_f1']}"
            )
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        model_card.write(manifest)
        print(f"written: {manifest_path} and the generated tables of {', '.join(p.name for p in model_card.DOCUMENTS)}")
        return 0

    failures: list[str] = []
    for name, entry in models.items():
        print(f"== {name}")
        recorded = entry.get("evaluation")
        if recorded is None:
            failures.append(f"{name}: no evaluation recorded (make verify-metrics ARGS=--write after measuring it)")
            continue
        print(f"   recorded on: {describe_features(recorded.get('measured_on', {'machine': '?'}))}")
        model_failures, notes = compare(recorded, blocks[name])
        for key, (was, now) in extras[name].items():
            model_failures += compare(was, now, key)[0]
        for note in notes:
            print(f"   {note}")
        if model_failures:
            failures += [f"{name}: {failure}" for failure in model_failures]
            print(f"   FAIL: {len(model_failures)} figure(s) differ")
        else:
            print("   ok: every recorded figure reproduces within 0.002")
    card_failures = model_card.check(manifest)
    failures += card_failures
    print("== MODEL_CARD.md and README.md tables: " + ("ok" if not card_failures else f"{len(card_failures)} differ"))
    for failure in failures:
        print(f"FAIL {failure}")
    print("verify-metrics: " + ("every figure reproduces" if not failures else f"{len(failures)} failure(s)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
