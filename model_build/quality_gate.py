"""Fit the face quality gate's thresholds on degraded photos and measure what it buys.

    model_build/.venv/bin/python -m model_build.quality_gate --jaffe ../shared/data/jaffe_dev.npz \
        --fer-val ../shared/data/fer2013_val.npz --mood-model mini_xception_w2_kd --sensitivity \
        --json model_build/runs/quality_gate.json

Two domains of evidence, each degraded the same ways where it can be:

* jaffe_dev's 256 px portraits go through the whole pipeline (``meaa.MoodEstimator``: detect -> quality ->
  crop -> classify), clean and degraded: blur, noise, darkness, overexposure, low contrast (haze), a small
  face, a pixelated face (shrunk and enlarged back), JPEG artefacts, in-plane rotation, proxies for a turned
  head (a perspective warp of the photo about its vertical or horizontal axis, a horizontal squeeze: a flat
  photo has no depth, so these are not real yaw or pitch) and cuts of the frame through the face. Each
  largest face is measured by ``meaa.quality`` and its mood is right or wrong. A mood model that trained on
  jaffe_dev (the manifest names its ``jaffe_fold_models``) scores each subject's photos with its fold model,
  trained without that subject: on photos it learnt from, degradations cost it next to nothing.
* fer2013_val's 48x48 web crops are classified directly (no detector), blurred, noised, darkened... at their
  scale, so only the patch metrics apply (sharpness, brightness, contrast, clipped share); face size,
  out-of-frame share, pose and detection score do not. The even-numbered crops are evidence for the fit; the
  odd-numbered ones, clean and degraded, only test the shipped thresholds.

A condition (one degradation at one level in one domain) is harmful when it costs the model at least
``--skill-loss`` (default half) of its skill there, its clean accuracy's excess over always answering the
commonest mood: its accuracy is below the domain's tau = clean - skill_loss * (clean - majority). Each face's
target is its condition's accuracy in its domain (the metrics describe conditions, not how hard an
expression is to read, so fitting single faces' right or wrong would chase photo difficulty). The
thresholds (the ``meaa.config.QualitySettings`` fields that ``meaa.quality.QUALITY_RULES`` names) are fitted
by coordinate ascent to maximise sum over domains of weight x mean over the domain's faces of
[reliable] (target - tau), ties going to the most permissive threshold, while at least
``--min-clean-retention`` of each domain's clean fitting faces stay reliable. The weights are
``1 - --fer-weight`` for jaffe_dev and ``--fer-weight`` for FER2013 (default 0.5 each): FER2013 has 17-21 times
the faces per condition, and by row count it would decide every patch threshold alone, while neither a
studio portrait nor a 48 px web crop is closer to a phone selfie than the other. ``--sensitivity`` refits at
other weights and reports what changes. Accuracy is averaged over ``--fit-model`` (default:
``--mood-model``, whose tables these are).

jaffe_dev's figures are leave-one-subject-out (subject = the file name's prefix): each subject's faces are
judged by thresholds fitted without them (the FER2013 fitting crops are the same in every fold). The
thresholds to ship are fitted the same way on all subjects.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from meaa.config import QualitySettings, Settings
from meaa.labels import MOODS, emotion_labels_to_moods
from meaa.pipeline import MoodEstimator
from meaa.quality import QUALITY_CROP_SIZE, QUALITY_RULES, QualityRule, patch_statistics
from model_build.evaluate import MODELS_DIR, _models_dir_with, resolve_model

METRICS = (
    "sharpness", "brightness", "contrast", "clipped_fraction", "face_px", "outside_fraction", "yaw", "pitch", "roll",
    "detection_score",
)  # fmt: skip
PATCH_METRICS = ("sharpness", "brightness", "contrast", "clipped_fraction")  # what a crop without a detector has
OFF = {"min": 0.0, "max": 1.0, "max_abs": 180.0}  # each bound's setting that never fails (an unused rule)
CANDIDATES_PER_RULE = 120
REPO_ROOT = Path(__file__).resolve().parents[1]
Z95 = 1.959963984540054


# --- degradations ------------------------------------------------------------------------------------

FaceBox = tuple[float, float, float, float]  # x1, y1, x2, y2 of the clean photo's face
Degrade = Callable[[np.ndarray, FaceBox, int], np.ndarray]


@dataclass(frozen=True)
class Degradation:
    """One way to spoil a gray photo: ``apply(gray, clean face box, photo index) -> gray``."""

    family: str
    level: str
    apply: Degrade


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


def jaffe_degradations(seed: int = 0) -> list[Degradation]:
    """Every degradation of a full photo, mild to strong (levels in the units of each family)."""
    levels: list[tuple[str, str, Degrade]] = [("clean", "-", lambda gray, box, index: gray)]
    levels += [("blur", f"sigma {s:g} px", _blur(s)) for s in (1.5, 3.0, 5.0)]
    levels += [("noise", f"sigma {s:g}", _noise(s, seed)) for s in (10.0, 20.0, 35.0)]
    levels += [("dark", f"x{g:g}", _gain(g)) for g in (0.35, 0.15, 0.06)]
    levels += [("bright", f"x{g:g}", _gain(g)) for g in (1.8, 2.6, 3.6)]
    levels += [("low contrast", f"x{k:g}", _flatten(k)) for k in (0.4, 0.2, 0.1)]
    levels += [("small face", f"{p} px", _shrink(p, back=False)) for p in (56, 40, 28, 20)]
    levels += [("pixelated", f"{p} px", _shrink(p, back=True)) for p in (40, 28, 20)]
    levels += [("jpeg", f"q{q}", _jpeg(q)) for q in (15, 8, 4)]
    levels += [("rotated in plane", f"{d} deg", _rotate(d)) for d in (15, 30, 45)]
    levels += [("turned (yaw proxy: perspective)", f"{d} deg", _tilt(d, "y")) for d in (30, 50, 65)]
    levels += [("turned (yaw proxy: squeeze)", f"x{k:g}", _squeeze(k)) for k in (0.75, 0.55)]
    levels += [("turned (pitch proxy: perspective)", f"{d} deg", _tilt(d, "x")) for d in (30, 50, 65)]
    levels += [("cut at the image edge", f"{round(f * 100)} %", _edge_cut(f)) for f in (0.2, 0.35, 0.5)]
    return [Degradation(family, level, apply) for family, level, apply in levels]


def fer_degradations(seed: int = 0) -> list[Degradation]:
    """The photometric degradations at the scale of a 48 px face (blur sigmas of jaffe's x 48/110)."""
    levels: list[tuple[str, str, Degrade]] = [("clean", "-", lambda gray, box, index: gray)]
    levels += [("blur", f"sigma {s:g} px", _blur(s)) for s in (0.7, 1.3, 2.2)]
    levels += [("noise", f"sigma {s:g}", _noise(s, seed)) for s in (10.0, 20.0, 35.0)]
    levels += [("dark", f"x{g:g}", _gain(g)) for g in (0.35, 0.15, 0.06)]
    levels += [("bright", f"x{g:g}", _gain(g)) for g in (1.8, 2.6, 3.6)]
    levels += [("low contrast", f"x{k:g}", _flatten(k)) for k in (0.4, 0.2, 0.1)]
    levels += [("pixelated", f"{p} px", _shrink(p, back=True)) for p in (28, 20)]
    levels += [("jpeg", f"q{q}", _jpeg(q)) for q in (15, 8, 4)]
    return [Degradation(family, level, apply) for family, level, apply in levels]


# --- measurements ------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One row per (photo, degradation level): what the pipeline found on the photo's largest face."""

    photo: np.ndarray  # photo index
    subject: np.ndarray  # subject code
    family: np.ndarray
    level: np.ndarray
    label: np.ndarray  # true mood index
    found: np.ndarray  # a face was detected
    metrics: dict[str, np.ndarray]  # per METRICS name (nan where no face or where it does not apply)
    predicted: dict[str, np.ndarray]  # mood index per model (-1 where no face)

    def take(self, mask: np.ndarray) -> Measured:
        return Measured(
            self.photo[mask], self.subject[mask], self.family[mask], self.level[mask], self.label[mask],
            self.found[mask], {k: v[mask] for k, v in self.metrics.items()},
            {k: v[mask] for k, v in self.predicted.items()},
        )  # fmt: skip

    @property
    def condition(self) -> np.ndarray:
        return np.array([f"{family} | {level}" for family, level in zip(self.family, self.level, strict=True)])

    def right(self, model: str) -> np.ndarray:
        return self.predicted[model] == self.label


def _estimator(name: str, work: Path) -> MoodEstimator:
    """The pipeline with mood model ``name`` (a manifest key or an .onnx file) and the gate off."""
    work.mkdir()
    models_dir, key = _models_dir_with(resolve_model(name), work)
    settings = replace(Settings(), mood_model=key, models_dir=str(models_dir), quality=QualitySettings(gate=False))
    return MoodEstimator(settings)


# Which model scores each JAFFE subject's photos, per model name: subject -> manifest key or .onnx path.
SubjectModels = dict[str, str]


def jaffe_models_of(name: str, fold_dir: str | None, subjects: list[str]) -> SubjectModels:
    """The model that scores each subject's photos: ``fold_dir/fold_SUBJECT.onnx`` (trained without that subject)
    when ``fold_dir`` is given, else ``name`` itself for everyone.

    A model that trained on jaffe_dev's photos (the default ``mini_xception_w2_kd`` did, all five subjects) has
    seen them: on its own training photos blur, shrinking or haze cost it little because it remembers the
    faces, so its in-sample accuracy under degradation would tell the fit that nothing is harmful.
    """
    if not fold_dir:
        return dict.fromkeys(subjects, name)
    return {subject: str(Path(fold_dir) / f"fold_{subject}.onnx") for subject in subjects}


def manifest_fold_dir(name: str) -> str | None:
    """The manifest's ``jaffe_fold_models`` folder of mood model ``name`` (relative to the repository root), if any."""
    entry = json.loads((MODELS_DIR / "manifest.json").read_text())["models"].get(name, {})
    folder = entry.get("jaffe_fold_models")
    return str(REPO_ROOT / folder) if folder else None


def measure_jaffe(
    images: np.ndarray, labels: np.ndarray, subjects: np.ndarray, models: dict[str, SubjectModels],
    degradations: list[Degradation],
) -> Measured:  # fmt: skip
    """Every photo under every degradation through ``MoodEstimator.analyze``, for each model name scored by the
    model ``models[name]`` assigns to the photo's subject. The quality metrics are the first name's (the detector
    and the metrics do not depend on the mood model)."""
    names = list(models)
    with tempfile.TemporaryDirectory() as work:
        files = list(dict.fromkeys(file for assigned in models.values() for file in assigned.values()))
        estimators = {file: _estimator(file, Path(work) / str(number)) for number, file in enumerate(files)}
        first = estimators[files[0]]
        boxes = []
        for gray in images:
            faces = first.analyze(gray).faces
            if not faces:
                raise SystemExit("a clean photo has no face: the degradations need its box")
            x, y, w, h = max(faces, key=lambda face: face.area).box
            boxes.append((float(x), float(y), float(x + w), float(y + h)))
        columns: dict[str, list] = {k: [] for k in ("photo", "subject", "family", "level", "label", "found")}
        metrics: dict[str, list[float]] = {k: [] for k in METRICS}
        predicted: dict[str, list[int]] = {m: [] for m in names}
        for degradation in degradations:
            for index, gray in enumerate(images):
                spoiled = degradation.apply(gray, boxes[index], index)
                for key, value in (
                    ("photo", index),
                    ("subject", subjects[index]),
                    ("family", degradation.family),
                    ("level", degradation.level),
                    ("label", labels[index]),
                ):
                    columns[key].append(value)
                for name in names:
                    faces = estimators[models[name][str(subjects[index])]].analyze(spoiled).faces
                    main = max(faces, key=lambda face: face.area) if faces else None
                    predicted[name].append(MOODS.index(main.mood) if main else -1)
                    if name == names[0]:
                        columns["found"].append(main is not None)
                        values = main.quality.metrics() if main else {}
                        for key in METRICS:
                            metrics[key].append(values.get(key, math.nan))
    return Measured(
        *(np.array(columns[k]) for k in ("photo", "subject", "family", "level", "label", "found")),
        {k: np.array(v, np.float64) for k, v in metrics.items()},
        {k: np.array(v) for k, v in predicted.items()},
    )


def measure_fer(
    images: np.ndarray, labels: np.ndarray, models: list[str], degradations: list[Degradation]
) -> Measured:  # fmt: skip
    """FER2013 crops, degraded, classified directly by each model; only the patch metrics are measured."""
    classifiers = {model: resolve_model(model).classifier(threads=1) for model in models}
    parts = []
    whole: FaceBox = (0.0, 0.0, float(images.shape[2]), float(images.shape[1]))
    count = len(images)
    for degradation in degradations:
        spoiled = np.stack([degradation.apply(gray, whole, index) for index, gray in enumerate(images)])
        if spoiled.shape[1:] != (QUALITY_CROP_SIZE, QUALITY_CROP_SIZE):
            spoiled = np.stack([cv2.resize(g, (QUALITY_CROP_SIZE,) * 2, interpolation=cv2.INTER_AREA) for g in spoiled])
        statistics = [patch_statistics(gray) for gray in spoiled]
        metrics = {k: np.full(count, math.nan) for k in METRICS}
        for key in PATCH_METRICS:
            metrics[key] = np.array([getattr(s, key) for s in statistics])
        parts.append(Measured(
            np.arange(count), np.full(count, "fer", dtype=object), np.full(count, degradation.family, dtype=object),
            np.full(count, degradation.level, dtype=object), labels, np.ones(count, bool), metrics,
            {model: classifier.predict(spoiled).moods.argmax(axis=1) for model, classifier in classifiers.items()},
        ))  # fmt: skip
    return Measured(
        *(np.concatenate([getattr(p, k) for p in parts]) for k in ("photo", "subject", "family", "level", "label")),
        np.concatenate([p.found for p in parts]),
        {k: np.concatenate([p.metrics[k] for p in parts]) for k in METRICS},
        {model: np.concatenate([p.predicted[model] for p in parts]) for model in models},
    )


# --- fitting -----------------------------------------------------------------------------------------


def _significant(value: float, digits: int = 3) -> float:
    return value if value == 0 or not math.isfinite(value) else float(f"{value:.{digits}g}")


def rule_values(rule: QualityRule, metrics: dict[str, np.ndarray]) -> np.ndarray:
    values = metrics[rule.metric]
    return np.abs(values) if rule.bound == "max_abs" else values


def candidate_thresholds(rule: QualityRule, values: np.ndarray) -> np.ndarray:
    """Off first, then midpoints between neighbouring observed values (thinned to quantiles), from the most
    permissive to the strictest, rounded to 3 significant digits."""
    finite = np.unique(values[np.isfinite(values)])
    if len(finite) > CANDIDATES_PER_RULE:
        finite = np.unique(np.quantile(finite, np.linspace(0, 1, CANDIDATES_PER_RULE)))
    middles = np.unique([_significant(v) for v in (finite[1:] + finite[:-1]) / 2.0])
    ordered = middles if rule.bound == "min" else middles[::-1]
    return np.concatenate([[OFF[rule.bound]], ordered])


def fails(rule: QualityRule, metrics: dict[str, np.ndarray], threshold: float) -> np.ndarray:
    """Rows ``rule`` rejects at ``threshold`` (``QualityRule.fails`` on arrays); a nan metric never fails."""
    values = rule_values(rule, metrics)
    known = np.isfinite(values)
    return known & rule.fails(np.where(known, values, 0.0), threshold)


@dataclass(frozen=True)
class FitResult:
    thresholds: dict[str, float]
    retention: list[float]  # of each kept-reliable set, in the order given
    sweeps: int


def fit_thresholds(
    metrics: dict[str, np.ndarray],
    target: np.ndarray,
    keep: list[tuple[np.ndarray, float]],
    *,
    tau: float | np.ndarray,
    weight: np.ndarray | None = None,
    rules: tuple[QualityRule, ...] = QUALITY_RULES,
    max_sweeps: int = 20,
) -> FitResult:
    """Coordinate ascent over the rules' thresholds; rows are faces, ``target`` in [0, 1] (nan: no say).

    Maximises the sum over accepted rows of ``weight`` x (target - tau) (``tau`` and ``weight`` per row or one
    for all; weight 1 when not given) while, for each ``(rows, share)`` of ``keep``, at least ``share`` of those
    rows stay accepted; ties go to the most permissive threshold.
    """
    gain = np.nan_to_num(target - tau, nan=0.0)
    if weight is not None:
        gain = gain * weight
    candidates = [candidate_thresholds(rule, rule_values(rule, metrics)) for rule in rules]
    rejected = [
        np.stack([fails(rule, metrics, c) for c in options]) for rule, options in zip(rules, candidates, strict=True)
    ]
    chosen = [0] * len(rules)  # every rule off
    sweeps = 0
    for sweep in range(1, max_sweeps + 1):
        sweeps, changed = sweep, False
        for r in range(len(rules)):
            others = np.zeros(len(target), bool)
            for o in range(len(rules)):
                if o != r:
                    others |= rejected[o][chosen[o]]
            accepted = ~(rejected[r] | others)  # [candidates, rows]
            scores = np.round(accepted.astype(np.float64) @ gain, 9)
            for rows, share in keep:
                if rows.any():
                    scores[accepted[:, rows].mean(axis=1) < share] = -np.inf
            best = int(np.argmax(scores))  # the first of the best: the most permissive
            if best != chosen[r] and scores[best] >= scores[chosen[r]]:
                chosen[r], changed = best, True
        if not changed:
            break
    accepted = ~np.any([rejected[r][chosen[r]] for r in range(len(rules))], axis=0)
    return FitResult(
        thresholds={rule.setting: float(candidates[r][chosen[r]]) for r, rule in enumerate(rules)},
        retention=[float(accepted[rows].mean()) if rows.any() else 1.0 for rows, _ in keep], sweeps=sweeps,
    )  # fmt: skip


def condition_accuracy(data: Measured, rows: np.ndarray, models: list[str]) -> np.ndarray:
    """Each row's condition's accuracy over ``rows`` (detected faces), averaged over ``models``."""
    conditions = data.condition
    right = np.mean([data.right(m) for m in models], axis=0)
    accuracy = np.full(len(conditions), math.nan)
    for condition in np.unique(conditions[rows]):
        members = conditions == condition
        accuracy[members] = right[rows & members].mean()
    return accuracy


def harm_threshold(data: Measured, rows: np.ndarray, models: list[str], skill_loss: float) -> float:
    """tau: the accuracy below which a condition has lost ``skill_loss`` of the model's skill, its clean
    accuracy's excess over always answering the commonest mood (both measured on ``rows``' clean photos)."""
    clean = rows & data.found & (data.family == "clean")
    accuracy = float(np.mean([data.right(m)[clean].mean() for m in models]))
    majority = float(np.bincount(data.label[clean], minlength=len(MOODS)).max() / clean.sum())
    return accuracy - skill_loss * (accuracy - majority)


@dataclass(frozen=True)
class HarmEvidence:
    """One domain's faces for the fit: their metrics, each face's target (its condition's accuracy in this
    domain), the domain's own tau, which faces are clean, and the domain's share of the objective."""

    domain: str
    metrics: dict[str, np.ndarray]
    target: np.ndarray
    tau: float
    clean: np.ndarray
    weight: float


def harm_evidence(
    domain: str, data: Measured, rows: np.ndarray, models: list[str], skill_loss: float, weight: float
) -> HarmEvidence:  # fmt: skip
    """``rows`` of ``data`` (detected faces only) as evidence: tau from their clean faces, targets from their
    conditions."""
    rows = rows & data.found
    return HarmEvidence(
        domain=domain, metrics={k: v[rows] for k, v in data.metrics.items()},
        target=condition_accuracy(data, rows, models)[rows], tau=harm_threshold(data, rows, models, skill_loss),
        clean=(data.family == "clean")[rows], weight=weight,
    )  # fmt: skip


def fit_pooled(evidence: list[HarmEvidence], retention: float) -> FitResult:
    """The thresholds that maximise the weighted sum of every domain's mean gain over its faces,
    sum_d weight_d x mean_{faces of d} [accepted] (target - tau_d), keeping ``retention`` of each domain's
    clean faces reliable. A face's gain is divided by its domain's face count, so a domain's say is its
    weight, not its size; a metric a domain does not measure (nan) never rejects its faces, so the
    detector's metrics (face size, edge, pose, score) are fitted on the pipeline's evidence alone."""
    sizes = [len(e.target) for e in evidence]
    metrics = {k: np.concatenate([e.metrics[k] for e in evidence]) for k in METRICS}
    keep = []
    for index, e in enumerate(evidence):
        mask = np.zeros(sum(sizes), bool)
        start = sum(sizes[:index])
        mask[start : start + sizes[index]] = e.clean
        keep.append((mask, retention))
    return fit_thresholds(
        metrics, np.concatenate([e.target for e in evidence]), keep,
        tau=np.concatenate([np.full(n, e.tau) for e, n in zip(evidence, sizes, strict=True)]),
        weight=np.concatenate([np.full(n, e.weight / max(n, 1)) for e, n in zip(evidence, sizes, strict=True)]),
    )  # fmt: skip


def judge(metrics: dict[str, np.ndarray], thresholds: dict[str, float]) -> tuple[np.ndarray, list[list[str]]]:
    """(reliable, reasons) per row: ``meaa.quality.unreliable_reasons`` on arrays."""
    count = len(next(iter(metrics.values())))
    reasons: list[list[str]] = [[] for _ in range(count)]
    for rule in QUALITY_RULES:
        for row in np.flatnonzero(fails(rule, metrics, thresholds[rule.setting])):
            if rule.reason not in reasons[row]:
                reasons[row].append(rule.reason)
    return np.array([not why for why in reasons], bool), reasons


# --- reporting ---------------------------------------------------------------------------------------


def wilson(successes: int, count: int) -> list[float] | None:
    """95 % Wilson score interval of a proportion."""
    if count == 0:
        return None
    p = successes / count
    denominator = 1 + Z95**2 / count
    centre = (p + Z95**2 / (2 * count)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / count + Z95**2 / (4 * count**2)) / denominator
    return [round(centre - half, 4), round(centre + half, 4)]


@dataclass
class Row:
    """Accuracy of reliable, unreliable and all faces in one slice of the data."""

    name: str
    levels: list[str]
    photos: int
    faces: int
    reliable: int
    correct_reliable: int
    correct_unreliable: int
    reliable_share_by_level: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def unreliable(self) -> int:
        return self.faces - self.reliable

    def to_dict(self) -> dict:
        def share(k: int, n: int) -> float | None:
            return round(k / n, 4) if n else None

        correct = self.correct_reliable + self.correct_unreliable
        return {
            "name": self.name, "levels": self.levels, "photos": self.photos, "faces": self.faces,
            "reliable": self.reliable, "unreliable": self.unreliable,
            "accuracy_reliable": share(self.correct_reliable, self.reliable),
            "accuracy_reliable_ci95": wilson(self.correct_reliable, self.reliable),
            "accuracy_unreliable": share(self.correct_unreliable, self.unreliable),
            "accuracy_unreliable_ci95": wilson(self.correct_unreliable, self.unreliable),
            "accuracy_all": share(correct, self.faces), "accuracy_all_ci95": wilson(correct, self.faces),
            "reliable_share": share(self.reliable, self.faces),
            "reliable_share_ci95": wilson(self.reliable, self.faces),
            "reliable_share_by_level": self.reliable_share_by_level, "reasons": self.reasons,
        }  # fmt: skip


def summarise(name: str, data: Measured, reliable: np.ndarray, reasons: list[list[str]], model: str) -> Row:
    found, right = data.found, data.right(model)
    # Within one family a level's name says it; across families the condition (family | level) does.
    levels = data.level if len(set(data.family.tolist())) == 1 else data.condition
    by_level: dict[str, float | None] = {}
    for level in dict.fromkeys(levels.tolist()):
        mask = found & (levels == level)
        by_level[level] = round(float(reliable[mask].mean()), 3) if mask.any() else None
    counts: dict[str, int] = {}
    for row in np.flatnonzero(found):
        for reason in reasons[row]:
            counts[reason] = counts.get(reason, 0) + 1
    return Row(
        name=name, levels=list(by_level), photos=len(found), faces=int(found.sum()),
        reliable=int((found & reliable).sum()), correct_reliable=int((found & reliable & right).sum()),
        correct_unreliable=int((found & ~reliable & right).sum()), reliable_share_by_level=by_level,
        reasons=dict(sorted(counts.items(), key=lambda item: -item[1])),
    )  # fmt: skip


def report_rows(data: Measured, reliable: np.ndarray, reasons: list[list[str]], model: str) -> list[Row]:
    """One row per family, then all the degraded rows together, then each family's strongest level."""
    families = list(dict.fromkeys(data.family.tolist()))
    slices = [(family, data.family == family) for family in families]
    slices.append(("all degraded", data.family != "clean"))
    strongest = np.zeros(len(data.family), bool)
    for family in families[1:]:
        last = list(dict.fromkeys(data.level[data.family == family].tolist()))[-1]
        strongest |= (data.family == family) & (data.level == last)
    slices.append(("strongest level of each", strongest))
    return [
        summarise(name, data.take(mask), reliable[mask], [reasons[i] for i in np.flatnonzero(mask)], model)
        for name, mask in slices
    ]


def level_rows(data: Measured, reliable: np.ndarray, reasons: list[list[str]], model: str) -> list[dict]:
    rows = []
    for family, level in dict.fromkeys(zip(data.family.tolist(), data.level.tolist(), strict=True)):
        mask = (data.family == family) & (data.level == level)
        why = [reasons[i] for i in np.flatnonzero(mask)]
        rows.append(summarise(f"{family} {level}", data.take(mask), reliable[mask], why, model).to_dict())
    return rows


def condition_oracle(data: Measured, folds: list[tuple[np.ndarray, float]], model: str) -> dict:
    """The ceiling of any quality gate on this mix: per fold, flag exactly the conditions (degradation and
    level) whose accuracy on the training subjects is below that fold's tau, by their labels."""
    held_reliable = np.zeros(len(data.found), bool)
    conditions = data.condition
    for held, tau in folds:
        accuracy = condition_accuracy(data, ~held & data.found, [model])
        held_reliable[held] = ~(accuracy[held] < tau)
    degraded = (data.family != "clean") & data.found
    right = data.right(model)
    kept = degraded & held_reliable
    return {
        "accuracy_reliable": round(float(right[kept].mean()), 4),
        "accuracy_unreliable": round(float(right[degraded & ~held_reliable].mean()), 4),
        "accuracy_all": round(float(right[degraded].mean()), 4),
        "reliable_share": round(float(kept.sum() / degraded.sum()), 4),
        "conditions": len(set(conditions[degraded].tolist())),
    }


def bootstrap_gain(data: Measured, reliable: np.ndarray, model: str, draws: int = 2000, seed: int = 0) -> dict:
    """Accuracy of reliable minus accuracy of all faces on the degraded rows, with a 95 % interval from
    resampling photos (a photo's degraded copies together: they are not independent)."""
    mask = (data.family != "clean") & data.found
    right = data.right(model)[mask].astype(np.float64)
    kept = reliable[mask].astype(np.float64)
    photos = data.photo[mask].astype(np.int64)
    per_photo = np.zeros((int(photos.max()) + 1, 4))
    np.add.at(per_photo, photos, np.stack([right * kept, kept, right, np.ones_like(right)], axis=1))
    present = np.flatnonzero(per_photo[:, 3] > 0)

    def gain(sample: np.ndarray) -> float:
        sums = per_photo[sample].sum(axis=0)
        return sums[0] / sums[1] - sums[2] / sums[3]

    rng = np.random.default_rng(seed)
    estimates = [gain(rng.choice(present, size=len(present), replace=True)) for _ in range(draws)]
    interval = [round(float(v), 4) for v in np.quantile(estimates, [0.025, 0.975])]
    return {"gain": round(gain(present), 4), "ci95": interval}


def markdown_table(rows: list[Row]) -> str:
    def share(k: int, n: int) -> str:
        return f"{k / n:.2f}" if n else "-"

    lines = [
        "| degradation | levels | faces (found / photos) | reliable | acc. reliable | acc. unreliable | acc. all |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.name in ("all degraded", "strongest level of each"):
            levels = f"{len(row.levels)} levels"
        else:
            shares = row.reliable_share_by_level.items()
            levels = ", ".join(f"{level} ({'-' if v is None else f'{v:.0%}'})" for level, v in shares)
        lines.append(
            f"| {row.name} | {levels} | {row.faces} / {row.photos} | "
            f"{row.reliable} ({share(row.reliable, row.faces)}) | "
            f"{share(row.correct_reliable, row.reliable)} ({row.reliable}) | "
            f"{share(row.correct_unreliable, row.unreliable)} ({row.unreliable}) | "
            f"{share(row.correct_reliable + row.correct_unreliable, row.faces)} ({row.faces}) |"
        )
    return "\n".join(lines)


# --- pose checks -------------------------------------------------------------------------------------


def pose_checks(data: Measured) -> dict:
    """What the landmark pose says on the clean frontal photos and under the rotations and turn proxies."""
    found = data.found
    clean = found & (data.family == "clean")
    result: dict = {"clean_frontal_abs_median_p95_max": {}}
    for angle in ("yaw", "pitch", "roll"):
        values = np.abs(data.metrics[angle][clean])
        result["clean_frontal_abs_median_p95_max"][angle] = [
            round(float(v), 1) for v in (np.median(values), np.quantile(values, 0.95), values.max())
        ]
    clean_roll = dict(zip(data.photo[clean].tolist(), data.metrics["roll"][clean].tolist(), strict=True))
    errors = {}
    rotated = data.family == "rotated in plane"
    for level in dict.fromkeys(data.level[rotated].tolist()):
        mask = found & rotated & (data.level == level)
        # cv2 turns counter-clockwise for a positive angle (odd photos), roll counts clockwise.
        signs = np.where(data.photo[mask] % 2 == 1, 1.0, -1.0)
        expected = np.array([clean_roll[p] for p in data.photo[mask]]) - signs * float(level.split()[0])
        errors[level] = round(float(np.median(np.abs(data.metrics["roll"][mask] - expected))), 2)
    result["roll_error_median_by_rotation"] = errors
    for family in dict.fromkeys(data.family.tolist()):
        if not family.startswith("turned"):
            continue
        by_level = {}
        for level in dict.fromkeys(data.level[data.family == family].tolist()):
            mask = found & (data.family == family) & (data.level == level)
            if mask.any():
                by_level[level] = {
                    a: round(float(np.median(np.abs(data.metrics[a][mask]))), 1) for a in ("yaw", "pitch")
                }
        result[f"median_abs_pose: {family}"] = by_level
    return result


# --- main --------------------------------------------------------------------------------------------


def subjects_of(names: np.ndarray) -> np.ndarray:
    """JAFFE's subject is the file name's prefix (``KA.AN1.39.tiff`` -> ``KA``)."""
    return np.array([str(name).split(".")[0] for name in names])


@dataclass
class GateRun:
    """One fit of the gate: the thresholds fitted on all subjects, and each jaffe_dev face judged by the
    thresholds fitted without its subject."""

    final: FitResult
    final_taus: dict[str, float]
    reliable: np.ndarray
    reasons: list[list[str]]
    folds: list[dict]


def run_gate(
    data: Measured, fer_fit: Measured | None, models: list[str], skill_loss: float, retention: float, fer_weight: float
) -> GateRun:  # fmt: skip
    """Leave-one-subject-out on jaffe_dev, pooled with ``fer_fit`` (the same FER2013 crops in every fold)."""
    fer_evidence = None
    if fer_fit is not None:
        every = np.ones(len(fer_fit.found), bool)
        fer_evidence = harm_evidence("fer2013_val_even", fer_fit, every, models, skill_loss, fer_weight)

    def fit(rows: np.ndarray) -> tuple[FitResult, list[HarmEvidence]]:
        jaffe_weight = 1.0 - fer_weight if fer_evidence is not None else 1.0
        evidence = [harm_evidence("jaffe_dev", data, rows, models, skill_loss, jaffe_weight)]
        evidence += [fer_evidence] if fer_evidence is not None else []
        return fit_pooled(evidence, retention), evidence

    def described(result: FitResult, evidence: list[HarmEvidence]) -> dict:
        return {
            "tau": {e.domain: round(e.tau, 4) for e in evidence}, "thresholds": result.thresholds,
            "clean_retention": {e.domain: round(r, 4) for e, r in zip(evidence, result.retention, strict=True)},
        }  # fmt: skip

    reliable = np.zeros(len(data.found), bool)
    reasons: list[list[str]] = [[] for _ in data.found]
    folds = []
    for subject in sorted(set(data.subject.tolist())):
        held = data.subject == subject
        fold, evidence = fit(~held)
        reliable[held], held_reasons = judge({k: v[held] for k, v in data.metrics.items()}, fold.thresholds)
        for row, why in zip(np.flatnonzero(held), held_reasons, strict=True):
            reasons[row] = why
        folds.append({"held_out": subject, **described(fold, evidence)})
    final, evidence = fit(np.ones(len(data.found), bool))
    return GateRun(final, {e.domain: round(e.tau, 4) for e in evidence}, reliable, reasons, folds)


def clean_retention(data: Measured, reliable: np.ndarray) -> dict:
    """Criterion (b): the share of clean faces that stay reliable, with its Wilson interval."""
    clean = (data.family == "clean") & data.found
    kept, count = int((clean & reliable).sum()), int(clean.sum())
    return {"reliable": kept, "faces": count, "share": round(kept / count, 4), "ci95": wilson(kept, count)}


def weight_sensitivity(
    data: Measured, fer_fit: Measured, fer_test: Measured, args: argparse.Namespace, fit_models: list[str]
) -> list[dict]:  # fmt: skip
    """The whole fit again at other FER2013 weights: how much the thresholds and both criteria depend on it."""
    rows = []
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
        run = run_gate(data, fer_fit, fit_models, args.skill_loss, args.min_clean_retention, weight)
        fer_reliable, _ = judge(fer_test.metrics, run.final.thresholds)
        rows.append({
            "fer_weight": weight, "thresholds": run.final.thresholds,
            "jaffe_out_of_fold_gain": bootstrap_gain(data, run.reliable, args.mood_model),
            "jaffe_out_of_fold_clean": clean_retention(data, run.reliable),
            "fer_test_gain": bootstrap_gain(fer_test, fer_reliable, args.mood_model),
            "fer_test_clean": clean_retention(fer_test, fer_reliable),
        })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jaffe", required=True, help="jaffe_dev.npz (images, labels, names)")
    parser.add_argument("--fer-val", help="fer2013_val.npz: even-numbered crops join the fit, odd ones test it")
    parser.add_argument(
        "--mood-model",
        default=Settings().mood_model,
        help="manifest key or .onnx path: the model of the tables (default: the service's)",
    )
    parser.add_argument(
        "--fit-model",
        action="append",
        help="models whose accuracy (averaged) fits the thresholds (repeatable; default: --mood-model)",
    )
    parser.add_argument(
        "--jaffe-fold-models",
        default="auto",
        help="folder of fold_SUBJECT.onnx that score each JAFFE subject's photos (each trained "
        "without that subject); 'auto': the manifest's jaffe_fold_models of each model, if it has "
        "one; 'none': the model itself for every subject",
    )
    parser.add_argument(
        "--fer-weight",
        type=float,
        default=0.5,
        help="the FER2013 crops' share of the fit's objective (jaffe_dev's: 1 - this); 0 uses them "
        "for the clean-retention constraint only",
    )
    parser.add_argument(
        "--skill-loss",
        type=float,
        default=0.5,
        help="a condition is harmful when it costs the model this share of its clean accuracy's "
        "excess over the commonest mood",
    )
    parser.add_argument(
        "--min-clean-retention",
        type=float,
        default=0.95,
        help="share of each domain's clean fitting faces that stay reliable",
    )
    parser.add_argument(
        "--sensitivity",
        action="store_true",
        help="also refit at FER2013 weights 0, 0.25, 0.5, 0.75, 1 and report both criteria for each",
    )
    parser.add_argument("--limit", type=int, help="only the first N photos (and 10 N FER2013 crops): a quick run")
    parser.add_argument("--json", help="write the thresholds, folds and tables here")
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    if not 0.0 <= args.fer_weight <= 1.0:
        parser.error("--fer-weight must be between 0 and 1")

    started = time.perf_counter()
    fit_models = list(dict.fromkeys(args.fit_model or [args.mood_model]))
    models = list(dict.fromkeys([args.mood_model, *fit_models]))
    with np.load(args.jaffe) as jaffe:
        images, emotions, names = jaffe["images"], jaffe["labels"].astype(np.int64), jaffe["names"]
    if args.limit:
        images, emotions, names = images[: args.limit], emotions[: args.limit], names[: args.limit]
    subjects = subjects_of(names)
    subject_list = sorted(set(subjects.tolist()))

    def fold_dir(model: str) -> str | None:
        if args.jaffe_fold_models == "auto":
            return manifest_fold_dir(model)
        return None if args.jaffe_fold_models == "none" else args.jaffe_fold_models

    jaffe_models = {model: jaffe_models_of(model, fold_dir(model), subject_list) for model in models}
    data = measure_jaffe(images, emotion_labels_to_moods(emotions), subjects, jaffe_models, jaffe_degradations())
    fer_fit = fer_test = None
    if args.fer_val:
        with np.load(args.fer_val) as fer:
            fer_images, fer_emotions = fer["images"], fer["labels"].astype(np.int64)
        if args.limit:
            fer_images, fer_emotions = fer_images[: args.limit * 10], fer_emotions[: args.limit * 10]
        fer_data = measure_fer(fer_images, emotion_labels_to_moods(fer_emotions), models, fer_degradations())
        fer_fit, fer_test = fer_data.take(fer_data.photo % 2 == 0), fer_data.take(fer_data.photo % 2 == 1)

    run = run_gate(data, fer_fit, fit_models, args.skill_loss, args.min_clean_retention, args.fer_weight)
    reliable, reasons = run.reliable, run.reasons
    jaffe_tau = [(data.subject == f["held_out"], f["tau"]["jaffe_dev"]) for f in run.folds]
    oracle = condition_oracle(data, jaffe_tau, args.mood_model) if fit_models == [args.mood_model] else None

    def relative(path: str) -> str:
        resolved = Path(path).resolve()
        return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else path

    clean = (data.family == "clean") & data.found
    rows = report_rows(data, reliable, reasons, args.mood_model)
    result: dict = {
        "command": "model_build/.venv/bin/python -m model_build.quality_gate " + " ".join(arguments),
        "mood_model": args.mood_model, "fit_models": fit_models, "skill_loss": args.skill_loss,
        "min_clean_retention": args.min_clean_retention,
        "fer_weight": args.fer_weight if fer_fit is not None else None,
        "tau": run.final_taus, "thresholds": run.final.thresholds,
        "final_fit_clean_retention": dict(zip(run.final_taus, [round(v, 4) for v in run.final.retention], strict=True)),
        "jaffe_dev": {
            "photos": len(images), "subjects": subject_list,
            "scored_by": {subject: relative(file) for subject, file in jaffe_models[args.mood_model].items()},
            "folds": run.folds,
            "out_of_fold": [row.to_dict() for row in rows],
            "out_of_fold_by_level": level_rows(data, reliable, reasons, args.mood_model),
            "degraded_accuracy_gain_reliable_minus_all": bootstrap_gain(data, reliable, args.mood_model),
            "clean_reliable": clean_retention(data, reliable),
            "degraded_condition_oracle": oracle,
            "clean_reliable_by_mood": {
                mood: [int((clean & reliable & (data.label == i)).sum()), int((clean & (data.label == i)).sum())]
                for i, mood in enumerate(MOODS)
            },
            "clean_reliable_by_subject": {
                s: [int((clean & reliable & (data.subject == s)).sum()), int((clean & (data.subject == s)).sum())]
                for s in subject_list
            },
            "pose": pose_checks(data),
        },
    }  # fmt: skip
    print(
        f"thresholds (fitted on all of jaffe_dev{' and the even fer2013_val crops' if fer_fit else ''}; tau "
        f"{run.final_taus}; clean kept {result['final_fit_clean_retention']}): {json.dumps(run.final.thresholds)}"
    )
    print(f"\njaffe_dev, leave-one-subject-out, {args.mood_model} (photos scored by: "
          f"{', '.join(f'{k} {relative(v)}' for k, v in jaffe_models[args.mood_model].items())}):\n"
          f"{markdown_table(rows)}")  # fmt: skip
    gain = result["jaffe_dev"]["degraded_accuracy_gain_reliable_minus_all"]
    print(
        f"degraded: accuracy of reliable minus all faces {gain['gain']:+.3f} (95 % CI {gain['ci95']}); clean "
        f"faces reliable {result['jaffe_dev']['clean_reliable']}"
    )
    if oracle:
        print(f"a gate that knew each photo's condition would keep {oracle['reliable_share']:.2f} at accuracy "
              f"{oracle['accuracy_reliable']:.3f} (flagged {oracle['accuracy_unreliable']:.3f})")  # fmt: skip

    if fer_test is not None:
        fer_reliable, fer_reasons = judge(fer_test.metrics, run.final.thresholds)
        fer_rows = report_rows(fer_test, fer_reliable, fer_reasons, args.mood_model)
        result["fer2013_val_test_half"] = {
            "crops": int((fer_test.family == "clean").sum()), "metrics_that_apply": list(PATCH_METRICS),
            "rows": [row.to_dict() for row in fer_rows],
            "by_level": level_rows(fer_test, fer_reliable, fer_reasons, args.mood_model),
            "degraded_accuracy_gain_reliable_minus_all": bootstrap_gain(fer_test, fer_reliable, args.mood_model),
            "clean_reliable": clean_retention(fer_test, fer_reliable),
        }  # fmt: skip
        print(f"\nfer2013_val, odd-numbered crops (never fitted on; {', '.join(PATCH_METRICS)} only):\n"
              f"{markdown_table(fer_rows)}")  # fmt: skip
        gain = result["fer2013_val_test_half"]["degraded_accuracy_gain_reliable_minus_all"]
        print(
            f"degraded: accuracy of reliable minus all faces {gain['gain']:+.3f} (95 % CI {gain['ci95']}); clean "
            f"crops reliable {result['fer2013_val_test_half']['clean_reliable']}"
        )
        if args.sensitivity:
            result["fer_weight_sensitivity"] = weight_sensitivity(data, fer_fit, fer_test, args, fit_models)
            print(
                "\nFER2013 weight | thresholds | jaffe_dev out of fold: gain, clean kept | fer2013_val odd: gain, "
                "clean kept"
            )
            for row in result["fer_weight_sensitivity"]:
                print(
                    f"{row['fer_weight']:g} | {json.dumps(row['thresholds'])} | "
                    f"{row['jaffe_out_of_fold_gain']['gain']:+.3f} {row['jaffe_out_of_fold_gain']['ci95']}, "
                    f"{row['jaffe_out_of_fold_clean']['share']:.3f} | {row['fer_test_gain']['gain']:+.3f} "
                    f"{row['fer_test_gain']['ci95']}, {row['fer_test_clean']['share']:.3f}"
                )
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
