"""Classification metrics shared by train.py (model selection) and evaluate.py (reports).

Plain numpy so that training selection and the published figures come from the same code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ECE_BINS = 15


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def per_class_f1(matrix: np.ndarray) -> np.ndarray:
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    denominator = predicted + actual
    return np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top class: |accuracy - confidence| averaged over equal-width confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds confidence in (edges[i], edges[i+1]]; confidence 0 cannot happen for a softmax.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    weighted_f1: float
    macro_f1: float
    per_class_f1: dict[str, float]
    ece: float
    mean_confidence: float
    confusion: list[list[int]]
    count: int

    def to_dict(self) -> dict:
        return asdict(self)


def classification_report(
    probabilities: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]
) -> ClassificationReport:
    """All the figures the issue asks for, from probabilities [N, C] and integer labels [N]."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, len(classes))
    f1 = per_class_f1(matrix)
    support = matrix.sum(axis=1).astype(np.float64)
    return ClassificationReport(
        accuracy=float((predictions == labels).mean()),
        weighted_f1=float((f1 * support).sum() / support.sum()),
        macro_f1=float(f1.mean()),
        per_class_f1={name: float(value) for name, value in zip(classes, f1, strict=False)},
        ece=expected_calibration_error(probabilities, labels),
        mean_confidence=float(probabilities.max(axis=1).mean()),
        confusion=matrix.tolist(),
        count=len(labels),
    )


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, mood_labels: np.ndarray, to_moods) -> float:
    """Temperature minimising the negative log-likelihood of the *mood* probabilities.

    ``to_moods`` maps class probabilities to mood probabilities (identity for a 4-mood model, the
    7 -> 4 sum for an emotion model), so the calibration is of what the service reports.
    """
    best_temperature, best_nll = 1.0, np.inf
    for temperature in np.exp(np.linspace(np.log(0.25), np.log(4.0), 401)):
        moods = to_moods(softmax(logits, temperature))
        nll = -np.log(np.clip(moods[np.arange(len(mood_labels)), mood_labels], 1e-12, None)).mean()
        if nll < best_nll:
            best_temperature, best_nll = float(temperature), float(nll)
    return best_temperature
