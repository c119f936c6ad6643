"""MTCNN face detection (Zhang et al. 2016) on onnxruntime, vectorised with numpy.

The cascade follows the published algorithm with facenet-pytorch's conventions, so its boxes match that
source implementation (``model_build/verify.py`` measures it): an image pyramid through P-Net, NMS,
R-Net on 24x24 crops, O-Net on 48x48 crops with five landmarks. Every resampling, pyramid levels and
crops alike, is an area (box-filter) average read from per-channel integral images, which is exactly what
facenet-pytorch's ``interpolate(mode="area")`` computes: pyramid levels with two separable gathers (rows,
then columns), crops with four gathers per output pixel and no Python loop over boxes. Faster than the
textbook version because:

* detection runs on a copy whose longer side is at most ``detect_max_side`` (boxes are mapped back);
* the smallest face is ``max(min_face_px, min_face_fraction * short side)``, which bounds the pyramid;
* R-Net/O-Net crops for all boxes are cut at once and both networks run batched (``_STAGE_BATCH``);
* for video, ``track_faces`` follows known faces with R-Net and O-Net alone, skipping the pyramid;
* ``cascade="fast"`` (the service's default; ``MEAA_DETECT_CASCADE``) gives R-Net and O-Net fewer candidates
  (``_refine_in_rounds``, ``_leaders_first``), with the same pyramid, P-Net proposals, networks and thresholds.

Box coordinates inside the cascade follow MTCNN's original one-based convention, as facenet-pytorch
does; final landmarks are zero-based.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from meaa.config import DetectionSettings
from meaa.onnx_model import OnnxModel

_PNET_STRIDE = 2
_PNET_CELL = 12
# R-Net/O-Net crops per batch: outputs do not depend on the split, memory and time do; 8 was as fast as
# larger batches and the leanest (`python -m benchmarks.bench_pipeline --stage-batches 8 16 32 1000`).
_STAGE_BATCH = 8
# The fast cascade's overlaps (``_refine_in_rounds``, ``_leaders_first``), chosen on fer2013_train frames and the
# generated ones: every exact face kept, R-Net crops -18/-47 %, O-Net -56/-74 %; the other prunings tried lost
# faces there (`python -m benchmarks.faces_found --fer DATA/fer2013_train.npz`; README, "Detection and crop").
_ROUND_ONE_IOU = 0.3
_EXPLAINED_IOU = 0.3
_ONET_CLUSTER_IOU = 0.5
# Tracking proposals around each previous face, as fractions of its side (x1, y1, x2, y2 offsets): the box
# itself, shifted by a quarter side each way, and 20 % larger and smaller. R-Net sorts them out, as it
# sorts P-Net's (benchmarks/bench_video.py measures agreement with full detection).
_TRACK_SHIFTS = np.array(
    [
        [0.0, 0.0, 0.0, 0.0],
        [-0.25, 0.0, -0.25, 0.0],
        [0.25, 0.0, 0.25, 0.0],
        [0.0, -0.25, 0.0, -0.25],
        [0.0, 0.25, 0.0, 0.25],
        [-0.1, -0.1, 0.1, 0.1],
        [0.1, 0.1, -0.1, -0.1],
    ],
    np.float32,
)


@dataclass(frozen=True)
class FaceDetections:
    """Faces found in one image: ``boxes`` [K,4] (x1, y1, x2, y2), ``scores`` [K], ``landmarks`` [K,5,2]."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> FaceDetections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy NMS; returns kept indices by descending score.

    ``mode="union"`` is IoU with areas (x2-x1)(y2-y1), done by OpenCV's C++ loop (the cascade calls it
    on hundreds of P-Net boxes). ``mode="min"`` divides the intersection by the smaller box with
    MATLAB's +1 areas, as MTCNN's last stage does (it drops a box nested in a larger one); it only
    ever sees a handful of boxes, so numpy is enough.
    """
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    if mode == "union":
        rects = np.concatenate([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]], axis=1).astype(np.float64)
        keep = cv2.dnn.NMSBoxes(rects, scores.astype(np.float32), 0.0, threshold)
        return np.asarray(keep, dtype=np.int64).reshape(-1)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        inter_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = inter_w * inter_h / np.minimum(areas[best], areas[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [N,4] with every box of ``b`` [M,4] (areas (x2-x1)(y2-y1), as the union NMS)."""
    inter_w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    inter_h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(inter_w, 0.0) * np.maximum(inter_h, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _spread_out(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS in the boxes' own order (best first): indices of the kept ones, ascending."""
    return np.sort(non_max_suppression(boxes, np.arange(len(boxes), 0, -1, dtype=np.float32), threshold))


def _others(count: int, chosen: np.ndarray) -> np.ndarray:
    """The indices below ``count`` that are not in ``chosen``, ascending."""
    mask = np.ones(count, bool)
    mask[chosen] = False
    return np.flatnonzero(mask)


def _regress(boxes: np.ndarray, offsets: np.ndarray, plus_one: bool) -> np.ndarray:
    """Apply bounding-box regression offsets (fractions of the box size)."""
    extra = 1.0 if plus_one else 0.0
    size = np.stack([boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra], axis=1)
    return boxes[:, :4] + offsets * np.concatenate([size, size], axis=1)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (MTCNN's ``rerec``)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _area_windows(start: np.ndarray, length: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source index windows [lo, hi) of each of ``size`` outputs over ``length`` inputs from ``start``.

    Output i averages inputs floor(i*n/size) .. ceil((i+1)*n/size) - 1: adaptive average pooling, which
    is torch's area interpolation (it averages whole pixels, so it also upsamples by repetition).
    """
    index = np.arange(size)
    n = np.asarray(length)[..., None]
    lo = np.asarray(start)[..., None] + (index * n) // size
    hi = np.asarray(start)[..., None] - ((-(index + 1) * n) // size)
    return lo, hi


@lru_cache(maxsize=256)
def _level_windows(length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``_area_windows`` of a whole image side, cached: a video's frames, or a service's uploads, mostly share
    a few sizes and pyramids (read-only arrays, shared between calls)."""
    lo, hi = _area_windows(0, length, size)
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


class _AreaSampler:
    """Area-average resampling of one BGR image as MTCNN's RGB input, read from per-channel integral images.

    The integral is planar ([3, H+1, W+1], RGB order), so every gather below moves 4- or 8-byte items
    along one axis (numpy's fast ``take`` path) and the results come out channels-first, as the networks
    want them, without a transpose of the image.
    """

    def __init__(self, image_bgr: np.ndarray) -> None:
        self.height, self.width = image_bgr.shape[:2]
        exact_int32 = self.height * self.width * 255 < 2**31
        depth, dtype = (cv2.CV_32S, np.int32) if exact_int32 else (cv2.CV_64F, np.float64)
        self._integral = np.empty((3, self.height + 1, self.width + 1), dtype)
        for channel, plane in enumerate(reversed(cv2.split(image_bgr))):  # B, G, R planes -> R, G, B
            cv2.integral(plane, sum=self._integral[channel], sdepth=depth)

    def level(self, scale: float) -> np.ndarray:
        """The pyramid level at ``scale`` (facenet-pytorch's size: int(side * scale + 1)): [1,3,h,w].

        Windows are separable, so rows are gathered first (whole integral rows, a memcpy each) and then
        columns: two passes over small arrays instead of four gathers per output pixel.
        """
        top, bottom = _level_windows(self.height, int(self.height * scale + 1))
        left, right = _level_windows(self.width, int(self.width * scale + 1))
        # mode="clip": the windows are inside the image by construction, and numpy skips its bounds check.
        row_sums = np.take(self._integral, bottom, axis=1, mode="clip")
        row_sums -= np.take(self._integral, top, axis=1, mode="clip")
        sums = np.take(row_sums, right, axis=2, mode="clip")
        sums -= np.take(row_sums, left, axis=2, mode="clip")
        return _normalised_mean(sums, (bottom - top)[:, None] * (right - left)[None, :])[None]

    def crops(self, boxes: np.ndarray, size: int) -> np.ndarray:
        """Each box's pixels trunc(x1)-1 .. trunc(x2)-1 (one-based box, clipped to the image) -> [K,3,size,size]."""
        ints = np.trunc(boxes).astype(np.int64)
        left = np.clip(ints[:, 0], 1, self.width) - 1
        top = np.clip(ints[:, 1], 1, self.height) - 1
        right = np.maximum(np.minimum(ints[:, 2], self.width), left + 1)
        bottom = np.maximum(np.minimum(ints[:, 3], self.height), top + 1)
        (top, bottom), (left, right) = _area_windows(top, bottom - top, size), _area_windows(left, right - left, size)
        stride = self.width + 1
        top_index, bottom_index = (top * stride)[:, :, None], (bottom * stride)[:, :, None]
        left, right = left[:, None, :], right[:, None, :]
        # One gather of the four corners of every output pixel of every box: [3, 4, K, size, size].
        index = np.empty((4, len(boxes), size, size), np.intp)
        np.add(bottom_index, right, out=index[0])
        np.add(top_index, right, out=index[1])
        np.add(bottom_index, left, out=index[2])
        np.add(top_index, left, out=index[3])
        corners = np.take(self._integral.reshape(3, -1), index, axis=1, mode="clip")
        sums = corners[:, 0] - corners[:, 1]
        sums -= corners[:, 2]
        sums += corners[:, 3]
        mean = _normalised_mean(sums, (bottom - top)[:, :, None] * (right - left))
        return np.ascontiguousarray(mean.transpose(1, 0, 2, 3))


def _normalised_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Window sums [3, ...] / pixel counts [...] -> MTCNN's input scale (x - 127.5) / 128, float32."""
    mean = sums.astype(np.float32)
    mean /= counts.astype(np.float32)
    mean -= 127.5
    mean *= 0.0078125
    return mean


def _final_nms(found: FaceDetections) -> FaceDetections:
    """MTCNN's last step: "min"-overlap NMS over O-Net's regressed boxes (drops a box nested in a better one)."""
    if not len(found):
        return found
    keep = non_max_suppression(found.boxes, found.scores, 0.7, mode="min")
    return FaceDetections(
        boxes=found.boxes[keep].astype(np.float32),
        scores=found.scores[keep].astype(np.float32),
        landmarks=found.landmarks[keep].astype(np.float32),
    )


def _joined(first: FaceDetections, second: FaceDetections) -> FaceDetections:
    if not len(second):
        return first
    if not len(first):
        return second
    return FaceDetections(
        boxes=np.concatenate([first.boxes, second.boxes]),
        scores=np.concatenate([first.scores, second.scores]),
        landmarks=np.concatenate([first.landmarks, second.landmarks]),
    )


def _scaled(detections: FaceDetections, scale_x: float, scale_y: float) -> FaceDetections:
    """Detections in a resized copy's pixels -> the original's (a no-op at scale 1)."""
    if (scale_x, scale_y) == (1.0, 1.0) or not len(detections):
        return detections
    return FaceDetections(
        boxes=detections.boxes * np.array([scale_x, scale_y, scale_x, scale_y], np.float32),
        scores=detections.scores,
        landmarks=detections.landmarks * np.array([scale_x, scale_y], np.float32),
    )


def _run_batched(net: OnnxModel, sampler: _AreaSampler, boxes: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """R-Net or O-Net on every box's ``size`` x ``size`` crop: cut in one gather, run in batches of ``_STAGE_BATCH``."""
    crops = sampler.crops(boxes, size)
    parts = [net(crops[start : start + _STAGE_BATCH]) for start in range(0, len(crops), _STAGE_BATCH)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _stage(
    net: OnnxModel, sampler: _AreaSampler, boxes: np.ndarray, size: int, threshold: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One R-Net or O-Net stage: the boxes whose face score passes ``threshold``, and their rows of every output."""
    out = _run_batched(net, sampler, boxes, size)
    passed = out["prob"][:, 1] > threshold
    return boxes[passed], {name: value[passed] for name, value in out.items()}


class MTCNNDetector:
    """MTCNN cascade, configured by ``DetectionSettings`` (no defaults of its own); models load at construction.

    ``detection.detect_max_side``: detection runs on a copy whose longer side is at most this (boxes are
    mapped back); ``min_face_px`` / ``min_face_fraction``: the smallest face, which bounds the pyramid;
    ``thresholds``: P-Net, R-Net, O-Net score thresholds; ``scale_factor``: the pyramid's step; ``cascade``:
    ``"exact"`` gives R-Net and O-Net every candidate, as facenet-pytorch does (its boxes, box for box),
    ``"fast"`` fewer (the module's docstring).
    """

    def __init__(self, models_dir: str | os.PathLike[str], detection: DetectionSettings, threads: int) -> None:
        self.pnet = OnnxModel(os.path.join(models_dir, "pnet.onnx"), threads)
        self.rnet = OnnxModel(os.path.join(models_dir, "rnet.onnx"), threads)
        self.onet = OnnxModel(os.path.join(models_dir, "onet.onnx"), threads)
        self.settings = detection
        self.detect_max_side = detection.detect_max_side
        self.min_face_px = detection.min_face_px
        self.min_face_fraction = detection.min_face_fraction
        self.thresholds = tuple(detection.thresholds)
        self.scale_factor = detection.scale_factor
        self.fast = detection.cascade == "fast"

    # -- public ----------------------------------------------------------------------------------
    def detect_faces(self, image_bgr: np.ndarray) -> FaceDetections:
        """Find faces in a BGR uint8 image; coordinates are in that image's pixels."""
        height, width = image_bgr.shape[:2]
        small, shrink = self._detection_copy(image_bgr)
        if min(small.shape[:2]) < _PNET_CELL:
            return FaceDetections.empty()
        min_face = max(float(self.min_face_px), self.min_face_fraction * min(height, width)) * shrink
        min_face = max(min_face, float(_PNET_CELL))
        sampler = _AreaSampler(small)
        proposals = self._proposals(sampler, self._pyramid_scales(sampler.height, sampler.width, min_face))
        return _scaled(self._refine_proposals(sampler, proposals), width / small.shape[1], height / small.shape[0])

    def track_faces(self, image_bgr: np.ndarray, previous: FaceDetections) -> FaceDetections:
        """Faces near ``previous`` (an earlier frame's faces, in this image's pixels), without the P-Net pyramid.

        Each previous box, squared and nudged by ``_TRACK_SHIFTS`` of its side, becomes R-Net proposals; each
        face's best one that passes R-Net's threshold goes through O-Net as in ``detect_faces``. A face that
        moved a little comes back refined by O-Net, with a score and landmarks; one that left, moved far or
        whose previous box crossed the frame's edge is missing from the answer, and the caller should run
        ``detect_faces`` (``MoodEstimator.analyze_frames`` does).
        """
        height, width = image_bgr.shape[:2]
        small, _ = self._detection_copy(image_bgr)
        if not len(previous) or min(small.shape[:2]) < _PNET_CELL:
            return FaceDetections.empty()
        scale_x, scale_y = width / small.shape[1], height / small.shape[0]
        boxes = previous.boxes / np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
        # A face cut by the frame's edge is not followed: its crops are clipped and stretched, and O-Net's
        # answers for it drift (landmarks outside the image). Leaving it out makes the caller re-detect.
        margin = 0.05 * (boxes[:, 2] - boxes[:, 0])
        inside = (boxes[:, 0] >= -margin) & (boxes[:, 1] >= -margin)
        inside &= (boxes[:, 2] <= small.shape[1] + margin) & (boxes[:, 3] <= small.shape[0] + margin)
        if not inside.any():
            return FaceDetections.empty()
        boxes = _square(boxes[inside])
        side = (boxes[:, 2] - boxes[:, 0])[:, None, None]
        proposals = (boxes[:, None, :] + _TRACK_SHIFTS[None, :, :] * side).reshape(-1, 4)
        sampler = _AreaSampler(small)
        out = _run_batched(self.rnet, sampler, proposals, 24)
        # Each face's best-scoring proposal goes on to O-Net (one O-Net crop per face, the costly network).
        best = np.argmax(out["prob"][:, 1].reshape(len(boxes), -1), axis=1) + np.arange(len(boxes)) * len(_TRACK_SHIFTS)
        best = best[out["prob"][best, 1] > self.thresholds[1]]
        boxes = _square(_regress(proposals[best], out["reg"][best], plus_one=True))
        return _scaled(self._final_stage(sampler, boxes), scale_x, scale_y)

    def warm_up(self, sizes: Iterable[tuple[int, int]]) -> None:
        """Run every network at the shapes images of these (width, height) give it, once each.

        onnxruntime's first run of an input shape plans and allocates for it: 5-15 ms per shape here (P-Net has
        one per pyramid level), which a request would otherwise pay. Zero images run P-Net over every level and
        find nothing; R-Net and O-Net then run at each batch size up to ``_STAGE_BATCH``.
        """
        for width, height in sizes:
            self.detect_faces(np.zeros((height, width, 3), np.uint8))
        for batch in range(1, _STAGE_BATCH + 1):
            self.rnet(np.zeros((batch, 3, 24, 24), np.float32))
            self.onet(np.zeros((batch, 3, 48, 48), np.float32))

    def _detection_copy(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """The image detection runs on (longer side at most ``detect_max_side``) and its scale to the original."""
        height, width = image_bgr.shape[:2]
        if not self.detect_max_side or max(height, width) <= self.detect_max_side:
            return image_bgr, 1.0
        shrink = self.detect_max_side / max(height, width)
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        return cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA), shrink

    # -- stages ----------------------------------------------------------------------------------
    def _pyramid_scales(self, height: int, width: int, min_face: float) -> list[float]:
        """12/min_face * factor^k, down to a level whose short side is still 12 px."""
        scales = []
        scale = _PNET_CELL / min_face
        short_side = min(height, width) * scale
        while short_side >= _PNET_CELL:
            scales.append(scale)
            scale *= self.scale_factor
            short_side *= self.scale_factor
        return scales

    def _refine_proposals(self, sampler: _AreaSampler, boxes: np.ndarray) -> FaceDetections:
        """R-Net then O-Net on proposals [K,4] (one-based, square): the final faces in the sampler's pixels."""
        if self.fast:
            return _final_nms(self._refine_in_rounds(sampler, boxes))
        return _final_nms(self._rnet_onet(sampler, boxes))

    def _refine_in_rounds(self, sampler: _AreaSampler, boxes: np.ndarray) -> FaceDetections:
        """The fast cascade's R-Net and O-Net, in two rounds: P-Net's proposals no two of which overlap by more than
        ``_ROUND_ONE_IOU`` (best P-Net score first), then the others that no face of round one explains (IoU
        below ``_EXPLAINED_IOU`` with each): a face's other proposals are skipped, any other region still runs."""
        if not len(boxes):
            return FaceDetections.empty()
        first = _spread_out(boxes, _ROUND_ONE_IOU)
        found = self._rnet_onet(sampler, boxes[first])
        rest = _others(len(boxes), first)
        if len(found) and len(rest):
            rest = rest[(_iou_matrix(boxes[rest], found.boxes) < _EXPLAINED_IOU).all(axis=1)]
        return _joined(found, self._rnet_onet(sampler, boxes[rest]))

    def _rnet_onet(self, sampler: _AreaSampler, boxes: np.ndarray) -> FaceDetections:
        """R-Net, its NMS and regression, then O-Net: O-Net's passing candidates, before the final NMS."""
        if not len(boxes):
            return FaceDetections.empty()
        boxes, out = _stage(self.rnet, sampler, boxes, 24, self.thresholds[1])
        keep = non_max_suppression(boxes, out["prob"][:, 1], 0.7)
        return self._onet_candidates(sampler, _square(_regress(boxes[keep], out["reg"][keep], plus_one=True)))

    def _final_stage(self, sampler: _AreaSampler, boxes: np.ndarray) -> FaceDetections:
        """O-Net on R-Net's boxes, then the final NMS."""
        return _final_nms(self._onet_candidates(sampler, boxes))

    def _onet_candidates(self, sampler: _AreaSampler, boxes: np.ndarray) -> FaceDetections:
        """O-Net's passing boxes (regressed) and landmarks (relative to the box O-Net saw, before its regression)."""
        if not len(boxes):
            return FaceDetections.empty()
        if self.fast:
            boxes, out = self._leaders_first(self.onet, sampler, boxes, 48, self.thresholds[2])
        else:
            boxes, out = _stage(self.onet, sampler, boxes, 48, self.thresholds[2])
        scores, offsets, points = out["prob"][:, 1], out["reg"], out["landmarks"]
        size_w = boxes[:, 2] - boxes[:, 0] + 1
        size_h = boxes[:, 3] - boxes[:, 1] + 1
        landmarks = np.stack(
            [
                points[:, :5] * size_w[:, None] + boxes[:, 0:1] - 1,
                points[:, 5:] * size_h[:, None] + boxes[:, 1:2] - 1,
            ],
            axis=2,
        )
        return FaceDetections(boxes=_regress(boxes, offsets, plus_one=True), scores=scores, landmarks=landmarks)

    @staticmethod
    def _leaders_first(
        net: OnnxModel, sampler: _AreaSampler, boxes: np.ndarray, size: int, threshold: float
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``_stage`` on each cluster's first box (boxes best first; clusters by greedy NMS at
        ``_ONET_CLUSTER_IOU``), then on the other members of the clusters whose first box failed."""
        leaders = _spread_out(boxes, _ONET_CLUSTER_IOU)
        out = _run_batched(net, sampler, boxes[leaders], size)
        passed = out["prob"][:, 1] > threshold
        kept_boxes, kept = boxes[leaders[passed]], {name: value[passed] for name, value in out.items()}
        members = _others(len(boxes), leaders)
        if passed.all() or not len(members):
            return kept_boxes, kept
        # A member belongs to the first (best) leader it overlaps: the one whose NMS suppressed it.
        owner = np.argmax(_iou_matrix(boxes[members], boxes[leaders]) > _ONET_CLUSTER_IOU, axis=1)
        retry = members[~passed[owner]]
        if not len(retry):
            return kept_boxes, kept
        retry_boxes, retry = _stage(net, sampler, boxes[retry], size, threshold)
        joined = {name: np.concatenate([kept[name], retry[name]]) for name in kept}
        return np.concatenate([kept_boxes, retry_boxes]), joined

    def _proposals(self, sampler: _AreaSampler, scales: list[float]) -> np.ndarray:
        """P-Net over the pyramid: candidate boxes [K,4] after per-level and global NMS and regression."""
        found = []
        for scale in scales:
            out = self.pnet(sampler.level(scale))
            prob = out["prob"][0, 1]
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            top_left = np.floor((_PNET_STRIDE * cells + 1) / scale)
            bottom_right = np.floor((_PNET_STRIDE * cells + _PNET_CELL) / scale)
            boxes = np.concatenate([top_left, bottom_right], axis=1)
            scores = prob[ys, xs]
            offsets = out["reg"][0][:, ys, xs].T
            keep = non_max_suppression(boxes, scores, 0.5)
            found.append((boxes[keep], scores[keep], offsets[keep]))
        if not found:
            return np.zeros((0, 4), np.float32)
        boxes, scores, offsets = (np.concatenate(part) for part in zip(*found, strict=True))
        keep = non_max_suppression(boxes, scores, 0.7)
        return _square(_regress(boxes[keep], offsets[keep], plus_one=False))
