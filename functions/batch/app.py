"""S3 -> DynamoDB batch scorer: images and videos dropped under ``incoming/`` get mood results.

Handler: ``app.handler`` (template.yaml, BatchFunction). Each S3 event record is one object:

- an image gives one RESULT item; a video gives one FRAME item per sampled frame plus a RESULT item
  with the summary (see ``items.py`` for the layout);
- a bad object (not an image, corrupt video, too large) gets a RESULT item of kind ``failure`` with
  the ``meaa.errors`` code, and the other records go on;
- an infrastructure error (throttling, S3 or DynamoDB unreachable, access denied) raises, so Lambda
  retries the event and, after the retries, sends it to the on-failure queue.

S3 delivers events at least once: the RESULT item is written last with a condition, and a record
whose RESULT item already exists is skipped, so a replayed event writes nothing new. Frame items have
deterministic keys, so a half-finished earlier attempt is overwritten, never duplicated.

The function never writes to S3 (no recursive trigger) and never logs image bytes.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

import items
from meaa import MoodEstimator
from meaa.config import Settings
from meaa.errors import ImageTooLarge, InvalidImage, MeaaError, UnsupportedFormat
from meaa.logs import json_logger
from meaa.video import VideoSampler

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".m4v"})


LOGGER = json_logger("meaa.batch")
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@lru_cache(maxsize=1)
def _s3_client():
    # Created on first use (not at import) so that the endpoint and credentials of the invocation's
    # environment apply; reused across invocations of a warm container.
    return boto3.client("s3", config=_BOTO_CONFIG)


@lru_cache(maxsize=1)
def _table(table_name: str):
    return boto3.resource("dynamodb", config=_BOTO_CONFIG).Table(table_name)


def _estimator(settings: Settings) -> MoodEstimator:
    return MoodEstimator(settings)  # cheap: the models are cached per process


class Superseded(Exception):
    """The object was replaced after this event was sent; the newer object has an event of its own."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "NoSuchVersion")


def _is_precondition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("412", "PreconditionFailed")


def _object_args(obj: items.S3Object) -> dict[str, Any]:
    args: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
    if obj.version_id:
        args["VersionId"] = obj.version_id
    elif obj.etag:
        args["IfMatch"] = f'"{obj.etag}"'
    return args


def _checked_size(obj: items.S3Object, max_bytes: int) -> int:
    """HEAD the object revision of the event; refuse it before reading when it is over the cap."""
    try:
        head = _s3_client().head_object(**_object_args(obj))
    except ClientError as error:
        if _is_precondition_failed(error):
            raise Superseded(obj.key) from error
        raise
    size = int(head["ContentLength"])
    if size > max_bytes:
        raise ImageTooLarge(f"object is {size} bytes, over the cap of {max_bytes}")
    if size == 0:
        raise InvalidImage("object is empty")
    return size


def _get_body(obj: items.S3Object):
    try:
        return _s3_client().get_object(**_object_args(obj))["Body"]
    except ClientError as error:
        if _is_precondition_failed(error):
            raise Superseded(obj.key) from error
        raise


def _score_image(obj: items.S3Object, settings: Settings, processed_at: str) -> dict[str, Any]:
    data = _get_body(obj).read()
    analysis = _estimator(settings).analyze(data).to_dict()
    return items.result_item(obj, "image", processed_at, **items.analysis_attributes(analysis))


def _score_video(obj: items.S3Object, settings: Settings, processed_at: str, context: Any) -> dict[str, Any]:
    """Copy the video to /tmp, score sampled frames, batch-write FRAME items; return the summary item."""
    config = settings.batch
    summary = items.VideoSummary()
    truncated_by: str | None = None
    model_version: str | None = None
    with tempfile.NamedTemporaryFile(suffix=obj.extension, dir=tempfile.gettempdir()) as local:
        for chunk in _get_body(obj).iter_chunks(chunk_size=1 << 20):
            local.write(chunk)
        local.flush()
        sampler = VideoSampler(local.name, config.video_sample_fps)  # InvalidVideo -> failure item
        with sampler, _table(settings.store.table_name).batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for frame in sampler.frames():
                analysis = _estimator(settings).analyze(frame.image).to_dict()
                model_version = analysis["model_version"]
                writer.put_item(Item=items.frame_item(obj, frame.time_ms, frame.index, analysis, processed_at))
                summary.add(frame.time_ms, analysis["mood"], analysis["moods"])
                if summary.frames_sampled >= config.max_video_frames:
                    truncated_by = "max_video_frames"
                elif context is not None and context.get_remaining_time_in_millis() < config.time_reserve_ms:
                    truncated_by = "time_limit"
                if truncated_by:
                    break
        attributes = summary.attributes()
        if len(attributes["timeline"]) > config.max_timeline_segments:
            attributes["timeline"] = attributes["timeline"][: config.max_timeline_segments]
            truncated_by = truncated_by or "timeline_segments"
        return items.result_item(
            obj,
            "video",
            processed_at,
            width=sampler.info.width,
            height=sampler.info.height,
            source_fps=sampler.info.fps,
            sample_fps=config.video_sample_fps,
            duration_ms=sampler.duration_ms,
            frames_decoded=sampler.frames_decoded,
            truncated=truncated_by is not None,
            truncated_by=truncated_by,
            model_version=model_version,
            **attributes,
        )


def _put_result(table, item: dict[str, Any]) -> bool:
    """Write the RESULT item unless one exists (a concurrent duplicate delivery); True if written."""
    try:
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        return True
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


def process_record(record: dict[str, Any], settings: Settings, context: Any = None) -> dict[str, Any]:
    """Score one S3 event record; returns what happened (for the log and the handler's answer)."""
    started = time.perf_counter()
    config = settings.batch
    obj = items.S3Object.from_record(record, config.incoming_prefix)
    outcome: dict[str, Any] = {"bucket": obj.bucket, "key": obj.key, "revision": obj.revision}
    if not obj.key.startswith(config.incoming_prefix):
        outcome["status"] = "ignored_outside_prefix"
        return outcome

    if not obj.revision:
        # Every ObjectCreated event carries an eTag; a hand-made or truncated one may not. Name the
        # revision from the object itself so the keys stay deterministic.
        try:
            head = _s3_client().head_object(Bucket=obj.bucket, Key=obj.key)
        except ClientError as error:
            if not _is_missing(error):
                raise
            outcome["status"] = "missing"
            return outcome
        version_id = head.get("VersionId")
        obj = dataclasses.replace(obj, etag=head["ETag"].strip('"'), version_id=None if version_id in (None, "null") else version_id)
        outcome["revision"] = obj.revision

    table = _table(settings.store.table_name)
    existing = table.get_item(Key={"pk": obj.partition_key, "sk": obj.result_sort_key}, ConsistentRead=True)
    if "Item" in existing:
        outcome["status"] = "duplicate"
        return outcome

    processed_at = _now()
    try:
        if obj.extension in IMAGE_EXTENSIONS:
            _checked_size(obj, min(config.max_object_bytes, settings.decoding.max_image_bytes))
            item = _score_image(obj, settings, processed_at)
        elif obj.extension in VIDEO_EXTENSIONS:
            _checked_size(obj, config.max_object_bytes)
            item = _score_video(obj, settings, processed_at, context)
        else:
            raise UnsupportedFormat(f"file type {obj.extension or '(none)'} is neither an image nor a video")
    except MeaaError as error:
        item = items.result_item(obj, "failure", processed_at, error=error.to_dict())
    except Superseded:
        outcome["status"] = "superseded"
        return outcome
    except ClientError as error:
        if not _is_missing(error):
            raise
        item = items.result_item(
            obj, "failure", processed_at, error={"code": "object_not_found", "message": "object no longer exists"}
        )

    written = _put_result(table, item)
    outcome.update(
        status=("failed" if item["kind"] == "failure" else "scored") if written else "duplicate",
        kind=item["kind"],
        face_count=item.get("face_count"),
        frames_sampled=item.get("frames_sampled"),
        error_code=item.get("error", {}).get("code"),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return outcome


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for S3 ObjectCreated notifications."""
    settings = Settings.from_env()
    request_id = getattr(context, "aws_request_id", None)
    outcomes = []
    for record in event.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated") or "s3" not in record:
            LOGGER.info("ignored record", extra={"fields": {"request_id": request_id, "event": record.get("eventName")}})
            continue
        try:
            outcome = process_record(record, settings, context)
        except Exception:
            LOGGER.exception(
                "record failed; the event will be retried",
                extra={"fields": {"request_id": request_id, "key": record["s3"]["object"].get("key")}},
            )
            raise
        LOGGER.info("record processed", extra={"fields": {"request_id": request_id, **outcome}})
        outcomes.append(outcome)
    return {"records": len(outcomes), "outcomes": outcomes}
