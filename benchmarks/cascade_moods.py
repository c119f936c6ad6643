"""jaffe_dev's leave-one-subject-out moods through the exact and the fast cascade, side by side.

    .venv/bin/python -m benchmarks.cascade_moods [--data ../shared/data]

For each shipped mood model, each subject's photos go through ``MoodEstimator.analyze`` with the fold model
that never saw her (a model trained without JAFFE is its own), at the crop margin ``manifest.json`` records as
chosen for her fold (``evaluation.jaffe_dev_loso.margin_chosen``), once per cascade: the out-of-fold 4-mood
accuracy and weighted F1 of each, and their difference (issue 20 allows 0.005). Holding the margins fixed
isolates the cascade; re-choosing them per fold (what ``make verify-metrics`` does) can flip a fold's choice
on a difference of one photo, which then moves the figure by more than the cascade does.
``make verify-metrics`` recomputes the recorded figures with the whole procedure (margins chosen again per
fold) through the default cascade; this isolates what the cascade changes. fer2013_val's figures come from
``classify_faces`` on its 48x48 crops, with no detection, so no cascade can move them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from meaa.classifier import load_manifest
from meaa.config import Settings
from meaa.labels import emotion_labels_to_moods
from model_build.evaluate import fold_specs_for, pipeline_predictions, pipeline_report
from model_build.jaffe_views import subjects_of

REPO_ROOT = Path(__file__).resolve().parents[1]


def jaffe_out_of_fold(data_dir: Path, cascade: str, model: str | None = None) -> dict[str, float]:
    """Out-of-fold accuracy and weighted F1 of a mood model (default: the service's) on jaffe_dev through
    ``cascade``, at the margins recorded as chosen for each fold."""
    settings = Settings()
    entry = load_manifest(settings.models_dir)["models"][model or settings.mood_model]
    record = entry["evaluation"]["jaffe_dev_loso"]
    data = np.load(data_dir / "jaffe_dev.npz")
    images, labels = data["images"], data["labels"]
    subjects = subjects_of(data["names"])
    name = model or settings.mood_model
    fold_dir = entry.get("jaffe_fold_models")  # a model trained without JAFFE is its own fold model
    folds = fold_specs_for(None if fold_dir else name, str(REPO_ROOT / fold_dir) if fold_dir else None, subjects)
    detection = dataclasses.replace(settings.detection, cascade=cascade)
    predictions = np.zeros(len(images), np.int64)
    for subject, spec in folds.items():
        mine = subjects == subject
        overrides = {"crop_margin": record["margin_chosen"][subject], "align_faces": False, "detection": detection}
        predictions[mine] = pipeline_predictions(spec, images[mine], overrides)
    report = pipeline_report(emotion_labels_to_moods(labels), predictions)
    return {"accuracy": report["accuracy"], "weighted_f1": report["weighted_f1"], "missed": report["faces_missed"]}


def table(data_dir: Path) -> str:
    """Every shipped mood model, out of fold on jaffe_dev, through each cascade (the recorded figure beside)."""
    models = load_manifest(Settings().models_dir)["models"]
    rows = [
        "| mood model | figure | recorded (manifest) | exact cascade | fast cascade | fast - exact |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in sorted(key for key, entry in models.items() if entry.get("kind") == "mood"):
        recorded = models[name]["evaluation"]["jaffe_dev_loso"]
        exact, fast = (jaffe_out_of_fold(data_dir, cascade, name) for cascade in ("exact", "fast"))
        for key in ("accuracy", "weighted_f1"):
            rows.append(
                f"| `{name}` | {key.replace('_', ' ')} | {recorded[key]:.4f} | {exact[key]:.4f} | {fast[key]:.4f} | "
                f"{fast[key] - exact[key]:+.4f} |"
            )
        rows.append(f"| `{name}` | faces missed | {recorded['faces_missed']} | {exact['missed']} | {fast['missed']} | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    print(table(parser.parse_args().data))


if __name__ == "__main__":
    main()
