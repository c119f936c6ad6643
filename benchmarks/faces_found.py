"""Faces found by the fast cascade against the exact one, on every image set; prints a markdown table.

    .venv/bin/python -m benchmarks.faces_found [--data ../shared/data] [--fer fer2013_val.npz]

Issue 20's guard for ``MEAA_DETECT_CASCADE=fast``: every face the exact cascade (facenet-pytorch's, box for
box) finds with a score of at least 0.9 is still found (a fast face with IoU >= 0.5), and no new face
appears (every fast face overlaps an exact one at IoU >= 0.5). Both run end to end through
``MoodEstimator.analyze`` with the default settings otherwise; the table also counts the faces whose mood
changed, the largest box shift (in % of the exact face's side) and the R-Net and O-Net crops each cascade
ran, which is what the fast one saves.

Image sets: scikit-image's test photos (and the parity composite), generated frames of real faces
(``devkit.sample_faces``: one face and groups from 640x480 to 4000x3000, JPEG q90), and, when the data
folder is there, jaffe_dev's 108 portraits and FER2013 faces upscaled into frames (``fer_frames``: four faces
of 96-220 px per 640x480 frame on a real background). The fast cascade's rules were chosen on frames made
from ``fer2013_train.npz`` and on the generated frames (``--fer ../shared/data/fer2013_train.npz``); the
figures README quotes are on fer2013_val's frames and jaffe_dev, which the choice never saw.

``--shifted`` compares the exact cascade with itself on the same images moved one pixel right and down: how far
MTCNN's answers move on their own, without any change of the cascade (``ShiftedByOnePixel``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meaa.config import Settings
from meaa.onnx_model import OnnxModel
from meaa.pipeline import MoodEstimator
from meaa.results import Analysis

MIN_SCORE = 0.9
MIN_IOU = 0.5
Image = bytes | np.ndarray
Box = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Sample:
    """One image and, where the set knows them, where its real faces are (boxes around each face or head)."""

    image: Image
    truth: tuple[Box, ...] | None = None


@dataclass
class Tally:
    """Counts for one image set (``add`` one image's pair of analyses at a time)."""

    images: int = 0
    exact_faces: int = 0  # exact faces with score >= MIN_SCORE
    found: int = 0  # of those, overlapped by a fast face at IoU >= MIN_IOU
    fast_faces: int = 0
    new_faces: int = 0  # fast faces that overlap no exact face
    new_real: int = 0  # of those, centred on a real face of the sample's truth
    same_mood: int = 0  # found faces whose fast mood is the exact one's
    shifts: list[float] = dataclasses.field(default_factory=list)  # box-edge shift of each found face, % of side
    crops: Counter = dataclasses.field(default_factory=Counter)  # network file -> crops (exact:/fast: prefixed)

    @property
    def missed(self) -> int:
        return self.exact_faces - self.found

    @property
    def new_false(self) -> int:
        """New faces not known to be real ones (on a set without truth, every new face)."""
        return self.new_faces - self.new_real

    def add(self, exact: Analysis, fast: Analysis, truth: tuple[Box, ...] | None = None) -> None:
        self.images += 1
        self.fast_faces += len(fast.faces)
        for face in exact.faces:
            if face.score < MIN_SCORE:
                continue
            self.exact_faces += 1
            match = _best_match(face.box, [other.box for other in fast.faces])
            if match is None:
                continue
            self.found += 1
            twin = fast.faces[match]
            self.same_mood += twin.mood == face.mood
            side = max(face.box[2], face.box[3])
            shift = np.abs(np.subtract(_corners(face.box), _corners(twin.box))).max()
            self.shifts.append(100.0 * float(shift) / side)
        exact_boxes = [face.box for face in exact.faces]
        for face in fast.faces:
            if _best_match(face.box, exact_boxes) is None:
                self.new_faces += 1
                self.new_real += truth is not None and any(_centred_in(face.box, real) for real in truth)


def _corners(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return x, y, x + w, y + h


def _centred_in(box: Box, region: Box) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return region[0] <= cx <= region[0] + region[2] and region[1] <= cy <= region[1] + region[3]


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def _best_match(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]]) -> int | None:
    overlaps = [iou(box, other) for other in others]
    if not overlaps or max(overlaps) < MIN_IOU:
        return None
    return int(np.argmax(overlaps))


@contextmanager
def counting_crops(tally: Tally, prefix: str) -> Iterator[None]:
    """Count the batch rows each network is given while inside (R-Net and O-Net crops, P-Net levels)."""
    original = OnnxModel.__call__

    def counted(model: OnnxModel, batch: np.ndarray) -> dict[str, np.ndarray]:
        tally.crops[f"{prefix}{os.path.basename(model.path)}"] += len(batch)
        return original(model, batch)

    OnnxModel.__call__ = counted
    try:
        yield
    finally:
        OnnxModel.__call__ = original


class ShiftedByOnePixel:
    """An estimator that analyzes each image moved one pixel right and down (a copied first row and column), and
    answers in the image's own coordinates: how much the exact cascade's own answers move with its input."""

    def __init__(self, estimator: MoodEstimator) -> None:
        self.estimator = estimator

    def analyze(self, image: Image) -> Analysis:
        import cv2

        if isinstance(image, bytes):
            image = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        pad = ((1, 0), (1, 0)) + ((0, 0),) * (image.ndim - 2)
        answer = self.estimator.analyze(np.ascontiguousarray(np.pad(image, pad, mode="edge")))
        faces = [
            dataclasses.replace(face, box=(face.box[0] - 1, face.box[1] - 1, *face.box[2:])) for face in answer.faces
        ]
        return dataclasses.replace(answer, faces=faces)


def estimators(
    settings: Settings | None = None, fast_thresholds: tuple[float, float, float] | None = None
) -> tuple[MoodEstimator, MoodEstimator]:
    """(exact, fast) estimators with ``settings`` (default: the service's) otherwise unchanged; ``fast_thresholds``
    gives the fast one other score thresholds (a candidate pruning, measured against the exact cascade as shipped)."""
    settings = settings or Settings()
    exact = dataclasses.replace(settings.detection, cascade="exact")
    fast = dataclasses.replace(settings.detection, cascade="fast", thresholds=fast_thresholds or exact.thresholds)
    return (
        MoodEstimator(dataclasses.replace(settings, detection=exact)),
        MoodEstimator(dataclasses.replace(settings, detection=fast)),
    )


def compare(samples: Iterable[Sample], exact: MoodEstimator, fast: MoodEstimator) -> Tally:
    """Both cascades on every image: the counts."""
    tally = Tally()
    for sample in samples:
        with counting_crops(tally, "exact:"):
            exact_answer = exact.analyze(sample.image)
        with counting_crops(tally, "fast:"):
            fast_answer = fast.analyze(sample.image)
        tally.add(exact_answer, fast_answer, sample.truth)
    return tally


# -- image sets -----------------------------------------------------------------------------------------


def scikit_photos() -> list[Sample]:
    """scikit-image's photos (BGR arrays): astronaut, the parity composite, camera, coffee and chelsea."""
    import cv2
    from skimage import data

    from model_build import reference_images

    rgb = [reference_images.astronaut_rgb(), reference_images.composite_rgb(), data.coffee(), data.chelsea()]
    images = [np.ascontiguousarray(image[:, :, ::-1]) for image in rgb]
    return [Sample(image) for image in [*images, cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)]]


GENERATED = (  # (width, height, columns, rows): 0 columns is one face filling the frame
    (640, 480, 0, 0),
    (1280, 720, 0, 0),
    (1920, 1080, 0, 0),
    (4000, 3000, 0, 0),
    (640, 480, 3, 2),
    (640, 480, 4, 3),
    (1280, 720, 5, 2),
    (1280, 720, 8, 4),
    (1920, 1080, 5, 3),
    (1920, 1080, 8, 4),
    (4000, 3000, 6, 4),
)


def generated_frames() -> list[Sample]:
    """Frames of the real face from ``devkit.sample_faces``, alone and in groups, as JPEG q90 bytes (the
    groups know where each pasted head is)."""
    from devkit.images import encode
    from devkit.sample_faces import group_frame, one_face_frame

    samples = []
    for width, height, columns, rows in GENERATED:
        if columns:
            group = group_frame(width, height, columns, rows)
            samples.append(Sample(encode(group.image, ".jpg", jpeg_quality=90), tuple(group.heads)))
        else:
            samples.append(Sample(encode(one_face_frame(width, height), ".jpg", jpeg_quality=90)))
    return samples


def fer_frames(path: Path, limit: int | None = None, seed: int = 0) -> Iterator[Sample]:
    """FER2013's 48x48 faces upscaled (bicubic) to 96-220 px, four per 640x480 frame on the coffee photo (the
    pasted squares are the truth)."""
    import cv2
    from skimage import data

    faces = np.load(path)["images"][:limit]
    background = cv2.resize(data.coffee()[:, :, ::-1], (640, 480), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    for start in range(0, len(faces) - 3, 4):
        frame, squares = background.copy(), []
        for cell, face in enumerate(faces[start : start + 4]):
            side = int(rng.integers(96, 221))
            left = (cell % 2) * 320 + int(rng.integers(0, 320 - side + 1))
            top = (cell // 2) * 240 + int(rng.integers(0, 240 - side + 1))
            big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            frame[top : top + side, left : left + side] = big[:, :, None]
            squares.append((left, top, side, side))
        yield Sample(frame, tuple(squares))


def jaffe_portraits(path: Path) -> list[Sample]:
    """jaffe_dev's 256x256 gray portraits, as ``make verify-metrics`` gives them to ``analyze``."""
    return [Sample(image) for image in np.load(path)["images"]]


# -- report ---------------------------------------------------------------------------------------------


def table(results: dict[str, Tally]) -> str:
    rows = [
        "| images | count | exact faces (score >= 0.9) | still found (IoU >= 0.5) | missed | fast faces "
        "| new faces (on a real face) | same mood | box shift, median / largest | R-Net crops exact / fast "
        "| O-Net crops exact / fast |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, tally in results.items():
        crops, shifts = tally.crops, tally.shifts or [0.0]
        rows.append(
            f"| {name} | {tally.images} | {tally.exact_faces} | {tally.found} | **{tally.missed}** | "
            f"{tally.fast_faces} | {tally.new_faces} ({tally.new_real}) | {tally.same_mood} / {tally.found} | "
            f"{np.median(shifts):.1f} / {max(shifts):.1f} % | {crops['exact:rnet.onnx']} / {crops['fast:rnet.onnx']} "
            f"| {crops['exact:onet.onnx']} / {crops['fast:onet.onnx']} |"
        )
    return "\n".join(rows)


def image_sets(data_dir: Path | None, fer: Path | None, fer_limit: int | None) -> dict[str, Iterable[Sample]]:
    """Every set this machine has: the data-free ones always, jaffe_dev and FER2013 frames when found."""
    sets: dict[str, Iterable[Sample]] = {"test photos": scikit_photos(), "generated frames": generated_frames()}
    if data_dir is not None and (data_dir / "jaffe_dev.npz").exists():
        sets["jaffe_dev"] = jaffe_portraits(data_dir / "jaffe_dev.npz")
    fer = fer or (data_dir / "fer2013_val.npz" if data_dir is not None else None)
    if fer is not None and fer.exists():
        sets[f"{fer.stem} faces in frames"] = fer_frames(fer, fer_limit)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="jaffe_dev.npz, fer2013_val.npz")
    parser.add_argument("--fer", type=Path, help="FER2013 .npz whose faces go into frames (default: fer2013_val)")
    parser.add_argument("--fer-limit", type=int, help="only the first N faces")
    parser.add_argument(
        "--shifted", action="store_true", help="instead: the exact cascade against itself on images moved one pixel"
    )
    parser.add_argument(
        "--fast-thresholds",
        help="P-Net,R-Net,O-Net thresholds for the fast cascade only (a stricter P-Net, for example: 0.7,0.7,0.9)",
    )
    args = parser.parse_args()
    thresholds = tuple(float(value) for value in args.fast_thresholds.split(",")) if args.fast_thresholds else None
    exact, fast = estimators(fast_thresholds=thresholds)  # type: ignore[arg-type]
    if args.shifted:
        fast = ShiftedByOnePixel(exact)
    sets = image_sets(args.data, args.fer, args.fer_limit)
    print(table({name: compare(samples, exact, fast) for name, samples in sets.items()}))


if __name__ == "__main__":
    main()
