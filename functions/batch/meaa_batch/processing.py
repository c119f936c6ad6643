"""One S3 object -> its results: claim the revision, fetch it, score it with ``meaa``, write through ``meaa.store``.

- Results are kept per object revision *and model version* (``meaa.store.schema``): scoring a revision again
  with another model adds its results beside the first ones; with the same model it writes nothing.
- An image gives one RESULT item; a video gives one FRAME item per sampled frame, then a RESULT item with the
  summary. The RESULT item is written last and conditionally, so a replayed event finds it and writes nothing.
- A concurrent second delivery of the same revision (S3 delivers at least once, a re-score may list an object
  while its event is being handled) finds the first one's in-progress claim (Powertools idempotency on bucket,
  key, revision and model version: a conditional write that expires with the invocation) and stops.
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
from meaa.object_keys import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from meaa.pipeline import model_version_of
from meaa.video_scoring import score_video
from meaa_aws.clients import BOTO_CONFIG, dynamodb_table, s3_client
from meaa_aws.observability import record_analysis, record_error, record_video
from meaa_aws.results_table import ResultsTable
from meaa_aws.s3_objects import ObjectSource, Superseded, object_byte_limit

from .observability import LOGGER, METRICS, SERVICE


@dataclass
class Outcome:
    """What happened to one record (the handler's answer and log line)."""

    status: str  # scored | failed | duplicate | in_progress_elsewhere | superseded | missing | ignored_outside_prefix
    bucket: str
    key: str
    revision: str
    model_version: str | None = None
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
        outcome.model_version = item.get(store.Attr.MODEL_VERSION)
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
        # Read from the manifest: a duplicate is recognised without loading the models.
        self.model_version = model_version_of(settings)
        self.results = ResultsTable(dynamodb_table(settings.store.table_name))
        self.objects = ObjectSource(s3_client())
        self._invocation: Any = None  # the Lambda context of the invocation in progress (its deadline)
        self._claim_config = IdempotencyConfig(
            event_key_jmespath="[bucket, key, revision, model_version]",
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
        if self.results.has_result(named, self.model_version):
            outcome = Outcome.unscored("duplicate", named)
        else:
            outcome = self._claim_and_score(self._with_first_created_at(named))
        outcome.model_version = self.model_version
        outcome.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        return outcome

    def _claim_and_score(self, ref: store.ObjectRef) -> Outcome:
        claim = {"bucket": ref.bucket, "key": ref.key, "revision": ref.revision, "model_version": self.model_version}
        try:
            return Outcome(**self._claimed_score(claim=claim, ref=ref))
        except IdempotencyAlreadyInProgressError:
            return Outcome.unscored("in_progress_elsewhere", ref)

    def _with_first_created_at(self, ref: store.ObjectRef) -> store.ObjectRef:
        """The revision's results of every model version share one creation time (and so one subject_time in the
        index): the first scoring's, which an S3 event gave; a listing's time only for a revision never scored."""
        first = self.results.first_created_at(ref)
        return dataclasses.replace(ref, created_at=first) if first and first != ref.created_at else ref

    def _score(self, claim: dict[str, str], ref: store.ObjectRef) -> dict[str, Any]:
        """The claimed part: fetch, score, write; returns the ``Outcome`` fields (kept with the claim)."""
        now = datetime.now(UTC)
        retention = store.retention_expiry(now, self.settings.store.retention_days)
        context = store.ItemContext(ref, self.model_version, now.isoformat(timespec="milliseconds"), retention)
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
        if ref.extension in IMAGE_SUFFIXES:
            self.objects.check_size(ref, object_byte_limit(ref.extension, self.settings), InvalidImage)
            data = self.objects.read(ref)
            with _crash_as_internal_error():
                analysis = self.estimator.analyze(data).to_dict()
            record_analysis(METRICS, analysis)
            return store.image_item(context, analysis)
        if ref.extension in VIDEO_SUFFIXES:
            self.objects.check_size(ref, object_byte_limit(ref.extension, self.settings), InvalidVideo)
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
