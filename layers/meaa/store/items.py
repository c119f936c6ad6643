"""The items the batch function writes: one RESULT per object revision and model version (image, video summary
or failure) and one FRAME per sampled video frame, each with the mood counts the timeline adds up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from meaa.labels import MOODS

from .schema import Attr, Kind, ObjectRef, frame_sort_key, result_sort_key, subject_time, to_dynamodb

NO_FACE = "none"  # the mood of a video segment without a face
# DynamoDB items hold 400 KB; a face's stored answer is ~0.6 KB, so a crowd photo keeps its largest faces'
# details (counts always cover every face).
MAX_STORED_FACES = 100


@dataclass(frozen=True)
class ItemContext:
    """What every item of one scoring carries besides its own results: the object revision, the model version
    that scores it (part of every key) and when."""

    obj: ObjectRef
    model_version: str
    processed_at: str
    expires_at: int | None = None  # epoch seconds for the table's TTL; None keeps the item

    def base(self, sort_key: str, kind: Kind) -> dict[str, Any]:
        obj = self.obj
        item: dict[str, Any] = {
            Attr.PK: obj.partition_key,
            Attr.SK: sort_key,
            Attr.KIND: kind,
            Attr.BUCKET: obj.bucket,
            Attr.KEY: obj.key,
            Attr.REVISION: obj.revision,
            Attr.ETAG: obj.etag,
            Attr.SIZE_BYTES: obj.size,
            Attr.OBJECT_CREATED_AT: obj.created_at,
            Attr.PROCESSED_AT: self.processed_at,
            Attr.MODEL_VERSION: self.model_version,
        }
        if obj.version_id:
            item[Attr.VERSION_ID] = obj.version_id
        if obj.subject is not None:
            item[Attr.SUBJECT] = obj.subject
            item[Attr.SESSION] = obj.session
        if self.expires_at is not None:
            item[Attr.EXPIRES_AT] = self.expires_at
        return item

    def result(self, kind: Kind, attributes: dict[str, Any]) -> dict[str, Any]:
        """The one RESULT item of the revision and model version; also its row in the BySubject index.
        The keys, provenance and model version are the context's, whatever ``attributes`` say."""
        item = {**attributes, **self.base(result_sort_key(self.obj.revision, self.model_version), kind)}
        if self.obj.subject is not None:
            item[Attr.SUBJECT_TIME] = subject_time(self.obj.created_at, self.obj.key)
        return to_dynamodb(item)


def retention_expiry(processed_at: datetime, retention_days: int) -> int | None:
    """The TTL value for items kept ``retention_days`` (0 = keep forever)."""
    if retention_days <= 0:
        return None
    return int((processed_at + timedelta(days=retention_days)).timestamp())


def _is_reliable(face: dict[str, Any]) -> bool:
    return bool(face.get("reliable", True))


def mood_counts(moods: Iterable[str | None]) -> dict[str, int]:
    """How many of ``moods`` are each of MOODS (anything else is not counted)."""
    counts = dict.fromkeys(MOODS, 0)
    for mood in moods:
        if mood in counts:
            counts[mood] += 1
    return counts


def analysis_attributes(analysis: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``Analysis.to_dict()`` worth storing (timings are operational, not results), with the
    mood counts of reliable faces and of every face; a crowd keeps its ``MAX_STORED_FACES`` largest faces."""
    faces = analysis["faces"]
    stored = sorted(faces, key=lambda face: face["box"]["w"] * face["box"]["h"], reverse=True)[:MAX_STORED_FACES]
    return {
        Attr.WIDTH: analysis["width"],
        Attr.HEIGHT: analysis["height"],
        Attr.FACE_COUNT: analysis["face_count"],
        Attr.MOOD: analysis["mood"],
        Attr.MOODS: analysis["moods"],
        Attr.FACES: stored if len(stored) < len(faces) else faces,
        Attr.FACES_STORED: len(stored),
        Attr.MOOD_COUNTS: mood_counts(face["mood"] for face in faces if _is_reliable(face)),
        Attr.MOOD_COUNTS_ALL: mood_counts(face["mood"] for face in faces),
    }


def image_item(context: ItemContext, analysis: dict[str, Any]) -> dict[str, Any]:
    return context.result(Kind.IMAGE, analysis_attributes(analysis))


def failure_item(context: ItemContext, error: dict[str, str]) -> dict[str, Any]:
    """A bad object's RESULT item: ``error`` is ``MeaaError.to_dict()`` (code and message)."""
    return context.result(Kind.FAILURE, {Attr.ERROR: error})


def frame_item(context: ItemContext, time_ms: int, frame_index: int, analysis: dict[str, Any]) -> dict[str, Any]:
    item = context.base(frame_sort_key(context.obj.revision, context.model_version, time_ms), Kind.FRAME)
    item.update({Attr.FRAME_MS: time_ms, Attr.FRAME_INDEX: frame_index, **analysis_attributes(analysis)})
    return to_dynamodb(item)


@dataclass
class VideoSummary:
    """Mood counts, mean moods and a run-length timeline of the main face's mood over the sampled frames.

    A frame's main face is the analysis's (its largest reliable face); ``mood_counts_all`` counts the largest
    face of every frame with a face, reliable or not.
    """

    max_segments: int
    frames_sampled: int = 0
    frames_with_face: int = 0
    frames_with_reliable_face: int = 0
    mood_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOODS, 0))
    mood_counts_all: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOODS, 0))
    _mood_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MOODS, 0.0))
    timeline: list[dict[str, Any]] = field(default_factory=list)
    segments_dropped: int = 0

    def add(self, time_ms: int, analysis: dict[str, Any]) -> None:
        self.frames_sampled += 1
        faces = analysis["faces"]
        if faces:
            self.frames_with_face += 1
            largest = max(faces, key=lambda face: face["box"]["w"] * face["box"]["h"])
            self.mood_counts_all[largest["mood"]] += 1
        mood, moods = analysis["mood"], analysis["moods"]
        if mood is not None and moods is not None:
            self.frames_with_reliable_face += 1
            self.mood_counts[mood] += 1
            for name in MOODS:
                self._mood_sums[name] += float(moods[name])
        label = mood or NO_FACE
        if self.timeline and self.timeline[-1]["mood"] == label and not self.segments_dropped:
            self.timeline[-1]["end_ms"] = time_ms
        elif len(self.timeline) < self.max_segments and not self.segments_dropped:
            self.timeline.append({"start_ms": time_ms, "end_ms": time_ms, "mood": label})
        elif not self.timeline or self.timeline[-1]["mood"] != label or self.segments_dropped:
            self.segments_dropped += 1  # the stored timeline ends here; the counts go on

    def attributes(self) -> dict[str, Any]:
        counted = self.frames_with_reliable_face
        return {
            Attr.FRAMES_SAMPLED: self.frames_sampled,
            Attr.FRAMES_WITH_FACE: self.frames_with_face,
            Attr.FRAMES_WITH_RELIABLE_FACE: counted,
            Attr.MOOD_COUNTS: dict(self.mood_counts),
            Attr.MOOD_COUNTS_ALL: dict(self.mood_counts_all),
            # Share of the frames with a reliable main face that have each mood (sums to 1 when any).
            Attr.MOOD_SHARES: {m: (self.mood_counts[m] / counted if counted else 0.0) for m in MOODS},
            Attr.MEAN_MOODS: {m: (self._mood_sums[m] / counted if counted else 0.0) for m in MOODS},
            Attr.MOOD: max(MOODS, key=lambda m: self.mood_counts[m]) if counted else None,
            Attr.TIMELINE: self.timeline,
        }


def video_item(context: ItemContext, attributes: dict[str, Any]) -> dict[str, Any]:
    """The video's RESULT item: ``meaa.video_scoring.VideoScore.attributes()`` (summary, size, fps, truncation)."""
    return context.result(Kind.VIDEO, attributes)
