"""Evaluate mood models: classifier metrics on a FER-style npz, or end to end on photos (--pipeline).

    # classifier alone on fer2013_val (each --model is a manifest key or an .onnx path)
    model_build/.venv/bin/python -m model_build.evaluate ../shared/data/fer2013_val.npz \
        --model emotion --model model_build/cache/onnx/w2_e7.onnx --json model_build/runs/eval_val.json
    # detector + crop + classifier on full photos, a missed face counted wrong
    model_build/.venv/bin/python -m model_build.evaluate ../shared/data/jaffe_dev.npz --pipeline --model emotion

Classifier mode reports 7-class accuracy (7-class models), 4-mood accuracy, weighted and macro F1,
per-class F1, ECE (15 bins, top mood), the confusion matrix, ms per face at 1 thread (batch of 1,
median) and file bytes. Every model runs through ``meaa.classifier.MoodClassifier``, exactly as the
service runs it: the same preprocessing, and for manifest models their calibration temperature.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LAYERS = HERE.parent / "layers"

from meaa.classifier import MoodClassifier
from meaa.labels import EMOTIONS, MOODS, emotion_labels_to_moods
from model_build.metrics import classification_report, confusion_matrix, per_class_f1

MODELS_DIR = LAYERS / "meaa" / "models"


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
    result: dict = {"model": spec.name, "file": str(spec.path), "bytes": spec.path.stat().st_size,
                    "classes": list(spec.classes), "input_size": spec.input_size}
    if predictions.emotions is not None:
        result["emotions7"] = classification_report(predictions.emotions.astype(np.float64), emotion_labels, EMOTIONS).to_dict()
    result["mood_temperature"] = classifier.mood_temperature
    result["moods4"] = classification_report(predictions.moods.astype(np.float64), mood_labels, MOODS).to_dict()
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
    manifest["models"][key] = {"file": f"{key}.onnx", "sha256": "0" * 64, "kind": "mood",
                               "classes": list(spec.classes), "input_size": [spec.input_size, spec.input_size]}
    (workdir / "manifest.json").write_text(json.dumps(manifest))
    return workdir, key


def evaluate_pipeline(spec: ModelSpec, images: np.ndarray, emotion_labels: np.ndarray, overrides: dict) -> dict:
    """Full photos through ``meaa.MoodEstimator().analyze``; the largest face's mood is the answer."""
    from dataclasses import replace

    from meaa.config import Settings
    from meaa.pipeline import MoodEstimator

    mood_labels = emotion_labels_to_moods(emotion_labels)
    with tempfile.TemporaryDirectory() as workdir:
        models_dir, key = _models_dir_with(spec, Path(workdir))
        settings = replace(Settings(), mood_model=key, models_dir=str(models_dir), **overrides)
        estimator = MoodEstimator(settings)
        missed = len(MOODS)  # a fifth column: no face found
        predictions = np.full(len(images), missed, np.int64)
        for index, image in enumerate(images):
            main = estimator.analyze(image).main_face
            if main is not None:
                predictions[index] = MOODS.index(main.mood)
    matrix = confusion_matrix(mood_labels, predictions, len(MOODS) + 1)
    f1 = per_class_f1(matrix)[: len(MOODS)]
    support = matrix.sum(axis=1)[: len(MOODS)].astype(np.float64)
    return {
        "model": spec.name, "settings": overrides, "count": int(len(images)),
        "faces_missed": int((predictions == missed).sum()),
        "accuracy": float((predictions == mood_labels).mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "macro_f1": float(f1[support > 0].mean()),
        "per_class_f1": {name: float(v) for name, v in zip(MOODS, f1)},
        "confusion_with_missed_column": matrix[: len(MOODS)].tolist(),
    }


def classifier_table(results: list[dict]) -> str:
    lines = [
        "| model | bytes | 7-class acc | 4-mood acc | weighted F1 | macro F1 | F1 pos / neg / neu / other | ECE | mean conf | ms/face (1 thr) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        m = r["moods4"]
        seven = f"{r['emotions7']['accuracy']:.3f}" if "emotions7" in r else "-"
        per = " / ".join(f"{m['per_class_f1'][c]:.3f}" for c in MOODS)
        ms = f"{r['ms_per_face_1_thread']:.3f}" if "ms_per_face_1_thread" in r else "-"
        lines.append(f"| {r['model']} | {r['bytes']:,} | {seven} | {m['accuracy']:.3f} | {m['weighted_f1']:.3f} | "
                     f"{m['macro_f1']:.3f} | {per} | {m['ece']:.3f} | {m['mean_confidence']:.3f} | {ms} |")
    return "\n".join(lines)


def pipeline_table(results: list[dict]) -> str:
    lines = ["| model | settings | faces missed | 4-mood acc | weighted F1 | macro F1 |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['model']} | {json.dumps(r['settings'])} | {r['faces_missed']}/{r['count']} | "
                     f"{r['accuracy']:.3f} | {r['weighted_f1']:.3f} | {r['macro_f1']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="npz with images uint8 [N,H,W] and FER2013 emotion labels")
    parser.add_argument("--model", action="append", help="manifest key or .onnx path (repeatable; default: emotion)")
    parser.add_argument("--pipeline", action="store_true", help="full photos through meaa.MoodEstimator().analyze")
    parser.add_argument("--crop-margin", type=float, help="override Settings.crop_margin (--pipeline)")
    parser.add_argument("--align", choices=("on", "off"), help="override Settings.align_faces (--pipeline)")
    parser.add_argument("--no-timing", action="store_true", help="skip the ms-per-face measurement")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    with np.load(args.data) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
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
        Path(args.json).write_text(json.dumps({"data": os.path.basename(args.data), "pipeline": args.pipeline,
                                               "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
