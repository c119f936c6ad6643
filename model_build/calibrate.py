"""Fit a shipped mood model's calibration temperature on validation data and record it in the manifest.

    model_build/.venv/bin/python -m model_build.calibrate ../shared/data/fer2013_val.npz --model emotion --write

Clinicians read the mood probabilities as confidence. ``meaa.classifier.MoodClassifier`` reports
softmax(log(moods) / T); T is fitted here by minimising the negative log-likelihood of the true mood on
the validation set (a 2-fold split of it also reports the ECE on faces the fit did not see). Dividing
log-probabilities by one T keeps every mood's rank, so accuracy and F1 do not move; only the confidence
does (ECE, 15 bins, top mood, before and after, is printed and stored).
``--write`` puts ``calibration`` into the model's manifest entry; the model file is unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meaa.classifier import MoodClassifier, load_manifest
from meaa.labels import emotion_labels_to_moods
from model_build.metrics import expected_calibration_error, fit_temperature, softmax

HERE = Path(__file__).resolve().parent

MODELS_DIR = HERE.parent / "layers" / "meaa" / "models"


def fit_mood_temperature(moods: np.ndarray, mood_labels: np.ndarray) -> float:
    """The T minimising the NLL of softmax(log(moods) / T) at the true moods."""
    return fit_temperature(np.log(np.clip(moods, 1e-12, None)), mood_labels, lambda probabilities: probabilities)


def calibration_figures(entry: dict, images: np.ndarray, emotion_labels: np.ndarray) -> dict[str, float]:
    """The temperature of manifest ``entry``'s mood model fitted on ``images``, and what it does: ECE before
    and after, after on held-out halves (a 2-fold split: the same data fits and scores T), mean confidence
    before and after, accuracy. ``verify_metrics`` recomputes the manifest's figures with it."""
    raw = MoodClassifier(MODELS_DIR / entry["file"], tuple(entry["classes"]), threads=1)  # temperature 1: uncalibrated
    moods = raw.predict(images).moods.astype(np.float64)
    labels = emotion_labels_to_moods(emotion_labels)
    temperature = fit_mood_temperature(moods, labels)
    calibrated = softmax(np.log(np.clip(moods, 1e-12, None)), temperature)
    halves = np.array_split(np.random.default_rng(0).permutation(len(images)), 2)
    held_out = []
    for fit_part, score_part in (halves, halves[::-1]):
        fold_t = fit_mood_temperature(moods[fit_part], labels[fit_part])
        fold_moods = softmax(np.log(np.clip(moods[score_part], 1e-12, None)), fold_t)
        held_out.append(expected_calibration_error(fold_moods, labels[score_part]))
    return {
        "mood_temperature": temperature,
        "ece_before": expected_calibration_error(moods, labels),
        "ece_after": expected_calibration_error(calibrated, labels),
        "ece_after_2fold_held_out": float(np.mean(held_out)),
        "mean_confidence_before": float(moods.max(axis=1).mean()),
        "mean_confidence_after": float(calibrated.max(axis=1).mean()),
        "accuracy": float((moods.argmax(axis=1) == labels).mean()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="validation npz (images uint8 [N,H,W], FER2013 emotion labels)")
    parser.add_argument("--model", default="emotion", help="manifest key of a mood model")
    parser.add_argument("--write", action="store_true", help="store the temperature in manifest.json")
    args = parser.parse_args(argv)

    entry = load_manifest(str(MODELS_DIR))["models"][args.model]
    with np.load(args.data) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    figures = calibration_figures(entry, images, labels)
    calibration = {
        "mood_temperature": round(figures["mood_temperature"], 4),
        "method": "moods = softmax(log(moods) / mood_temperature); NLL fit, ranks unchanged",
        "fitted_on": f"{Path(args.data).name} ({len(images)} faces)",
        **{key: round(value, 4) for key, value in figures.items() if key != "mood_temperature"},
    }
    print(json.dumps(calibration, indent=1))
    if args.write:
        path = MODELS_DIR / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["models"][args.model]["calibration"] = calibration
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"written to {path}")
    return calibration


if __name__ == "__main__":
    main()
