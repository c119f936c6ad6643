"""The results table's schema: key layout, attribute names, item kinds and DynamoDB's value types.

Key layout::

    pk = OBJECT#<bucket>/<key>
    sk = REV#<revision>#RESULT                  image result | video summary | failure (one per revision)
         REV#<revision>#FRAME#<ms, 10 digits>   one per sampled video frame
    GSI BySubject: subject (hash), subject_time = <object created, ISO 8601>#<key> (range);
         only RESULT items carry subject_time, so the index holds one row per object, not per frame.

``revision`` is the S3 version id when the bucket is versioned, else the ETag. A key attribute that would
pass DynamoDB's limits (an index sort key holds 1,024 bytes) is stored as a SHA-256 of its long part; the
item keeps the full S3 key in ``key``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

SUBJECT_INDEX = "BySubject"
MAX_INDEX_SORT_KEY_BYTES = 1024  # DynamoDB's limit for a sort key (table and index)


class Attr(StrEnum):
    """Attribute names of the results table's items."""

    PK = "pk"
    SK = "sk"
    KIND = "kind"
    BUCKET = "bucket"
    KEY = "key"
    REVISION = "revision"
    ETAG = "etag"
    VERSION_ID = "version_id"
    SIZE_BYTES = "size_bytes"
    OBJECT_CREATED_AT = "object_created_at"
    PROCESSED_AT = "processed_at"
    SUBJECT = "subject"
    SESSION = "session"
    SUBJECT_TIME = "subject_time"
    EXPIRES_AT = "expires_at"  # the table's TTL attribute (epoch seconds)
    # analysis
    WIDTH = "width"
    HEIGHT = "height"
    FACE_COUNT = "face_count"
    MOOD = "mood"
    MOODS = "moods"
    FACES = "faces"
    FACES_STORED = "faces_stored"
    MODEL_VERSION = "model_version"
    # counts the timeline adds up: reliable faces only, and every face
    MOOD_COUNTS = "mood_counts"
    MOOD_COUNTS_ALL = "mood_counts_all"
    # video frames and summaries
    FRAME_MS = "frame_ms"
    FRAME_INDEX = "frame_index"
    FRAMES_SAMPLED = "frames_sampled"
    FRAMES_WITH_FACE = "frames_with_face"
    FRAMES_WITH_RELIABLE_FACE = "frames_with_reliable_face"
    MOOD_SHARES = "mood_shares"
    MEAN_MOODS = "mean_moods"
    TIMELINE = "timeline"
    # failures
    ERROR = "error"


class Kind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    FRAME = "frame"
    FAILURE = "failure"


# ---------------------------------------------------------------- keys


def object_partition_key(bucket: str, key: str) -> str:
    return f"OBJECT#{bucket}/{key}"


def _bounded(text: str, limit: int) -> str:
    """``text``, or a fixed-size digest of it when it would not fit ``limit`` UTF-8 bytes."""
    if len(text.encode("utf-8")) <= limit:
        return text
    return "SHA256#" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def result_sort_key(revision: str) -> str:
    return f"REV#{_bounded(revision, 256)}#RESULT"


def frame_sort_key(revision: str, time_ms: int) -> str:
    return f"REV#{_bounded(revision, 256)}#FRAME#{time_ms:010d}"


def subject_time(object_created_at: str, key: str) -> str:
    """The BySubject range key: the object's creation time (ISO 8601, UTC), then its key (hashed if long)."""
    room = MAX_INDEX_SORT_KEY_BYTES - len(object_created_at.encode("utf-8")) - 1
    return f"{object_created_at}#{_bounded(key, room)}"


@dataclass(frozen=True)
class ObjectRef:
    """One revision of an uploaded object, its key parsed as ``<incoming prefix><subject>/<session>/<file>``."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    size: int = 0
    created_at: str = ""
    subject: str | None = None
    session: str | None = None

    @classmethod
    def from_event_key(cls, bucket: str, event_key: str, incoming_prefix: str, **fields: Any) -> ObjectRef:
        """From an S3 event's URL-encoded key ("+" is a space); subject and session from the layout."""
        key = unquote_plus(event_key)
        relative = key[len(incoming_prefix) :] if key.startswith(incoming_prefix) else key
        parts = relative.split("/")
        subject, session = (parts[0], parts[1]) if len(parts) >= 3 and parts[0] and parts[1] else (None, None)
        return cls(bucket=bucket, key=key, subject=subject, session=session, **fields)

    @property
    def revision(self) -> str:
        return self.version_id or self.etag

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def extension(self) -> str:
        name = self.file_name.lower()
        return name[name.rfind(".") :] if "." in name else ""

    @property
    def partition_key(self) -> str:
        return object_partition_key(self.bucket, self.key)

    @property
    def result_key(self) -> dict[str, str]:
        return {Attr.PK: self.partition_key, Attr.SK: result_sort_key(self.revision)}


# ---------------------------------------------------------------- values


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


def from_dynamodb(value: Any) -> Any:
    """DynamoDB's Decimals -> int or float, recursively, for a JSON answer."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [from_dynamodb(v) for v in value]
    return value
