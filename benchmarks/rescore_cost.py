"""What a re-score costs per million frames and how long it takes: the batch handler's map-item entry timed here,
AWS's list prices applied (README, "Re-scoring the archive").

On moto (in process, one onnxruntime thread as deployed), ``--images`` 640x480 face photos and one ``--seconds``
video are first scored by the old model (``--old-model``, through their S3 events), then re-scored with the
deployed default model through the map items the state machine hands the batch function
(``meaa_batch.handler.rescore_listed``), then once more (every object found done: what a repeated run costs).
The CPU time of each is Lambda's billed duration at one full vCPU (1769 MB); Step Functions' own work is not
measurable here and is priced, not timed.

Usage::

    python -m benchmarks.rescore_cost [--images 20] [--seconds 20] [--concurrency 5 50 200]   (repo root)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from benchmarks.batch_cost import ARM64_GB_SECOND_USD, DYNAMODB_WRITE_UNIT_USD, FULL_VCPU_MB, REQUEST_USD, write_video
from devkit.aws import BUCKET, all_items, create_drop_bucket_and_tables, event_for, face_jpeg, moto_environment
from devkit.lambda_loader import lambda_context, load_handler
from meaa import store

# us-east-1 list prices, read 2026-12-07 from https://aws.amazon.com/step-functions/pricing/,
# /dynamodb/pricing/on-demand/ and /s3/pricing/ (Lambda's and DynamoDB's writes: benchmarks.batch_cost).
STATE_TRANSITION_USD = 0.025 / 1000  # Standard workflows
DYNAMODB_READ_UNIT_USD = 0.125 / 1_000_000  # on-demand, per read request unit (4 KB strongly consistent)
S3_GET_USD = 0.0004 / 1000  # GET and HEAD
# Per listed object: the child execution's start and its one Task state (each retry adds one).
TRANSITIONS_PER_ITEM = 2
# Per scored object: HEAD + GET of the object; reads: the RESULT lookups (2 strongly consistent GetItems, new and
# legacy key) and the first-time Query; claims: Powertools writes its record twice (in progress, completed).
S3_REQUESTS_PER_ITEM = 2
CLAIM_WRITE_UNITS = 2
LOOKUP_READ_UNITS = 3


@dataclass(frozen=True)
class Measured:
    """CPU seconds per object of one kind and the write units its items take."""

    label: str
    frames_per_item: int
    cpu_s: float  # per object, re-scored with the new model
    duplicate_cpu_s: float  # per object, found done
    write_units: int  # the RESULT (table and index) and the FRAME items

    def usd_per_million_frames(self) -> dict[str, float]:
        items = 1_000_000 / self.frames_per_item
        gb_seconds = self.cpu_s * FULL_VCPU_MB / 1024
        writes = (self.write_units + CLAIM_WRITE_UNITS) * DYNAMODB_WRITE_UNIT_USD
        return {
            "Step Functions": items * TRANSITIONS_PER_ITEM * STATE_TRANSITION_USD,
            "Lambda": items * (gb_seconds * ARM64_GB_SECOND_USD + REQUEST_USD),
            "DynamoDB": items * (writes + LOOKUP_READ_UNITS * DYNAMODB_READ_UNIT_USD),
            "S3": items * S3_REQUESTS_PER_ITEM * S3_GET_USD,
        }


def _write_units(item: dict[str, Any]) -> int:
    """Write units of one item (1 per KB, rounded up; its JSON is a close stand-in for DynamoDB's size)."""
    return math.ceil(len(json.dumps(store.from_dynamodb(item))) / 1024)


def _map_item(key: str, etag: str, size: int) -> dict[str, Any]:
    listed = {"Key": key, "Etag": f'"{etag}"', "Size": size, "LastModified": int(time.time())}
    return {"source": "meaa.rescore", "bucket": BUCKET, "object": listed, "since": None}


def _cpu_per_item(handler: Any, items: list[dict[str, Any]], expected: str) -> float:
    spent = []
    for item in items:
        started = time.process_time()
        outcome = handler(item, lambda_context("BatchFunction", timeout_s=900.0))
        spent.append(time.process_time() - started)
        assert outcome["status"] == expected, outcome
    return statistics.fmean(spent)


def measure(images: int, seconds: float, old_model: str, scratch: Path) -> list[Measured]:
    s3 = boto3.client("s3")
    create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
    video_path = scratch / "clip.mp4"
    write_video(video_path, seconds, 30, 640, 480)
    uploads = {f"incoming/bench/s1/photo-{index:03d}.jpg": face_jpeg() for index in range(images)}
    uploads["incoming/bench/s1/clip.mp4"] = video_path.read_bytes()
    entries = {}
    for key, body in uploads.items():
        etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
        entries[key] = {"bucket": BUCKET, "key": key, "etag": etag, "size": len(body)}
    os.environ["MEAA_MOOD_MODEL"] = old_model
    old = load_handler("BatchFunction")
    for entry in entries.values():
        old(event_for([entry]), lambda_context("BatchFunction", timeout_s=900.0))
    del os.environ["MEAA_MOOD_MODEL"]
    new = load_handler("BatchFunction")
    photos = [_map_item(e["key"], e["etag"], e["size"]) for k, e in entries.items() if k.endswith(".jpg")]
    video = [_map_item(e["key"], e["etag"], e["size"]) for k, e in entries.items() if k.endswith(".mp4")]
    new(photos[0], lambda_context("BatchFunction"))  # load the new model outside the timings
    photo_cpu = _cpu_per_item(new, photos[1:], "scored")
    video_cpu = _cpu_per_item(new, video, "scored")
    photo_again, video_again = _cpu_per_item(new, photos, "duplicate"), _cpu_per_item(new, video, "duplicate")
    written = [item for item in all_items(boto3.resource("dynamodb")) if item["sk"].startswith(store.MODEL_PREFIX)]
    version = written[0]["model_version"] if written else ""
    ours = [item for item in written if item["model_version"] == version]
    photo_items = [item for item in ours if item["key"].endswith(".jpg") and item["kind"] != "frame"]
    video_items = [item for item in ours if item["key"].endswith(".mp4")]
    frames = sum(1 for item in video_items if item["kind"] == "frame")
    photo_units = 2 * statistics.mode(_write_units(item) for item in photo_items)  # the table and the index
    video_units = sum(_write_units(item) * (2 if item["kind"] != "frame" else 1) for item in video_items)
    return [
        Measured("640x480 photos", 1, photo_cpu, photo_again, photo_units),
        Measured(f"{seconds:g} s videos at 2 fps", frames, video_cpu, video_again, video_units),
    ]


def _print_tables(measured: list[Measured], concurrency: list[int]) -> None:
    print("| object | frames per object | CPU s per object (re-scored) | CPU s per object (found done) | write units |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in measured:
        print(
            f"| {kind.label} | {kind.frames_per_item} | {kind.cpu_s:.3f} | {kind.duplicate_cpu_s:.3f} "
            f"| {kind.write_units} |"
        )
    print()
    parts = list(measured[0].usd_per_million_frames())
    print("| USD per million frames | " + " | ".join(parts) + " | total |")
    print("| --- |" + " ---: |" * (len(parts) + 1))
    for kind in measured:
        usd = kind.usd_per_million_frames()
        print(f"| {kind.label} | " + " | ".join(f"{usd[part]:.2f}" for part in parts) + f" | {sum(usd.values()):.2f} |")
    print()
    print("| hours per million frames at MaxConcurrency | " + " | ".join(str(c) for c in concurrency) + " |")
    print("| --- |" + " ---: |" * len(concurrency))
    for kind in measured:
        hours = [1_000_000 / kind.frames_per_item * kind.cpu_s / c / 3600 for c in concurrency]
        print(f"| {kind.label} | " + " | ".join(f"{value:.1f}" for value in hours) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--old-model", default="emotion", help="the model the objects were first scored with")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[5, 50, 200])
    args = parser.parse_args(argv)
    for name, value in moto_environment().items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    os.environ.update(MEAA_THREADS="1", POWERTOOLS_LOG_LEVEL="WARNING")
    with tempfile.TemporaryDirectory() as scratch, mock_aws():
        measured = measure(args.images, args.seconds, args.old_model, Path(scratch))
    print(f"on moto, this machine's CPU, load average {os.getloadavg()[0]:.1f}; arm64 Lambda at {FULL_VCPU_MB} MB")
    _print_tables(measured, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
