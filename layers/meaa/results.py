"""Result dataclasses: what ``MoodEstimator.analyze`` returns, with ``to_dict()`` for JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from meaa.labels import MOODS
from meaa.quality import FaceQuality

Box = tuple[int, int, int, int]
Point = tuple[float, float]


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


@dataclass(frozen=True)
class Face:
    """One detected face and its mood.

    ``box`` is (x, y, w, h) in original-image pixels, clipped to the image. ``landmarks`` are the five
    MTCNN points (left eye, right eye, nose, left mouth corner, right mouth corner) as (x, y).
    ``moods`` holds the four mood probabilities in ``MOODS`` order (they sum to 1); ``mood`` is their
    argmax; ``emotions`` holds the classifier's raw per-class probabilities. ``quality`` is measured on the
    face (``meaa.quality``); ``unreliable_reasons`` says why its mood should not be trusted (empty when
    it can be).
    """

    box: Box
    score: float
    landmarks: tuple[Point, ...]
    moods: dict[str, float]
    mood: str
    emotions: dict[str, float]
    quality: FaceQuality
    unreliable_reasons: tuple[str, ...] = ()

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]

    @property
    def reliable(self) -> bool:
        return not self.unreliable_reasons

    def to_dict(self) -> dict:
        x, y, w, h = self.box
        return {
            "box": {"x": x, "y": y, "w": w, "h": h},
            "score": _round(self.score),
            "landmarks": [[_round(px, 1), _round(py, 1)] for px, py in self.landmarks],
            "mood": self.mood,
            "moods": {name: _round(p) for name, p in self.moods.items()},
            "emotions": {name: _round(p) for name, p in self.emotions.items()},
            "quality": self.quality.to_dict(),
            "reliable": self.reliable,
            "unreliable_reasons": list(self.unreliable_reasons),
        }


@dataclass(frozen=True)
class Analysis:
    """Everything found in one image; ``faces`` is empty when there is no face (not an error)."""

    width: int
    height: int
    faces: list[Face]
    model_version: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def main_face(self) -> Face | None:
        """The largest face: the patient holding the phone, in a selfie frame."""
        return max(self.faces, key=lambda face: face.area, default=None)

    @property
    def main_reliable_face(self) -> Face | None:
        """The largest reliable face: the one whose mood is the answer's (None when no face is reliable)."""
        return max((face for face in self.faces if face.reliable), key=lambda face: face.area, default=None)

    def to_dict(self) -> dict:
        main = self.main_reliable_face
        return {
            "width": self.width,
            "height": self.height,
            "face_count": len(self.faces),
            "mood": main.mood if main else None,
            "moods": {name: _round(main.moods[name]) for name in MOODS} if main else None,
            "faces": [face.to_dict() for face in self.faces],
            "model_version": self.model_version,
            "timings_ms": {name: _round(ms, 2) for name, ms in self.timings_ms.items()},
        }
