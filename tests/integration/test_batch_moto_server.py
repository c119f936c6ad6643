"""The batch scorer end to end against moto's server: boto3 speaks HTTP to 127.0.0.1, as to AWS.

An image and a short video go under ``incoming/<subject>/<session>/``; the handler (imported the way
Lambda does, from template.yaml) runs on the S3 event; the items are read back; the event is replayed
and nothing is duplicated; corrupt objects give failure items and nothing is lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit import aws
from devkit.lambda_loader import lambda_context, load_handler

SESSION_DIR = "incoming/subject-42/session 2026-11-26"


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with aws.moto_server() as endpoint:
        aws.apply_environment(monkeypatch, aws.moto_environment(endpoint))
        yield endpoint


def _key_counts(items: list[dict[str, Any]]) -> Counter:
    return Counter((item["pk"], item["sk"]) for item in items)


def test_image_and_video_scored_replay_adds_nothing_and_corrupt_objects_fail(
    moto_endpoint: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")  # AWS_ENDPOINT_URL points every client at the moto server
    assert s3.meta.endpoint_url == moto_endpoint
    aws.create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
    dynamodb = boto3.resource("dynamodb")
    image = aws.put_object(s3, f"{SESSION_DIR}/front camera.jpg", aws.face_jpeg())
    clip = aws.put_object(s3, f"{SESSION_DIR}/clip.mp4", aws.face_video_bytes(tmp_path))
    corrupt_image = aws.put_object(s3, f"{SESSION_DIR}/corrupt.png", b"\x89PNG\r\n\x1a\n" + bytes(200))
    corrupt_video = aws.put_object(s3, f"{SESSION_DIR}/corrupt.avi", b"RIFF" + bytes(500))
    event = aws.event_for([image, clip, corrupt_image, corrupt_video])
    handler = load_handler("BatchFunction")

    first = handler(event, lambda_context("BatchFunction"))
    items_after_first = aws.all_items(dynamodb)
    replay = handler(event, lambda_context("BatchFunction"))
    items_after_replay = aws.all_items(dynamodb)

    assert [outcome["status"] for outcome in first["outcomes"]] == ["scored", "scored", "failed", "failed"]
    assert [outcome["status"] for outcome in replay["outcomes"]] == ["duplicate"] * 4
    counts = _key_counts(items_after_replay)
    assert max(counts.values()) == 1, "no (pk, sk) twice"
    by_key = lambda item: (item["pk"], item["sk"])  # noqa: E731 - scan order is not defined
    assert sorted(items_after_replay, key=by_key) == sorted(items_after_first, key=by_key), "nothing rewritten"

    results = {item["key"].rsplit("/", 1)[1]: item for item in items_after_replay if item["sk"].endswith("#RESULT")}
    assert set(results) == {"front camera.jpg", "clip.mp4", "corrupt.png", "corrupt.avi"}, "nothing lost"
    assert results["front camera.jpg"]["face_count"] == 1
    assert results["front camera.jpg"]["subject"] == "subject-42"
    assert results["front camera.jpg"]["session"] == "session 2026-11-26"
    assert results["clip.mp4"]["kind"] == "video" and results["clip.mp4"]["frames_sampled"] == 6
    assert results["corrupt.png"]["error"]["code"] == "invalid_image"
    assert results["corrupt.avi"]["error"]["code"] == "invalid_video"
    frames = [item for item in items_after_replay if item["kind"] == "frame"]
    assert len(frames) == 6 and all(item["key"] == clip["key"] for item in frames)
    # The scorer only reads the drop bucket: the objects are exactly the four uploaded.
    listed = s3.list_objects_v2(Bucket=aws.BUCKET)["Contents"]
    assert sorted(entry["Key"] for entry in listed) == sorted(
        o["key"] for o in (image, clip, corrupt_image, corrupt_video)
    )
