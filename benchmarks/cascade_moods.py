"""jaffe_dev's leave-one-subject-out moods through the exact and the fast cascade, side by side.

    .venv/bin/python -m benchmarks.cascade_moods [--data ../shared/data] [--model NAME ...]

The same procedure as ``make verify-metrics`` (``model_build.evaluate.loso_evaluation``: per held-out subject,
the fold model that never saw her, the crop margin chosen on the other four, her photos scored at it), once per
cascade: out-of-fold 4-mood accuracy and weighted F1, and their difference (issue 20 allows 0.005; one of
jaffe_dev's 108 photos is 0.009 of accuracy). The fast cascade's column is what ``manifest.json`` records
(``make verify-metrics`` checks it). fer2013_val's figures come from ``classify_faces`` on its 48x48 crops,
with no detection, so no cascade can move them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from meaa.classifier import load_manifest
from meaa.config import Settings
from model_build.evaluate import fold_specs_for, loso_evaluation
from model_build.jaffe_views import subjects_of

REPO_ROOT = Path(__file__).resolve().parents[1]


def jaffe_loso(data_dir: Path, cascade: str, model: str) -> dict:
    """``loso_evaluation`` of a shipped mood model on jaffe_dev, every analysis through ``cascade``."""
    settings = Settings()
    entry = load_manifest(settings.models_dir)["models"][model]
    data = np.load(data_dir / "jaffe_dev.npz")
    subjects = subjects_of(data["names"])
    fold_dir = entry.get("jaffe_fold_models")  # a model trained without JAFFE is its own fold model
    folds = fold_specs_for(None if fold_dir else model, str(REPO_ROOT / fold_dir) if fold_dir else None, subjects)
    detection = dataclasses.replace(settings.detection, cascade=cascade)
    return loso_evaluation(folds, data["images"], data["labels"], subjects, settings_overrides={"detection": detection})


def table(data_dir: Path, models: list[str] | None = None) -> str:
    """The models' (default: the service's) out-of-fold figures through each cascade."""
    rows = [
        "| mood model | figure | exact cascade | fast cascade | fast - exact | margins chosen, exact / fast |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in models or [Settings().mood_model]:
        exact, fast = (jaffe_loso(data_dir, cascade, name) for cascade in ("exact", "fast"))
        margins = " / ".join(
            ", ".join(f"{margin:+.2f}" for margin in result["margin_chosen"].values()) for result in (exact, fast)
        )
        for key in ("accuracy", "weighted_f1", "macro_f1"):
            rows.append(
                f"| `{name}` | {key.replace('_', ' ')} | {exact[key]:.4f} | {fast[key]:.4f} | "
                f"{fast[key] - exact[key]:+.4f} | {margins if key == 'accuracy' else ''} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--model", action="append", help="a shipped mood model (repeatable; default: the service's)")
    args = parser.parse_args()
    print(table(args.data, args.model))


if __name__ == "__main__":
    main()
