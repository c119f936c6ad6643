"""The hostile inputs through both Lambda functions (issue 9): the API answers each with the right status and a
JSON error code (never a 5xx), through ASGI and through its Lambda entry point; the batch function gives each
object the right outcome (a result or a failure item with the right code) and never raises; and no input takes
either function's process over the 512 MB budget.

Each function runs in its own child process (``devkit.hostile_handlers``), the two at once; the inputs
are those of ``devkit.hostile_inputs`` (every image through the API's ASGI app, every fourth also through
its Lambda entry point; every other image and every video through the batch handler on moto).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.hostile_handlers import expected_batch_outcomes, expected_status
from devkit.hostile_inputs import BUDGET_RSS_MB, catalogue

REPO_ROOT = Path(__file__).resolve().parents[2]
ITEMS = {(item.category, item.name): item for item in catalogue()}


@functools.cache
def _children() -> dict[str, subprocess.Popen]:
    return {
        name: subprocess.Popen(
            [sys.executable, "-m", "devkit.hostile_handlers", f"--{name}"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("api", "batch")
    }


@functools.cache
def _report(name: str) -> dict:
    process = _children()[name]
    stdout, stderr = process.communicate(timeout=1200)
    assert process.returncode == 0, stderr[-4000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_more_than_300_inputs_reach_the_two_functions() -> None:
    api, batch = _report("api")["results"], _report("batch")["results"]
    assert len(api) + len(batch) >= 300
    assert {row["path"] for row in api} == {"asgi", "lambda"}
    assert {ITEMS[(row["category"], row["name"])].kind for row in batch} == {"image", "video"}


def test_the_api_answers_every_hostile_upload_with_its_status_and_code() -> None:
    report = _report("api")
    wrong = []
    for row in report["results"]:
        item = ITEMS[(row["category"], row["name"])]
        allowed = expected_status(item, row["bytes"], report["max_upload_bytes"])
        typed = row["status"] == 200 or (row["code"] is not None and row["code"] != "internal_error")
        if row["status"] not in allowed or not typed:
            wrong.append(f"{row['path']} {row['category']}/{row['name']}: {row['status']} {row['code']} not {allowed}")
    assert not wrong, "\n".join(wrong)


def test_the_batch_function_gives_every_hostile_object_its_outcome() -> None:
    wrong = []
    for row in _report("batch")["results"]:
        allowed = expected_batch_outcomes(ITEMS[(row["category"], row["name"])])
        if (row["status"], row["code"]) not in allowed:
            wrong.append(f"{row['category']}/{row['name']}: {row['status']} {row['code']} not {allowed}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("function", ["api", "batch"])
def test_no_input_takes_a_function_over_the_memory_budget(function: str) -> None:
    over = [
        f"{row['category']}/{row['name']}: {row['peak_rss_mb']:.0f} MB"
        for row in _report(function)["results"]
        if row["peak_rss_mb"] >= BUDGET_RSS_MB
    ]
    assert not over, f"over {BUDGET_RSS_MB} MB:\n" + "\n".join(over)
