"""Speed and footprint of the meaa pipeline at one onnxruntime thread; prints markdown tables.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 200]

Warm latency (p50/p90 per stage) for three JPEG frames built from scikit-image's real face, cold start
measured in fresh processes (import, model load, first frame), peak RSS, and model bytes. Each
measurement runs in its own child process so one cannot warm up the other.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ("640x480 one face", "640x480 group (6 faces)", "1920x1080 one face")


def write_frames(folder: Path) -> None:
    """JPEG files of the three frames (made here, so the measured children never import scikit-image)."""
    from tests.support.images import encode
    from tests.support.sample_faces import group_frame, one_face_frame

    images = [one_face_frame(640, 480), group_frame(640, 480, columns=3, rows=2).image, one_face_frame(1920, 1080)]
    for index, image in enumerate(images):
        (folder / f"{index}.jpg").write_bytes(encode(image, ".jpg", jpeg_quality=90))


def _frame_bytes(folder: Path, name: str) -> bytes:
    return (folder / f"{FRAMES.index(name)}.jpg").read_bytes()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def child_warm(folder: Path, repeats: int) -> dict:
    from meaa import MoodEstimator

    estimator = MoodEstimator()
    results = {}
    for name in FRAMES:
        data = _frame_bytes(folder, name)
        for _ in range(10):
            estimator.analyze(data)
        stages: dict[str, list[float]] = {"decode": [], "detect": [], "classify": [], "total": []}
        faces = 0
        for _ in range(repeats):
            analysis = estimator.analyze(data)
            faces = len(analysis.faces)
            timings = analysis.timings_ms
            stages["decode"].append(timings["decode"])
            stages["detect"].append(timings["detect"])
            stages["classify"].append(timings["classify"])
            stages["total"].append(timings["detect"] + timings["classify"])  # end to end without decode
        results[name] = {
            "faces": faces,
            **{stage: (_percentile(v, 0.5), _percentile(v, 0.9)) for stage, v in stages.items()},
        }
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def child_cold(folder: Path) -> dict:
    started = time.perf_counter()
    import cv2  # noqa: F401
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    from meaa import MoodEstimator

    imported = time.perf_counter()
    data = _frame_bytes(folder, FRAMES[0])
    prepared = time.perf_counter()
    estimator = MoodEstimator()
    estimator.model_version  # forces the model load
    loaded = time.perf_counter()
    estimator.analyze(data)
    first = time.perf_counter()
    return {
        "import_ms": (imported - started) * 1000,
        "load_ms": (loaded - prepared) * 1000,
        "first_frame_ms": (first - loaded) * 1000,
        "cold_ms": (first - started - (prepared - imported)) * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _run_child(mode: str, folder: Path, *args: str) -> dict:
    env = {**os.environ, "MEAA_THREADS": os.environ.get("MEAA_THREADS", "1"), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers"), str(ROOT)])
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--frames", str(folder), *args], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--child", choices=["warm", "cold"], help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "warm":
        print(json.dumps(child_warm(args.frames, args.repeats)))
        return
    if args.child == "cold":
        print(json.dumps(child_cold(args.frames)))
        return
    sys.path[:0] = [str(ROOT), str(ROOT / "layers")]
    with tempfile.TemporaryDirectory() as tmp:
        write_frames(Path(tmp))
        report(Path(tmp), args)


def report(folder: Path, args: argparse.Namespace) -> None:

    threads = os.environ.get("MEAA_THREADS", "1")
    warm = _run_child("warm", folder, "--repeats", str(args.repeats))
    print(f"Warm latency, ms (p50 / p90 over {args.repeats} runs, MEAA_THREADS={threads}, JPEG input)\n")
    print("| frame | faces | decode | detect | classify | total without decode |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in FRAMES:
        row = warm[name]
        cells = " | ".join(f"{row[s][0]:.1f} / {row[s][1]:.1f}" for s in ("decode", "detect", "classify", "total"))
        print(f"| {name} | {row['faces']} | {cells} |")

    colds = [_run_child("cold", folder) for _ in range(args.cold_runs)]
    print(f"\nCold start in a fresh process, ms (median of {args.cold_runs})\n")
    print("| import numpy+cv2+onnxruntime+meaa | load models | first 640x480 frame | cold start total | peak RSS (cold) |")
    print("| --- | --- | --- | --- | --- |")
    med = {key: statistics.median(c[key] for c in colds) for key in colds[0]}
    print(
        f"| {med['import_ms']:.0f} | {med['load_ms']:.0f} | {med['first_frame_ms']:.0f} | {med['cold_ms']:.0f} |"
        f" {med['peak_rss_mb']:.0f} MB |"
    )

    from meaa.classifier import load_manifest
    from meaa.config import Settings

    models = load_manifest(Settings().models_dir)["models"]
    total = sum(entry["bytes"] for entry in models.values())
    print(f"\nPeak RSS after all warm runs: {warm['peak_rss_mb']:.0f} MB")
    print("\n| model | bytes |\n| --- | --- |")
    for name, entry in models.items():
        print(f"| {entry['file']} | {entry['bytes']:,} |")
    print(f"| total | {total:,} ({total / 1e6:.2f} MB) |")


if __name__ == "__main__":
    main()
