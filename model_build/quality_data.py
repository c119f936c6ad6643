"""The quality gate's evidence: faces served through the pipeline, measured, cached.

Three sets of faces, each photo analysed by ``meaa.MoodEstimator.analyze`` (MTCNN, landmarks, pose, the
crop, the classifier), so every measurement is the one production computes; each row is the largest face
found in one photo under one condition: its ``meaa.quality`` metrics and whether its mood is right.

* ``fer2013_holdout``: the 10 % of FER2013 Training that ``model_build/splits.py`` keeps out of every new
  model's training (the fit evidence); ``fer2013_val``: FER2013 PublicTest (reported only). Each 48x48 web
  face is enlarged ``FER_SCALE`` times and padded into a frame (``fer_frame``), so the detector and the
  landmarks run as on a phone photo. These are ordinary faces with the natural spread of pose, light and
  blur. Every face is served as it is ("clean") and once more under one of the photometric and geometric
  degradations below (``--degraded-copies``; the conditions dealt out evenly), so the rare strong
  degradations have faces of this kind too.
* ``jaffe_dev``: 108 posed 256 px portraits, each under every degradation (the posed-photo check of issue 11).
  A mood model that trained on jaffe_dev scores each subject with its fold model (trained without her).

The degradations include three proxies for a turned head on a flat photo (perspective warps, a squeeze):
they are reported, never fitted on (a photo has no depth, so they are not real yaw or pitch).

Measuring takes minutes; the rows are cached in ``model_build/cache/quality_gate/`` under a key of
everything they depend on (data file, scoring models' sha256, degradations, frame), so refits are quick.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from meaa.config import QualitySettings, Settings
from meaa.labels import MOODS, emotion_labels_to_moods
from meaa.pipeline import MoodEstimator
from model_build.evaluate import MODELS_DIR, _models_dir_with, resolve_model
from model_build.jaffe_views import subjects_of
from model_build.splits import group_keys, split_train

METRICS = (
    "sharpness", "brightness", "contrast", "clipped_fraction", "face_px", "outside_fraction", "yaw", "pitch", "roll",
    "detection_score",
)  # fmt: skip
REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / "model_build" / "cache" / "quality_gate"
MEASURE_VERSION = 1  # bump when what a row holds or how a photo is served changes
FER_SCALE = 3  # 48 px -> 144 px: MTCNN and its landmarks see a face of phone-photo size
FER_PAD = 48  # px of the crop's mean gray around the enlarged face (the face is then in the frame, as in a selfie)
FIT_DOMAIN, TEST_DOMAIN, POSED_DOMAIN = "fer2013_holdout", "fer2013_val", "jaffe_dev"


# --- degradations ------------------------------------------------------------------------------------

FaceBox = tuple[float, float, float, float]  # x1, y1, x2, y2 of the clean photo's face
Degrade = Callable[[np.ndarray, FaceBox, int], np.ndarray]


@dataclass(frozen=True)
class Degradation:
    """One way to spoil a gray photo: ``apply(gray, clean face box, photo index) -> gray``. ``proxy``: a
    stand-in for a turned head on a flat photo, reported but never fitted on."""

    family: str
    level: str
    apply: Degrade
    proxy: bool = False

    @property
    def name(self) -> str:
        return f"{self.family} | {self.level}"


def _blur(sigma: float) -> Degrade:
    return lambda gray, box, index: cv2.GaussianBlur(gray, (0, 0), sigma)


def _noise(sigma: float, seed: int) -> Degrade:
    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        rng = np.random.default_rng([seed, index, round(sigma * 10)])
        return np.clip(gray + rng.normal(0.0, sigma, gray.shape), 0, 255).astype(np.uint8)

    return apply


def _gain(gain: float) -> Degrade:
    """Under- (gain < 1) or over-exposure (gain > 1, clipped at white)."""
    return lambda gray, box, index: np.clip(np.rint(gray * gain), 0, 255).astype(np.uint8)


def _flatten(keep: float) -> Degrade:
    """Haze: contrast around the photo's mean scaled by ``keep``."""

    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        mean = float(gray.mean())
        return np.clip(np.rint(mean + (gray - mean) * keep), 0, 255).astype(np.uint8)

    return apply


def _face_side(box: FaceBox) -> float:
    return min(box[2] - box[0], box[3] - box[1])


def _shrink(face_px: float, back: bool) -> Degrade:
    """The photo scaled so the face's short side is ``face_px``; ``back``: enlarged again (pixelated)."""

    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        factor = face_px / _face_side(box)
        height, width = gray.shape
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR) if back else small

    return apply


def _jpeg(quality: int) -> Degrade:
    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        ok, encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)

    return apply


def _center(box: FaceBox) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def _rotate(degrees: float) -> Degrade:
    """In-plane rotation about the face's centre, alternately clockwise and counter-clockwise."""

    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        angle = degrees if index % 2 else -degrees
        matrix = cv2.getRotationMatrix2D(_center(box), angle, 1.0)
        return cv2.warpAffine(gray, matrix, gray.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return apply


def tilt_homography(box: FaceBox, degrees: float, axis: str, distance_faces: float = 3.0) -> np.ndarray:
    """The homography that shows the photo's plane turned by ``degrees`` about the vertical (``axis='y'``)
    or horizontal (``'x'``) line through the face's centre, seen by a pinhole camera ``distance_faces``
    face sizes away (about arm's length for a selfie) whose focal length keeps the face's scale."""
    cx, cy = _center(box)
    distance = distance_faces * _face_side(box)
    angle = math.radians(degrees)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * _face_side(box)
    projected = []
    for x, y in corners:
        if axis == "y":
            x3, y3, z3 = x * math.cos(angle), y, x * math.sin(angle)
        else:
            x3, y3, z3 = x, y * math.cos(angle), y * math.sin(angle)
        scale = distance / (distance + z3)
        projected.append([cx + x3 * scale, cy + y3 * scale])
    source = (corners + np.array([cx, cy])).astype(np.float32)
    return cv2.getPerspectiveTransform(source, np.array(projected, np.float32))


def _tilt(degrees: float, axis: str) -> Degrade:
    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        signed = degrees if index % 2 else -degrees
        homography = tilt_homography(box, signed, axis)
        return cv2.warpPerspective(
            gray, homography, gray.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    return apply


def _squeeze(keep: float) -> Degrade:
    """The photo narrowed to ``keep`` of its width about the face's centre (a face turned, without depth)."""

    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        cx, _ = _center(box)
        matrix = np.array([[keep, 0.0, cx * (1.0 - keep)], [0.0, 1.0, 0.0]], np.float32)
        return cv2.warpAffine(gray, matrix, gray.shape[::-1], flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)

    return apply


def _edge_cut(fraction: float) -> Degrade:
    """The frame ends inside the face: ``fraction`` of the face box is cut off, from the left, top, right or
    bottom in turn (by photo index)."""

    def apply(gray: np.ndarray, box: FaceBox, index: int) -> np.ndarray:
        x1, y1, x2, y2 = box
        side = index % 4
        if side == 0:
            return gray[:, max(0, round(x1 + fraction * (x2 - x1))) :]
        if side == 1:
            return gray[max(0, round(y1 + fraction * (y2 - y1))) :, :]
        if side == 2:
            return gray[:, : round(x2 - fraction * (x2 - x1))]
        return gray[: round(y2 - fraction * (y2 - y1)), :]

    return apply


CLEAN = Degradation("clean", "-", lambda gray, box, index: gray)


def degradations(seed: int = 0) -> list[Degradation]:
    """Every degradation of a photo whose face is about 110 px, mild to strong (levels in each family's units),
    clean first."""
    levels: list[tuple[str, str, Degrade]] = []
    levels += [("blur", f"sigma {s:g} px", _blur(s)) for s in (1.5, 3.0, 5.0)]
    levels += [("noise", f"sigma {s:g}", _noise(s, seed)) for s in (10.0, 20.0, 35.0)]
    levels += [("dark", f"x{g:g}", _gain(g)) for g in (0.35, 0.15, 0.06)]
    levels += [("bright", f"x{g:g}", _gain(g)) for g in (1.8, 2.6, 3.6)]
    levels += [("low contrast", f"x{k:g}", _flatten(k)) for k in (0.4, 0.2, 0.1)]
    levels += [("small face", f"{p} px", _shrink(p, back=False)) for p in (56, 40, 28, 20)]
    levels += [("pixelated", f"{p} px", _shrink(p, back=True)) for p in (40, 28, 20)]
    levels += [("jpeg", f"q{q}", _jpeg(q)) for q in (15, 8, 4)]
    levels += [("rotated in plane", f"{d} deg", _rotate(d)) for d in (15, 30, 45)]
    proxies: list[tuple[str, str, Degrade]] = []
    proxies += [("turned (yaw proxy: perspective)", f"{d} deg", _tilt(d, "y")) for d in (30, 50, 65)]
    proxies += [("turned (yaw proxy: squeeze)", f"x{k:g}", _squeeze(k)) for k in (0.75, 0.55)]
    proxies += [("turned (pitch proxy: perspective)", f"{d} deg", _tilt(d, "x")) for d in (30, 50, 65)]
    edges = [("cut at the image edge", f"{round(f * 100)} %", _edge_cut(f)) for f in (0.2, 0.35, 0.5)]
    return [
        CLEAN,
        *(Degradation(family, level, apply) for family, level, apply in levels + edges),
        *(Degradation(family, level, apply, proxy=True) for family, level, apply in proxies),
    ]


def fer_frame(crop: np.ndarray) -> np.ndarray:
    """A 48x48 web face as a photo: enlarged ``FER_SCALE`` times (bicubic), padded by ``FER_PAD`` px of its mean."""
    side = crop.shape[0] * FER_SCALE
    large = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(large, *(FER_PAD,) * 4, cv2.BORDER_CONSTANT, value=round(float(crop.mean())))


# --- rows --------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One row per (photo, condition): what the pipeline found on the photo's largest face.

    ``group`` is the unit that must not straddle a fit and its test: the subject for jaffe_dev, the
    FER2013 source group (``splits.group_keys``) for FER2013 faces."""

    domain: np.ndarray
    photo: np.ndarray  # photo index within its domain
    group: np.ndarray
    family: np.ndarray
    level: np.ndarray
    proxy: np.ndarray  # the condition is a turned-head proxy (never fitted on)
    label: np.ndarray  # true mood index
    found: np.ndarray  # a face was detected
    metrics: dict[str, np.ndarray]  # per METRICS name (nan where no face)
    predicted: np.ndarray  # mood index (-1 where no face)

    COLUMNS = ("domain", "photo", "group", "family", "level", "proxy", "label", "found", "predicted")

    def __len__(self) -> int:
        return len(self.photo)

    def take(self, mask: np.ndarray) -> Measured:
        return Measured(
            *(getattr(self, k)[mask] for k in self.COLUMNS[:-1]),
            metrics={k: v[mask] for k, v in self.metrics.items()},
            predicted=self.predicted[mask],
        )

    @staticmethod
    def concatenate(parts: list[Measured]) -> Measured:
        return Measured(
            *(np.concatenate([getattr(p, k) for p in parts]) for k in Measured.COLUMNS[:-1]),
            metrics={k: np.concatenate([p.metrics[k] for p in parts]) for k in METRICS},
            predicted=np.concatenate([p.predicted for p in parts]),
        )

    @property
    def clean(self) -> np.ndarray:
        return self.family == "clean"

    @property
    def condition(self) -> np.ndarray:
        return np.char.add(np.char.add(self.family.astype(str), " | "), self.level.astype(str))

    @property
    def right(self) -> np.ndarray:
        return self.predicted == self.label

    @property
    def unit(self) -> np.ndarray:
        """The bootstrap's unit: a photo with all its copies (they are not independent)."""
        return np.char.add(np.char.add(self.domain.astype(str), ":"), self.photo.astype(str))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = {k: getattr(self, k) for k in self.COLUMNS}
        np.savez_compressed(path, **columns, **{f"metric_{k}": v for k, v in self.metrics.items()})

    @staticmethod
    def load(path: Path) -> Measured:
        with np.load(path) as stored:
            columns = {k: stored[k] for k in Measured.COLUMNS}
            metrics = {k: stored[f"metric_{k}"] for k in METRICS}
        return Measured(**columns, metrics=metrics)


# --- serving photos through the pipeline --------------------------------------------------------------


def _estimator(name: str, work: Path) -> MoodEstimator:
    """The pipeline with mood model ``name`` (a manifest key or an .onnx file), one thread, the gate off."""
    work.mkdir()
    models_dir, key = _models_dir_with(resolve_model(name), work)
    settings = replace(
        Settings(), mood_model=key, models_dir=str(models_dir), threads=1, quality=QualitySettings(gate=False)
    )
    return MoodEstimator(settings)


@dataclass(frozen=True)
class PhotoSet:
    """Photos of one domain to serve: gray images (already framed), mood labels, groups, the model file or
    manifest key that scores each photo, and the conditions each photo is served under (clean first)."""

    domain: str
    images: list[np.ndarray]
    labels: np.ndarray
    groups: np.ndarray
    scorers: list[str]
    plans: list[list[Degradation]]


def serve(photos: PhotoSet, progress: bool = True) -> Measured:
    """Every photo under each of its conditions through ``MoodEstimator.analyze``; a photo whose clean face
    is not found is not degraded (the degradations need its box)."""
    rows: dict[str, list] = {k: [] for k in Measured.COLUMNS}
    metrics: dict[str, list[float]] = {k: [] for k in METRICS}
    started, count = time.perf_counter(), len(photos.images)
    with tempfile.TemporaryDirectory() as work:
        files = list(dict.fromkeys(photos.scorers))
        estimators = {f: _estimator(f, Path(work) / str(n)) for n, f in enumerate(files)}
        for index, gray in enumerate(photos.images):
            estimator, box = estimators[photos.scorers[index]], None
            for degradation in photos.plans[index]:
                if degradation is not CLEAN and box is None:
                    break
                faces = estimator.analyze(degradation.apply(gray, box, index) if box else gray).faces
                main = max(faces, key=lambda face: face.area) if faces else None
                if degradation is CLEAN and main is not None:
                    x, y, w, h = main.box
                    box = (float(x), float(y), float(x + w), float(y + h))
                values = (photos.domain, index, photos.groups[index], degradation.family, degradation.level,
                          degradation.proxy, photos.labels[index], main is not None,
                          MOODS.index(main.mood) if main else -1)  # fmt: skip
                for key, value in zip(Measured.COLUMNS, values, strict=True):
                    rows[key].append(value)
                measured = main.quality.metrics() if main else {}
                for key in METRICS:
                    metrics[key].append(measured.get(key, math.nan))
            if progress and (index + 1) % 250 == 0:
                rate = (time.perf_counter() - started) / (index + 1)
                print(f"  {photos.domain}: {index + 1}/{count} photos, {rate * (count - index - 1) / 60:.1f} min left",
                      file=sys.stderr, flush=True)  # fmt: skip
    return Measured(
        **{k: np.array(v) for k, v in rows.items()}, metrics={k: np.array(v, np.float64) for k, v in metrics.items()}
    )


# --- the three sets ----------------------------------------------------------------------------------


def deal(count: int, conditions: list[Degradation], copies: int, seed: int) -> list[list[Degradation]]:
    """Each photo's conditions: clean, then ``copies`` degradations dealt out evenly in a seeded order."""
    rng = np.random.default_rng(seed)
    dealt = np.resize(np.arange(len(conditions)), count * copies)
    rng.shuffle(dealt)
    return [[CLEAN, *(conditions[c] for c in dealt[i * copies : (i + 1) * copies])] for i in range(count)]


def group_fraction(keys: np.ndarray) -> np.ndarray:
    """A number in [0, 1) per group key, from its hash: the fit's inner folds cut this range into parts."""
    return np.array([int.from_bytes(hashlib.sha256(f"quality:{k}".encode()).digest()[:4], "big") / 2**32 for k in keys])


def fer_photos(domain: str, data: Path, scorer: str, copies: int, seed: int = 0) -> PhotoSet:
    """fer2013_holdout (from fer2013_train.npz, its ``splits`` holdout) or fer2013_val, framed."""
    name = "fer2013_train.npz" if domain == FIT_DOMAIN else "fer2013_val.npz"
    with np.load(data / name) as stored:
        images, emotions = stored["images"], stored["labels"].astype(np.int64)
        ids = stored.get("ids", None)
    keys = group_keys(images, ids).astype(str)
    if domain == FIT_DOMAIN:
        holdout = split_train(images, ids).holdout
        images, emotions, keys = images[holdout], emotions[holdout], keys[holdout]
    conditions = [d for d in degradations(seed) if d is not CLEAN and not d.proxy]
    return PhotoSet(
        domain, [fer_frame(crop) for crop in images], emotion_labels_to_moods(emotions), keys,
        [scorer] * len(images), deal(len(images), conditions, copies, seed + (domain == TEST_DOMAIN)),
    )  # fmt: skip


def jaffe_photos(data: Path, scorer: str, fold_dir: str | None, seed: int = 0) -> PhotoSet:
    """jaffe_dev's portraits under every degradation, each subject scored by ``fold_dir/fold_SUBJECT.onnx``
    when given (a model that trained on jaffe_dev has seen the photos: degradations would cost it nothing)."""
    with np.load(data / "jaffe_dev.npz") as stored:
        images, emotions, names = stored["images"], stored["labels"].astype(np.int64), stored["names"]
    subjects = subjects_of(names)
    scorers = [str(Path(fold_dir) / f"fold_{s}.onnx") if fold_dir else scorer for s in subjects]
    every = degradations(seed)
    return PhotoSet(
        POSED_DOMAIN, list(images), emotion_labels_to_moods(emotions), subjects, scorers, [every] * len(images)
    )


def manifest_fold_dir(name: str) -> str | None:
    """The manifest's ``jaffe_fold_models`` folder of mood model ``name`` (relative to the repository root), if any."""
    entry = json.loads((MODELS_DIR / "manifest.json").read_text())["models"].get(name, {})
    folder = entry.get("jaffe_fold_models")
    return str(REPO_ROOT / folder) if folder else None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_key(photos: PhotoSet, data_file: Path) -> str:
    """What a set's rows depend on, hashed: the data, the scoring models, the conditions, this code's version."""
    scorers = {}
    for scorer in dict.fromkeys(photos.scorers):
        scorers[scorer] = sha256_file(resolve_model(scorer).path)
    described = {
        "version": MEASURE_VERSION, "domain": photos.domain, "data": sha256_file(data_file), "scorers": scorers,
        "detector": sha256_file(MODELS_DIR / "onet.onnx"), "frame": [FER_SCALE, FER_PAD],
        # The detection settings the rows were served with (the cascade, above all: issue 20 made "fast" the default).
        "detection": asdict(Settings().detection),
        "plans": hashlib.sha256("\n".join(",".join(d.name for d in p) for p in photos.plans).encode()).hexdigest(),
    }  # fmt: skip
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def measured(photos: PhotoSet, data_file: Path, use_cache: bool = True) -> Measured:
    """The set's rows, from the cache when its key matches (``use_cache=False``: measured afresh, not stored)."""
    path = CACHE_DIR / f"{photos.domain}-{cache_key(photos, data_file)}.npz"
    if use_cache and path.exists():
        return Measured.load(path)
    print(f"serving {len(photos.images)} {photos.domain} photos through the pipeline", file=sys.stderr, flush=True)
    rows = serve(photos)
    if use_cache:
        rows.save(path)
    return rows
