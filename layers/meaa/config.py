"""Settings read from environment variables, with documented defaults.

Every knob of the service lives here so that Lambda configuration, the CLI and tests agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping


# OpenCV's own decoder pixel limit (268 Mpx, ~805 MB as BGR): a backstop far above any sensible
# max_image_pixels; set as OPENCV_IO_MAX_IMAGE_PIXELS by meaa/__init__.py before cv2 is imported.
OPENCV_PIXEL_CEILING = 1 << 28


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def env_flag(name: str, default: bool = False, environ: Mapping[str, str] = os.environ) -> bool:
    """A boolean environment variable: 1/true/yes/on (any case) is true; unset or empty is ``default``."""
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _env_floats(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return tuple(float(part) for part in raw.split(","))


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. ``Settings.from_env()`` reads the ``MEAA_*`` variables."""

    # onnxruntime intra-op threads per session (Lambda bills per core; 1 is the sweet spot).
    threads: int = 1
    # Decoding caps, checked before any pixel is allocated.
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    # Detection runs on a copy whose longer side is at most this many pixels (0 = full resolution).
    detect_max_side: int = 640
    # Smallest face to find, in full-resolution pixels and as a fraction of the image's short side;
    # the larger of the two applies.
    # 0.1 of the short side is 48 px on a 640x480 frame: a selfie face is 2-4 times that, and the faces
    # of a group photo at that resolution are still larger.
    min_face_px: int = 20
    min_face_fraction: float = 0.1
    # MTCNN stage thresholds (P-Net, R-Net, O-Net) and pyramid scale factor.
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.9)
    scale_factor: float = 0.709
    # Face crop fed to the mood classifier: the square of side max(w, h) * (1 + 2 * margin) around the
    # box, optionally rotated so the eyes are level. Chosen on jaffe_dev end to end (README): a tight
    # square like FER2013's crops; alignment did not pay.
    crop_margin: float = 0.0
    align_faces: bool = False
    # Which mood model to load from the manifest (see layers/meaa/models/manifest.json).
    mood_model: str = "mini_xception_w2_kd"
    models_dir: str = field(default_factory=lambda: os.path.join(os.path.dirname(__file__), "models"))

    @classmethod
    def from_env(cls) -> "Settings":
        base = cls()
        return cls(
            threads=_env_int("MEAA_THREADS", base.threads),
            max_image_bytes=_env_int("MEAA_MAX_IMAGE_BYTES", base.max_image_bytes),
            max_image_pixels=_env_int("MEAA_MAX_IMAGE_PIXELS", base.max_image_pixels),
            detect_max_side=_env_int("MEAA_DETECT_MAX_SIDE", base.detect_max_side),
            min_face_px=_env_int("MEAA_MIN_FACE_PX", base.min_face_px),
            min_face_fraction=_env_float("MEAA_MIN_FACE_FRACTION", base.min_face_fraction),
            thresholds=_env_floats("MEAA_THRESHOLDS", base.thresholds),  # type: ignore[arg-type]
            scale_factor=_env_float("MEAA_SCALE_FACTOR", base.scale_factor),
            crop_margin=_env_float("MEAA_CROP_MARGIN", base.crop_margin),
            align_faces=env_flag("MEAA_ALIGN_FACES", base.align_faces),
            mood_model=os.environ.get("MEAA_MOOD_MODEL") or base.mood_model,
            models_dir=os.environ.get("MEAA_MODELS_DIR") or base.models_dir,
        )
