"""Mood classifier: a mini-Xception ONNX model on gray face crops.

A mood model's manifest entry says which classes it outputs: FER2013's seven emotions (summed into
the four moods by ``meaa.labels``) or the four moods directly. Input is gray, ``input_size`` square,
scaled as x / 255 * 2 - 1.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from meaa.errors import InvalidInput
from meaa.labels import EMOTIONS, MOODS, emotions_to_moods
from meaa.onnx_model import OnnxModel

MANIFEST_NAME = "manifest.json"


@lru_cache(maxsize=4)
def load_manifest(models_dir: str) -> dict:
    with open(os.path.join(models_dir, MANIFEST_NAME), encoding="utf-8") as handle:
        return json.load(handle)


@dataclass(frozen=True)
class MoodPredictions:
    """Classifier output for N faces: ``moods`` [N,4] in MOODS order; ``emotions`` [N,7] or None."""

    moods: np.ndarray
    emotions: np.ndarray | None


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """uint8 gray crops [N,H,W] -> uint8 [N,size,size]: INTER_AREA when shrinking (it averages, no
    aliasing), INTER_LINEAR when enlarging; unchanged when already that size."""
    if crops.shape[1:] == (size, size):
        return crops
    method = cv2.INTER_AREA if crops.shape[1] > size or crops.shape[2] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(crop, (size, size), interpolation=method) for crop in crops])


def prepare_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """uint8 gray crops [N,H,W] -> the mood models' input, float32 [N,1,size,size] = x / 255 * 2 - 1.

    Resized by ``resize_crops``. Training and evaluation in model_build use this same function.
    """
    crops = resize_crops(crops, size)
    batch = crops.astype(np.float32)[:, None]
    batch *= 2.0 / 255.0
    batch -= 1.0
    return batch


class MoodClassifier:
    """One mood model in an onnxruntime session, with its calibration.

    ``mood_temperature`` T calibrates the reported moods: moods = softmax(log(moods) / T), fitted on
    validation data by ``model_build/calibrate.py`` and stored in the manifest. It keeps every mood's
    rank (so the argmax, accuracy and F1 are unchanged) and only makes the probabilities honest;
    ``emotions`` stay the network's raw output.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        classes: tuple[str, ...],
        *,
        threads: int,
        mood_temperature: float = 1.0,
        version: str | None = None,
    ) -> None:
        self.classes = tuple(classes)
        if self.classes not in (EMOTIONS, MOODS):
            raise ValueError(f"mood model {path} has classes {self.classes}, expected {EMOTIONS} or {MOODS}")
        if not mood_temperature > 0:
            raise ValueError(f"mood_temperature must be positive, got {mood_temperature}")
        self.model = OnnxModel(path, threads)
        self.input_size = int(self.model.input_shape[-1])  # square input, read from the graph
        self.mood_temperature = float(mood_temperature)
        self.version = version or os.path.basename(os.fspath(path))

    @classmethod
    def from_manifest(cls, models_dir: str, name: str, threads: int) -> MoodClassifier:
        """The manifest's mood model ``name`` (``MEAA_MOOD_MODEL``)."""
        models = load_manifest(models_dir)["models"]
        if name not in models or models[name].get("kind") != "mood":
            choices = sorted(key for key, entry in models.items() if entry.get("kind") == "mood")
            raise ValueError(f"unknown mood model {name!r}; the manifest has {choices}")
        entry = models[name]
        return cls(
            os.path.join(models_dir, entry["file"]),
            tuple(entry["classes"]),
            threads=threads,
            mood_temperature=entry.get("calibration", {}).get("mood_temperature", 1.0),
            version=cls.manifest_version(models_dir, name),
        )

    @staticmethod
    def manifest_version(models_dir: str, name: str) -> str:
        """The version of the manifest's mood model ``name`` (``<name>:<sha12>[@t<temperature>]``), without
        loading it."""
        entry = load_manifest(models_dir)["models"][name]
        temperature = entry.get("calibration", {}).get("mood_temperature", 1.0)
        # The calibration changes the reported moods, so it is part of the version.
        calibration = f"@t{temperature:g}" if temperature != 1.0 else ""
        return f"{name}:{entry['sha256'][:12]}{calibration}"

    def predict(self, crops: np.ndarray) -> MoodPredictions:
        """Classify uint8 gray crops [N,H,W] of any size (resized here to the model's input)."""
        crops = np.asarray(crops)
        if crops.dtype != np.uint8 or crops.ndim != 3:
            raise InvalidInput(f"face crops must be uint8 [N,H,W]; got {crops.dtype} with shape {crops.shape}")
        if len(crops) == 0:
            empty = np.zeros((0, len(MOODS)), np.float32)
            return MoodPredictions(empty, np.zeros((0, len(EMOTIONS)), np.float32) if self.has_emotions else None)
        probabilities = self.model(prepare_crops(crops, self.input_size))["probabilities"].astype(np.float32)
        # An INT8 model's softmax output is quantized too (sums off by up to ~0.5 %): renormalise.
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        emotions = probabilities if self.has_emotions else None
        moods = emotions_to_moods(probabilities) if self.has_emotions else probabilities
        return MoodPredictions(self._calibrated(moods), emotions)

    def _calibrated(self, moods: np.ndarray) -> np.ndarray:
        if self.mood_temperature == 1.0:
            return moods
        logits = np.log(np.clip(moods, 1e-12, None)) / self.mood_temperature
        logits -= logits.max(axis=1, keepdims=True)
        scaled = np.exp(logits)
        return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)

    @property
    def has_emotions(self) -> bool:
        return self.classes == EMOTIONS
