"""Data in, figures out: what training, distillation, the bank of views and export share.

``load_npz`` reads a FER2013-style file, ``load_checkpoint`` a training checkpoint, ``predict_logits`` runs a
torch model over model-range images and ``mood_report`` turns its logits into the 4-mood figures
(``metrics.classification_report``). One module so that every stage scores a model the same way, and so that
``export.py`` and ``train.py`` need not import each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from meaa.labels import EMOTIONS, MOODS, emotion_labels_to_moods, emotions_to_moods
from model_build.augment import PipelineCrops, resize_for_model, to_model_range
from model_build.metrics import classification_report, softmax
from model_build.mini_xception import ArchConfig, MiniXception
from model_build.splits import limited_indices

TARGETS = {"moods4": MOODS, "emotions7": EMOTIONS}


def to_moods_fn(target: str):
    """Class probabilities -> mood probabilities for the given target."""
    return emotions_to_moods if target == "emotions7" else (lambda p: np.asarray(p, dtype=np.float32))


def load_npz(path: str, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N,H,W] and FER2013 emotion labels [N]."""
    with np.load(path) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    if limit:  # a seeded random subset: the npz files are sorted by label
        keep = limited_indices(len(labels), limit)
        images, labels = images[keep], labels[keep]
    return np.ascontiguousarray(images, dtype=np.uint8), labels


def load_pipeline_crops(path: str, limit: int, device: torch.device) -> PipelineCrops | None:
    """The detector geometry stored beside the images by ``model_build.splits --geometry`` (None if absent)."""
    with np.load(path) as data:
        if "crop_found" not in data.files:
            return None
        found, scale, center = data["crop_found"], data["crop_scale"], data["crop_center"]
    if limit:  # the same seeded subset as load_npz
        keep = limited_indices(len(found), limit)
        found, scale, center = found[keep], scale[keep], center[keep]
    return PipelineCrops(
        torch.from_numpy(found.astype(bool)).to(device),
        torch.from_numpy(scale.astype(np.float32)).to(device),
        torch.from_numpy(center.astype(np.float32)).to(device),
    )


def load_checkpoint(path: str | Path) -> tuple[MiniXception, str]:
    """The model of a training checkpoint (eval mode, on the CPU) and its target (``moods4``/``emotions7``)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model = MiniXception(ArchConfig(**checkpoint["arch"]))
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model, checkpoint["target"]


def prepare_eval_images(images: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(images)[:, None].to(device)
    return resize_for_model(to_model_range(tensor), size)


@torch.no_grad()
def predict_logits(model: MiniXception, images: torch.Tensor, tta_flip: bool, batch_size: int = 1024) -> np.ndarray:
    """Logits for model-range images [N,1,S,S]; with ``tta_flip`` the mean of image and mirror."""
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        logits = model(batch)
        if tta_flip:
            logits = (logits + model(torch.flip(batch, dims=[3]))) / 2
        outputs.append(logits.float().cpu())
    return torch.cat(outputs).numpy()


def mood_report(logits: np.ndarray, emotion_labels: np.ndarray, target: str, temperature: float = 1.0):
    moods = to_moods_fn(target)(softmax(logits, temperature))
    return classification_report(moods, emotion_labels_to_moods(emotion_labels), MOODS)
