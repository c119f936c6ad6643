"""Time the batch scorer per sampled video frame and turn it into Lambda cost per 1000 frames.

Runs the real handler (imported from template.yaml like Lambda) on a generated selfie video in moto's
in-process S3/DynamoDB, one onnxruntime thread (MEAA_THREADS=1, as deployed). Prints per-frame times
(whole handler, and the model alone), the peak RSS of the process, and the cost table, which is based on
the handler's CPU time (the wall time is printed too: on a shared machine it also counts other processes).
The handler follows faces between full detections (``MoodEstimator.analyze_frames``, through
``meaa.video_scoring``); the model's time on the same sampled frames with and without following is printed
beside it, to show what following saves.

Usage::

    python -m benchmarks.batch_cost [--seconds 20] [--fps 30] [--sample-fps 2] [--size 640x480]   (repo root)

Cost model: Lambda bills GB-seconds. A single-threaded CPU-bound frame takes t seconds on one full
vCPU (1769 MB); below that Lambda gives a proportional share of a vCPU, so the time grows as
1769 / memory and the GB-seconds per frame stay about the same; above it the second vCPU idles.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
import cv2
import numpy as np
from moto import mock_aws

from devkit.aws import BUCKET, TABLE, all_items, create_results_table, event_for, put_object
from devkit.lambda_loader import lambda_context, load_handler
from devkit.sample_faces import one_face_frame
from meaa.config import Settings

# us-east-1 list prices (check https://aws.amazon.com/lambda/pricing/ and /dynamodb/pricing/).
ARM64_GB_SECOND_USD = 0.0000133334
X86_GB_SECOND_USD = 0.0000166667
REQUEST_USD = 0.20 / 1_000_000
DYNAMODB_WRITE_UNIT_USD = 0.625 / 1_000_000  # on-demand, per write request unit (1 KB)
FULL_VCPU_MB = 1769


def write_video(path: Path, seconds: float, fps: int, width: int, height: int) -> None:
    face = one_face_frame(width, height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for index in range(int(seconds * fps)):
        # A hand-held clip: small drift so consecutive frames differ.
        writer.write(np.roll(face, (index % 9) - 4, axis=1))
    writer.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--memory-mb", type=int, nargs="+", default=[1024, 1769, 3008])
    parser.add_argument(
        "--redetect-every",
        type=int,
        default=Settings().video_scoring.redetect_every,
        help="analyze_frames' full-detection period (default: the service's)",
    )
    args = parser.parse_args(argv)
    width, height = (int(part) for part in args.size.split("x"))

    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's fake account
        MEAA_TABLE_NAME=TABLE,
        MEAA_VIDEO_SAMPLE_FPS=str(args.sample_fps),
        MEAA_THREADS="1",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with tempfile.TemporaryDirectory() as scratch, mock_aws():
        video_path = Path(scratch) / "clip.mp4"
        write_video(video_path, args.seconds, args.fps, width, height)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        create_results_table(boto3.client("dynamodb"))
        handler = load_handler("BatchFunction")
        from meaa import MoodEstimator

        estimator = MoodEstimator()
        frame = one_face_frame(width, height)
        estimator.analyze(frame)  # load the models outside the timings
        model_ms = []
        for _ in range(20):
            started = time.process_time()
            estimator.analyze(frame)
            model_ms.append((time.process_time() - started) * 1000)

        entry = put_object(s3, "incoming/bench/s1/clip.mp4", video_path.read_bytes())
        started, started_cpu = time.perf_counter(), time.process_time()
        answer = handler(event_for([entry]), lambda_context("BatchFunction", timeout_s=900.0))
        handler_s, handler_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
        items = all_items(boto3.resource("dynamodb"))

        # The model alone on the sampled frames: each frame alone (full detection on every frame)
        # against MoodEstimator.analyze_frames, which follows the faces from frame to frame (what the handler
        # does; interleaved).
        from meaa.video import VideoSampler

        caps = estimator.settings
        with VideoSampler(str(video_path), args.sample_fps, caps.video, caps.decoding) as sampler:
            sampled = [frame.image for frame in sampler.frames()]
        following = estimator.analyze_frames(sampled, redetect_every=args.redetect_every)
        alone_ms, tracked_ms = [], []
        for image in sampled:
            started = time.process_time()
            estimator.analyze(image)
            alone_ms.append((time.process_time() - started) * 1000)
            started = time.process_time()
            next(following)
            tracked_ms.append((time.process_time() - started) * 1000)

    frames = answer["outcomes"][0]["frames_sampled"]
    frame_items = [item for item in items if item["kind"] == "frame"]
    item_kb = statistics.mean(len(str(item)) for item in frame_items) / 1024
    # The handler is CPU-bound on one thread (moto runs in process), so its CPU time is what a dedicated Lambda
    # vCPU would take; wall time on a shared benchmark machine also counts other processes' turns.
    per_frame_s = handler_cpu_s / frames
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"video: {args.seconds:g} s, {args.fps} fps, {width}x{height}, mp4v; sampled at {args.sample_fps:g} fps")
    print(
        f"frames scored: {frames}; handler: {handler_cpu_s:.2f} s of CPU = {per_frame_s * 1000:.1f} ms per sampled "
        f"frame ({handler_s:.2f} s wall, load average {os.getloadavg()[0]:.1f})"
    )
    print("  (includes decoding every frame of the video, the model and moto's DynamoDB writes)")
    print(
        f"model alone (MoodEstimator.analyze on a {width}x{height} frame, 1 thread), CPU time: "
        f"p50 {statistics.median(model_ms):.1f} ms"
    )
    print(
        f"model on the {len(sampled)} sampled frames, mean CPU per frame: "
        f"each alone (full detection) {statistics.fmean(alone_ms):.1f} ms, "
        f"analyze_frames (tracking, full detection every {args.redetect_every}) {statistics.fmean(tracked_ms):.1f} ms"
    )
    print(f"frame item size: ~{item_kb:.1f} KB -> {int(np.ceil(item_kb))} write units per frame")
    print(f"peak RSS of this process: {peak_rss_mb:.0f} MB (includes moto and the test tooling)")
    print()
    print(
        "| memory MB | est. s per frame | GB-s per 1000 frames | arm64 USD per 1000 frames "
        "| x86_64 USD per 1000 frames |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    write_usd = int(np.ceil(item_kb)) * DYNAMODB_WRITE_UNIT_USD * 1000
    for memory in args.memory_mb:
        stretch = max(1.0, FULL_VCPU_MB / memory)
        seconds = per_frame_s * stretch
        gb_seconds = 1000 * seconds * memory / 1024
        print(
            f"| {memory} | {seconds:.3f} | {gb_seconds:.1f} | {gb_seconds * ARM64_GB_SECOND_USD:.5f} "
            f"| {gb_seconds * X86_GB_SECOND_USD:.5f} |"
        )
    print()
    print(
        f"plus DynamoDB on-demand writes: {write_usd:.5f} USD per 1000 frame items; "
        f"invocations: {REQUEST_USD * 1000 / max(frames, 1):.7f} USD per 1000 frames at {frames} frames per video"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
