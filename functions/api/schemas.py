"""Pydantic models of the API's answers, used for the OpenAPI document (and by tests to pin the shape).

The route returns ``Analysis.to_dict()`` directly; these models describe it. ``extra="forbid"`` makes a
drift between ``meaa.results`` and this documentation fail the tests instead of going unnoticed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Mood = Literal["positive", "negative", "neutral", "other"]


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


class AnalysisResponse(_Strict):
    """One analysed image. ``mood``/``moods`` are those of the largest face, null when there is none."""

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
    code: str = Field(
        description="Stable machine-readable code, e.g. invalid_image, malformed_multipart, invalid_json, "
        "invalid_base64, image_too_large, unsupported_media_type, unsupported_format, missing_field, "
        "invalid_input, not_found, method_not_allowed, internal_error"
    )
    message: str


class ErrorResponse(_Strict):
    error: ErrorDetail
    request_id: str | None = None


class HealthResponse(_Strict):
    status: Literal["ok"]
    models_loaded: bool = Field(description="True once the models are in memory (warmed at start-up)")
    model_version: str | None = Field(description="Known once the models are loaded")
    python_version: str
    max_image_bytes: int


class UploadJson(BaseModel):
    """JSON upload: base64 of the image bytes (standard or URL-safe; a data-URL prefix is accepted)."""

    image_base64: str = Field(examples=["data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ..."])
