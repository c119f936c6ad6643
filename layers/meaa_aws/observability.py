"""Powertools for AWS Lambda, set up once for both functions: JSON logs and CloudWatch embedded-format metrics.

Powertools reads its own standard variables (template.yaml sets them in Globals): ``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_METRICS_NAMESPACE`` (``MEAA``), ``POWERTOOLS_LOG_LEVEL``. Logs never hold image bytes or
pixels: ids, sizes, counts and error codes only.

Metric names (unit Count unless said): ``FacesFound``, ``ReliableFaces``, ``Mood_<mood>`` (faces counted per
mood; for a video, its main face once per sampled frame), ``StageLatency_<stage>`` (ms: decode, detect,
quality, classify, total), ``VideoFramesSampled``, ``ObjectsScored``, ``ObjectsFailed``, ``RequestLatency``
(ms), and ``Errors`` with an ``error_code`` dimension.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from meaa.labels import MOODS

NAMESPACE = "MEAA"


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever ``sys.stdout`` is at the time (Lambda's never changes; a test's capture does)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def make_logger(service: str) -> Logger:
    return Logger(service=service, stream=_CurrentStdout())


def make_metrics(service: str) -> Metrics:
    return Metrics(namespace=NAMESPACE, service=service)


def record_analysis(metrics: Metrics, analysis: Mapping[str, Any]) -> None:
    """Faces found, reliable faces, faces per mood and the stage latencies of one ``Analysis.to_dict()``."""
    faces = analysis["faces"]
    metrics.add_metric(name="FacesFound", unit=MetricUnit.Count, value=len(faces))
    reliable = [face for face in faces if face.get("reliable", True)]
    metrics.add_metric(name="ReliableFaces", unit=MetricUnit.Count, value=len(reliable))
    for mood in MOODS:
        count = sum(1 for face in reliable if face["mood"] == mood)
        if count:
            metrics.add_metric(name=f"Mood_{mood}", unit=MetricUnit.Count, value=count)
    for stage, milliseconds in (analysis.get("timings_ms") or {}).items():
        metrics.add_metric(name=f"StageLatency_{stage}", unit=MetricUnit.Milliseconds, value=milliseconds)


def record_video(metrics: Metrics, attributes: Mapping[str, Any]) -> None:
    """A scored video's sampled frames, and its main faces (one per frame with a face) by mood."""
    metrics.add_metric(name="VideoFramesSampled", unit=MetricUnit.Count, value=attributes["frames_sampled"])
    metrics.add_metric(name="FacesFound", unit=MetricUnit.Count, value=attributes["frames_with_face"])
    metrics.add_metric(name="ReliableFaces", unit=MetricUnit.Count, value=attributes["frames_with_reliable_face"])
    for mood, count in attributes["mood_counts"].items():
        if count:
            metrics.add_metric(name=f"Mood_{mood}", unit=MetricUnit.Count, value=count)


def record_error(service: str, code: str) -> None:
    """One ``Errors`` metric with the error's code as a dimension (flushed at once, as EMF requires)."""
    with single_metric(name="Errors", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=service)
        metric.add_dimension(name="error_code", value=code)
