"""The batch function's Lambda entry point (template.yaml: ``meaa_batch.handler.handler``), for S3 notifications.

Every record is handled on its own: a malformed record is logged and skipped, a bad object gets a failure
item, and the others go on. Errors that a retry can fix (throttling, 5xx, timeouts; or the service's own
results table failing) are raised after every other record is done, so Lambda retries the event; the records
already scored are found done on the retry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from meaa.config import Settings

from .events import MalformedRecord, SkippedRecord, records_of
from .observability import LOGGER, METRICS
from .processing import ObjectScorer

SETTINGS = Settings.from_env()
SCORER = ObjectScorer(SETTINGS)


@LOGGER.inject_lambda_context
@METRICS.log_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    SCORER.idempotency.register_lambda_context(context)
    outcomes, retry = [], []
    for record in records_of(event, SETTINGS.batch.incoming_prefix):
        if isinstance(record, (MalformedRecord, SkippedRecord)):
            LOGGER.warning("record skipped", extra=record.__dict__)
            continue
        try:
            outcome = SCORER.process(record)
        except Exception as error:  # noqa: BLE001 - finish the other records, then raise for a retry
            LOGGER.exception("record failed; the event will be retried", extra={"key": record.key})
            retry.append(error)
            continue
        LOGGER.info("record processed", extra=dataclasses.asdict(outcome))
        outcomes.append(dataclasses.asdict(outcome))
    if retry:
        raise retry[0]
    return {"records": len(outcomes), "outcomes": outcomes}
