"""Hostile inputs (devkit/hostile_inputs.py) through ``MoodEstimator().analyze`` and ``VideoSampler``: each gives
its expected outcome -- a result or the right typed error -- and none takes the process over the memory budget;
and the decode memory model that the caps are checked with is an upper bound of what decoding really holds.

The inputs run in three child processes (a few categories each) that load and warm the models first, as a
Lambda function is after its init; each child resets the process's peak RSS before every input
(``/proc/self/clear_refs``), so each input's peak is its own. A fourth child decodes one photo-like image
per decoder layout (``--layouts``). The four start together (the machine's cores share them). CPU time is
measured too, but only reported (``python -m benchmarks.hostile_inputs``), never asserted.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devkit.hostile_inputs import (
    BUDGET_RSS_MB,
    LAMBDA_BASELINE_MB,
    HostileInput,
    catalogue,
    categories,
    decode_layouts,
    selfie_jpeg,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUPS = {
    "jpeg": ("jpeg_scans", "jpeg_header_lies", "jpeg_variants", "jpeg_markers", "jpeg_exif"),
    "png_webp_bmp": ("png_bombs", "png_header_lies", "png_chunks", "webp", "bmp"),
    "sizes_formats_corruption_video": ("extreme_sizes", "formats", "random_corruption", "video"),
}
ITEMS = catalogue()


@functools.cache
def _children() -> dict[str, subprocess.Popen]:
    """Every child process, started at once on first use."""
    selfie = Path(tempfile.mkdtemp()) / "selfie.jpg"  # made once here: the children skip scikit-image's import
    selfie.write_bytes(selfie_jpeg())
    commands = {group: ["--category", ",".join(members), "--selfie", str(selfie)] for group, members in GROUPS.items()}
    commands["layouts"] = ["--layouts"]
    return {
        name: subprocess.Popen(
            [sys.executable, "-m", "devkit.hostile_inputs", *arguments],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, arguments in commands.items()
    }


@functools.cache
def _report(name: str) -> dict | list:
    stdout, stderr = _children()[name].communicate(timeout=900)
    assert _children()[name].returncode == 0, stderr[-4000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _result(item: HostileInput) -> dict:
    group = next(name for name, members in GROUPS.items() if item.category in members)
    return next(r for r in _report(group)["results"] if (r["category"], r["name"]) == (item.category, item.name))


def test_the_catalogue_is_large_and_every_category_is_run() -> None:
    assert len(ITEMS) >= 150
    assert sorted(categories()) == sorted(c for members in GROUPS.values() for c in members)
    assert {item.kind for item in ITEMS} == {"image", "video"}


@pytest.mark.parametrize("item", ITEMS, ids=[f"{item.category}/{item.name}" for item in ITEMS])
def test_each_input_gives_its_expected_outcome(item: HostileInput) -> None:
    result = _result(item)
    assert result["outcome"] in item.expected, result.get("message")
    if item.kind == "video" and result["outcome"] == "ok":
        assert result["frames_decoded"] >= 1
    if item.duration_ms is not None:
        assert result["duration_ms"] == item.duration_ms


@pytest.mark.parametrize("group", list(GROUPS))
def test_no_input_takes_the_process_over_the_memory_budget(group: str) -> None:
    report = _report(group)
    # In a function process, which holds up to LAMBDA_BASELINE_MB with its models, the same growth must fit.
    allowed_growth = BUDGET_RSS_MB - LAMBDA_BASELINE_MB
    over = [
        (r["name"], round(r["peak_rss_mb"]), round(r["peak_rss_mb"] - report["baseline_rss_mb"]))
        for r in report["results"]
        if r["peak_rss_mb"] >= BUDGET_RSS_MB or r["peak_rss_mb"] - report["baseline_rss_mb"] >= allowed_growth
    ]
    assert not over, f"peak RSS (MB, growth over the warm process) over budget: {over}"


@pytest.mark.parametrize("layout", [name for name, _, _ in decode_layouts()])
def test_decoding_holds_no_more_memory_than_the_model_says(layout: str) -> None:
    row = next(r for r in _report("layouts") if r["layout"] == layout)
    assert row["measured_mb"] <= row["model_mb"], row
    # Nor is the model a blanket allowance: within its fixed 8 MiB of overhead plus 40% of what was measured.
    assert row["model_mb"] - 8 <= 1.4 * max(row["measured_mb"], 1.0) + 4, row
