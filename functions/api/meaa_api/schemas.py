"""Pydantic models of the API's answers, used for the OpenAPI document (and by tests to pin the shape).

The route returns ``Analysis.to_dict()`` directly; these models describe it. ``extra="forbid"`` makes a
drift between ``meaa.results`` and this documentation fail the tests instead of going unnoticed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from meaa.errors import ERRORS
from meaa.object_keys import MAX_SUBJECT_CHARS, MEDIA_TYPES, SESSION_PATTERN
from meaa.quality import REASONS
from meaa.store import MODEL_VERSION_PATTERN

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
    objects_without_result: int = Field(
        ge=0,
        description="Objects created in the bucket that have results of other model versions only: not in any "
        "count above (re-score them to include them; README, Re-scoring the archive)",
    )


ModelVersion = Annotated[
    str,
    Field(
        pattern=MODEL_VERSION_PATTERN,
        description="The model version whose results these are: `mtcnn:<sha12>+<mood model>:<sha12>[@t<temperature>]`",
    ),
]


class SubjectMoods(_Strict):
    subject: str
    from_: str = Field(alias="from")
    to: str
    bucket_seconds: int
    model_version: ModelVersion
    include_unreliable: bool = Field(description="Whether faces the quality gate marked unreliable were counted")
    buckets: list[MoodBucket] = Field(description="Buckets with at least one object, in time order")
    other_model_versions: list[str] = Field(
        description="Model versions of the objects this page counted in `objects_without_result`"
    )
    items_read: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class ObjectItems(_Strict):
    bucket: str
    key: str
    model_version: ModelVersion
    items: list[dict[str, Any]] = Field(
        description="Items of `model_version` (and legacy items without a model version, e.g. failures)"
    )
    next_cursor: str | None


# ---------------------------------------------------------------- access, direct uploads, assignments

# A subject or clinician id in a path or body: one key segment (no '/', no control characters).
ID_PATTERN = r"^[^/\x00-\x1f\x7f]+$"
ID_MAX_CHARS = MAX_SUBJECT_CHARS


class Caller(_Strict):
    """The caller, as the API sees it from the authorizer's verified claims."""

    sub: str = Field(description="The token's `sub` claim")
    role: Literal["patient", "clinician", "admin"] = Field(description="admins > clinicians > patient (any other)")
    subject: str | None = Field(description="A patient's own subject (the claim MEAA_SUBJECT_CLAIM names); else null")


class UploadRequest(_Strict):
    """What the phone wants to upload; the key is the API's, the filename only a hint for it."""

    filename: str = Field(
        min_length=1,
        max_length=255,
        description="The file's name on the phone: only its sanitized last part and its suffix are kept "
        f"(suffix one of {', '.join(sorted(MEDIA_TYPES))}; it sets the Content-Type the upload must declare)",
        examples=["clip.mp4"],
    )
    session: str | None = Field(
        None,
        pattern=SESSION_PATTERN,
        description="Groups uploads (the <session> of the key); default: today's date, UTC",
        examples=["2026-11-26"],
    )
    subject: str | None = Field(
        None,
        min_length=1,
        max_length=ID_MAX_CHARS,
        pattern=ID_PATTERN,
        description="Whose upload it is: a patient may leave it out (its own); a clinician or admin must name it",
    )


class UploadTicket(_Strict):
    """A presigned S3 POST for exactly one key: POST `fields` and then the file (as the last field, `file`)
    to `url` as multipart/form-data before it expires."""

    url: str
    fields: dict[str, str] = Field(description="Form fields to send as they are, before the file")
    key: str = Field(description="incoming/<subject>/<session>/<uuid>-<sanitized name>: the object's key")
    expires_in: int = Field(description="Seconds the ticket stays valid (at most 900)")
    expires_at: str = Field(description="When it expires, ISO 8601 UTC")
    max_bytes: int = Field(description="The largest file S3 will take for this key (the batch function's limit)")
    content_type: str = Field(description="The Content-Type the upload declares (it is in `fields`)")


class Assignment(_Strict):
    clinician: str = Field(description="The clinician's `sub`")
    subject: str
    assigned_at: str = Field(description="ISO 8601 UTC")
    assigned_by: str = Field(description="The admin's `sub`")


class AssignmentChange(Assignment):
    created: bool = Field(description="False when the assignment existed already (its time and admin are refreshed)")


class ClinicianSubjects(_Strict):
    clinician: str
    subjects: list[Assignment] = Field(description="In subject order")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
