"""CPU time and peak RSS of every hostile input (tests/hostile_inputs.py), each in its own process; prints tables.

    .venv/bin/python -m benchmarks.hostile_inputs [--categories jpeg_scans,png_bombs] [--no-layouts]

Each input runs in a fresh child process that first loads and warms the models (like a Lambda function after
init), then makes the input's bytes, resets the peak RSS and runs ``MoodEstimator().analyze`` (videos:
``VideoSampler`` plus ``analyze`` on each sampled frame). Per category: the outcomes, the slowest input's CPU
seconds and the largest peak RSS, beside a normal request measured in the same run (a 640x480 selfie JPEG)
and the budget (5 s of CPU, 512 MB peak RSS). Then the decode memory model against measurement, per decoder
layout, at 4 and 8 Mpx, with the bytes per pixel each implies.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.hostile_inputs import BUDGET_CPU_S, BUDGET_RSS_MB, REFERENCE, catalogue, categories

ROOT = Path(__file__).resolve().parents[1]


def _child(*args: str) -> dict | list:
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile_inputs", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_input(category: str, name: str) -> dict:
    report = _child("--category", category, "--only", name)
    return {**report["results"][0], "baseline_rss_mb": report["baseline_rss_mb"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--categories", help="comma-separated categories (default: all)")
    parser.add_argument("--no-layouts", action="store_true", help="skip the decode memory model table")
    args = parser.parse_args(argv)
    chosen = args.categories.split(",") if args.categories else categories()

    reference = run_input(REFERENCE.category, REFERENCE.name)
    print(
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; one process per input; "
        f"warm process before each input: {reference['baseline_rss_mb']:.0f} MB RSS\n"
    )
    print("| category | inputs | outcomes | slowest input | CPU s | x reference | largest peak RSS | MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| reference: {REFERENCE.name} | 1 | {reference['outcome']} | | {reference['cpu_s']:.3f} | 1.0 | | "
        f"{reference['peak_rss_mb']:.0f} |"
    )
    worst_cpu, worst_rss, mismatches = 0.0, 0.0, []
    for category in chosen:
        items = [item for item in catalogue() if item.category == category]
        results = []
        for item in items:
            result = run_input(category, item.name)
            results.append(result)
            if result["outcome"] not in item.expected:
                mismatches.append(f"{category}/{item.name}: {result['outcome']} (expected {item.expected})")
        slowest = max(results, key=lambda r: r["cpu_s"])
        largest = max(results, key=lambda r: r["peak_rss_mb"])
        worst_cpu, worst_rss = max(worst_cpu, slowest["cpu_s"]), max(worst_rss, largest["peak_rss_mb"])
        outcomes = ", ".join(f"{count} {outcome}" for outcome, count in Counter(r["outcome"] for r in results).items())
        print(
            f"| {category} | {len(items)} | {outcomes} | {slowest['name']} | {slowest['cpu_s']:.2f} | "
            f"{slowest['cpu_s'] / reference['cpu_s']:.1f} | {largest['name']} | {largest['peak_rss_mb']:.0f} |"
        )
    print(f"| **budget** | | | | **{BUDGET_CPU_S:.0f}** | | | **{BUDGET_RSS_MB}** |")
    print(f"\nWorst over all inputs: {worst_cpu:.2f} CPU s, {worst_rss:.0f} MB peak RSS.")
    if mismatches:
        print("Unexpected outcomes:\n" + "\n".join(mismatches))

    if args.no_layouts:
        return
    print(
        "\nDecode memory, model (EncodedImage.decode_bytes, what MEAA_MAX_DECODE_BYTES is checked against) vs "
        "peak RSS growth of the decode, photo-like images\n"
    )
    print("| layout | 4 Mpx: measured / model MB | 8 Mpx: measured / model MB | B/px measured / model |")
    print("| --- | --- | --- | --- |")
    small, large = _child("--layouts", "--layout-size", "1600x2500"), _child("--layouts", "--layout-size", "3200x2500")
    pixels = 2500 * (3200 - 1600)
    for a, b in zip(small, large, strict=True):
        measured_slope = (b["measured_mb"] - a["measured_mb"]) * 2**20 / pixels
        model_slope = (b["model_mb"] - a["model_mb"]) * 2**20 / pixels
        print(
            f"| {a['layout']} | {a['measured_mb']:.1f} / {a['model_mb']:.1f} | {b['measured_mb']:.1f} / "
            f"{b['model_mb']:.1f} | {measured_slope:.2f} / {model_slope:.2f} |"
        )


if __name__ == "__main__":
    main()
