"""Shared pieces of the batch-scorer tests: real media, S3 events from ``events/``, the results table.

Media are built from scikit-image's real photos (``tests.sample_faces``): the astronaut has one face,
coffee has none. Videos are written with OpenCV's ``mp4v`` (MPEG-4 Part 2) encoder, which
opencv-python-headless can both write and read back here (``avc1`` cannot be written by its FFmpeg).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import cv2
import numpy as np

from tests.lambda_loader import load_template
from tests.sample_faces import no_face_images, one_face_frame

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"
BUCKET = "meaa-drop-123456789012-us-east-1"
TABLE = "meaa-results-test"


def face_jpeg() -> bytes:
    ok, buffer = cv2.imencode(".jpg", one_face_frame(640, 480), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buffer.tobytes()


def no_face_jpeg() -> bytes:
    ok, buffer = cv2.imencode(".jpg", no_face_images()["coffee"])
    assert ok
    return buffer.tobytes()


def write_face_video(path: Path, fps: int = 10, face_seconds: float = 1.5, empty_seconds: float = 1.5) -> Path:
    """A short clip: the astronaut's face, then a face-free scene (so the timeline has two segments)."""
    size = (320, 240)
    face = one_face_frame(*size)
    scene = cv2.resize(no_face_images()["coffee"], size, interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for index in range(round(face_seconds * fps)):
        # Small shifts so the frames differ like a hand-held clip.
        writer.write(np.roll(face, index % 5, axis=1))
    for _ in range(round(empty_seconds * fps)):
        writer.write(scene)
    writer.release()
    return path


def face_video_bytes(tmp_dir: Path, **kwargs: Any) -> bytes:
    return write_face_video(tmp_dir / "clip.mp4", **kwargs).read_bytes()


def event_for(
    objects: list[dict[str, Any]],
    template_event: str = "s3_put_image.json",
) -> dict[str, Any]:
    """An S3 notification built from ``events/<template_event>``, one record per ``objects`` entry.

    Each entry has ``key`` (plain; URL-encoded here the way S3 sends it), ``etag``, ``size`` and
    optionally ``bucket``, ``version_id``, ``event_time``.
    """
    sample = json.loads((EVENTS_DIR / template_event).read_text())["Records"][0]
    records = []
    for entry in objects:
        record = copy.deepcopy(sample)
        record["s3"]["bucket"]["name"] = entry.get("bucket", BUCKET)
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{entry.get('bucket', BUCKET)}"
        record["s3"]["object"]["key"] = quote_plus(entry["key"], safe="/")
        record["s3"]["object"]["eTag"] = entry["etag"]
        record["s3"]["object"]["size"] = entry["size"]
        if entry.get("version_id"):
            record["s3"]["object"]["versionId"] = entry["version_id"]
        if entry.get("event_time"):
            record["eventTime"] = entry["event_time"]
        records.append(record)
    return {"Records": records}


def put_object(s3_client, key: str, body: bytes, bucket: str = BUCKET) -> dict[str, Any]:
    """Upload and describe the object as an event entry (ETag without quotes, like S3 events)."""
    response = s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "key": key, "etag": response["ETag"].strip('"'), "size": len(body)}


def results_table_definition() -> dict[str, Any]:
    """``create_table`` arguments from template.yaml's ResultsTable (keys, GSI, billing)."""
    properties = load_template()["Resources"]["ResultsTable"]["Properties"]
    return {
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "GlobalSecondaryIndexes": properties["GlobalSecondaryIndexes"],
        "BillingMode": properties["BillingMode"],
    }


def create_results_table(dynamodb_client, name: str = TABLE) -> str:
    dynamodb_client.create_table(TableName=name, **results_table_definition())
    dynamodb_client.get_waiter("table_exists").wait(TableName=name)
    return name


def all_items(dynamodb_resource, name: str = TABLE) -> list[dict[str, Any]]:
    table = dynamodb_resource.Table(name)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = table.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
