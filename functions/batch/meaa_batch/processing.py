"""One S3 object -> its results: pin the revision, claim it, fetch, score with ``meaa``, write through ``meaa.store``.

- An image gives one RESULT item; a video gives one FRAME item per sampled frame, then a RESULT item with
  the summary. The RESULT item is written last, conditionally, so a replayed event finds it and writes
  nothing; frame keys are deterministic, so a half-finished earlier attempt is overwritten, never duplicated.
- A concurrent second delivery of the same revision (S3 delivers at least once) finds the first one's
  in-progress claim (Powertools idempotency: a conditional write that expires with the invocation) and
  stops instead of scoring the object twice.
- The client's problems (not an image, corrupt video, too large, deleted, unreadable) become a failure item;
  only transient AWS errors (throttling, 5xx, timeouts) raise, so that Lambda retries the event.

The function never writes to S3 (no recursive trigger) and never logs image bytes.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.exceptions import ClientError

from meaa import MoodEstimator, store
from meaa.config import Settings
from meaa.errors import (
    ImageTooLarge,
    InternalError,
    InvalidImage,
    MeaaError,
    ObjectNotFound,
    ObjectUnreadable,
    UnsupportedFormat,
)
from meaa.video import VideoSampler
from meaa_aws.clients import BOTO_CONFIG, dynamodb_table, error_code, is_transient, s3_client
from meaa_aws.observability import record_analysis, record_error

from .observability import LOGGER, METRICS, SERVICE

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".m4v"})
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_PRECONDITION_FAILED = frozenset({"412", "PreconditionFailed"})
_OBJECT_OPERATIONS = frozenset({"HeadObject", "GetObject"})  # S3 reading the client's object


class Superseded(Exception):
    """The object was replaced after this event was sent; the newer object has an event of its own."""


@dataclass
class Outcome:
    """What happened to one record (the handler's answer and log line)."""

    status: str  # scored | failed | duplicate | in_progress_elsewhere | superseded | missing | ignored_outside_prefix
    bucket: str
    key: str
    revision: str
    kind: str | None = None
    face_count: int | None = None
    frames_sampled: int | None = None
    error_code: str | None = None
    duration_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ObjectScorer:
    """Scores the objects of one function instance (settings read once; models and clients reused)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.store.table_name:
            raise ValueError("MEAA_TABLE_NAME must name the results table")
        self.settings = settings
        self.estimator = MoodEstimator(settings)
        self.table = dynamodb_table(settings.store.table_name)
        self.s3 = s3_client()
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="[bucket, key, revision]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=3600,  # replays after that are caught by the RESULT item itself
            response_hook=lambda response, _record: {**response, "status": "duplicate"},
        )
        self._claimed_score = self._score
        if settings.store.idempotency_table:
            persistence = DynamoDBPersistenceLayer(table_name=settings.store.idempotency_table, boto_config=BOTO_CONFIG)
            self._claimed_score = idempotent_function(
                data_keyword_argument="claim", persistence_store=persistence, config=self.idempotency
            )(self._score)

    # ---------------------------------------------------------------- one record

    def process(self, ref: store.ObjectRef) -> Outcome:
        """Score one object revision; raises only transient AWS errors."""
        started = time.perf_counter()
        if not ref.key.startswith(self.settings.batch.incoming_prefix):
            return self._outcome("ignored_outside_prefix", ref)
        if not ref.revision:
            named = self._with_revision(ref)
            if named is None:
                return self._outcome("missing", ref)
            ref = named
        if "Item" in self.table.get_item(Key=ref.result_key, ConsistentRead=True):
            return self._outcome("duplicate", ref)
        try:
            claim = {"bucket": ref.bucket, "key": ref.key, "revision": ref.revision}
            outcome = Outcome(**self._claimed_score(claim=claim, ref=ref))
        except IdempotencyAlreadyInProgressError:
            outcome = self._outcome("in_progress_elsewhere", ref)
        outcome.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        return outcome

    def _score(self, claim: dict[str, str], ref: store.ObjectRef) -> dict[str, Any]:
        """The claimed part: fetch, score and write; returns the ``Outcome`` fields (stored with the claim)."""
        context = store.ItemContext(
            ref,
            processed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            expires_at=store.retention_expiry(datetime.now(UTC), self.settings.store.retention_days),
        )
        try:
            if ref.extension in IMAGE_EXTENSIONS:
                self._check_size(ref, min(self.settings.batch.max_object_bytes, self.settings.decoding.max_image_bytes))
                item = self._score_image(context)
            elif ref.extension in VIDEO_EXTENSIONS:
                self._check_size(ref, self.settings.batch.max_object_bytes)
                item = self._score_video(context)
            else:
                raise UnsupportedFormat(f"file type {ref.extension or '(none)'} is neither an image nor a video")
        except Superseded:
            return self._outcome("superseded", ref).to_dict()
        except ClientError as error:
            if is_transient(error) or error.operation_name not in _OBJECT_OPERATIONS:
                raise  # retried by Lambda; a results-table problem is the service's, not the object's
            item = store.failure_item(context, self._client_problem(error).to_dict())
        except MeaaError as error:
            item = store.failure_item(context, error.to_dict())
        except Exception:  # noqa: BLE001 - a poison object must not be retried forever
            LOGGER.exception("scoring failed", extra={"key": ref.key, "revision": ref.revision})
            item = store.failure_item(context, InternalError("the object could not be scored").to_dict())
        written = self._put_result(item)
        outcome = self._outcome(("failed" if item["kind"] == store.Kind.FAILURE else "scored") if written else "duplicate", ref)
        outcome.kind = item["kind"]
        outcome.face_count = item.get(store.Attr.FACE_COUNT)
        outcome.frames_sampled = item.get(store.Attr.FRAMES_SAMPLED)
        outcome.error_code = (item.get(store.Attr.ERROR) or {}).get("code")
        self._record_metrics(outcome)
        return outcome.to_dict()

    # ---------------------------------------------------------------- S3

    def _object_args(self, ref: store.ObjectRef) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            args["VersionId"] = ref.version_id
        elif ref.etag:
            args["IfMatch"] = f'"{ref.etag}"'
        return args

    def _with_revision(self, ref: store.ObjectRef) -> store.ObjectRef | None:
        """Every ObjectCreated event carries an eTag; a hand-made one may not: name the revision from S3."""
        try:
            head = self.s3.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as error:
            if is_transient(error):
                raise
            LOGGER.warning("object cannot be read", extra={"key": ref.key, "error_code": error_code(error)})
            return None
        version_id = head.get("VersionId")
        return dataclasses.replace(
            ref, etag=head["ETag"].strip('"'), version_id=None if version_id in (None, "null") else version_id
        )

    def _call(self, operation: str, ref: store.ObjectRef) -> dict[str, Any]:
        try:
            return getattr(self.s3, operation)(**self._object_args(ref))
        except ClientError as error:
            if error_code(error) in _PRECONDITION_FAILED:
                raise Superseded(ref.key) from error
            raise

    def _check_size(self, ref: store.ObjectRef, max_bytes: int) -> None:
        """HEAD the event's revision; refuse it before reading when it is empty or over the cap."""
        size = int(self._call("head_object", ref)["ContentLength"])
        if size > max_bytes:
            raise ImageTooLarge(f"object is {size} bytes, over the cap of {max_bytes}")
        if size == 0:
            raise InvalidImage("object is empty")

    @staticmethod
    def _client_problem(error: ClientError) -> MeaaError:
        if error_code(error) in _MISSING:
            return ObjectNotFound("object no longer exists")
        return ObjectUnreadable(f"S3 refused to read the object ({error_code(error) or 'client error'})")

    # ---------------------------------------------------------------- scoring

    def _score_image(self, context: store.ItemContext) -> dict[str, Any]:
        data = self._call("get_object", context.obj)["Body"].read()
        analysis = self.estimator.analyze(data).to_dict()
        record_analysis(METRICS, analysis)
        return store.image_item(context, analysis)

    def _score_video(self, context: store.ItemContext) -> dict[str, Any]:
        """Copy the video to /tmp, score sampled frames, batch-write FRAME items; return the summary item."""
        config = self.settings.batch
        summary = store.VideoSummary(max_segments=config.max_timeline_segments)
        truncated_by: str | None = None
        model_version: str | None = None
        deadline = time.monotonic() + self._time_left_s() - config.time_reserve_ms / 1000
        with tempfile.NamedTemporaryFile(suffix=context.obj.extension) as local:
            for chunk in self._call("get_object", context.obj)["Body"].iter_chunks(chunk_size=1 << 20):
                local.write(chunk)
            local.flush()
            sampler = VideoSampler(local.name, config.video_sample_fps)  # InvalidVideo -> failure item
            with sampler, self.table.batch_writer(overwrite_by_pkeys=[store.Attr.PK, store.Attr.SK]) as writer:
                for frame in sampler.frames():
                    analysis = self.estimator.analyze(frame.image).to_dict()
                    model_version = analysis["model_version"]
                    writer.put_item(Item=store.frame_item(context, frame.time_ms, frame.index, analysis))
                    summary.add(frame.time_ms, analysis)
                    if summary.frames_sampled >= config.max_video_frames:
                        truncated_by = "max_video_frames"
                    elif time.monotonic() > deadline:
                        truncated_by = "time_limit"
                    if truncated_by:
                        break
            METRICS.add_metric(name="VideoFramesSampled", unit=MetricUnit.Count, value=summary.frames_sampled)
            return store.video_item(
                context,
                summary,
                width=sampler.info.width,
                height=sampler.info.height,
                source_fps=sampler.info.fps,
                sample_fps=config.video_sample_fps,
                duration_ms=sampler.duration_ms,
                frames_decoded=sampler.frames_decoded,
                truncated=truncated_by is not None or summary.segments_dropped > 0,
                truncated_by=truncated_by or ("timeline_segments" if summary.segments_dropped else None),
                model_version=model_version,
            )

    def _time_left_s(self) -> float:
        remaining_ms = self.idempotency.lambda_context.get_remaining_time_in_millis() if self.idempotency.lambda_context else None
        return remaining_ms / 1000 if remaining_ms is not None else 900.0

    # ---------------------------------------------------------------- DynamoDB

    def _put_result(self, item: dict[str, Any]) -> bool:
        """Write the RESULT item unless one exists (a concurrent duplicate delivery); True if written."""
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            return True
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise

    # ---------------------------------------------------------------- reporting

    @staticmethod
    def _outcome(status: str, ref: store.ObjectRef) -> Outcome:
        return Outcome(status, ref.bucket, ref.key, ref.revision)

    @staticmethod
    def _record_metrics(outcome: Outcome) -> None:
        METRICS.add_metric(
            name="ObjectsFailed" if outcome.status == "failed" else "ObjectsScored", unit=MetricUnit.Count, value=1
        )
        if outcome.error_code:
            record_error(SERVICE, outcome.error_code)
        LOGGER.debug("scored", extra=outcome.to_dict())
