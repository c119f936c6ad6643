"""Class names and the single definition of the 7-emotion -> 4-mood mapping."""

from __future__ import annotations

import numpy as np

MOODS: tuple[str, ...] = ("positive", "negative", "neutral", "other")
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Which mood each emotion's probability is added to (FER2013 order above).
EMOTION_TO_MOOD: dict[str, str] = {
    "angry": "negative",
    "disgust": "negative",
    "fear": "negative",
    "happy": "positive",
    "sad": "negative",
    "surprise": "other",
    "neutral": "neutral",
}

# [7, 4] 0/1 matrix: moods = emotions @ EMOTION_TO_MOOD_MATRIX.
EMOTION_TO_MOOD_MATRIX = np.zeros((len(EMOTIONS), len(MOODS)), dtype=np.float32)
for _i, _emotion in enumerate(EMOTIONS):
    EMOTION_TO_MOOD_MATRIX[_i, MOODS.index(EMOTION_TO_MOOD[_emotion])] = 1.0


def emotions_to_moods(emotions: np.ndarray) -> np.ndarray:
    """Sum [N, 7] emotion probabilities into [N, 4] mood probabilities."""
    return np.asarray(emotions, dtype=np.float32) @ EMOTION_TO_MOOD_MATRIX


def emotion_labels_to_moods(labels: np.ndarray) -> np.ndarray:
    """Map integer emotion labels (FER2013 order) to mood labels (MOODS order)."""
    return EMOTION_TO_MOOD_MATRIX.argmax(axis=1)[np.asarray(labels, dtype=np.int64)]
