"""Decoding only what the pipeline uses: large JPEGs at 1/2, 1/4 or 1/8 size; prints markdown tables.

    .venv/bin/python -m benchmarks.reduced_decoding [--repeats 5] [--jaffe ../shared/data/jaffe_dev.npz]

1. Same answers: each image through ``MoodEstimator().analyze(jpeg_bytes)`` (reduced decoding) and through
   ``analyze(decode_image(jpeg_bytes))`` (a full-size decode, what analyze did before): faces found, the
   largest box and landmark difference in original-image pixels, the largest mood-probability difference.
2. Cost: the decode step alone, in a child process per image: the old ``cv2.imdecode`` at full size, the
   new full-size ``decode_image``, and the pipeline's reduced decode -- median CPU ms and peak RSS growth.
3. The crop rule: moods from a face cropped out of a reduced decode against the same face cropped at full
   size, by the face's side in the reduced image as a multiple of the mood model's input (the rule
   ``meaa.pipeline._CROP_MIN_SIDE_PER_INPUT`` comes from this table).
4. With ``--jaffe``: every jaffe_dev photo (256x256) is decoded at full size (reduction 1) and
   ``analyze(png_bytes)`` gives exactly ``analyze(array)``: the end-to-end accuracy cannot change.

Images are scikit-image's astronaut frames from ``devkit.sample_faces``, upscaled (bicubic) and encoded as
JPEG quality 90. Peak RSS uses Linux's per-process peak reset (``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = [
    ("640x480 one face", 640, 480, "one"),
    ("640x480 group (6 faces)", 640, 480, "group"),
    ("1280x720 group (8 faces)", 1280, 720, "group8"),
    ("1920x1080 one face", 1920, 1080, "one"),
    ("1920x1080 group (8 faces)", 1920, 1080, "group8"),
    ("4000x3000 one face", 4000, 3000, "one"),
    ("4000x3000 group (8 faces)", 4000, 3000, "group8"),
    ("7000x7000 astronaut", 7000, 7000, "astronaut"),
]


def make_jpeg(width: int, height: int, kind: str) -> bytes:
    import cv2

    from devkit.images import encode
    from devkit.sample_faces import astronaut_bgr, group_frame, one_face_frame

    if kind == "one":
        base = one_face_frame(640, 480)
    elif kind == "group":
        base = group_frame(640, 480, columns=3, rows=2).image
    elif kind == "group8":
        base = group_frame(1280, 720, columns=4, rows=2).image
    else:
        base = astronaut_bgr()
    if (base.shape[1], base.shape[0]) != (width, height):
        base = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    return encode(base, ".jpg", jpeg_quality=90)


def same_answers(folder: Path) -> list[dict]:
    from meaa.decoding import EncodedImage, decode_image
    from meaa.pipeline import MoodEstimator, _detection_reduction

    estimator = MoodEstimator()
    rows = []
    for name, *_ in SIZES:
        data = (folder / f"{name}.jpg").read_bytes()
        encoded = EncodedImage.parse(data, estimator.settings.decoding)
        reduced = estimator.analyze(data)
        full = estimator.analyze(decode_image(data, estimator.settings.decoding))
        row = {
            "image": name,
            "reduction": _detection_reduction(encoded, estimator.settings.detection),
            "faces": (len(full.faces), len(reduced.faces)),
        }
        if len(full.faces) == len(reduced.faces) and full.faces:
            # Pair faces by nearest box centre (the order can differ when scores tie).
            pairs = []
            for face in full.faces:
                centre = np.array(face.box[:2]) + np.array(face.box[2:]) / 2
                other = min(
                    reduced.faces,
                    key=lambda f: float(np.linalg.norm(np.array(f.box[:2]) + np.array(f.box[2:]) / 2 - centre)),
                )
                pairs.append((face, other))
            row["box_px"] = max(max(abs(a - b) for a, b in zip(f.box, r.box, strict=True)) for f, r in pairs)
            row["box_rel"] = max(
                max(abs(a - b) for a, b in zip(f.box, r.box, strict=True)) / max(f.box[2], f.box[3]) for f, r in pairs
            )
            row["landmark_px"] = max(
                float(np.abs(np.array(f.landmarks) - np.array(r.landmarks)).max()) for f, r in pairs
            )
            row["mood_diff"] = max(max(abs(f.moods[m] - r.moods[m]) for m in f.moods) for f, r in pairs)
            row["same_mood"] = sum(f.mood == r.mood for f, r in pairs)
        rows.append(row)
    return rows


def child_cost(path: str, repeats: int) -> dict:
    """Run in a fresh process: decode ms and peak RSS growth of each way of decoding one JPEG."""
    import cv2

    from meaa.config import Settings
    from meaa.decoding import EncodedImage, decode_image
    from meaa.pipeline import _detection_reduction

    settings = Settings()
    data = Path(path).read_bytes()

    def status_mb(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
        raise RuntimeError(field)

    def reduced() -> np.ndarray:
        encoded = EncodedImage.parse(data, settings.decoding)
        return encoded.decode(_detection_reduction(encoded, settings.detection)).image

    ways = {
        "old": lambda: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION),
        "full": lambda: decode_image(data, settings.decoding),
        "reduced": reduced,
    }
    result = {}
    for way, decode in ways.items():
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = status_mb("VmRSS")
        times = []
        for _ in range(repeats):
            started = time.process_time()  # CPU time: stable on a shared machine, and what the budget counts
            image = decode()
            times.append((time.process_time() - started) * 1000)
            del image
        result[way] = {"ms": statistics.median(times), "peak_mb": status_mb("VmHWM") - before}
    return result


def crop_rule() -> list[tuple[float, float, float, float, int, int]]:
    """(low, high, median, p90, max of the largest mood difference, faces, faces with the same mood)."""
    import cv2

    from devkit.images import encode
    from devkit.sample_faces import astronaut_bgr, group_frame
    from meaa.cropping import crop_faces
    from meaa.decoding import EncodedImage
    from meaa.pipeline import MoodEstimator

    estimator = MoodEstimator()
    engine = estimator._engine
    size = engine.classifier.input_size
    samples: list[tuple[float, float, bool]] = []
    reference_noise: list[float] = []
    for base in (astronaut_bgr(), group_frame(1280, 720, columns=4, rows=2).image):
        for long_side in (1300, 1600, 2000, 2600, 3200, 4000, 5200, 6400):
            height, width = base.shape[:2]
            scale = long_side / max(height, width)
            image = cv2.resize(base, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
            encoded = EncodedImage.parse(encode(image, ".jpg", jpeg_quality=90), estimator.settings.decoding)
            full = encoded.decode(1).image
            found = engine.detector.detect_faces(full)
            if not len(found):
                continue
            reference = engine.classifier.predict(
                crop_faces(full, found.boxes, found.landmarks, size, margin=0.0, align=False)
            ).moods
            sides = np.maximum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1])
            moved = found.boxes + 0.02 * sides[:, None]  # the same face, its box moved by 2% of its side
            shifted = engine.classifier.predict(
                crop_faces(full, moved, found.landmarks, size, margin=0.0, align=False)
            ).moods
            for index in range(len(found)):
                reference_noise.append(float(np.abs(shifted[index] - reference[index]).max()))
            for reduction in (2, 4, 8):
                crops = crop_faces(
                    encoded.decode(reduction).image,
                    found.boxes / reduction,
                    found.landmarks / reduction,
                    size,
                    margin=0.0,
                    align=False,
                )
                moods = engine.classifier.predict(crops).moods
                for index in range(len(found)):
                    samples.append(
                        (
                            float(sides[index] / reduction / size),
                            float(np.abs(moods[index] - reference[index]).max()),
                            bool(np.argmax(moods[index]) == np.argmax(reference[index])),
                        )
                    )
    rows = []
    edges = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, float("inf")]
    for low, high in itertools.pairwise(edges):
        chosen = [s for s in samples if low <= s[0] < high]
        if chosen:
            diffs = np.array([s[1] for s in chosen])
            rows.append(
                (
                    low,
                    high,
                    float(np.median(diffs)),
                    float(np.quantile(diffs, 0.9)),
                    float(diffs.max()),
                    len(chosen),
                    sum(s[2] for s in chosen),
                )
            )
    at_rule = [s for s in samples if s[0] >= 1.25]
    diffs = np.array([s[1] for s in at_rule])
    rows.append(
        (
            1.25,
            float("inf"),
            float(np.median(diffs)),
            float(np.quantile(diffs, 0.9)),
            float(diffs.max()),
            len(at_rule),
            sum(s[2] for s in at_rule),
        )
    )
    noise = np.array(reference_noise)
    rows.append((0.0, 0.0, float(np.median(noise)), float(np.quantile(noise, 0.9)), float(noise.max()), len(noise), -1))
    return rows


def jaffe_check(path: str) -> str:
    import cv2

    from meaa.decoding import EncodedImage
    from meaa.pipeline import MoodEstimator, _detection_reduction

    estimator = MoodEstimator()
    with np.load(path) as data:
        images = data["images"]
    reductions, identical = set(), 0
    for image in images:
        png = cv2.imencode(".png", image)[1].tobytes()
        reductions.add(
            _detection_reduction(EncodedImage.parse(png, estimator.settings.decoding), estimator.settings.detection)
        )
        a, b = estimator.analyze(png).to_dict(), estimator.analyze(image).to_dict()
        a.pop("timings_ms"), b.pop("timings_ms")
        identical += a == b
    return (
        f"jaffe_dev: {len(images)} photos {images.shape[2]}x{images.shape[1]}, reductions used {sorted(reductions)}, "
        f"analyze(png bytes) == analyze(array) for {identical}/{len(images)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jaffe", help="jaffe_dev.npz: check its photos are never reduced")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_cost(args.child, args.repeats)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, width, height, kind in SIZES:
            (folder / f"{name}.jpg").write_bytes(make_jpeg(width, height, kind))

        print("Same answers: analyze(jpeg) with reduced decoding vs analyze(full-size decode)\n")
        print(
            "| image | reduction | faces (full / reduced) | box diff, px (of face side) | landmarks, px | "
            "mood prob diff | same mood |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for row in same_answers(folder):
            if "box_px" in row:
                print(
                    f"| {row['image']} | 1/{row['reduction']} | {row['faces'][0]} / {row['faces'][1]} | "
                    f"{row['box_px']} ({row['box_rel']:.1%}) | {row['landmark_px']:.1f} | {row['mood_diff']:.3f} | "
                    f"{row['same_mood']}/{row['faces'][0]} |"
                )
            else:
                print(
                    f"| {row['image']} | 1/{row['reduction']} | {row['faces'][0]} / {row['faces'][1]} | - | - | - | - |"
                )

        print(f"\nDecode step: median CPU ms of {args.repeats} in a child process per image; peak RSS growth, MB\n")
        print(
            "| image | JPEG bytes | old: cv2.imdecode full, ms / MB | decode_image full, ms / MB | "
            "pipeline (reduced), ms / MB | time ratio reduced / old |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for name, *_ in SIZES:
            path = folder / f"{name}.jpg"
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.reduced_decoding",
                    "--child",
                    str(path),
                    "--repeats",
                    str(args.repeats),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            cost = json.loads(out.strip().splitlines()[-1])
            cells = " | ".join(f"{cost[w]['ms']:.1f} / {cost[w]['peak_mb']:.0f}" for w in ("old", "full", "reduced"))
            print(f"| {name} | {path.stat().st_size:,} | {cells} | {cost['reduced']['ms'] / cost['old']['ms']:.2f} |")

    print("\nCrop from the reduced decode vs from the full decode: largest mood-probability difference per face\n")
    print("| face side / model input | faces | median | p90 | max | same mood |")
    print("| --- | --- | --- | --- | --- | --- |")
    for low, high, median, p90, largest, count, same in crop_rule():
        if same < 0:
            print(
                f"| for scale: full-size crop with the box moved by 2% of its side | {count} | {median:.3f} | "
                f"{p90:.3f} | {largest:.3f} | - |"
            )
            continue
        label = f"all >= {low:g} (the rule)" if (low, high) == (1.25, float("inf")) else f"[{low:g}, {high:g})"
        print(f"| {label} | {count} | {median:.3f} | {p90:.3f} | {largest:.3f} | {same}/{count} |")

    if args.jaffe:
        print("\n" + jaffe_check(args.jaffe))


if __name__ == "__main__":
    main()
