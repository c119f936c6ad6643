"""Pydantic models of the API's answers, used for the OpenAPI document (and by tests to pin the shape).

The route returns ``Analysis.to_dict()`` directly; these models describe it. ``extra="forbid"`` makes a
drift between ``meaa.results`` and this documentation fail the tests instead of going unnoticed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from meaa.errors import ERRORS
from meaa.quality import REASONS

Mood = Literal["positive", "negative", "neutral", "other"]
UnreliableReason = Literal[REASONS]  # type: ignore[valid-type]  # blurred, dark, overexposed, ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Box(_Strict):
    """Face box in original-image pixels (EXIF orientation applied)."""

    x: int
    y: int
    w: int
    h: int


class Moods(_Strict):
    """Mood probabilities; they sum to 1."""

    positive: float
    negative: float
    neutral: float
    other: float


class HeadPose(_Strict):
    """Head rotation in degrees from the five landmarks (coarse for yaw and pitch, exact for roll)."""

    yaw: float = Field(description="> 0: the face turns towards the picture's right")
    pitch: float = Field(description="> 0: the face looks up")
    roll: float = Field(description="> 0: the face leans clockwise in the picture")


class FaceQuality(_Strict):
    """Measured on the face (meaa.quality); the thresholds that judge it are MEAA_QUALITY_* settings."""

    sharpness: float = Field(description="Laplacian variance over variance of the 48 px face patch (0 flat, 20 noise)")
    brightness: float = Field(description="Mean gray level of the face, 0..1")
    contrast: float = Field(description="Standard deviation over the mean of the face's gray levels")
    clipped_fraction: float = Field(description="Share of the face's pixels clipped to white (overexposure)")
    face_px: int = Field(description="Short side of the detector box in original-image pixels")
    outside_fraction: float = Field(description="Share of the face's square crop that lies outside the image")
    pose: HeadPose
    detection_score: float = Field(description="Detector confidence, 0..1 (the face's score)")


class FaceResult(_Strict):
    box: Box
    score: float = Field(description="Detector confidence, 0..1")
    landmarks: list[tuple[float, float]] = Field(
        description="Five (x, y) points: left eye, right eye, nose, left and right mouth corners"
    )
    mood: Mood
    moods: Moods
    emotions: dict[str, float] = Field(
        description="The classifier's raw probabilities (FER2013 classes: angry, disgust, fear, happy, sad, "
        "surprise, neutral)"
    )
    quality: FaceQuality
    reliable: bool = Field(description="False when a quality threshold says this face's mood should not be trusted")
    unreliable_reasons: list[UnreliableReason] = Field(description="Why it is unreliable (empty when reliable)")


class AnalysisResponse(_Strict):
    """One analysed image. ``mood``/``moods`` are those of the largest reliable face, null when there is
    none (the faces are still listed, each with ``reliable`` and its reasons)."""

    width: int
    height: int
    face_count: int
    mood: Mood | None
    moods: Moods | None
    faces: list[FaceResult]
    model_version: str
    timings_ms: dict[str, float] = Field(description="Milliseconds per pipeline stage (decode, detect, classify...)")
    request_id: str = Field(description="Also in the X-Request-ID header and in the server's log line")


class ErrorDetail(_Strict):
    code: str = Field(description="Stable machine-readable code: " + ", ".join(ERRORS))
    message: str


class ErrorResponse(_Strict):
    error: ErrorDetail
    request_id: str | None = None


class HealthResponse(_Strict):
    status: Literal["ok"]
    models_loaded: bool = Field(description="True once the models are in memory (warmed at start-up)")
    model_version: str | None = Field(description="Known once the models are loaded")
    python_version: str
    max_upload_image_bytes: int = Field(description="Largest image an upload may carry (bytes)")
    max_image_bytes: int = Field(description="The same as max_upload_image_bytes (its former name, kept for clients)")


class UploadJson(BaseModel):
    """JSON upload: base64 of the image bytes (standard or URL-safe; a data-URL prefix is accepted)."""

    image_base64: str = Field(examples=["data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ..."])


class MoodBucket(_Strict):
    start: str = Field(description="Bucket start, UTC (buckets are counted from `from`)")
    end: str
    objects: int = Field(description="Images and videos created in the bucket (failures included)")
    failed: int = Field(description="Objects that could not be scored")
    face_count: int = Field(
        description="Faces counted: every (reliable) face of an image; a video's main face once per sampled frame"
    )
    mood_counts: dict[str, int]
    moods: dict[str, float] = Field(description="Share of the faces with each mood (sums to 1 when face_count > 0)")
    dominant_mood: Mood | None


class SubjectMoods(_Strict):
    subject: str
    from_: str = Field(alias="from")
    to: str
    bucket_seconds: int
    include_unreliable: bool = Field(description="Whether faces the quality gate marked unreliable were counted")
    buckets: list[MoodBucket] = Field(description="Buckets with at least one object, in time order")
    items_read: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class ObjectItems(_Strict):
    bucket: str
    key: str
    items: list[dict[str, Any]]
    next_cursor: str | None
