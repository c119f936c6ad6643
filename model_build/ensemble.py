"""Export a two-member ensemble as one ONNX graph: the converted fer network + a trained checkpoint.

Why: the trained width-2 model is better on FER2013 (wild faces) and the fer network is better on
JAFFE's posed faces; their averaged emotion probabilities keep both strengths. The graph takes the
fer contract (``image`` [N,1,64,64], x / 255 * 2 - 1), resizes inside for a 48 px member, averages
the members' softmaxes (the trained one at its own fitted temperature, optionally flip-averaged),
and re-calibrates the mixture with a second temperature: softmax(log(mixture) / T).

    model_build/.venv/bin/python -m model_build.ensemble --base .data/fer_init.pt \
        --member model_build/cache/runs/w2_e7/best.pt --member-tta-flip \
        --val ../shared/data/fer2013_val.npz --out model_build/cache/onnx/ens.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from meaa.classifier import prepare_crops
from meaa.labels import EMOTIONS, emotion_labels_to_moods, emotions_to_moods
from model_build.export import write_onnx
from model_build.metrics import fit_temperature
from model_build.scoring import load_checkpoint, load_npz, mood_report

HERE = Path(__file__).resolve().parent


class EmotionEnsemble(nn.Module):
    """Mean of two 7-emotion members' probabilities, then a calibration temperature."""

    def __init__(self, base: nn.Module, member: nn.Module, member_temperature: float, member_tta_flip: bool) -> None:
        super().__init__()
        self.base = base
        self.member = member
        self.member_size = member.config.input_size
        self.member_tta_flip = member_tta_flip
        self.register_buffer("member_inverse_temperature", torch.tensor(1.0 / member_temperature))
        self.register_buffer("inverse_temperature", torch.tensor(1.0))

    def member_logits(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] != self.member_size:
            image = F.interpolate(
                image, size=(self.member_size, self.member_size), mode="bilinear", align_corners=False
            )
        logits = self.member(image)
        if self.member_tta_flip:
            logits = (logits + self.member(torch.flip(image, dims=[3]))) * 0.5
        return logits

    def mixture(self, image: torch.Tensor) -> torch.Tensor:
        base = torch.softmax(self.base(image), dim=1)
        member = torch.softmax(self.member_logits(image) * self.member_inverse_temperature, dim=1)
        return (base + member) * 0.5

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        log_mixture = torch.log(self.mixture(image).clamp_min(1e-12))
        return torch.softmax(log_mixture * self.inverse_temperature, dim=1)


def build(
    base_checkpoint: str, member_checkpoint: str, member_tta_flip: bool, val_npz: str
) -> tuple[EmotionEnsemble, dict]:
    base, base_target = load_checkpoint(base_checkpoint)
    member, member_target = load_checkpoint(member_checkpoint)
    if base_target != "emotions7" or member_target != "emotions7":
        raise SystemExit("both members must have the 7-emotion head")
    if base.config.input_size < member.config.input_size:
        raise SystemExit("the base member sets the (larger) input size")
    images, emotions = load_npz(val_npz)
    moods = emotion_labels_to_moods(emotions)
    batch = torch.from_numpy(prepare_crops(images, base.config.input_size))
    ensemble = EmotionEnsemble(base, member, 1.0, member_tta_flip).eval()
    with torch.no_grad():
        member_logits = torch.cat([ensemble.member_logits(b) for b in batch.split(512)]).numpy()
    member_temperature = fit_temperature(member_logits, moods, emotions_to_moods)
    ensemble.member_inverse_temperature.fill_(1.0 / member_temperature)
    with torch.no_grad():
        log_mixture = torch.cat([torch.log(ensemble.mixture(b).clamp_min(1e-12)) for b in batch.split(512)]).numpy()
    temperature = fit_temperature(log_mixture, moods, emotions_to_moods)
    ensemble.inverse_temperature.fill_(1.0 / temperature)
    before = mood_report(log_mixture, emotions, "emotions7")
    after = mood_report(log_mixture, emotions, "emotions7", temperature)
    return ensemble, {
        "member_temperature": round(member_temperature, 4),
        "temperature": round(temperature, 4),
        "val_before_temperature": {"weighted_f1": before.weighted_f1, "ece": before.ece},
        "val_after_temperature": {"weighted_f1": after.weighted_f1, "ece": after.ece},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--base", required=True, help="checkpoint of the fer network (mini_xception.py converts the hdf5)"
    )
    parser.add_argument("--member", required=True, help="train.py best.pt with a 7-emotion head")
    parser.add_argument("--member-tta-flip", action="store_true")
    parser.add_argument("--val", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    ensemble, result = build(args.base, args.member, args.member_tta_flip, args.val)
    write_onnx(ensemble, ensemble.base.config.input_size, args.out)

    import onnxruntime as ort

    sample = torch.from_numpy(prepare_crops(load_npz(args.val)[0][:64], ensemble.base.config.input_size))
    got = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"]).run(
        ["probabilities"], {"image": sample.numpy()}
    )[0]
    with torch.no_grad():
        want = ensemble(sample).numpy()
    data = Path(args.out).read_bytes()
    result.update(
        {
            "onnx": args.out,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "classes": list(EMOTIONS),
            "input_size": ensemble.base.config.input_size,
            "onnx_torch_max_abs_diff": float(np.abs(got - want).max()),
        }
    )
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
