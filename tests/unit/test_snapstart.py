"""The API function's SnapStart hooks, run the way Lambda's Python runtime runs them.

``snapshot_restore_py`` (pinned in requirements.txt, shipped by the runtime) keeps the registered hooks; the
runtime runs the before-snapshot ones in reverse order of registration after init, and the after-restore ones in
order in each restored copy. Here the handler module is imported afresh (``devkit.lambda_loader``), its
hooks are run from the library's registries, and the copy is then asked real requests. Without the module (a
function without SnapStart never calls the hooks; ``make serve``), the handler still loads and answers.
"""

from __future__ import annotations

import base64
import builtins
import gc
import json
import random
import sys
from pathlib import Path

import pytest
import snapshot_restore_py

from devkit.lambda_loader import function_spec, lambda_context, load_function_module

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in function_spec("ApiFunction").environment.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """Empty registries for this test (other tests' handler imports registered theirs)."""
    before, after = [], []
    monkeypatch.setattr(snapshot_restore_py, "_before_snapshot_registry", before)
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", after)
    return before, after


def _event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_the_handler_registers_priming_before_the_snapshot_and_a_refresh_after_restore(
    api_environment: None, hooks: tuple[list, list], capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_function_module("ApiFunction")
    before, after = hooks
    assert [function.__name__ for function, _, _ in before] == ["prime"]
    assert [function.__name__ for function, _, _ in after] == ["refresh"]
    capsys.readouterr()

    try:
        for function, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
            timings = function(*args, **kwargs)
        assert gc.get_freeze_count() > 0  # what init made is out of the collector's way
    finally:
        gc.unfreeze()
    assert set(timings) == {"networks", "GET /health", "POST /upload-meaa-image", "GET /openapi.json", "gc", "total"}
    assert module.app.openapi_schema is not None  # built before the snapshot (pydantic's builds are deferred)
    priming = capsys.readouterr().out
    requests = [json.loads(line) for line in priming.splitlines() if '"message":"request"' in line]
    assert [(line["path"], line["status"]) for line in requests] == [
        ("/health", 200),
        ("/upload-meaa-image", 200),
        ("/openapi.json", 200),
    ]
    assert requests[1]["face_count"] == 1  # the shipped face ran every network
    assert "CloudWatchMetrics" not in priming  # no metrics from priming

    # Two copies restored from one snapshot start with the same random state; the hook reseeds each.
    module.app.state.meaa.client("results_table", lambda: object())
    snapshot_state = random.getstate()
    for function, args, kwargs in snapshot_restore_py.get_after_restore():
        function(*args, **kwargs)
    after_restore = random.random()
    random.setstate(snapshot_state)
    assert random.random() != after_restore
    assert module.app.state.meaa.clients == {}  # clients made before the snapshot are dropped

    answer = module.handler(_event("api_upload_raw_jpeg.json"), lambda_context("ApiFunction"))
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["face_count"] == 1
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "CloudWatchMetrics" in line]
    assert len(metrics) == 1 and len(metrics[0]["RequestLatency"]) == 1  # this request's, none of priming's


def test_without_snapshot_restore_py_the_handler_loads_and_answers(
    api_environment: None, hooks: tuple[list, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_snapshot_module(name: str, *args, **kwargs):
        if name == "snapshot_restore_py":
            raise ImportError("not in this runtime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_snapshot_module)
    monkeypatch.delitem(sys.modules, "snapshot_restore_py")
    module = load_function_module("ApiFunction")
    assert hooks == ([], [])
    assert not module.snapstart.register(module.app, module._asgi_adapter)
    answer = module.handler(_event("api_health.json"), lambda_context("ApiFunction"))
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["models_loaded"] is True


def test_the_priming_face_is_the_sample_events_image() -> None:
    from meaa_api import snapstart

    assert snapstart.FACE_JPEG.read_bytes() == base64.b64decode(_event("api_upload_raw_jpeg.json")["body"])
