"""AWS for the tests, benchmarks and infra checks, through moto: the environment, moto's server, the tables
(from template.yaml), S3 events from ``events/``, and real media to put in the drop bucket.

Media are built from scikit-image's real photos (``devkit.sample_faces``): the astronaut has one face,
coffee has none. Videos are written with OpenCV's ``mp4v`` (MPEG-4 Part 2) encoder, which
opencv-python-headless can both write and read back here (``avc1`` cannot be written by its FFmpeg).
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import cv2
import httpx
import numpy as np

from devkit.lambda_loader import load_template
from devkit.sample_faces import no_face_images, one_face_frame

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"
BUCKET = "meaa-drop-123456789012-us-east-1"
TABLE = "meaa-results-test"
IDEMPOTENCY_TABLE = "meaa-idempotency-test"
ASSIGNMENTS_TABLE = "meaa-assignments-test"
# Variables of a developer's shell that would send boto3 elsewhere or change the functions' settings.
_CLEARED = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "MEAA_MAX_OBJECT_BYTES",
    "MEAA_INCOMING_PREFIX",
    "MEAA_AUTH_MODE",
    "MEAA_LOCAL",
    "MEAA_SUBJECT_CLAIM",
    "MEAA_MOOD_MODEL",
    "MEAA_RESCORE_STATE_MACHINE_ARN",
)


def moto_environment(endpoint: str | None = None, **overrides: str) -> dict[str, str | None]:
    """What both functions need to talk to moto as if to AWS (``endpoint``: moto's server; None: in-process
    ``mock_aws``). A value of None means "unset"."""
    environment: dict[str, str | None] = dict.fromkeys(_CLEARED)
    environment.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "MEAA_TABLE_NAME": TABLE,
            "MEAA_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "MEAA_ASSIGNMENTS_TABLE": ASSIGNMENTS_TABLE,
            "MEAA_DROP_BUCKET": BUCKET,
            "MEAA_VIDEO_SAMPLE_FPS": "2",
            **overrides,
        }
    )
    if endpoint:
        environment["AWS_ENDPOINT_URL"] = endpoint
    return environment


def apply_environment(monkeypatch: Any, environment: dict[str, str | None]) -> None:
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free port, with empty backends: moto keeps its state per process, so a server
    started by another test module would otherwise show that module's bucket and table."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    httpx.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
    try:
        yield endpoint
    finally:
        httpx.post(f"{endpoint}/moto-api/reset", timeout=30)
        server.stop()


def create_drop_bucket_and_tables(s3_client: Any, dynamodb_client: Any) -> None:
    """The drop bucket and the tables of template.yaml, in whatever moto the clients point at."""
    s3_client.create_bucket(Bucket=BUCKET)
    create_results_table(dynamodb_client)
    create_table_from_template(dynamodb_client, "IdempotencyTable", IDEMPOTENCY_TABLE)
    create_table_from_template(dynamodb_client, "AssignmentsTable", ASSIGNMENTS_TABLE)


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


def table_definition(logical_id: str) -> dict[str, Any]:
    """``create_table`` arguments from a table of template.yaml (keys, indexes, billing)."""
    properties = load_template()["Resources"][logical_id]["Properties"]
    names = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
    return {name: properties[name] for name in names if name in properties}


def create_table_from_template(dynamodb_client: Any, logical_id: str, name: str) -> str:
    dynamodb_client.create_table(TableName=name, **table_definition(logical_id))
    dynamodb_client.get_waiter("table_exists").wait(TableName=name)
    return name


def create_results_table(dynamodb_client: Any, name: str = TABLE) -> str:
    return create_table_from_template(dynamodb_client, "ResultsTable", name)


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


# Ways an S3 event record can be broken (issue 9's list), each a function that breaks a good record in place.
BROKEN_RECORDS: dict[str, Any] = {
    "s3-empty": lambda r: r.__setitem__("s3", {}),
    "key-int": lambda r: r["s3"]["object"].__setitem__("key", 7),
    "key-null": lambda r: r["s3"]["object"].__setitem__("key", None),
    "key-missing": lambda r: r["s3"]["object"].pop("key"),
    "bucket-missing": lambda r: r["s3"].pop("bucket"),
    "size-text": lambda r: r["s3"]["object"].__setitem__("size", "abc"),
    "version-list": lambda r: r["s3"]["object"].__setitem__("versionId", ["v"]),
    "key-too-long": lambda r: r["s3"]["object"].__setitem__("key", "incoming/" + "k" * 1100),
    "event-name-missing": lambda r: r.pop("eventName"),
}


def throttle_reads(monkeypatch: Any, objects: Any, key_suffix: str) -> None:
    """Make the batch scorer's S3 reads (``ObjectScorer.objects``) of keys ending with ``key_suffix`` fail as S3
    does when it throttles (503 SlowDown): an error a retry can fix."""
    from botocore.exceptions import ClientError

    read = objects.read

    def read_or_throttle(ref: Any) -> bytes:
        if ref.key.endswith(key_suffix):
            raise ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")
        return read(ref)

    monkeypatch.setattr(objects, "read", read_or_throttle)
