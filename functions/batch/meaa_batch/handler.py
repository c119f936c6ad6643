"""The batch function's Lambda entry point (template.yaml: ``meaa_batch.handler.handler``), for S3 notifications
and for the re-score state machine's map items (one listed object each; README: Re-scoring the archive).

Every record is handled on its own: a malformed record is logged and skipped, a bad object gets a failure
item, and the others go on. Errors that a retry can fix (throttling, 5xx, timeouts; or the service's own
results table failing) are raised after every other record is done, so Lambda retries the event; the records
already scored are found done on the retry.

Each record's log lines carry S3's request id for the upload (``responseElements.x-amz-request-id``) as the
correlation id, the id that S3's own logs and CloudTrail show for that PUT.

A map item is scored by the same ``ObjectScorer``; its outcome is the answer (the map run's report keeps it).
Errors a retry can fix raise (the state machine retries, then counts the item failed); so does a malformed
item, which only a broken state machine sends.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from meaa.config import Settings
from meaa.store import ObjectRef

from .events import ListedBeforeSince, MalformedRecord, is_listed_object, parse_listed_object, records_of
from .observability import LOGGER, METRICS
from .processing import ObjectScorer

SETTINGS = Settings.from_env()
SCORER = ObjectScorer(SETTINGS)


@LOGGER.inject_lambda_context
@METRICS.log_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    SCORER.begin_invocation(context)
    if is_listed_object(event):
        return rescore_listed(event)
    outcomes, retry = [], []
    for record in records_of(event, SETTINGS.batch.incoming_prefix):
        LOGGER.set_correlation_id(record.request_id)
        if not isinstance(record.parsed, ObjectRef):
            LOGGER.warning("record skipped", extra=dataclasses.asdict(record.parsed))
            continue
        try:
            outcome = dataclasses.asdict(SCORER.process(record.parsed))
        except Exception as error:  # noqa: BLE001 - finish the other records, then raise for a retry
            LOGGER.exception("record failed; the event will be retried", extra={"key": record.parsed.key})
            retry.append(error)
            continue
        LOGGER.info("record processed", extra=outcome)
        outcomes.append(outcome)
    LOGGER.set_correlation_id(None)
    if retry:
        raise retry[0]
    return {"records": len(outcomes), "outcomes": outcomes}


class MalformedMapItem(ValueError):
    """A re-score map item that names no object: the state machine's ItemSelector and this parser disagree."""


def rescore_listed(item: dict[str, Any]) -> dict[str, Any]:
    """One listed object of a re-score: its outcome, or a raise that the state machine retries or counts."""
    parsed = parse_listed_object(item, SETTINGS.batch.incoming_prefix)
    if isinstance(parsed, MalformedRecord):
        raise MalformedMapItem(parsed.reason)
    if isinstance(parsed, ListedBeforeSince):
        outcome = {"status": "before_since", "key": parsed.key, "last_modified": parsed.last_modified}
    else:
        outcome = dataclasses.asdict(SCORER.process(parsed))
    LOGGER.info("listed object processed", extra=outcome)
    return outcome
