"""DynamoDB items of the results table: what the batch scorer writes (key layout: ``meaa.result_keys``).

RESULT items (image result, video summary or failure; one per object revision) carry ``subject`` and
``subject_time``, so the ``BySubject`` index holds one row per object; FRAME items (one per sampled
video frame) do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

from meaa.labels import MOODS
from meaa.result_keys import frame_sort_key, object_partition_key, result_sort_key, subject_time

NO_FACE = "none"


@dataclass(frozen=True)
class S3Object:
    """One object named by an S3 event record, with its key parsed as incoming/<subject>/<session>/<file>."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    created_at: str
    subject: str | None
    session: str | None
    file_name: str

    @classmethod
    def from_record(cls, record: dict[str, Any], incoming_prefix: str) -> "S3Object":
        s3 = record["s3"]
        key = unquote_plus(s3["object"]["key"])  # S3 event keys are URL-encoded, "+" is a space
        relative = key[len(incoming_prefix):] if key.startswith(incoming_prefix) else key
        parts = relative.split("/")
        subject, session = (parts[0], parts[1]) if len(parts) >= 3 and parts[0] and parts[1] else (None, None)
        return cls(
            bucket=s3["bucket"]["name"],
            key=key,
            size=int(s3["object"].get("size") or 0),
            etag=str(s3["object"].get("eTag") or s3["object"].get("etag") or "").strip('"'),
            # "null" is the version id of objects written while versioning was off or suspended.
            version_id=None if s3["object"].get("versionId") in (None, "", "null") else s3["object"]["versionId"],
            created_at=record.get("eventTime") or "",
            subject=subject,
            session=session,
            file_name=parts[-1],
        )

    @property
    def revision(self) -> str:
        return self.version_id or self.etag

    @property
    def partition_key(self) -> str:
        return object_partition_key(self.bucket, self.key)

    @property
    def result_sort_key(self) -> str:
        return result_sort_key(self.revision)

    def frame_sort_key(self, time_ms: int) -> str:
        return frame_sort_key(self.revision, time_ms)

    @property
    def extension(self) -> str:
        name = self.file_name.lower()
        return name[name.rfind("."):] if "." in name else ""


def to_dynamodb(value: Any) -> Any:
    """Floats -> Decimal (rounded to 4 places; DynamoDB has no float), recursively; NaN/inf -> None."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, Decimal)):
        return value
    if isinstance(value, float):
        return Decimal(str(round(value, 4))) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_dynamodb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamodb(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return to_dynamodb(value.item())
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def base_item(obj: S3Object, sort_key: str, kind: str, processed_at: str) -> dict[str, Any]:
    """Attributes every item carries: where it came from and when it was scored."""
    item: dict[str, Any] = {
        "pk": obj.partition_key,
        "sk": sort_key,
        "kind": kind,
        "bucket": obj.bucket,
        "key": obj.key,
        "revision": obj.revision,
        "etag": obj.etag,
        "size_bytes": obj.size,
        "object_created_at": obj.created_at,
        "processed_at": processed_at,
    }
    if obj.version_id:
        item["version_id"] = obj.version_id
    if obj.subject is not None:
        item["subject"] = obj.subject
        item["session"] = obj.session
    return item


def result_item(obj: S3Object, kind: str, processed_at: str, **attributes: Any) -> dict[str, Any]:
    """The one RESULT item of an object revision; it is also the row in the BySubject index."""
    item = base_item(obj, obj.result_sort_key, kind, processed_at)
    if obj.subject is not None:
        item["subject_time"] = subject_time(obj.created_at, obj.key)
    item.update(attributes)
    return to_dynamodb(item)


def analysis_attributes(analysis_dict: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``Analysis.to_dict()`` worth storing (timings are operational, not results)."""
    return {
        "width": analysis_dict["width"],
        "height": analysis_dict["height"],
        "face_count": analysis_dict["face_count"],
        "mood": analysis_dict["mood"],
        "moods": analysis_dict["moods"],
        "faces": analysis_dict["faces"],
        "model_version": analysis_dict["model_version"],
    }


def frame_item(obj: S3Object, time_ms: int, frame_index: int, analysis_dict: dict[str, Any], processed_at: str) -> dict[str, Any]:
    item = base_item(obj, obj.frame_sort_key(time_ms), "frame", processed_at)
    item.update({"frame_ms": time_ms, "frame_index": frame_index, **analysis_attributes(analysis_dict)})
    return to_dynamodb(item)


@dataclass
class VideoSummary:
    """Mood shares and a run-length timeline of the main face's mood over the sampled frames."""

    frames_sampled: int = 0
    frames_with_face: int = 0

    def __post_init__(self) -> None:
        self._mood_counts = {mood: 0 for mood in MOODS}
        self._mood_sums = {mood: 0.0 for mood in MOODS}
        self._timeline: list[dict[str, Any]] = []

    def add(self, time_ms: int, mood: str | None, moods: dict[str, float] | None) -> None:
        self.frames_sampled += 1
        label = mood or NO_FACE
        if mood is not None and moods is not None:
            self.frames_with_face += 1
            self._mood_counts[mood] += 1
            for name in MOODS:
                self._mood_sums[name] += float(moods[name])
        if self._timeline and self._timeline[-1]["mood"] == label:
            self._timeline[-1]["end_ms"] = time_ms
        else:
            self._timeline.append({"start_ms": time_ms, "end_ms": time_ms, "mood": label})

    def attributes(self) -> dict[str, Any]:
        with_face = self.frames_with_face
        return {
            "frames_sampled": self.frames_sampled,
            "frames_with_face": with_face,
            # Share of frames-with-a-face whose main face has each mood (sums to 1 when any face).
            "mood_shares": {m: (self._mood_counts[m] / with_face if with_face else 0.0) for m in MOODS},
            # Mean mood probabilities of the main face over those frames.
            "mean_moods": {m: (self._mood_sums[m] / with_face if with_face else 0.0) for m in MOODS},
            "mood": max(MOODS, key=lambda m: self._mood_counts[m]) if with_face else None,
            "timeline": self._timeline,
        }
