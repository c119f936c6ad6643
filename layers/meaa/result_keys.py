"""Key layout of the results table, shared by the batch writer and the API's readers.

::

    pk = OBJECT#<bucket>/<key>
    sk = REV#<revision>#RESULT                  image result | video summary | failure (one per revision)
         REV#<revision>#FRAME#<ms, 10 digits>   one per sampled video frame
    GSI BySubject: subject (hash), subject_time = <object created, ISO 8601>#<key> (range);
         only RESULT items carry subject_time, so the index holds one row per object, not per frame.

``revision`` is the S3 version id when the bucket is versioned, else the ETag.
"""

from __future__ import annotations

SUBJECT_INDEX = "BySubject"


def object_partition_key(bucket: str, key: str) -> str:
    return f"OBJECT#{bucket}/{key}"


def result_sort_key(revision: str) -> str:
    return f"REV#{revision}#RESULT"


def frame_sort_key(revision: str, time_ms: int) -> str:
    return f"REV#{revision}#FRAME#{time_ms:010d}"


def subject_time(object_created_at: str, key: str) -> str:
    """The BySubject range key: sorts by the object's creation time (ISO 8601, UTC), then its key."""
    return f"{object_created_at}#{key}"
