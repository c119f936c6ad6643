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


class MoodClassifier:
    """One mood model from the manifest, loaded into an onnxruntime session."""

    def __init__(self, models_dir: str, name: str, threads: int = 1) -> None:
        models = load_manifest(models_dir)["models"]
        if name not in models or models[name].get("kind") != "mood":
            choices = sorted(key for key, entry in models.items() if entry.get("kind") == "mood")
            raise ValueError(f"unknown mood model {name!r}; the manifest has {choices}")
        entry = models[name]
        self.name = name
        self.classes = tuple(entry["classes"])
        if self.classes not in (EMOTIONS, MOODS):
            raise ValueError(f"mood model {name!r} has classes {self.classes}, expected {EMOTIONS} or {MOODS}")
        self.version = f"{name}:{entry['sha256'][:12]}"
        self.model = OnnxModel(os.path.join(models_dir, entry["file"]), threads)
        self.input_size = int(self.model.input_shape[-1])  # square input, read from the graph

    def predict(self, crops: np.ndarray) -> MoodPredictions:
        """Classify uint8 gray crops [N,H,W] of any size (resized here to the model's input)."""
        crops = np.asarray(crops)
        if crops.dtype != np.uint8 or crops.ndim != 3:
            raise InvalidInput(f"face crops must be uint8 [N,H,W]; got {crops.dtype} with shape {crops.shape}")
        if len(crops) == 0:
            empty = np.zeros((0, len(MOODS)), np.float32)
            return MoodPredictions(empty, np.zeros((0, len(EMOTIONS)), np.float32) if self.has_emotions else None)
        size = self.input_size
        if crops.shape[1:] != (size, size):
            shrink = crops.shape[1] > size or crops.shape[2] > size
            method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            crops = np.stack([cv2.resize(crop, (size, size), interpolation=method) for crop in crops])
        batch = crops.astype(np.float32)[:, None]
        batch *= 2.0 / 255.0
        batch -= 1.0
        probabilities = self.model(batch)["probabilities"].astype(np.float32)
        if self.has_emotions:
            return MoodPredictions(emotions_to_moods(probabilities), probabilities)
        return MoodPredictions(probabilities, None)

    @property
    def has_emotions(self) -> bool:
        return self.classes == EMOTIONS
