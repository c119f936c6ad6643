"""One S3 object -> its results: claim the revision, fetch it, score it with ``meaa``, write through ``meaa.store``.

- An image gives one RESULT item; a video gives one FRAME item per sampled frame, then a RESULT item with the
  summary. The RESULT item is written last and conditionally, so a replayed event finds it and writes nothing.
- A concurrent second delivery of the same revision (S3 delivers at least once) finds the first one's
  in-progress claim (Powertools idempotency: a conditional write that expires with the invocation) and stops.
- The client's problems (not an image, corrupt video, too large, deleted, unreadable) become a failure item;
  only errors a retry can fix (throttling, 5xx, timeouts; the results table itself) raise, so Lambda retries.

The function never writes to S3 (no recursive trigger) and never logs image bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.exceptions import BotoCoreError, ClientError

from meaa import MoodEstimator, store
from meaa.config import Settings
from meaa.errors import InternalError, InvalidImage, InvalidVideo, MeaaError, UnsupportedFormat
from meaa.video_scoring import score_video
from meaa_aws.clients import BOTO_CONFIG, dynamodb_table, s3_client
from meaa_aws.observability import record_analysis, record_error, record_video
from meaa_aws.results_table import ResultsTable
from meaa_aws.s3_objects import ObjectSource, Superseded

from .observability import LOGGER, METRICS, SERVICE

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".m4v"})


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

    @classmethod
    def unscored(cls, status: str, ref: store.ObjectRef) -> Outcome:
        """A record that was not scored here (outside the prefix, missing, done or in progress, superseded)."""
        return cls(status, ref.bucket, ref.key, ref.revision)

    @classmethod
    def from_result_item(cls, status: str, ref: store.ObjectRef, item: dict[str, Any]) -> Outcome:
        """A scored record, summarised from the RESULT item it wrote (or found written)."""
        outcome = cls.unscored(status, ref)
        outcome.kind = item["kind"]
        outcome.face_count = item.get(store.Attr.FACE_COUNT)
        outcome.frames_sampled = item.get(store.Attr.FRAMES_SAMPLED)
        outcome.error_code = (item.get(store.Attr.ERROR) or {}).get("code")
        return outcome


class ObjectScorer:
    """Scores the objects of one function instance (settings read once; models and clients reused)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.store.table_name:
            raise ValueError("MEAA_TABLE_NAME must name the results table")
        self.settings = settings
        self.estimator = MoodEstimator(settings)
        self.results = ResultsTable(dynamodb_table(settings.store.table_name))
        self.objects = ObjectSource(s3_client())
        self._invocation: Any = None  # the Lambda context of the invocation in progress (its deadline)
        self._claim_config = IdempotencyConfig(
            event_key_jmespath="[bucket, key, revision]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=3600,  # a replay after that finds the RESULT item instead
            response_hook=lambda response, _record: {**response, "status": "duplicate"},
        )
        self._claimed_score = self._score
        if settings.store.idempotency_table:
            persistence = DynamoDBPersistenceLayer(table_name=settings.store.idempotency_table, boto_config=BOTO_CONFIG)
            claim = idempotent_function(
                data_keyword_argument="claim", persistence_store=persistence, config=self._claim_config
            )
            self._claimed_score = claim(self._score)

    def begin_invocation(self, context: Any) -> None:
        """Each invocation's Lambda context: claims expire with it, and videos stop sampling before it ends."""
        self._invocation = context
        self._claim_config.register_lambda_context(context)

    def process(self, ref: store.ObjectRef) -> Outcome:
        """Score one object revision; raises only errors that a retry can fix."""
        started = time.perf_counter()
        if not ref.key.startswith(self.settings.batch.incoming_prefix):
            return Outcome.unscored("ignored_outside_prefix", ref)
        named = ref if ref.revision else self.objects.with_revision(ref)
        if named is None:
            return Outcome.unscored("missing", ref)
        if self.results.has_result(named):
            return Outcome.unscored("duplicate", named)
        try:
            claim = {"bucket": named.bucket, "key": named.key, "revision": named.revision}
            outcome = Outcome(**self._claimed_score(claim=claim, ref=named))
        except IdempotencyAlreadyInProgressError:
            outcome = Outcome.unscored("in_progress_elsewhere", named)
        outcome.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        return outcome

    def _score(self, claim: dict[str, str], ref: store.ObjectRef) -> dict[str, Any]:
        """The claimed part: fetch, score, write; returns the ``Outcome`` fields (kept with the claim)."""
        now = datetime.now(UTC)
        retention = store.retention_expiry(now, self.settings.store.retention_days)
        context = store.ItemContext(ref, now.isoformat(timespec="milliseconds"), retention)
        try:
            item = self._score_object(context)
        except Superseded:
            return dataclasses.asdict(Outcome.unscored("superseded", ref))
        except MeaaError as error:
            item = store.failure_item(context, error.to_dict())
        written = self.results.put_result(item)
        outcome = Outcome.from_result_item(
            ("failed" if item["kind"] == store.Kind.FAILURE else "scored") if written else "duplicate", ref, item
        )
        METRICS.add_metric(
            name="ObjectsFailed" if outcome.error_code else "ObjectsScored", unit=MetricUnit.Count, value=1
        )
        if outcome.error_code:
            record_error(SERVICE, outcome.error_code)
        return dataclasses.asdict(outcome)

    def _score_object(self, context: store.ItemContext) -> dict[str, Any]:
        ref = context.obj
        if ref.extension in IMAGE_EXTENSIONS:
            self.objects.check_size(ref, self.settings.max_batch_image_bytes, InvalidImage)
            data = self.objects.read(ref)
            with _crash_as_internal_error():
                analysis = self.estimator.analyze(data).to_dict()
            record_analysis(METRICS, analysis)
            return store.image_item(context, analysis)
        if ref.extension in VIDEO_EXTENSIONS:
            self.objects.check_size(ref, self.settings.batch.max_object_bytes, InvalidVideo)
            return self._score_video(context)
        raise UnsupportedFormat(f"file type {ref.extension or '(none)'} is neither an image nor a video")

    def _score_video(self, context: store.ItemContext) -> dict[str, Any]:
        """Copy the video to /tmp, score its sampled frames and batch-write their FRAME items; the summary item."""
        deadline = self._sampling_deadline()
        with tempfile.NamedTemporaryFile(suffix=context.obj.extension) as local, self.results.frame_writer() as frames:
            self.objects.download(context.obj, local)

            def write_frame(frame: Any, analysis: dict[str, Any]) -> None:
                frames.put_item(Item=store.frame_item(context, frame.time_ms, frame.index, analysis))

            with _crash_as_internal_error():
                scored = score_video(self.estimator, local.name, self.settings.video_scoring, deadline, write_frame)
        attributes = scored.attributes()
        record_video(METRICS, attributes)
        return store.video_item(context, attributes)

    def _sampling_deadline(self) -> float | None:
        """``time.monotonic()`` by which video sampling stops: the invocation's end less the reserve."""
        if self._invocation is None:
            return None
        remaining_ms = self._invocation.get_remaining_time_in_millis()
        return time.monotonic() + (remaining_ms - self.settings.batch.time_reserve_ms) / 1000


@contextlib.contextmanager
def _crash_as_internal_error() -> Iterator[None]:
    """Around the scoring of the client's bytes: a typed error stays; anything else the bytes provoked (a decoder
    or model crash) becomes an ``internal_error`` failure item, so a poison object is not retried forever."""
    try:
        yield
    except (MeaaError, ClientError, BotoCoreError):  # the client's typed problem, or AWS (the frame writes)
        raise
    except Exception as error:
        LOGGER.exception("scoring failed")
        raise InternalError("the object could not be scored") from error
