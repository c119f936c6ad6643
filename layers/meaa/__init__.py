"""MEAA: facial mood estimation (MTCNN + mini-Xception on onnxruntime).

Public contract::

    from meaa import MoodEstimator
    analysis = MoodEstimator().analyze(image_bytes_or_array)
    for face in analysis.faces:
        face.box    # (x, y, w, h) in original-image pixels
        face.mood   # "positive" | "negative" | "neutral" | "other"
        face.moods  # {"positive": p, "negative": p, "neutral": p, "other": p}, sums to 1
"""

# OpenCV reads its decoder pixel limit once, at its import: set it before anything imports cv2 so it
# backs up meaa.decoding's own header check.
import os as _os

from meaa.config import OPENCV_PIXEL_CEILING

_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(OPENCV_PIXEL_CEILING))
# A corrupt upload makes OpenCV's decoders print "[ERROR] imdecode_ ..." lines to stderr, outside the JSON logs;
# meaa turns those failures into typed errors itself, so OpenCV's own log is off unless asked for.
_os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

from meaa.errors import ImageTooLarge, InvalidImage, InvalidInput, InvalidVideo, MeaaError, UnsupportedFormat
from meaa.labels import EMOTIONS, MOODS
from meaa.results import Analysis, Face

__all__ = [
    "EMOTIONS",
    "MOODS",
    "Analysis",
    "Face",
    "ImageTooLarge",
    "InvalidImage",
    "InvalidInput",
    "InvalidVideo",
    "MeaaError",
    "MoodEstimator",
    "UnsupportedFormat",
]


def __getattr__(name: str):
    # Lazy: importing meaa for its errors or dataclasses must not import onnxruntime.
    if name == "MoodEstimator":
        from meaa.pipeline import MoodEstimator

        return MoodEstimator
    raise AttributeError(name)
