"""Record each shipped mood model's outputs on fixture crops, for tests/unit/test_mood_models.py.

    .venv/bin/python -m model_build.reference_outputs      # after a mood model changes (the main venv: scikit-image)

The crops (``reference_images.mood_fixture_crops``: scikit-image faces cut as meaa cuts them, mirrored,
plus drawn ones) are rebuilt by the test from a fresh clone; the stored outputs are the network's
probabilities (uncalibrated, through ``meaa.classifier.MoodClassifier``) and the sha256 of the model
file that gave them, so changing a model without re-recording fails the test. A model with integer
(quantized) kernels also stores its float source's outputs (``quantized_from`` in its manifest entry),
so the test measures the quantization error on whatever CPU runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from meaa.classifier import MoodClassifier
from model_build.reference_images import mood_fixture_crops

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "layers" / "meaa" / "models"
DETECTIONS = REPO_ROOT / "tests" / "data" / "reference_outputs.npz"
OUTPUT = REPO_ROOT / "tests" / "data" / "mood_reference_outputs.npz"


def raw_outputs(path: Path, classes: tuple[str, ...], crops: np.ndarray) -> np.ndarray:
    """The network's probabilities (emotions, or moods for a 4-mood model), calibration left out."""
    predictions = MoodClassifier(path, classes, threads=1).predict(crops)
    return predictions.emotions if predictions.emotions is not None else predictions.moods


def record(manifest: dict, output: Path = OUTPUT) -> dict:
    arrays: dict[str, np.ndarray] = {}
    summary = {}
    for name, entry in manifest["models"].items():
        if entry.get("kind") != "mood":
            continue
        size = int(entry["input_size"][0])
        key = f"crops_{size}"
        if key not in arrays:
            arrays[key] = mood_fixture_crops(str(DETECTIONS), size)
        path = MODELS_DIR / entry["file"]
        arrays[f"{name}__outputs"] = raw_outputs(path, tuple(entry["classes"]), arrays[key])
        arrays[f"{name}__sha256"] = np.array(hashlib.sha256(path.read_bytes()).hexdigest())
        source = entry.get("quantized_from")
        if source:
            arrays[f"{name}__float_source_outputs"] = raw_outputs(
                REPO_ROOT / source["file"], tuple(entry["classes"]), arrays[key]
            )
        summary[name] = {"crops": len(arrays[key]), "size": size}
    np.savez_compressed(output, **arrays)
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUTPUT))
    args = parser.parse_args(argv)
    summary = record(json.loads((MODELS_DIR / "manifest.json").read_text()), Path(args.out))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
