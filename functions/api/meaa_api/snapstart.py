"""Lambda SnapStart for the API function (template.yaml: ``ApiSnapStart``, on by default; README, "Cold starts").

With SnapStart, Lambda runs the function's init once, when a version is published, then the before-snapshot
hooks, and snapshots the process; a cold start resumes a copy of that snapshot and runs the after-restore hooks
before the copy's first event. The hooks are registered with ``snapshot_restore_py``, which Lambda's Python
runtimes ship (the function does not bundle it); where it is absent (``make serve``, a function without
SnapStart never calls them anyway) nothing is registered.

- ``prime`` (before the snapshot; paid once per published version, by no request): every network at the input
  shapes of the usual photo sizes (``PRIMED_DETECTION_SIZES``), requests through the Lambda adapter (/health, an
  upload of a real face, /openapi.json, which builds the OpenAPI schema that ``meaa_api`` defers), then a full
  garbage collection and ``gc.freeze()``: the snapshot holds a process that has answered each route once.
- ``refresh`` (after each restore, in every copy; counted in the REPORT line's ``Restore Duration``): what must
  not be shared between copies of one snapshot. Python's ``random`` is reseeded (botocore draws its retry jitter
  from it: identical copies would retry in step); AWS clients made before the snapshot are dropped (their
  connections may be stale); request ids come from each event and ``uuid4`` reads the OS's entropy, so nothing
  else is copied. numpy's generator is not in the layer (``infra/lambda_build.py`` prunes ``numpy.random``).
"""

from __future__ import annotations

import base64
import gc
import os
import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI

from .dependencies import AppState
from .observability import LOGGER, METRICS

try:
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # outside Lambda's managed runtime
    register_after_restore = register_before_snapshot = None

# Sizes detection runs on after decoding (its copy's longer side is MEAA_DETECT_MAX_SIDE, 640): phone photos
# at 4:3, 3:2, 16:9 and 1:1, each way up. Each adds P-Net's pyramid shapes for that size to the snapshot.
PRIMED_DETECTION_SIZES = ((640, 480), (480, 640), (640, 427), (427, 640), (640, 360), (360, 640), (640, 640))
PRIMED_FACES = 8  # the mood model's batch sizes primed: 1 to this many faces in one upload
# The astronaut (scikit-image, public domain), 320 px, JPEG q85: events/make_events.py writes it and the sample events.
FACE_JPEG = Path(__file__).resolve().parent / "snapstart_face.jpg"
_CONTEXT = SimpleNamespace(aws_request_id="snapstart-priming", function_name="snapstart-priming")


def register(app: FastAPI, adapter: Any) -> bool:
    """Register ``prime`` and ``refresh`` with the runtime's SnapStart hooks; False where there are none."""
    if register_before_snapshot is None or register_after_restore is None:
        return False
    register_before_snapshot(prime, app, adapter)
    register_after_restore(refresh, app)
    return True


def prime(app: FastAPI, adapter: Any) -> dict[str, float]:
    """Run what a first request would otherwise pay for, so that the snapshot holds it; returns ms per step."""
    state: AppState = app.state.meaa
    timings: dict[str, float] = {}
    started = time.perf_counter()
    state.estimator.warm_up(PRIMED_DETECTION_SIZES, max_faces=PRIMED_FACES)
    timings["networks"] = _since(started)
    # Powertools reads this at each flush, and keeps what it did not flush: the priming requests add no metrics
    # to the service's (their request logs do show, with request id "snapstart-priming").
    previous = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    try:
        for method, path, body in (
            ("GET", "/health", None),
            ("POST", "/upload-meaa-image", FACE_JPEG.read_bytes()),
            ("GET", "/openapi.json", None),
        ):
            mark = time.perf_counter()
            status = adapter(gateway_event(method, path, body), _CONTEXT)["statusCode"]
            timings[f"{method} {path}"] = _since(mark)
            if status >= 500:
                LOGGER.warning("snapshot priming request failed", extra={"path": path, "status": status})
    finally:
        METRICS.clear_metrics()
        if previous is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = previous
    mark = time.perf_counter()
    # What is alive now lives as long as the process: out of the collector's way, in every restored copy.
    gc.collect()
    gc.freeze()
    timings["gc"] = _since(mark)
    timings["total"] = _since(started)
    LOGGER.info("primed for the snapshot", extra={"timings_ms": timings})
    return timings


def refresh(app: FastAPI) -> float:
    """After a restore: reseed ``random`` from the OS and drop AWS clients made before the snapshot; returns ms."""
    started = time.perf_counter()
    random.seed()
    app.state.meaa.forget_clients()
    elapsed = _since(started)
    LOGGER.info("restored from snapshot", extra={"latency_ms": elapsed})
    return elapsed


def _since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000.0, 1)


def gateway_event(method: str, path: str, body: bytes | None) -> dict[str, Any]:
    """A minimal API Gateway HTTP API (payload 2.0) event, as Mangum reads it."""
    headers = {"host": "snapstart.invalid", "accept": "application/json"}
    if body is not None:
        headers["content-type"] = "image/jpeg"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "requestId": "snapstart-priming",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "stage": "$default",
        },
        "body": base64.b64encode(body).decode("ascii") if body is not None else None,
        "isBase64Encoded": body is not None,
    }
