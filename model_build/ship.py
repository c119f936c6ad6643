"""Put a trained mood model into the layer: the ONNX file, its manifest entry, and its recipe's fold models.

    model_build/.venv/bin/python -m model_build.ship --name mini_xception_w2_recipe \
        --onnx model_build/cache/recipe/onnx/final.onnx --folds model_build/cache/recipe/onnx \
        --export-log model_build/runs/recipe/export_final.json --recipe "..." --logs model_build/runs/recipe
    model_build/.venv/bin/python -m model_build.ship --remove mini_xception_w2_int8

Then record what the new file does: ``make verify-metrics ARGS=--write`` (figures, MODEL_CARD and README
tables) and ``python -m model_build.reference_outputs`` (the outputs tests/unit/test_mood_models.py pins).
The fold models (each trained without one jaffe_dev subject) go to model_build/fold_models/NAME/: they are
not shipped, but verify-metrics needs them to recompute the out-of-fold jaffe_dev figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import onnx

from meaa.labels import EMOTIONS, MOODS

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "layers" / "meaa" / "models"
FOLD_MODELS = REPO_ROOT / "model_build" / "fold_models"


def io_spec(model: onnx.ModelProto) -> tuple[list[dict], list[dict]]:
    def describe(values) -> list[dict]:
        out = []
        for value in values:
            dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            out.append({"name": value.name, "shape": dims, "dtype": "float32"})
        return out

    return describe(model.graph.input), describe(model.graph.output)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ship(
    name: str,
    onnx_path: Path,
    folds: Path | None,
    fold_suffix: str,
    export_log: dict,
    recipe: str,
    logs: str,
    data: str,
    ran_on: str,
) -> dict:
    data_bytes = onnx_path.read_bytes()
    model = onnx.load_from_string(data_bytes)
    inputs, outputs = io_spec(model)
    classes = EMOTIONS if outputs[0]["shape"][-1] == len(EMOTIONS) else MOODS
    size = int(inputs[0]["shape"][-1])
    target = MODELS_DIR / f"{name}.onnx"
    shutil.copy(onnx_path, target)
    entry = {
        "file": target.name,
        "sha256": hashlib.sha256(data_bytes).hexdigest(),
        "bytes": len(data_bytes),
        "kind": "mood",
        "source": {
            "trained_here": True,
            "recipe": recipe,
            "data": data,
            "ran_on": ran_on,
            "code_commit": git_commit(),
            "logs": logs,
            "licence": "MIT",
            "data_licence": (
                "FER2013 and JAFFE are research data: the weights are learned from them, the images are not shipped"
            ),
        },
        "opset": model.opset_import[0].version,
        "inputs": inputs,
        "outputs": outputs,
        "preprocessing": (
            f"Gray face crop resized to {size}x{size} (meaa.classifier.prepare_crops), float32 x / 255 * 2 - 1, "
            f"NCHW [N, 1, {size}, {size}]. Output is softmax over FER2013's 7 emotions, its calibration "
            "temperature folded into the graph."
        ),
        "classes": list(classes),
        "input_size": [size, size],
        "calibration": {
            "in_graph_temperature": export_log["temperature"],
            "tta_flip_in_graph": export_log["tta_flip"],
            "fitted_on": "the FER2013 Training holdout (model_build/splits.py), never fer2013_val",
            "method": "softmax(logits / T) in the graph; T minimises the holdout NLL of the 4 mood probabilities",
        },
    }
    if folds is not None:
        # verify_metrics scores each jaffe_dev subject with the fold model that never saw it.
        entry["jaffe_fold_models"] = str((FOLD_MODELS / name).relative_to(REPO_ROOT))
    manifest_path = MODELS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"][name] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    if folds is not None:
        destination = FOLD_MODELS / name
        destination.mkdir(parents=True, exist_ok=True)
        for source in sorted(folds.glob(f"fold_*{fold_suffix}.onnx")):
            subject = source.stem.removeprefix("fold_").removesuffix(fold_suffix)
            if fold_suffix or "_" not in subject:
                shutil.copy(source, destination / f"fold_{subject}.onnx")
    return entry


def remove(name: str) -> None:
    manifest_path = MODELS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["models"].pop(name)
    (MODELS_DIR / entry["file"]).unlink(missing_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name")
    parser.add_argument("--onnx")
    parser.add_argument("--folds", help="folder with fold_SUBJECT{suffix}.onnx")
    parser.add_argument("--fold-suffix", default="")
    parser.add_argument("--export-log", help="export.py's JSON for the shipped file (temperature, flip)")
    parser.add_argument("--recipe", default="")
    parser.add_argument("--logs", default="")
    parser.add_argument("--data", default="")
    parser.add_argument("--ran-on", default="")
    parser.add_argument("--remove", action="append", default=[], help="manifest key to take out of the layer")
    args = parser.parse_args(argv)
    for name in args.remove:
        remove(name)
    if args.name:
        text = Path(args.export_log).read_text()
        export_log = json.loads(text[text.index("\n{") + 1 :] if not text.startswith("{") else text)  # after warnings
        entry = ship(
            args.name,
            Path(args.onnx),
            Path(args.folds) if args.folds else None,
            args.fold_suffix,
            export_log,
            args.recipe,
            args.logs,
            args.data,
            args.ran_on,
        )
        print(json.dumps({k: entry[k] for k in ("file", "sha256", "bytes", "input_size")}))


if __name__ == "__main__":
    main()
