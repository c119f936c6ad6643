"""Static INT8 quantization of an exported mood model, calibrated on training images.

Keep the INT8 file only if its val 4-mood weighted F1 is within 0.01 of FP32 and it is faster at
one thread (the issue's rule); this script measures both and says which to keep.

    model_build/.venv/bin/python -m model_build.quantize model_build/cache/onnx/w2_e7.onnx \
        --calibration ../shared/data/fer2013_train.npz --val ../shared/data/fer2013_val.npz \
        --out model_build/cache/onnx/w2_e7.int8.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meaa.classifier import prepare_crops
from model_build.evaluate import evaluate_classifier, resolve_model

HERE = Path(__file__).resolve().parent

MAX_F1_DROP = 0.01


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed training crops."""

    def __init__(self, batch: np.ndarray, input_name: str, chunk: int = 64) -> None:
        self.items = iter([{input_name: batch[i : i + chunk]} for i in range(0, len(batch), chunk)])

    def get_next(self):
        return next(self.items, None)


def quantize(
    fp32_path: Path,
    calibration_npz: str,
    out_path: Path,
    samples: int = 2000,
    seed: int = 0,
    reduce_range: bool = False,
    weight_type: str = "int8",
) -> None:
    """Static QDQ INT8: u8 activations; s8 weights (``weight_type="int8"``) or u8 (``"uint8"``).

    ``reduce_range`` stores 7-bit weights: x86 without VNNI multiplies u8 x s8 pairs into 16-bit sums
    (vpmaddubsw) that saturate with full 8-bit weights, so the same file answers differently there; 7 bits
    leave the headroom. u8 x u8 takes onnxruntime's other kernel path. model_build/cpu_numerics.py
    measures each form on each CPU.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    spec = resolve_model(str(fp32_path))
    with np.load(calibration_npz) as data:
        images = data["images"]
    pick = np.random.default_rng(seed).choice(len(images), size=min(samples, len(images)), replace=False)
    batch = prepare_crops(images[np.sort(pick)], spec.input_size)
    input_name = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    prepared = out_path.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(prepared))
    quantize_static(
        str(prepared),
        str(out_path),
        _Reader(batch, input_name),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8 if weight_type == "int8" else QuantType.QUInt8,
        per_channel=True,
        reduce_range=reduce_range,
        calibrate_method=CalibrationMethod.MinMax,
    )
    prepared.unlink()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="FP32 .onnx from export.py")
    parser.add_argument("--calibration", required=True, help="training npz (calibration images)")
    parser.add_argument("--val", required=True, help="validation npz (the keep/drop decision)")
    parser.add_argument("--out", required=True, help="INT8 .onnx to write")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--json", help="write the comparison here")
    parser.add_argument("--reduce-range", action="store_true", help="7-bit weights (no 16-bit saturation without VNNI)")
    parser.add_argument("--weight-type", choices=("int8", "uint8"), default="int8")
    args = parser.parse_args(argv)
    fp32, int8 = Path(args.model), Path(args.out)
    quantize(
        fp32, args.calibration, int8, samples=args.samples, reduce_range=args.reduce_range, weight_type=args.weight_type
    )
    with np.load(args.val) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    results = {
        kind: evaluate_classifier(resolve_model(str(path)), images, labels)
        for kind, path in (("fp32", fp32), ("int8", int8))
    }
    f1_drop = results["fp32"]["moods4"]["weighted_f1"] - results["int8"]["moods4"]["weighted_f1"]
    faster = results["int8"]["ms_per_face_1_thread"] < results["fp32"]["ms_per_face_1_thread"]
    keep = f1_drop <= MAX_F1_DROP and faster
    summary = {
        "fp32": {
            "weighted_f1": results["fp32"]["moods4"]["weighted_f1"],
            "ece": results["fp32"]["moods4"]["ece"],
            "ms_per_face": results["fp32"]["ms_per_face_1_thread"],
            "bytes": results["fp32"]["bytes"],
        },
        "int8": {
            "weighted_f1": results["int8"]["moods4"]["weighted_f1"],
            "ece": results["int8"]["moods4"]["ece"],
            "ms_per_face": results["int8"]["ms_per_face_1_thread"],
            "bytes": results["int8"]["bytes"],
        },
        "weighted_f1_drop": f1_drop,
        "int8_faster": faster,
        "keep_int8": keep,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
