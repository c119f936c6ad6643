"""Draw faces, boxes and mood labels on an image (CLI ``--annotate`` and the docs' pictures)."""

from __future__ import annotations

import cv2
import numpy as np

from meaa.results import Analysis

# BGR colour per mood.
MOOD_COLOURS = {
    "positive": (80, 175, 76),
    "negative": (54, 67, 244),
    "neutral": (158, 158, 158),
    "other": (7, 193, 255),
}


def draw_analysis(image_bgr: np.ndarray, analysis: Analysis) -> np.ndarray:
    """A copy of the image with each face's box, landmarks and ``mood p`` label."""
    canvas = image_bgr.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for face in analysis.faces:
        x, y, w, h = face.box
        colour = MOOD_COLOURS[face.mood]
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        for px, py in face.landmarks:
            cv2.circle(canvas, (round(px), round(py)), thickness + 1, colour, -1)
        label = f"{face.mood} {face.moods[face.mood]:.2f}"
        scale = 0.4 * thickness + 0.1
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y - text_h - baseline - 2)
        cv2.rectangle(canvas, (x, top), (x + text_w + 4, top + text_h + baseline + 2), colour, -1)
        cv2.putText(
            canvas,
            label,
            (x + 2, top + text_h + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
    return canvas
