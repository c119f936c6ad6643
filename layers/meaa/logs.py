"""Structured JSON logs for the Lambda functions: one object per line on stdout (CloudWatch Logs).

    LOGGER = json_logger("meaa.api")
    LOGGER.info("request", extra={"fields": {"status": 200, "latency_ms": 12.3}})

Fields never include image bytes; callers log ids, sizes, counts and error codes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import Any


class JsonFormatter(logging.Formatter):
    """time (UTC, ms), level, logger, message, then the record's ``fields`` and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.Handler):
    """Writes to whatever ``sys.stdout`` is when a record is emitted (so test capture sees it too)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never break a request
            self.handleError(record)


def json_logger(name: str) -> logging.Logger:
    """A logger writing JSON lines to stdout at ``LOG_LEVEL`` (default INFO), once per name.

    It does not propagate: Lambda's root handler would print every line a second time.
    """
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
        logger.propagate = False
    return logger
