"""``MoodEstimator``: image bytes -> faces -> moods, with models cached per process.

Lambda reuses a container across invocations: the first call loads the ONNX sessions (lazily, so
importing this module stays cheap) and later calls, from any ``MoodEstimator`` with the same settings,
reuse them.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from meaa.classifier import MoodClassifier, load_manifest
from meaa.config import DetectionSettings, Settings
from meaa.cropping import crop_faces
from meaa.decoding import DecodedImage, EncodedImage
from meaa.detector import FaceDetections, MTCNNDetector
from meaa.errors import InvalidInput
from meaa.labels import EMOTIONS, MOODS
from meaa.quality import FaceQuality, measure_face, unreliable_reasons
from meaa.results import Analysis, Face

# Keyed by what the loaded models depend on, so estimators that differ in other settings share them.
_EngineKey = tuple[str, str, int, DetectionSettings]
_ENGINES: dict[_EngineKey, _Engine] = {}
_ENGINES_LOCK = threading.Lock()

# A face is cropped from a reduced-size decode when its side there is at least this many times the mood
# model's input, where its moods match a full-size crop's within box jitter; smaller faces are cropped from a
# finer decode (`python -m benchmarks.reduced_decoding`, table 3; README, "Large JPEGs").
_CROP_MIN_SIDE_PER_INPUT = 1.25


class _Engine:
    """The loaded models for one ``Settings``."""

    def __init__(self, settings: Settings) -> None:
        self.detector = MTCNNDetector(settings.models_dir, settings.detection, settings.threads)
        self.classifier = MoodClassifier.from_manifest(settings.models_dir, settings.mood_model, settings.threads)
        self.model_version = model_version_of(settings)


def model_version_of(settings: Settings) -> str:
    """The version of the models ``settings`` name (``mtcnn:<sha12>+<mood model>:<sha12>[@t<T>]``), read from the
    manifest without loading them: what every result records, and what the results store keys them by."""
    detector_entry = load_manifest(settings.models_dir)["models"]["onet"]
    mood_model = MoodClassifier.manifest_version(settings.models_dir, settings.mood_model)
    return f"mtcnn:{detector_entry['sha256'][:12]}+{mood_model}"


def _engine_for(settings: Settings) -> _Engine:
    key = (settings.models_dir, settings.mood_model, settings.threads, settings.detection)
    engine = _ENGINES.get(key)
    if engine is None:
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = _Engine(settings)
    return engine


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Accept BGR uint8 HxWx3, BGRA HxWx4 or gray HxW arrays; refuse anything else."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidInput("an image array must be numpy uint8")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise InvalidInput(f"an image array must be HxW, HxWx3 or HxWx4; got shape {image.shape}")


class MoodEstimator:
    """Faces and moods in an image. Cheap to construct; models load on first use and are shared."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()

    @property
    def _engine(self) -> _Engine:
        return _engine_for(self.settings)

    @property
    def model_version(self) -> str:
        return self._engine.model_version

    def warm_up(self) -> None:
        """Load the models and run each once, so the first real request pays no initialisation."""
        self.analyze(np.zeros((64, 64, 3), np.uint8))
        self.classify_faces(np.zeros((1, 48, 48), np.uint8))

    def analyze(self, image: bytes | bytearray | memoryview | np.ndarray) -> Analysis:
        """Detect every face and classify its mood. Raises ``meaa.errors.MeaaError`` on bad input."""
        engine = self._engine
        timings: dict[str, float] = {}
        started = time.perf_counter()
        encoded: EncodedImage | None = None
        if isinstance(image, (bytes, bytearray, memoryview)):
            encoded = EncodedImage.parse(bytes(image), self.settings.decoding)
            decoded = encoded.decode(_detection_reduction(encoded, self.settings.detection))
            timings["decode"] = (time.perf_counter() - started) * 1000.0
        else:
            bgr = _as_bgr(image)
            decoded = DecodedImage(bgr, 1, (bgr.shape[1], bgr.shape[0]))

        mark = time.perf_counter()
        detections = engine.detector.detect_faces(decoded.image)
        timings["detect"] = (time.perf_counter() - mark) * 1000.0

        mark = time.perf_counter()
        source = _crop_source(encoded, decoded, detections, engine.classifier.input_size)
        if source is not decoded:  # a second, finer decode for small faces: decoding time too
            timings["decode"] += (time.perf_counter() - mark) * 1000.0

        return self._finish(engine, decoded, source, detections, timings, started)

    def classify_faces(self, crops: np.ndarray) -> np.ndarray:
        """Mood probabilities float32 [N,4] (MOODS order) for uint8 gray face crops [N,H,W] of any size."""
        return self._engine.classifier.predict(crops).moods

    def analyze_frames(self, frames: Iterable[np.ndarray], *, redetect_every: int | None = None) -> Iterator[Analysis]:
        """Analyses of consecutive video frames (BGR or gray arrays), each frame's faces found from the last's.

        Opt-in, for video: between full detections the faces are followed with ``MTCNNDetector.track_faces``
        (R-Net and O-Net around the previous boxes, no P-Net pyramid), which costs a fraction of a full
        detection. Full detection runs on the first frame, on every ``redetect_every``-th frame after one,
        whenever a followed face is lost, and on every frame while there is none to follow, so a new face
        shows up at the next full detection at the latest. ``timings_ms`` says which ran: ``track``,
        ``detect``, or both when tracking lost a face. ``redetect_every`` defaults to the settings'
        ``video_scoring.redetect_every`` (``MEAA_VIDEO_REDETECT_EVERY``).
        """
        if redetect_every is None:
            redetect_every = self.settings.video_scoring.redetect_every
        if redetect_every < 1:
            raise InvalidInput(f"redetect_every must be at least 1; got {redetect_every}")
        engine = self._engine
        previous = FaceDetections.empty()
        since_detection = 0
        for frame in frames:
            bgr = _as_bgr(frame)
            timings: dict[str, float] = {}
            started = time.perf_counter()
            detections = None
            if len(previous) and since_detection < redetect_every:
                tracked = engine.detector.track_faces(bgr, previous)
                timings["track"] = (time.perf_counter() - started) * 1000.0
                if len(tracked) >= len(previous):
                    detections = tracked
                    since_detection += 1
            if detections is None:
                mark = time.perf_counter()
                detections = engine.detector.detect_faces(bgr)
                timings["detect"] = (time.perf_counter() - mark) * 1000.0
                since_detection = 1
            previous = detections

            whole = DecodedImage(bgr, 1, (bgr.shape[1], bgr.shape[0]))  # a frame is its own full-size image
            yield self._finish(engine, whole, whole, detections, timings, started)

    def _finish(
        self,
        engine: _Engine,
        decoded: DecodedImage,
        source: DecodedImage,
        detections: FaceDetections,
        timings: dict[str, float],
        started: float,
    ) -> Analysis:
        """Measure each detected face's quality, classify its mood, and time both (the stages after detection)."""
        mark = time.perf_counter()
        qualities = _face_qualities(decoded, source, detections)
        timings["quality"] = (time.perf_counter() - mark) * 1000.0

        mark = time.perf_counter()
        faces = self._classify_detections(engine, decoded, source, detections, qualities)
        timings["classify"] = (time.perf_counter() - mark) * 1000.0
        timings["total"] = (time.perf_counter() - started) * 1000.0
        width, height = decoded.original_size
        return Analysis(width=width, height=height, faces=faces, model_version=engine.model_version, timings_ms=timings)

    def _classify_detections(
        self,
        engine: _Engine,
        decoded: DecodedImage,
        source: DecodedImage,
        detections: FaceDetections,
        qualities: list[FaceQuality],
    ) -> list[Face]:
        """Faces in original-image pixels, each classified from its crop of ``source``.

        ``detections`` are in ``decoded.image``'s pixels; ``source`` is the same image, possibly decoded
        at another size."""
        if not len(detections):
            return []
        to_source = decoded.reduction / source.reduction
        crops = crop_faces(
            source.image,
            detections.boxes * to_source,
            detections.landmarks * to_source,
            engine.classifier.input_size,
            margin=self.settings.crop_margin,
            align=self.settings.align_faces,
        )
        predictions = engine.classifier.predict(crops)
        width, height = decoded.original_size
        boxes = detections.boxes * decoded.reduction  # original-image pixels, the public contract
        landmarks = detections.landmarks * decoded.reduction
        faces = []
        for index in range(len(detections)):
            moods = predictions.moods[index]
            emotions = predictions.emotions[index] if predictions.emotions is not None else None
            faces.append(
                Face(
                    box=_clip_box(boxes[index], width, height),
                    score=float(detections.scores[index]),
                    landmarks=tuple((float(x), float(y)) for x, y in landmarks[index]),
                    moods={name: float(p) for name, p in zip(MOODS, moods, strict=True)},
                    mood=MOODS[int(np.argmax(moods))],
                    emotions=(
                        {name: float(p) for name, p in zip(EMOTIONS, emotions, strict=True)}
                        if emotions is not None
                        else {}
                    ),
                    quality=qualities[index],
                    unreliable_reasons=unreliable_reasons(qualities[index], self.settings.quality),
                )
            )
        return faces


def _face_qualities(decoded: DecodedImage, source: DecodedImage, detections: FaceDetections) -> list[FaceQuality]:
    """Each face's quality, measured on the image its crop comes from (its 48 px patch is then as sharp as
    the classifier's input), with its size in original-image pixels, which the size threshold is in."""
    to_source = decoded.reduction / source.reduction
    qualities = []
    for box, points, score in zip(detections.boxes, detections.landmarks, detections.scores, strict=True):
        quality = measure_face(source.image, box * to_source, points * to_source, score)
        if decoded.reduction != 1:
            side = min(box[2] - box[0], box[3] - box[1]) * decoded.reduction
            quality = dataclasses.replace(quality, face_px=round(side))
        qualities.append(quality)
    return qualities


def _detection_reduction(encoded: EncodedImage, detection: DetectionSettings) -> int:
    """The largest JPEG reduction (1, 2, 4, 8) that leaves what detection sees unchanged.

    Detection shrinks its input to ``detect_max_side`` anyway, so a decode whose long side stays at or
    above it loses nothing; and the smallest face it searches for, ``max(min_face_px, min_face_fraction *
    short side)`` in the image it is given, stays the same in original pixels while the fraction term is
    the larger. A progressive JPEG too large to decode at that size is decoded at the next size that fits.
    """
    if not detection.detect_max_side or detection.min_face_fraction <= 0:
        return 1
    chosen = 1
    for reduction in encoded.reductions:
        width, height = encoded.reduced_size(reduction)
        if max(width, height) >= detection.detect_max_side and (
            detection.min_face_fraction * min(width, height) >= detection.min_face_px
        ):
            chosen = reduction
    cap = encoded.limits.max_decode_bytes
    fitting = [r for r in encoded.reductions if r >= chosen and encoded.decode_bytes(r) <= cap]
    return fitting[0] if fitting else encoded.reductions[-1]


def _crop_source(
    encoded: EncodedImage | None, decoded: DecodedImage, detections: FaceDetections, input_size: int
) -> DecodedImage:
    """The image to crop faces from: the detection image when every face is large enough there
    (``_CROP_MIN_SIDE_PER_INPUT``), else the JPEG decoded again at the largest size that makes the
    smallest face so (at full size at most), within the decode memory cap."""
    if encoded is None or decoded.reduction == 1 or not len(detections):
        return decoded
    boxes = detections.boxes
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    needed = _CROP_MIN_SIDE_PER_INPUT * input_size
    smallest = float(sides.min())
    if smallest >= needed:
        return decoded
    finer = [
        r
        for r in encoded.reductions
        if r < decoded.reduction and encoded.decode_bytes(r) <= encoded.limits.max_decode_bytes
    ]
    if not finer:
        return decoded
    large_enough = [r for r in finer if smallest * decoded.reduction / r >= needed]
    return encoded.decode(max(large_enough) if large_enough else min(finer))


def _clip_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) floats -> (x, y, w, h) ints inside the image."""
    x1 = int(np.clip(np.floor(box[0]), 0, width - 1))
    y1 = int(np.clip(np.floor(box[1]), 0, height - 1))
    x2 = int(np.clip(np.ceil(box[2]), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box[3]), y1 + 1, height))
    return (x1, y1, x2 - x1, y2 - y1)
