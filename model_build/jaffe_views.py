"""Training crops of jaffe_dev's posed faces, cut exactly as the service cuts them.

For each of the 108 portraits: view 0 is the crop ``meaa`` feeds the classifier (its MTCNN with the
service's settings, the largest face, ``meaa.cropping.crop_faces`` at margin 0, no alignment); the other
views re-run the detector on a perturbed copy of the photo (rescaled, slightly rotated, brightness and
contrast changed, sometimes mirrored) and crop where *it* finds the face, so the jitter is the
detector's own. The subject (file-name prefix, e.g. ``KA`` of ``KA.AN1.39``) is kept: JAFFE enters
training only under leave-one-subject-out.

    model_build/.venv/bin/python -m model_build.jaffe_views ../shared/data/jaffe_dev.npz \
        --out model_build/cache/jaffe_views.npz --views 24
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from meaa.config import Settings
from meaa.cropping import crop_faces
from meaa.detector import MTCNNDetector

CROP_SIZE = 48


def subjects_of(names: np.ndarray) -> np.ndarray:
    """JAFFE file names start with the subject's initials: ``KA.AN1.39.tiff`` -> ``KA``."""
    return np.array([str(name).split(".")[0] for name in names])


def load_jaffe(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """jaffe_dev's photos, their 7-class labels (int64) and each photo's subject."""
    with np.load(path) as jaffe:
        return jaffe["images"], jaffe["labels"].astype(np.int64), subjects_of(jaffe["names"])


def main_face_crop(bgr: np.ndarray, face_detector: MTCNNDetector, settings: Settings) -> np.ndarray | None:
    """The service's crop of the largest face (what ``MoodEstimator.analyze`` reports), or None."""
    detections = face_detector.detect_faces(bgr)
    if not len(detections):
        return None
    boxes = detections.boxes
    largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    return crop_faces(
        bgr,
        boxes[largest : largest + 1],
        detections.landmarks[largest : largest + 1],
        CROP_SIZE,
        margin=settings.crop_margin,
        align=settings.align_faces,
    )[0]


def perturb(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo as another camera might have taken it: scale, tilt, exposure, mirror."""
    height, width = gray.shape
    scale = rng.uniform(0.75, 1.3)
    angle = rng.uniform(-8, 8)
    matrix = cv2.getRotationMatrix2D(
        (width / 2 + rng.uniform(-10, 10), height / 2 + rng.uniform(-10, 10)), angle, scale
    )
    out = cv2.warpAffine(gray, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = out.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.clip(out, 0, 255).astype(np.uint8)


def build_views(images: np.ndarray, views: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 crops [N, views, 48, 48] and how many perturbed copies found no face (retried)."""
    settings = Settings()
    face_detector = MTCNNDetector(settings.models_dir, settings.detection, threads=settings.threads)
    rng = np.random.default_rng(seed)
    out = np.zeros((len(images), views, CROP_SIZE, CROP_SIZE), np.uint8)
    retries = np.zeros(len(images), np.int64)
    for index, gray in enumerate(images):
        bgr = cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2BGR)
        crop = main_face_crop(bgr, face_detector, settings)
        if crop is None:
            raise SystemExit(f"no face in jaffe image {index}: the pipeline would miss it too")
        out[index, 0] = crop
        view = 1
        while view < views:
            crop = main_face_crop(cv2.cvtColor(perturb(gray, rng), cv2.COLOR_GRAY2BGR), face_detector, settings)
            if crop is None:
                retries[index] += 1
                continue
            out[index, view] = crop
            view += 1
    return out, retries


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="jaffe_dev.npz (images, labels, names)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--views", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with np.load(args.data) as data:
        images, labels, names = data["images"], data["labels"].astype(np.uint8), data["names"]
    views, retries = build_views(images, args.views, args.seed)
    subjects = subjects_of(names)
    np.savez_compressed(args.out, views=views, labels=labels, subjects=subjects, names=names)
    summary = {
        "images": len(images),
        "views": args.views,
        "perturbed_copies_without_face": int(retries.sum()),
        "subjects": {s: int((subjects == s).sum()) for s in sorted(set(subjects))},
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
