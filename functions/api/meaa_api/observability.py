"""The API's Powertools logger and metrics (shared setup: ``meaa_aws.observability``)."""

from __future__ import annotations

from meaa_aws.observability import make_logger, make_metrics

SERVICE = "meaa-api"
LOGGER = make_logger(SERVICE)
METRICS = make_metrics(SERVICE)
