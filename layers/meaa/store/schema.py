"""The results table's schema: key layout, attribute names, item kinds and DynamoDB's value types.

Key layout::

    pk = OBJECT#<bucket>/<key>
    sk = MODEL#<model version>#REV#<revision>#RESULT                  image | video summary | failure
         MODEL#<model version>#REV#<revision>#FRAME#<ms, 10 digits>   one per sampled video frame
    GSI BySubject: subject (hash), subject_time = <object created, ISO 8601>#<key> (range);
         only RESULT items carry subject_time: the index holds one row per object revision and model version,
         and the rows of one revision share their subject_time (a re-score copies the first one's creation time).

One object revision has one RESULT per model version, side by side; the model version is the one
``meaa.pipeline.model_version_of`` names (``mtcnn:<sha12>+<mood model>:<sha12>[@t<temperature>]``).

Legacy items (written before results were kept per model version) have no model segment::

    sk = REV#<revision>#RESULT | REV#<revision>#FRAME#<ms>

They are read, never rewritten: their ``model_version`` attribute says which model wrote them, and a legacy
failure item, which has none, reads as a failure of every model version (the bytes could not be read, which
no model changes); ``LEGACY_PREFIX`` is where they sort.

``revision`` is the S3 version id when the bucket is versioned, else the ETag. A key attribute that would
pass DynamoDB's limits (an index sort key holds 1,024 bytes) is stored as a SHA-256 of its long part; the
item keeps the full S3 key in ``key``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from meaa.object_keys import split_layout

SUBJECT_INDEX = "BySubject"
MAX_INDEX_SORT_KEY_BYTES = 1024  # DynamoDB's limit for a sort key (table and index)
MODEL_PREFIX = "MODEL#"
LEGACY_PREFIX = "REV#"  # items written before results were kept per model version
# What a model version may hold: the pipeline's are `mtcnn:<sha12>+<name>:<sha12>[@t<temperature>]`. No '#',
# so the segment cannot run into the next one.
MODEL_VERSION_PATTERN = r"^[A-Za-z0-9_.:+@-]{1,200}$"
_MODEL_VERSION = re.compile(MODEL_VERSION_PATTERN)


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


def is_model_version(text: object) -> bool:
    return isinstance(text, str) and _MODEL_VERSION.match(text) is not None


def model_sort_prefix(model_version: str) -> str:
    """Where one model version's items of an object sort (every revision)."""
    if not is_model_version(model_version):
        raise ValueError(f"not a model version: {str(model_version)[:64]!r}")
    return f"{MODEL_PREFIX}{model_version}#"


def result_sort_key(revision: str, model_version: str) -> str:
    return f"{model_sort_prefix(model_version)}REV#{_bounded(revision, 256)}#RESULT"


def frame_sort_key(revision: str, model_version: str, time_ms: int) -> str:
    return f"{model_sort_prefix(model_version)}REV#{_bounded(revision, 256)}#FRAME#{time_ms:010d}"


def legacy_result_sort_key(revision: str) -> str:
    """The RESULT key of a revision scored before results were kept per model version (read only)."""
    return f"{LEGACY_PREFIX}{_bounded(revision, 256)}#RESULT"


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
        return cls.from_key(bucket, unquote_plus(event_key), incoming_prefix, **fields)

    @classmethod
    def from_key(cls, bucket: str, key: str, incoming_prefix: str, **fields: Any) -> ObjectRef:
        """From a plain key (a listing's); subject and session from the layout."""
        relative = key[len(incoming_prefix) :] if key.startswith(incoming_prefix) else key
        subject, session = split_layout(relative) or (None, None)
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

    def result_key(self, model_version: str) -> dict[str, str]:
        return {Attr.PK: self.partition_key, Attr.SK: result_sort_key(self.revision, model_version)}

    @property
    def legacy_result_key(self) -> dict[str, str]:
        return {Attr.PK: self.partition_key, Attr.SK: legacy_result_sort_key(self.revision)}


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
