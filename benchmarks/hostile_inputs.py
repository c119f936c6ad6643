"""CPU time and peak RSS of every hostile input (devkit/hostile_inputs.py), each in its own process; prints tables.

    .venv/bin/python -m benchmarks.hostile_inputs [--categories jpeg_scans,png_bombs] [--no-layouts]

Each input runs in a fresh child process that first loads and warms the models (like a Lambda function after
init), then makes the input's bytes, resets the peak RSS and runs ``MoodEstimator().analyze`` (videos:
``VideoSampler`` plus ``analyze`` on each sampled frame). Per category: the outcomes, the slowest input's CPU
seconds and the largest peak RSS (and its growth over the warm process, added to the 230 MB a function
process holds with its models), beside a normal request measured in the same run (a 640x480 selfie JPEG)
and the budget (5 s of CPU, 512 MB peak RSS). Then the decode memory model against measurement, per decoder
layout, at 4 and 8 Mpx, with the bytes per pixel each implies.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from devkit.hostile_inputs import (
    BUDGET_CPU_S,
    BUDGET_RSS_MB,
    LAMBDA_BASELINE_MB,
    REFERENCE,
    catalogue,
    categories,
    selfie_jpeg,
)

ROOT = Path(__file__).resolve().parents[1]


def _child(*args: str, module: str = "devkit.hostile_inputs") -> dict | list:
    """The last line of ``python -m module *args`` in a fresh process, as JSON."""
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_input(category: str, name: str, selfie: Path) -> dict:
    report = _child("--category", category, "--only", name, "--selfie", str(selfie))
    return {**report["results"][0], "baseline_rss_mb": report["baseline_rss_mb"]}


def flat_extremes() -> list[tuple[str, int, int]]:
    """(image, bytes its data holds, the least the checks accept) for real flat images from OpenCV's encoders:
    the data checks must never refuse these."""
    import cv2
    import numpy as np

    from meaa.config import DecodeSettings
    from meaa.decoding import EncodedImage

    rows = []
    gray = np.full((7000, 7000), 128, np.uint8)
    for label, image, params in [
        ("JPEG 7000x7000 flat gray, q95", gray, [cv2.IMWRITE_JPEG_QUALITY, 95]),
        (
            "JPEG 7000x7000 flat colour 4:2:0, q50",
            cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 50],
        ),
        ("JPEG 7000x7000 flat gray, progressive", gray, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    ]:
        data = cv2.imencode(".jpg", image, params)[1].tobytes()
        layout = EncodedImage.parse(data, DecodeSettings())._layout
        header = EncodedImage.parse(data, DecodeSettings()).header
        for scan in layout.scans:
            if layout.progressive and scan.spectral_start > 0:
                continue
            blocks = sum(
                layout.blocks(c, header.width, header.height)[0] * layout.blocks(c, header.width, header.height)[1]
                for c in layout.components
                if c.ident in scan.components
            )
            needed = -(-blocks * (1 if layout.progressive else 2) // 8)
            kind = ("DC refinement scan" if scan.successive_high else "DC scan") if layout.progressive else "scan"
            rows.append((f"{label}: {kind} of components {list(scan.components)}", scan.data_bytes, needed))
    for label, data in [
        ("PNG 7000x7000 flat gray, OpenCV's default compression", cv2.imencode(".png", gray)[1].tobytes()),
        (
            "PNG 7000x7000 flat gray, zlib level 9",
            cv2.imencode(".png", gray, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes(),
        ),
    ]:
        idat = sum(
            int.from_bytes(data[pos : pos + 4], "big")
            for pos in range(8, len(data))
            if data[pos + 4 : pos + 8] == b"IDAT" and pos >= 8
        )
        rows.append((label, idat, 7000 * (1 + 7000) // 1032))
    return rows


# Inputs also measured through plain cv2.imdecode (what decoding did before the checks), for comparison.
PLAIN_OPENCV = [
    ("jpeg_scans", "progressive_7000x7000_1000_scans"),
    ("jpeg_scans", "progressive_7000x7000_3000_scans"),
    ("jpeg_header_lies", "claims_7000x7000_holds_16x16"),
    ("png_bombs", "rgba8_7000x7000"),
    ("png_bombs", "rgba16_7000x7000"),
    ("png_bombs", "palette_trns_7000x7000"),
    ("png_bombs", "rgb8_7000x7000"),
    ("png_chunks", "100_ztxt_bombs_of_7mb"),
    ("png_chunks", "apng_3000x3000_10_frames"),
]


def child_plain_opencv(category: str, name: str) -> dict:
    """CPU seconds and peak RSS growth of cv2.imdecode on one input, with the flags decoding used before."""
    import cv2
    import numpy as np

    from devkit.hostile_inputs import release_freed_memory, status_mb

    item = next(i for i in catalogue() if (i.category, i.name) == (category, name))
    data = item.make()
    flags = (
        cv2.IMREAD_UNCHANGED if data[:4] in (b"\x89PNG", b"RIFF") else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    release_freed_memory()
    Path("/proc/self/clear_refs").write_text("5")
    before = status_mb("VmRSS")
    started = time.process_time()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    return {
        "cpu_s": time.process_time() - started,
        "peak_growth_mb": status_mb("VmHWM") - before,
        "shape": None if image is None else list(image.shape),
    }


def _videos_to_open() -> list[tuple[str, bytes]]:
    import cv2
    import numpy as np

    from devkit.hostile_inputs import flat_jpeg, mjpeg_avi

    giant = flat_jpeg(16000, 16000, 3)
    videos = [
        ("MJPEG AVI, one 16000x16000 frame", mjpeg_avi([giant], 16000, 16000)),
        ("MJPEG AVI declaring 64x48, one 16000x16000 frame", mjpeg_avi([giant], 16000, 16000, header_size=(64, 48))),
        ("MJPEG AVI, 8000x8000 frames", mjpeg_avi([flat_jpeg(8000, 8000, 3)] * 2, 8000, 8000)),
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "big.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (8000, 8000))
        frame = np.full((8000, 8000, 3), 90, np.uint8)
        for _ in range(2):
            writer.write(frame)
        writer.release()
        del frame
        videos.append(("MPEG-4 (mp4v) MP4, 8000x8000 frames", Path(path).read_bytes()))
    return videos


def child_video_open(path: str) -> dict:
    """Peak RSS growth of opening a video with plain OpenCV, of reading its first frame, and of VideoSampler."""
    import cv2

    from devkit.hostile_inputs import release_freed_memory, status_mb
    from meaa.config import DecodeSettings, VideoSettings
    from meaa.errors import MeaaError
    from meaa.video import VideoSampler

    def growth(action) -> tuple[float, str]:
        release_freed_memory()
        Path("/proc/self/clear_refs").write_text("5")
        before = status_mb("VmRSS")
        try:
            outcome = action()
        except MeaaError as error:
            outcome = error.code
        return status_mb("VmHWM") - before, outcome

    capture: list = []
    opened = growth(lambda: (capture.append(cv2.VideoCapture(path)), "opened")[1])
    frame = growth(lambda: f"frame {capture[0].read()[1].shape[1::-1]}")
    capture.clear()

    def sample() -> str:
        with VideoSampler(path, 2.0, VideoSettings(), DecodeSettings()) as sampler:
            return f"{sum(1 for _ in sampler.frames())} frames"

    sampled = growth(sample)
    return {"open": opened, "first_frame": frame, "sampler": sampled}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--categories", help="comma-separated categories (default: all)")
    parser.add_argument("--no-layouts", action="store_true", help="skip the decode memory model table")
    parser.add_argument("--child-video", help=argparse.SUPPRESS)
    parser.add_argument("--child-plain", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_video:
        print(json.dumps(child_video_open(args.child_video)))
        return
    if args.child_plain:
        print(json.dumps(child_plain_opencv(*args.child_plain)))
        return
    selfie = Path(tempfile.mkdtemp()) / "selfie.jpg"
    selfie.write_bytes(selfie_jpeg())
    print_categories(args.categories.split(",") if args.categories else categories(), selfie)
    print_plain_opencv(selfie)
    print_flat_extremes()
    print_videos()
    if not args.no_layouts:
        print_layouts()


def _growth(result: dict) -> float:
    return result["peak_rss_mb"] - result["baseline_rss_mb"]


def print_categories(chosen: list[str], selfie: Path) -> None:
    """Per category: the slowest input and the largest peak RSS, with ratios to a selfie's in the same run."""
    reference = run_input(REFERENCE.category, REFERENCE.name, selfie)
    print(
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; one process per input; "
        f"warm process before each input: {reference['baseline_rss_mb']:.0f} MB RSS\n"
    )
    print(
        "| category | inputs | outcomes | slowest input | CPU s | x reference | largest peak RSS | peak MB | "
        "growth MB | in a 230 MB function |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| reference: {REFERENCE.name} | 1 | {reference['outcome']} | | {reference['cpu_s']:.3f} | 1.0 | | "
        f"{reference['peak_rss_mb']:.0f} | {_growth(reference):.0f} | {LAMBDA_BASELINE_MB + _growth(reference):.0f} |"
    )
    worst_cpu, worst_rss, mismatches = 0.0, 0.0, []
    for category in chosen:
        items = [item for item in catalogue() if item.category == category]
        results = []
        for item in items:
            result = run_input(category, item.name, selfie)
            results.append(result)
            if result["outcome"] not in item.expected:
                mismatches.append(f"{category}/{item.name}: {result['outcome']} (expected {item.expected})")
        slowest = max(results, key=lambda r: r["cpu_s"])
        largest = max(results, key=_growth)
        worst_cpu, worst_rss = max(worst_cpu, slowest["cpu_s"]), max(worst_rss, _growth(largest))
        outcomes = ", ".join(f"{count} {outcome}" for outcome, count in Counter(r["outcome"] for r in results).items())
        print(
            f"| {category} | {len(items)} | {outcomes} | {slowest['name']} | {slowest['cpu_s']:.2f} | "
            f"{slowest['cpu_s'] / reference['cpu_s']:.1f} | {largest['name']} | {largest['peak_rss_mb']:.0f} | "
            f"{_growth(largest):.0f} | {LAMBDA_BASELINE_MB + _growth(largest):.0f} |"
        )
    print(f"| **budget** | | | | **{BUDGET_CPU_S:.0f}** | | | | | **{BUDGET_RSS_MB}** |")
    print(
        f"\nWorst over all inputs: {worst_cpu:.2f} CPU s, {worst_rss:.0f} MB of peak RSS growth over the warm process."
    )
    if mismatches:
        print("Unexpected outcomes:\n" + "\n".join(mismatches))


def print_plain_opencv(selfie: Path) -> None:
    print("\nThe same bytes through plain cv2.imdecode (no checks, decoder only), each in a fresh process\n")
    print("| input | plain cv2.imdecode: CPU s / peak RSS growth MB | meaa: outcome, CPU s / peak RSS growth MB |")
    print("| --- | --- | --- |")
    for category, name in PLAIN_OPENCV:
        plain = _child("--child-plain", category, name, module="benchmarks.hostile_inputs")
        ours = run_input(category, name, selfie)
        print(
            f"| {category}/{name} | {plain['cpu_s']:.2f} / {plain['peak_growth_mb']:.0f} | {ours['outcome']}, "
            f"{ours['cpu_s']:.2f} / {ours['peak_rss_mb'] - ours['rss_before_mb']:.0f} |"
        )


def print_flat_extremes() -> None:
    print("\nReal flat images against the data checks (bytes present / the least accepted: 1 or more is accepted)\n")
    print("| image | data bytes | least accepted | ratio |")
    print("| --- | --- | --- | --- |")
    for label, present, needed in flat_extremes():
        print(f"| {label} | {present:,} | {needed:,} | {present / needed:.1f} |")


def print_videos() -> None:
    print("\nVideos: peak RSS growth (MB) of cv2.VideoCapture(path) alone, of its first read(), and of VideoSampler\n")
    print("| video | file bytes | open | first frame | VideoSampler (outcome) |")
    print("| --- | --- | --- | --- | --- |")
    for name, data in _videos_to_open():
        with tempfile.NamedTemporaryFile(suffix=".avi" if data[:4] == b"RIFF" else ".mp4") as handle:
            handle.write(data)
            handle.flush()
            cost = _child("--child-video", handle.name, module="benchmarks.hostile_inputs")
        print(
            f"| {name} | {len(data):,} | {cost['open'][0]:.0f} | {cost['first_frame'][0]:.0f} | "
            f"{cost['sampler'][0]:.0f} ({cost['sampler'][1]}) |"
        )


def print_layouts() -> None:
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
