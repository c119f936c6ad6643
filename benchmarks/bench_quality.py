"""What the face quality gate costs per face, beside the classifier it guards; prints a markdown table.

    .venv/bin/python -m benchmarks.bench_quality [--repeats 2000]

For the astronaut's face photographed at several sizes (the photo scaled), the median time of
``meaa.quality.measure_face`` (patch statistics + head pose), of the classifier's crop
(``meaa.cropping.crop_faces``) and of classifying that one crop (``MoodClassifier.predict``), all at one
thread in this process; the last column is quality's time over the classifier's, measured in the same
run so a busy machine moves both.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

from devkit.sample_faces import astronaut_bgr
from meaa.classifier import MoodClassifier
from meaa.config import Settings
from meaa.cropping import crop_faces
from meaa.quality import measure_face

# The astronaut's face in the 512x512 photo: MTCNN's box and five points, rounded.
BOX = np.array([179.0, 60.0, 269.0, 173.0])
POINTS = np.array([[204.6, 101.1], [247.0, 103.2], [224.9, 129.5], [201.0, 139.7], [245.5, 142.4]])
FACE_SIDES = (48, 90, 180, 360, 540)


def median_us(call: Callable[[], object], repeats: int) -> float:
    for _ in range(min(50, repeats)):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    settings = Settings()
    classifier = MoodClassifier.from_manifest(settings.models_dir, settings.mood_model, threads=1)
    photo = astronaut_bgr()
    model = f"{settings.mood_model} ({classifier.input_size} px)"
    print(f"one thread; median of {args.repeats} calls; mood model {model}\n")
    print("| face (short side) | photo | quality (us) | crop (us) | classify one crop (us) | quality / classify |")
    print("| --- | --- | --- | --- | --- | --- |")
    for side in FACE_SIDES:
        factor = side / float(BOX[3] - BOX[1])
        image = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
        box, points = BOX * factor, POINTS * factor
        size = classifier.input_size
        crops = crop_faces(image, box[None], points[None], size, margin=0.0, align=False)
        quality = median_us(partial(measure_face, image, box, points, 0.99), args.repeats)
        cut = partial(crop_faces, image, box[None], points[None], size, margin=0.0, align=False)
        crop = median_us(cut, args.repeats)
        classify = median_us(partial(classifier.predict, crops), args.repeats)
        height, width = image.shape[:2]
        ratio = quality / classify
        print(f"| {side} px | {width}x{height} | {quality:.0f} | {crop:.0f} | {classify:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
