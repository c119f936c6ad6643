"""The results store: how analyses are kept in DynamoDB and read back, in one place for both functions.

``schema`` holds the key layout, attribute names (``Attr``) and Decimal conversion both ways; the batch function
writes the item builders of ``items`` (``image_item``, ``video_item``, ``failure_item``, ``frame_item``,
``VideoSummary``); the API's results routes read through ``reads`` (``subject_timeline``, ``object_items``).
No AWS SDK here: callers pass a boto3 ``Table`` (or anything with its ``query``), so the core stays importable
without AWS packages. The HTTP side (query parameters, cursors) is ``meaa_api.query``'s.
"""

from .items import (
    MAX_STORED_FACES,
    NO_FACE,
    ItemContext,
    VideoSummary,
    analysis_attributes,
    failure_item,
    frame_item,
    image_item,
    mood_counts,
    retention_expiry,
    video_item,
)
from .reads import (
    Bucket,
    ObjectPage,
    QueryableTable,
    TimelinePage,
    TimeRange,
    iso_z,
    object_items,
    subject_timeline,
)
from .schema import (
    MAX_INDEX_SORT_KEY_BYTES,
    SUBJECT_INDEX,
    Attr,
    Kind,
    ObjectRef,
    frame_sort_key,
    from_dynamodb,
    object_partition_key,
    result_sort_key,
    subject_time,
    to_dynamodb,
)

__all__ = [
    "MAX_INDEX_SORT_KEY_BYTES",
    "MAX_STORED_FACES",
    "NO_FACE",
    "SUBJECT_INDEX",
    "Attr",
    "Bucket",
    "ItemContext",
    "Kind",
    "ObjectPage",
    "ObjectRef",
    "QueryableTable",
    "TimeRange",
    "TimelinePage",
    "VideoSummary",
    "analysis_attributes",
    "failure_item",
    "frame_item",
    "frame_sort_key",
    "from_dynamodb",
    "image_item",
    "iso_z",
    "mood_counts",
    "object_items",
    "object_partition_key",
    "result_sort_key",
    "retention_expiry",
    "subject_time",
    "subject_timeline",
    "to_dynamodb",
    "video_item",
]
