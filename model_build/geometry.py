"""Where meaa's own detector puts the crop on each FER2013 face: the geometry for pipeline-like training crops.

FER2013's faces come pre-cropped by another detector; the service feeds the classifier meaa's MTCNN box
as a square of side max(w, h) (margin 0), centred on the box. Run here on every training face (padded
with black, as meaa pads crops outside a photo, and enlarged 2x so P-Net's 12 px window fits), the
detector gives per image the crop meaa would take: its side and centre relative to FER2013's frame.
Training (``augment.augment_batch`` with ``geometry``) then draws crops around that square with a little
jitter, so the classifier learns the framing it will be fed. Measured on fer2013_train: a face is found
in ~88 % of the images; the table says which.

    model_build/.venv/bin/python -m model_build.geometry ../shared/data/fer2013_train.npz \
        --out model_build/cache/fer2013_train_geometry.npz [--processes 2]
    # the data file itself with the geometry added as crop_found, crop_scale, crop_center (what train.py
    # and bank.py read); this is how the GPU session runs it, on its own CPU cores
    python -m model_build.geometry FIT.npz --attach --out FIT_WITH_GEOMETRY.npz --processes 10

About 33 ms per face on one core (28,709 faces: ~16 CPU-minutes).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from meaa.config import Settings
from meaa.detector import MTCNNDetector
from model_build.splits import limited_indices

PAD = 24  # px of black around the 48 px face: MTCNN needs some room around a face that fills its frame
UPSCALE = 2
PART_SIZE = 1024  # faces per saved part (about 35 CPU-seconds)


@dataclass(frozen=True)
class CropGeometry:
    """Per image: ``found``; ``scale`` = crop side / image side; ``center`` offset from the image centre
    as a fraction of the side (x, y). Rows where ``found`` is False hold scale 1 and centre 0."""

    found: np.ndarray
    scale: np.ndarray
    center: np.ndarray


def detector() -> MTCNNDetector:
    settings = Settings()
    # The faces are small after padding: let P-Net's smallest window (12 px) and any fraction through.
    detection = replace(settings.detection, min_face_px=12, min_face_fraction=0.0)
    return MTCNNDetector(settings.models_dir, detection, threads=1)


def measure(images: np.ndarray, face_detector: MTCNNDetector) -> CropGeometry:
    count, side = len(images), images.shape[1]
    found = np.zeros(count, bool)
    scale = np.ones(count, np.float32)
    center = np.zeros((count, 2), np.float32)
    for index, image in enumerate(images):
        canvas = cv2.copyMakeBorder(image, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=0)
        canvas = cv2.resize(canvas, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_LINEAR)
        detections = face_detector.detect_faces(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
        if not len(detections):
            continue
        boxes = detections.boxes[:, :4] / UPSCALE - PAD
        largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))  # meaa's main face
        x1, y1, x2, y2 = boxes[largest]
        found[index] = True
        scale[index] = max(x2 - x1, y2 - y1) / side
        center[index] = ((x1 + x2) / 2 / side - 0.5, (y1 + y2) / 2 / side - 0.5)
    return CropGeometry(found, scale, center)


def _measure_part(images: np.ndarray) -> CropGeometry:
    return measure(images, detector())


def measure_parallel(images: np.ndarray, processes: int, parts_dir: Path | None = None) -> CropGeometry:
    """``measure`` over contiguous parts of ``images`` in separate processes (one detector each). With
    ``parts_dir``, each part's result is saved there as it completes and a rerun measures only the missing ones."""
    parts = np.array_split(images, max(processes * 4, -(-len(images) // PART_SIZE)))
    results: dict[int, CropGeometry] = {}
    if parts_dir is not None:
        parts_dir.mkdir(parents=True, exist_ok=True)
        for index in range(len(parts)):
            path = parts_dir / f"part_{index:04d}_of_{len(parts)}.npz"
            if path.exists():
                with np.load(path) as saved:
                    results[index] = CropGeometry(saved["found"], saved["scale"], saved["center"])

    def keep(index: int, result: CropGeometry) -> None:
        results[index] = result
        if parts_dir is not None:
            path = parts_dir / f"part_{index:04d}_of_{len(parts)}.npz"
            np.savez(path, found=result.found, scale=result.scale, center=result.center)

    missing = [index for index in range(len(parts)) if index not in results]
    if processes <= 1:
        face_detector = detector()
        for index in missing:
            keep(index, measure(parts[index], face_detector))
    else:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            for index, result in zip(missing, pool.map(_measure_part, [parts[i] for i in missing]), strict=True):
                keep(index, result)
    ordered = [results[index] for index in range(len(parts))]
    return CropGeometry(
        np.concatenate([r.found for r in ordered]),
        np.concatenate([r.scale for r in ordered]),
        np.concatenate([r.center for r in ordered]),
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="FER-style npz (48x48 faces)")
    parser.add_argument("--out", required=True, help="npz with found [N], scale [N], center [N,2]")
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        help="smoke runs: the first N images; with --attach, train.py's seeded --limit subset",
    )
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--attach", action="store_true", help="write the data npz with the crop_* arrays added")
    args = parser.parse_args(argv)
    with np.load(args.data) as data:  # (an older geometry in the file is replaced)
        arrays = {key: data[key] for key in data.files if not key.startswith("crop_")}
    images = arrays["images"]
    if args.limit and not args.attach:
        images = images[: args.limit]
    started = time.perf_counter()
    if args.limit and args.attach:  # measure only the rows a --limit run will read; the rest: not found
        keep = limited_indices(len(images), args.limit)
        part = measure_parallel(images[keep], args.processes)
        geometry = CropGeometry(
            np.zeros(len(images), bool), np.ones(len(images), np.float32), np.zeros((len(images), 2), np.float32)
        )
        geometry.found[keep], geometry.scale[keep], geometry.center[keep] = part.found, part.scale, part.center
    else:  # parts saved beside the output as they complete: a rerun continues
        geometry = measure_parallel(images, args.processes, Path(args.out + ".parts"))
    if args.attach:
        np.savez(args.out, **arrays, crop_found=geometry.found, crop_scale=geometry.scale, crop_center=geometry.center)
    else:
        np.savez(args.out, found=geometry.found, scale=geometry.scale, center=geometry.center)
    found = geometry.found
    summary = {
        "images": len(images),
        "found": int(found.sum()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if found.any():  # (none found: every view is then the standard augmentation)
        summary["scale_p5_p50_p95"] = np.percentile(geometry.scale[found], [5, 50, 95]).round(3).tolist()
        summary["center_sd"] = geometry.center[found].std(axis=0).round(4).tolist()
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
