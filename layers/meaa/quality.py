"""Face quality: cheap measurements that say when a face's mood should not be trusted.

The classifier answers with the same confident look for a sharp portrait and for a motion-blurred,
dark, tiny or half-cut face, while its accuracy on the latter is far lower (``model_build/quality_gate.py``
measures how much). Each detected face gets a ``FaceQuality`` and a list of reasons it is unreliable,
decided by the thresholds of ``meaa.config.QualitySettings`` (chosen on data by that script).

Everything here is a few OpenCV calls on one small patch per face plus closed-form geometry on the
five landmarks: tens of microseconds per face (``benchmarks/bench_quality.py`` measures it), no model.

The patch: the square of side ``max(w, h)`` centred on the detector box (the classifier's crop at the
default margin 0, never rotated), resized to ``QUALITY_CROP_SIZE`` pixels as if whole, of which only the
part inside the image is measured (black padding would fake edges and darkness).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from meaa.config import QualitySettings

# 48 px: FER2013's resolution, the smallest input of the shipped mood models. Sharpness is measured at
# the scale the classifier can use at all; a 200 px face and a 48 px face are compared on equal terms.
QUALITY_CROP_SIZE = 48


# --- head pose from five landmarks -------------------------------------------------------------------
# A generic adult face (rounded anthropometric averages, mm; x to the picture's right, y down, z towards the
# camera): eyes at (+-EYE_HALF_DISTANCE, 0, 0), nose tip at (0, EYES_TO_NOSE, NOSE_DEPTH), mouth corners'
# midpoint at (0, EYES_TO_NOSE + NOSE_TO_MOUTH, 0). Real faces differ by 10-15 %, so yaw and pitch are coarse.
EYE_HALF_DISTANCE = 31.0
EYES_TO_NOSE = 32.0
NOSE_TO_MOUTH = 25.0
NOSE_DEPTH = 22.0
# Where the nose tip falls between the eye line (0) and the mouth line (1) on a frontal face.
FRONTAL_NOSE_HEIGHT = EYES_TO_NOSE / (EYES_TO_NOSE + NOSE_TO_MOUTH)


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees, 0 for a face looking straight at the camera.

    ``yaw`` > 0: the face turns towards the picture's right (the nose points right); ``pitch`` > 0: the
    face looks up (chin up); ``roll`` > 0: the face leans clockwise as seen in the picture (its
    right-hand eye in the picture is lower).
    """

    yaw: float
    pitch: float
    roll: float


def head_pose(landmarks: np.ndarray | Sequence[Sequence[float]]) -> HeadPose:
    """Yaw, pitch and roll from MTCNN's five points (left eye, right eye, nose, left and right mouth corner).

    Roll is the eye line's angle. The points are then turned by -roll about the eyes' midpoint, so yaw
    and pitch do not depend on in-plane rotation, position or scale. The generic face above, seen from
    far away (orthographic):

    * yaw ``y`` moves the nose tip sideways by ``NOSE_DEPTH sin(y)`` while the half eye distance shrinks to
      ``EYE_HALF_DISTANCE cos(y)``: ``tan(y) = (nose offset / half eye distance) * EYE_HALF_DISTANCE / NOSE_DEPTH``;
    * pitch ``p`` moves the nose tip's height between the eye line (0) and the mouth line (1) from
      ``FRONTAL_NOSE_HEIGHT`` to ``FRONTAL_NOSE_HEIGHT - tan(p) * NOSE_DEPTH / (EYES_TO_NOSE + NOSE_TO_MOUTH)``.

    Each is exact for a turn or a nod alone. Combined, the nod changes how far the nose stands in front
    of the eyes, so yaw reads high looking up and low looking down (30 degrees of yaw at 20 of pitch
    reads about 40); correcting that with the estimated pitch was tried and dropped: MTCNN's nose point
    wanders by a few pixels, and the correction amplified that into tens of degrees of false yaw.
    """
    # Plain floats: five points are too few for numpy's per-call overhead to pay (10x slower here).
    (lx, ly), (rx, ry), (nx, ny), (ax, ay), (bx, by) = np.asarray(landmarks, dtype=np.float64).reshape(5, 2).tolist()
    eye_dx, eye_dy = rx - lx, ry - ly
    eye_half = math.hypot(eye_dx, eye_dy) / 2.0
    roll = math.degrees(math.atan2(eye_dy, eye_dx))
    if eye_half < 1e-6:
        return HeadPose(0.0, 0.0, roll)
    across_x, across_y = eye_dx / (2.0 * eye_half), eye_dy / (2.0 * eye_half)  # towards the right-hand eye
    down_x, down_y = -across_y, across_x  # perpendicular, towards the mouth
    mid_x, mid_y = (lx + rx) / 2.0, (ly + ry) / 2.0
    nose_across = (nx - mid_x) * across_x + (ny - mid_y) * across_y
    nose_down = (nx - mid_x) * down_x + (ny - mid_y) * down_y
    mouth_down = ((ax + bx) / 2.0 - mid_x) * down_x + ((ay + by) / 2.0 - mid_y) * down_y
    yaw = math.atan(nose_across / eye_half * EYE_HALF_DISTANCE / NOSE_DEPTH)
    pitch = 0.0
    if mouth_down > 1e-6:  # else the mouth is level with or above the eyes: no nod of the generic face fits
        nose_height = nose_down / mouth_down
        pitch = math.atan((FRONTAL_NOSE_HEIGHT - nose_height) * (EYES_TO_NOSE + NOSE_TO_MOUTH) / NOSE_DEPTH)
    return HeadPose(math.degrees(yaw), math.degrees(pitch), roll)


# --- image measurements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchStatistics:
    """Sharpness, brightness, contrast and clipped share of one gray patch (see ``patch_statistics``)."""

    sharpness: float
    brightness: float
    contrast: float
    clipped_fraction: float


# A pixel at or above this gray level is taken as clipped white (overexposed; JPEG leaves a few levels).
CLIPPED_LEVEL = 250


def patch_statistics(gray: np.ndarray) -> PatchStatistics:
    """Exposure and detail of a uint8 gray patch, each independent of the others.

    * brightness: mean gray level / 255 (exposure);
    * contrast: standard deviation over the mean (relative RMS contrast): a darker or brighter copy of a
      face keeps its contrast, a hazy or washed-out one loses it;
    * sharpness: the variance of the Laplacian (4-neighbour kernel) over the patch's variance, the share
      of the patch's energy in its finest detail: independent of exposure and contrast (a dim sharp face
      is dim, not blurred); white noise scores 20, a flat patch 0;
    * clipped_fraction: the share of pixels at ``CLIPPED_LEVEL`` or above, where overexposure erased the
      face (mean brightness alone cannot tell a fair face in good light from a burnt-out one).
    """
    # cv2.meanStdDev: one pass, several times faster than numpy's mean + var on a patch this small.
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(gray))
    sharpness = 0.0
    if min(gray.shape) >= 3 and std > 1e-3:
        laplacian = cv2.Laplacian(gray, cv2.CV_16S, ksize=1)[1:-1, 1:-1]  # exact in int16 for uint8 input
        sharpness = (float(cv2.meanStdDev(laplacian)[1][0, 0]) / std) ** 2
    clipped = cv2.countNonZero(cv2.compare(gray, CLIPPED_LEVEL - 1, cv2.CMP_GT)) / gray.size
    contrast = std / mean if mean > 1e-3 else 0.0
    return PatchStatistics(sharpness=sharpness, brightness=mean / 255.0, contrast=contrast, clipped_fraction=clipped)


@dataclass(frozen=True)
class FaceQuality:
    """How much a face's mood can be trusted, measured (see the module docstring for the patch, and
    ``patch_statistics`` for the first four).

    ``face_px`` is the short side of the detector box in original-image pixels; ``outside_fraction`` the
    share of the square patch that lies outside the image; ``detection_score`` the detector's confidence.
    """

    sharpness: float
    brightness: float
    contrast: float
    clipped_fraction: float
    face_px: int
    outside_fraction: float
    pose: HeadPose
    detection_score: float

    def metrics(self) -> dict[str, float]:
        """Every measurement by name, flat (the names ``QUALITY_RULES`` refer to)."""
        return {
            "sharpness": self.sharpness,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "clipped_fraction": self.clipped_fraction,
            "face_px": float(self.face_px),
            "outside_fraction": self.outside_fraction,
            "yaw": self.pose.yaw,
            "pitch": self.pose.pitch,
            "roll": self.pose.roll,
            "detection_score": self.detection_score,
        }

    def to_dict(self) -> dict:
        return {
            "sharpness": round(self.sharpness, 3),
            "brightness": round(self.brightness, 3),
            "contrast": round(self.contrast, 3),
            "clipped_fraction": round(self.clipped_fraction, 3),
            "face_px": self.face_px,
            "outside_fraction": round(self.outside_fraction, 3),
            "pose": {name: round(getattr(self.pose, name), 1) for name in ("yaw", "pitch", "roll")},
            "detection_score": round(self.detection_score, 4),
        }


def measure_face(
    image: np.ndarray, box: Sequence[float], landmarks: np.ndarray | Sequence[Sequence[float]], score: float
) -> FaceQuality:
    """The quality of one detected face: ``image`` BGR uint8 HxWx3 or gray HxW, ``box`` (x1, y1, x2, y2)
    as the detector gave it (may reach outside the image), ``landmarks`` five (x, y) points."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1, 1.0)
    left, top = (x1 + x2 - side) / 2.0, (y1 + y2 - side) / 2.0
    inside_w = max(0.0, min(float(width), left + side) - max(0.0, left))
    inside_h = max(0.0, min(float(height), top + side) - max(0.0, top))
    outside_fraction = 1.0 - inside_w * inside_h / (side * side)

    col_lo, col_hi = max(0, round(left)), min(width, round(left + side))
    row_lo, row_hi = max(0, round(top)), min(height, round(top + side))
    if col_hi - col_lo >= 1 and row_hi - row_lo >= 1:
        scale = QUALITY_CROP_SIZE / side
        size = (max(1, round((col_hi - col_lo) * scale)), max(1, round((row_hi - row_lo) * scale)))
        statistics = patch_statistics(_gray_patch(image[row_lo:row_hi, col_lo:col_hi], size))
    else:
        statistics = PatchStatistics(0.0, 0.0, 0.0, 0.0)
    return FaceQuality(
        sharpness=statistics.sharpness,
        brightness=statistics.brightness,
        contrast=statistics.contrast,
        clipped_fraction=statistics.clipped_fraction,
        face_px=round(min(x2 - x1, y2 - y1)),
        outside_fraction=outside_fraction,
        pose=head_pose(landmarks),
        detection_score=float(score),
    )


def _gray_patch(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``region`` (BGR or gray) as a gray patch of ``size`` (w, h), averaged when shrinking (no aliasing).

    INTER_AREA is slow at a fractional factor and fast at an integer one (``benchmarks/bench_quality.py``), so:
    INTER_LINEAR to an integer multiple k <= 4 of the size (a factor under 2 up to 240 px faces, where linear
    does not alias), then INTER_AREA by exactly k.
    """
    factor = min(4, int(min(region.shape[1] / size[0], region.shape[0] / size[1])))
    if factor >= 2:
        region = cv2.resize(region, (size[0] * factor, size[1] * factor), interpolation=cv2.INTER_LINEAR)
    if region.ndim == 3:
        region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    if region.shape[1::-1] == size:
        return region
    method = cv2.INTER_AREA if factor >= 2 else cv2.INTER_LINEAR
    return cv2.resize(region, size, interpolation=method)


# --- the gate -----------------------------------------------------------------------------------------

Bound = Literal["min", "max", "max_abs"]


@dataclass(frozen=True)
class QualityRule:
    """One threshold: the face is unreliable for ``reason`` when ``metric`` is below (``min``) or above
    (``max``; ``max_abs``: its absolute value above) the ``QualitySettings`` field ``setting``."""

    reason: str
    metric: str
    bound: Bound
    setting: str

    def fails(self, value: float, threshold: float) -> bool:
        """Whether ``value`` breaks the rule at ``threshold`` (also elementwise on numpy arrays)."""
        if self.bound == "min":
            return value < threshold
        if self.bound == "max":
            return value > threshold
        return abs(value) > threshold


# In the order reasons are listed. model_build/quality_gate.py fits every ``setting`` named here.
QUALITY_RULES: tuple[QualityRule, ...] = (
    QualityRule("blurred", "sharpness", "min", "min_sharpness"),
    QualityRule("dark", "brightness", "min", "min_brightness"),
    QualityRule("overexposed", "clipped_fraction", "max", "max_clipped_fraction"),
    QualityRule("low_contrast", "contrast", "min", "min_contrast"),
    QualityRule("small", "face_px", "min", "min_face_px"),
    QualityRule("out_of_frame", "outside_fraction", "max", "max_outside_fraction"),
    QualityRule("turned", "yaw", "max_abs", "max_yaw"),
    QualityRule("turned", "pitch", "max_abs", "max_pitch"),
    QualityRule("tilted", "roll", "max_abs", "max_roll"),
    QualityRule("uncertain_detection", "detection_score", "min", "min_detection_score"),
)
REASONS: tuple[str, ...] = tuple(dict.fromkeys(rule.reason for rule in QUALITY_RULES))


def unreliable_reasons(quality: FaceQuality, settings: QualitySettings) -> tuple[str, ...]:
    """Why the face's mood should not be trusted (empty: reliable), each reason once, in ``REASONS`` order."""
    if not settings.gate:
        return ()
    metrics = quality.metrics()
    failed = [
        rule.reason for rule in QUALITY_RULES if rule.fails(metrics[rule.metric], getattr(settings, rule.setting))
    ]
    return tuple(dict.fromkeys(failed))
