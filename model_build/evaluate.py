"""Evaluate mood models: classifier metrics on a FER-style npz, or end to end on photos (--pipeline).

    # classifier alone on fer2013_val (each --model is a manifest key or an .onnx path)
    model_build/.venv/bin/python -m model_build.evaluate ../shared/data/fer2013_val.npz \
        --model emotion --model model_build/cache/onnx/w2_e7.onnx --json model_build/runs/eval_val.json
    # detector + crop + classifier on full photos, a missed face counted wrong
    model_build/.venv/bin/python -m model_build.evaluate ../shared/data/jaffe_dev.npz --pipeline --model emotion
    # the honest jaffe_dev figure: leave one subject out, the crop margin chosen on the other four
    model_build/.venv/bin/python -m model_build.evaluate ../shared/data/jaffe_dev.npz --loso --model emotion
    # ... for a recipe whose fold models were each trained without their held-out subject
    model_build/.venv/bin/python -m model_build.evaluate ../shared/data/jaffe_dev.npz --loso \
        --fold-models model_build/fold_models/NAME

Classifier mode reports 7-class accuracy (7-class models), 4-mood accuracy, weighted and macro F1,
per-class F1, ECE (15 bins, top mood), the confusion matrix, ms per face at 1 thread (batch of 1,
median) and file bytes, with 95 % bootstrap intervals (faces resampled) beside accuracy, weighted F1
and ECE. Every model runs through ``meaa.classifier.MoodClassifier``, exactly as the service runs it:
the same preprocessing, and for manifest models their calibration temperature.

``--loso`` is the protocol for everything that touches jaffe_dev (5 subjects, the file-name prefix of
``names``): for each subject, the crop margin is chosen on the other four (weighted F1 over
``--margins``, ties to the margin nearest 0) with the model that never saw that subject, and the
subject's photos are then scored at that margin. The out-of-fold answers of all 108 photos give the
figure; its intervals resample subjects (the honest unit: photos of one person are not independent)
and, for reference, photos.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from meaa.classifier import MoodClassifier
from meaa.labels import EMOTIONS, MOODS, emotion_labels_to_moods
from model_build.jaffe_views import subjects_of
from model_build.metrics import classification_report, confusion_matrix, expected_calibration_error, per_class_f1

HERE = Path(__file__).resolve().parent
LAYERS = HERE.parent / "layers"

MODELS_DIR = LAYERS / "meaa" / "models"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MARGINS = (-0.1, -0.05, 0.0, 0.05, 0.1)
MISSED = len(MOODS)  # the fifth "prediction" of a photo in which no face was found


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    count: int,
    groups: np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(indices)`` over resamples with replacement: of the
    ``count`` items, or, with ``groups``, of whole groups (all items of each drawn group)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        draws = [rng.integers(0, count, count) for _ in range(resamples)]
    else:
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        draws = [
            np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))]) for _ in range(resamples)
        ]
    values = np.array([statistic(d) for d in draws])
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def weighted_f1_of(labels: np.ndarray, predictions: np.ndarray, classes: int = len(MOODS)) -> float:
    """Weighted F1 over the true classes; a prediction outside them (a missed face) counts as wrong."""
    matrix = confusion_matrix(labels, predictions, classes + 1)
    f1 = per_class_f1(matrix)[:classes]
    support = matrix.sum(axis=1)[:classes].astype(np.float64)
    return float((f1 * support).sum() / support.sum())


def classifier_intervals(moods: np.ndarray, mood_labels: np.ndarray) -> dict:
    """Bootstrap intervals (faces resampled) of the classifier figures that the card reports."""
    predictions = moods.argmax(axis=1)
    count = len(mood_labels)
    return {
        "accuracy_ci95": bootstrap_interval(lambda i: float((predictions[i] == mood_labels[i]).mean()), count),
        "weighted_f1_ci95": bootstrap_interval(lambda i: weighted_f1_of(mood_labels[i], predictions[i]), count),
        "ece_ci95": bootstrap_interval(lambda i: expected_calibration_error(moods[i], mood_labels[i]), count),
    }


@dataclass(frozen=True)
class ModelSpec:
    """A mood model to evaluate: its display name, ONNX path, classes and input side."""

    name: str
    path: Path
    classes: tuple[str, ...]
    input_size: int
    manifest_key: str | None

    def classifier(self, threads: int = 1) -> MoodClassifier:
        if self.manifest_key is not None:
            return MoodClassifier.from_manifest(str(MODELS_DIR), self.manifest_key, threads)
        return MoodClassifier(self.path, self.classes, threads=threads)


def resolve_model(name_or_path: str, models_dir: Path = MODELS_DIR) -> ModelSpec:
    """A manifest key (e.g. ``emotion``) or a path to an exported .onnx file."""
    import onnxruntime as ort

    manifest = json.loads((models_dir / "manifest.json").read_text())["models"]
    if name_or_path in manifest:
        entry = manifest[name_or_path]
        size = entry.get("input_size")
        size = int(size[0] if isinstance(size, list) else size)
        return ModelSpec(name_or_path, models_dir / entry["file"], tuple(entry["classes"]), size, name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise SystemExit(f"{name_or_path!r} is neither a manifest key ({sorted(manifest)}) nor a file")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    size = int(session.get_inputs()[0].shape[-1])
    num_classes = int(session.get_outputs()[0].shape[-1])
    classes = {len(EMOTIONS): EMOTIONS, len(MOODS): MOODS}[num_classes]
    return ModelSpec(path.stem, path, classes, size, None)


def ms_per_face(classifier: MoodClassifier, images: np.ndarray, repeats: int = 300) -> float:
    """Median latency of one face (batch of 1, preprocessing included), in milliseconds."""
    for _ in range(20):
        classifier.predict(images[:1])
    times = []
    for i in range(repeats):
        sample = images[i % len(images) : i % len(images) + 1]
        start = time.perf_counter()
        classifier.predict(sample)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def evaluate_classifier(spec: ModelSpec, images: np.ndarray, emotion_labels: np.ndarray, timing: bool = True) -> dict:
    classifier = spec.classifier(threads=1)
    predictions = classifier.predict(images)
    mood_labels = emotion_labels_to_moods(emotion_labels)
    result: dict = {
        "model": spec.name,
        "file": str(spec.path),
        "bytes": spec.path.stat().st_size,
        "classes": list(spec.classes),
        "input_size": spec.input_size,
    }
    if predictions.emotions is not None:
        emotions = predictions.emotions.astype(np.float64)
        result["emotions7"] = classification_report(emotions, emotion_labels, EMOTIONS).to_dict()
    result["mood_temperature"] = classifier.mood_temperature
    moods = predictions.moods.astype(np.float64)
    result["moods4"] = {
        **classification_report(moods, mood_labels, MOODS).to_dict(),
        **classifier_intervals(moods, mood_labels),
    }
    if timing:
        result["ms_per_face_1_thread"] = ms_per_face(classifier, images)
    return result


def _models_dir_with(spec: ModelSpec, workdir: Path) -> tuple[Path, str]:
    """A models folder holding the shipped files plus ``spec`` under a manifest key of its own."""
    if spec.manifest_key is not None:
        return MODELS_DIR, spec.manifest_key
    for item in MODELS_DIR.iterdir():
        os.symlink(item, workdir / item.name)
    (workdir / "manifest.json").unlink()
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    key = f"candidate_{spec.name}"
    shutil.copy(spec.path, workdir / f"{key}.onnx")
    manifest["models"][key] = {
        "file": f"{key}.onnx",
        "sha256": "0" * 64,
        "kind": "mood",
        "classes": list(spec.classes),
        "input_size": [spec.input_size, spec.input_size],
    }
    (workdir / "manifest.json").write_text(json.dumps(manifest))
    return workdir, key


def pipeline_predictions(spec: ModelSpec, images: np.ndarray, overrides: dict) -> np.ndarray:
    """The main face's mood index per photo through ``meaa.MoodEstimator().analyze`` (MISSED: no face)."""
    from meaa.config import Settings
    from meaa.pipeline import MoodEstimator

    with tempfile.TemporaryDirectory() as workdir:
        models_dir, key = _models_dir_with(spec, Path(workdir))
        settings = replace(Settings(), mood_model=key, models_dir=str(models_dir), **overrides)
        estimator = MoodEstimator(settings)
        predictions = np.full(len(images), MISSED, np.int64)
        for index, image in enumerate(images):
            main = estimator.analyze(image).main_face
            if main is not None:
                predictions[index] = MOODS.index(main.mood)
    return predictions


def pipeline_report(mood_labels: np.ndarray, predictions: np.ndarray) -> dict:
    matrix = confusion_matrix(mood_labels, predictions, len(MOODS) + 1)
    f1 = per_class_f1(matrix)[: len(MOODS)]
    support = matrix.sum(axis=1)[: len(MOODS)].astype(np.float64)
    return {
        "count": len(mood_labels),
        "faces_missed": int((predictions == MISSED).sum()),
        "accuracy": float((predictions == mood_labels).mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "macro_f1": float(f1[support > 0].mean()),
        "per_class_f1": {name: float(v) for name, v in zip(MOODS, f1, strict=True)},
        "confusion_with_missed_column": matrix[: len(MOODS)].tolist(),
    }


def evaluate_pipeline(spec: ModelSpec, images: np.ndarray, emotion_labels: np.ndarray, overrides: dict) -> dict:
    """Full photos through ``meaa.MoodEstimator().analyze``; the largest face's mood is the answer."""
    predictions = pipeline_predictions(spec, images, overrides)
    report = pipeline_report(emotion_labels_to_moods(emotion_labels), predictions)
    return {"model": spec.name, "settings": overrides, **report}


def choose_margin(scores: dict[float, float]) -> float:
    """The margin with the best score; ties go to the margin nearest 0 (the service's default), then the smaller."""
    best = max(scores.values())
    return min((m for m, v in scores.items() if v >= best - 1e-12), key=lambda m: (abs(m), m))


def loso_evaluation(
    fold_specs: dict[str, ModelSpec],
    images: np.ndarray,
    emotion_labels: np.ndarray,
    subjects: np.ndarray,
    margins: tuple[float, ...] = MARGINS,
    settings_overrides: dict | None = None,
) -> dict:
    """Leave-one-subject-out end to end: per subject, its fold model (one that never saw it), the crop
    margin chosen on the other subjects with that model, the subject's photos scored at that margin.
    ``settings_overrides`` replaces other ``Settings`` fields for every analysis (e.g. ``detection``)."""
    mood_labels = emotion_labels_to_moods(emotion_labels)
    cache: dict[tuple[str, float], np.ndarray] = {}

    def predictions(spec: ModelSpec, margin: float) -> np.ndarray:
        key = (str(spec.path), margin)
        if key not in cache:
            overrides = {**(settings_overrides or {}), "crop_margin": margin, "align_faces": False}
            cache[key] = pipeline_predictions(spec, images, overrides)
        return cache[key]

    out_of_fold = np.full(len(images), MISSED, np.int64)
    chosen: dict[str, float] = {}
    per_subject: dict[str, float] = {}
    for subject in sorted(set(subjects.tolist())):
        spec = fold_specs[subject]
        inside, held_out = subjects != subject, subjects == subject
        scores = {m: weighted_f1_of(mood_labels[inside], predictions(spec, m)[inside]) for m in margins}
        chosen[subject] = choose_margin(scores)
        out_of_fold[held_out] = predictions(spec, chosen[subject])[held_out]
        per_subject[subject] = weighted_f1_of(mood_labels[held_out], out_of_fold[held_out])
    report = pipeline_report(mood_labels, out_of_fold)
    count = len(images)

    def interval(statistic, groups):
        return bootstrap_interval(statistic, count, groups=groups)

    f1 = lambda i: weighted_f1_of(mood_labels[i], out_of_fold[i])  # noqa: E731
    accuracy = lambda i: float((out_of_fold[i] == mood_labels[i]).mean())  # noqa: E731
    return {
        **report,
        "weighted_f1_ci95_subjects": interval(f1, subjects),
        "weighted_f1_ci95_images": interval(f1, None),
        "accuracy_ci95_subjects": interval(accuracy, subjects),
        "margins_grid": list(margins),
        "margin_chosen": chosen,
        "per_subject_weighted_f1": per_subject,
        "fold_models": {subject: spec.name for subject, spec in fold_specs.items()},
        "out_of_fold_predictions": out_of_fold.tolist(),
    }


def paired_difference(first: np.ndarray, second: np.ndarray, mood_labels: np.ndarray, subjects: np.ndarray) -> dict:
    """weighted F1 of ``first`` minus ``second`` on the same photos, with a subject-bootstrap interval."""
    statistic = lambda i: weighted_f1_of(mood_labels[i], first[i]) - weighted_f1_of(mood_labels[i], second[i])  # noqa: E731
    everyone = np.arange(len(mood_labels))
    return {
        "difference": statistic(everyone),
        "ci95_subjects": bootstrap_interval(statistic, len(mood_labels), groups=subjects),
    }


def fold_specs_for(name_or_path: str | None, fold_dir: str | None, subjects: np.ndarray) -> dict[str, ModelSpec]:
    """One model for every fold (a model that never saw JAFFE), or ``fold_dir/fold_SUBJECT.onnx`` per subject."""
    if fold_dir:
        return {s: resolve_model(str(Path(fold_dir) / f"fold_{s}.onnx")) for s in sorted(set(subjects.tolist()))}
    spec = resolve_model(name_or_path or "emotion")
    return {s: spec for s in sorted(set(subjects.tolist()))}


def classifier_table(results: list[dict]) -> str:
    lines = [
        "| model | bytes | 7-class acc | 4-mood acc | weighted F1 (95 % CI) | macro F1 | F1 pos / neg / neu / other "
        "| ECE | mean conf | ms/face (1 thr) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        m = r["moods4"]
        seven = f"{r['emotions7']['accuracy']:.3f}" if "emotions7" in r else "-"
        per = " / ".join(f"{m['per_class_f1'][c]:.3f}" for c in MOODS)
        ms = f"{r['ms_per_face_1_thread']:.3f}" if "ms_per_face_1_thread" in r else "-"
        low, high = m["weighted_f1_ci95"]
        lines.append(
            f"| {r['model']} | {r['bytes']:,} | {seven} | {m['accuracy']:.3f} | "
            f"{m['weighted_f1']:.3f} ({low:.3f}-{high:.3f}) | "
            f"{m['macro_f1']:.3f} | {per} | {m['ece']:.3f} | {m['mean_confidence']:.3f} | {ms} |"
        )
    return "\n".join(lines)


def pipeline_table(results: list[dict]) -> str:
    lines = [
        "| model | settings | faces missed | 4-mood acc | weighted F1 | macro F1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {json.dumps(r['settings'])} | {r['faces_missed']}/{r['count']} | "
            f"{r['accuracy']:.3f} | {r['weighted_f1']:.3f} | {r['macro_f1']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="npz with images uint8 [N,H,W] and FER2013 emotion labels")
    parser.add_argument("--model", action="append", help="manifest key or .onnx path (repeatable; default: emotion)")
    parser.add_argument("--pipeline", action="store_true", help="full photos through meaa.MoodEstimator().analyze")
    parser.add_argument("--loso", action="store_true", help="leave-one-subject-out end to end (jaffe_dev)")
    parser.add_argument("--fold-models", help="--loso: folder of fold_SUBJECT.onnx (each trained without SUBJECT)")
    parser.add_argument(
        "--margins", default=",".join(str(m) for m in MARGINS), help="--loso: crop margins to choose from"
    )
    parser.add_argument("--crop-margin", type=float, help="override Settings.crop_margin (--pipeline)")
    parser.add_argument("--align", choices=("on", "off"), help="override Settings.align_faces (--pipeline)")
    parser.add_argument("--no-timing", action="store_true", help="skip the ms-per-face measurement")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    with np.load(args.data) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
        names = data["names"] if "names" in data.files else None
    if args.loso:
        if names is None:
            raise SystemExit(f"{args.data} has no names: the subjects are read from them")
        subjects = subjects_of(names)
        margins = tuple(float(m) for m in args.margins.split(","))
        runs = (
            [(args.fold_models, fold_specs_for(None, args.fold_models, subjects))]
            if args.fold_models
            else [(name, fold_specs_for(name, None, subjects)) for name in (args.model or ["emotion"])]
        )
        results = []
        for label, folds in runs:
            result = {"model": label, **loso_evaluation(folds, images, labels, subjects, margins)}
            results.append(result)
            low, high = result["weighted_f1_ci95_subjects"]
            print(
                f"{label}: out-of-fold weighted F1 {result['weighted_f1']:.3f} "
                f"(95 % CI over subjects {low:.3f}-{high:.3f}), "
                f"accuracy {result['accuracy']:.3f}, margins chosen {result['margin_chosen']}"
            )
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            record = {"data": os.path.basename(args.data), "loso": True, "results": results}
            Path(args.json).write_text(json.dumps(record, indent=1))
        return results
    specs = [resolve_model(name) for name in (args.model or ["emotion"])]
    if args.pipeline:
        overrides = {}
        if args.crop_margin is not None:
            overrides["crop_margin"] = args.crop_margin
        if args.align is not None:
            overrides["align_faces"] = args.align == "on"
        results = [evaluate_pipeline(spec, images, labels, overrides) for spec in specs]
        print(pipeline_table(results))
    else:
        results = [evaluate_classifier(spec, images, labels, timing=not args.no_timing) for spec in specs]
        print(classifier_table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"data": os.path.basename(args.data), "pipeline": args.pipeline, "results": results}, indent=1)
        )
    return results


if __name__ == "__main__":
    main()
