"""Export a train.py checkpoint to ONNX with a validation-fitted temperature folded into the graph.

The exported graph takes ``image`` float32 [N,1,S,S] (gray, x / 255 * 2 - 1) and returns
``probabilities`` = softmax(logits / T) over the checkpoint's classes (4 moods or 7 emotions), so
``meaa`` needs no calibration code of its own. T minimises the validation negative log-likelihood of
the 4 mood probabilities (what the service reports); ECE is measured before and after.

    model_build/.venv/bin/python -m model_build.export model_build/cache/runs/NAME/best.pt \
        --val ../shared/data/fer2013_val.npz --out model_build/cache/NAME.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meaa.labels import emotion_labels_to_moods
from model_build.metrics import fit_temperature
from model_build.mini_xception import MiniXception
from model_build.scoring import (
    TARGETS,
    load_checkpoint,
    load_npz,
    mood_report,
    predict_logits,
    prepare_eval_images,
    to_moods_fn,
)

HERE = Path(__file__).resolve().parent

OPSET = 17


class CalibratedClassifier(nn.Module):
    """logits (optionally averaged with the mirror image's) / temperature -> softmax."""

    def __init__(self, model: MiniXception, temperature: float, tta_flip: bool) -> None:
        super().__init__()
        self.model = model
        self.tta_flip = tta_flip
        self.register_buffer("inverse_temperature", torch.tensor(1.0 / temperature, dtype=torch.float32))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.model(image)
        if self.tta_flip:
            logits = (logits + self.model(torch.flip(image, dims=[3]))) * 0.5
        return torch.softmax(logits * self.inverse_temperature, dim=1)


def write_onnx(module: nn.Module, input_size: int, out_path: str | Path) -> None:
    example = torch.zeros(2, 1, input_size, input_size)
    torch.onnx.export(
        module,
        (example,),
        str(out_path),
        input_names=["image"],
        output_names=["probabilities"],
        dynamic_axes={"image": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET,
        dynamo=False,
    )


def export_checkpoint(checkpoint: str | Path, val_npz: str, out_path: str | Path, tta_flip: bool = False) -> dict:
    """Fit T on val, write the ONNX file, check it against torch; returns the figures for the log."""
    import onnxruntime as ort

    model, target = load_checkpoint(checkpoint)
    size = model.config.input_size
    images, emotions = load_npz(val_npz)
    val_x = prepare_eval_images(images, size, torch.device("cpu"))
    logits = predict_logits(model, val_x, tta_flip)
    temperature = fit_temperature(logits, emotion_labels_to_moods(emotions), to_moods_fn(target))
    before = mood_report(logits, emotions, target)
    after = mood_report(logits, emotions, target, temperature)

    module = CalibratedClassifier(model, temperature, tta_flip).eval()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    write_onnx(module, size, out_path)

    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    sample = val_x[:64].numpy()
    onnx_probabilities = session.run(["probabilities"], {"image": sample})[0]
    with torch.no_grad():
        torch_probabilities = module(torch.from_numpy(sample)).numpy()
    data = Path(out_path).read_bytes()
    return {
        "onnx": str(out_path),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "classes": list(TARGETS[target]),
        "target": target,
        "input_size": size,
        "tta_flip": tta_flip,
        "temperature": round(temperature, 4),
        "opset": OPSET,
        "val_before_temperature": {
            "weighted_f1": before.weighted_f1,
            "ece": before.ece,
            "mean_confidence": before.mean_confidence,
        },
        "val_after_temperature": {
            "weighted_f1": after.weighted_f1,
            "ece": after.ece,
            "mean_confidence": after.mean_confidence,
        },
        "onnx_torch_max_abs_diff": float(np.abs(onnx_probabilities - torch_probabilities).max()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="train.py best.pt")
    parser.add_argument("--val", required=True, help="validation npz for the temperature")
    parser.add_argument("--out", required=True, help="output .onnx")
    parser.add_argument("--tta-flip", action="store_true", help="fold flip averaging into the graph (2x compute)")
    args = parser.parse_args(argv)
    result = export_checkpoint(args.checkpoint, args.val, args.out, tta_flip=args.tta_flip)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
