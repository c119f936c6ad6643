"""MTCNN face detection (Zhang et al. 2016) on onnxruntime, vectorised with numpy.

The cascade follows the published algorithm and facenet-pytorch's conventions (so its boxes match the
source implementation within a pixel): an image pyramid through P-Net, NMS, R-Net on 24x24 crops,
O-Net on 48x48 crops with five landmarks. Three things make it faster than the textbook version:

* detection runs on a copy whose longer side is at most ``detect_max_side`` (boxes are mapped back);
* the smallest face is ``max(min_face_px, min_face_fraction * short side)``, which bounds the pyramid;
* R-Net/O-Net crops are cut for all boxes at once by bilinear sampling from the pyramid level whose
  scale is closest above the crop size (so no box is shrunk by more than 1/scale_factor: no aliasing),
  and both networks run batched (one ``cv2.remap`` call per level cuts every crop).

Box coordinates inside the cascade follow MTCNN's original one-based convention, as facenet-pytorch
does; final landmarks are zero-based.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from meaa.onnx_model import OnnxModel

_PNET_STRIDE = 2
_PNET_CELL = 12


@dataclass(frozen=True)
class FaceDetections:
    """Faces found in one image: ``boxes`` [K,4] (x1, y1, x2, y2), ``scores`` [K], ``landmarks`` [K,5,2]."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> "FaceDetections":
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


def _regress(boxes: np.ndarray, offsets: np.ndarray, plus_one: bool) -> np.ndarray:
    """Apply bounding-box regression offsets (fractions of the box size)."""
    extra = 1.0 if plus_one else 0.0
    size = np.stack([boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra], axis=1)
    return boxes[:, :4] + offsets * np.tile(size, 2)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (MTCNN's ``rerec``)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


@dataclass(frozen=True)
class _PyramidLevel:
    scale: float  # nominal scale, as used for P-Net's box arithmetic
    image: np.ndarray  # [h, w, 3] uint8 RGB

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


def _normalise(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., H, W, 3] -> MTCNN input float32 [..., 3, H, W] in about [-1, 1]."""
    out = np.moveaxis(rgb, -1, -3).astype(np.float32)
    out -= 127.5
    out *= 0.0078125
    return out


class MTCNNDetector:
    """MTCNN cascade. Thresholds and sizes are constructor arguments; models load at construction."""

    def __init__(
        self,
        models_dir: str | os.PathLike[str],
        *,
        threads: int = 1,
        detect_max_side: int = 640,
        min_face_px: int = 20,
        min_face_fraction: float = 0.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
    ) -> None:
        self.pnet = OnnxModel(os.path.join(models_dir, "pnet.onnx"), threads)
        self.rnet = OnnxModel(os.path.join(models_dir, "rnet.onnx"), threads)
        self.onet = OnnxModel(os.path.join(models_dir, "onet.onnx"), threads)
        self.detect_max_side = detect_max_side
        self.min_face_px = min_face_px
        self.min_face_fraction = min_face_fraction
        self.thresholds = tuple(thresholds)
        self.scale_factor = scale_factor

    # -- public ----------------------------------------------------------------------------------
    def detect_faces(self, image_bgr: np.ndarray) -> FaceDetections:
        """Find faces in a BGR uint8 image; coordinates are in that image's pixels."""
        height, width = image_bgr.shape[:2]
        shrink = 1.0
        if self.detect_max_side and max(height, width) > self.detect_max_side:
            shrink = self.detect_max_side / max(height, width)
        min_face = max(float(self.min_face_px), self.min_face_fraction * min(height, width)) * shrink
        min_face = max(min_face, float(_PNET_CELL))

        small = image_bgr
        if shrink < 1.0:
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < _PNET_CELL:
            return FaceDetections.empty()
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        levels = self._pyramid(rgb, min_face)
        detections = self._cascade(levels, rgb.shape[0], rgb.shape[1])
        if shrink < 1.0 and len(detections):
            sx, sy = width / small.shape[1], height / small.shape[0]
            detections = FaceDetections(
                boxes=detections.boxes * np.array([sx, sy, sx, sy], np.float32),
                scores=detections.scores,
                landmarks=detections.landmarks * np.array([sx, sy], np.float32),
            )
        return detections

    # -- stages ----------------------------------------------------------------------------------
    def _pyramid(self, rgb: np.ndarray, min_face: float) -> list[_PyramidLevel]:
        """The image itself, then scales 12/min_face * factor^k down to a 12-px short side.

        Each level is shrunk from the previous one (INTER_AREA), so only the first resize reads the
        whole image.
        """
        height, width = rgb.shape[:2]
        levels = [_PyramidLevel(1.0, rgb)]
        scale = _PNET_CELL / min_face
        short_side = min(height, width) * scale
        while short_side >= _PNET_CELL:
            size = (int(width * scale + 1), int(height * scale + 1))
            source = levels[-1].image
            method = cv2.INTER_AREA if size[0] < source.shape[1] else cv2.INTER_LINEAR
            levels.append(_PyramidLevel(scale, cv2.resize(source, size, interpolation=method)))
            scale *= self.scale_factor
            short_side *= self.scale_factor
        return levels

    def _cascade(self, levels: list[_PyramidLevel], height: int, width: int) -> FaceDetections:
        boxes = self._proposals(levels[1:])
        if not len(boxes):
            return FaceDetections.empty()

        # R-Net: refine and reject.
        crops = self._crops(levels, boxes, 24)
        out = self.rnet(crops)
        scores = out["prob"][:, 1]
        passed = scores > self.thresholds[1]
        boxes, scores, offsets = boxes[passed], scores[passed], out["reg"][passed]
        keep = non_max_suppression(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[keep], offsets[keep], plus_one=True))
        if not len(boxes):
            return FaceDetections.empty()

        # O-Net: final boxes and landmarks.
        crops = self._crops(levels, boxes, 48)
        out = self.onet(crops)
        scores = out["prob"][:, 1]
        passed = scores > self.thresholds[2]
        boxes, scores = boxes[passed], scores[passed]
        offsets, points = out["reg"][passed], out["landmarks"][passed]
        size_w = boxes[:, 2] - boxes[:, 0] + 1
        size_h = boxes[:, 3] - boxes[:, 1] + 1
        landmarks = np.stack(
            [
                points[:, :5] * size_w[:, None] + boxes[:, 0:1] - 1,
                points[:, 5:] * size_h[:, None] + boxes[:, 1:2] - 1,
            ],
            axis=2,
        )
        boxes = _regress(boxes, offsets, plus_one=True)
        keep = non_max_suppression(boxes, scores, 0.7, mode="min")
        return FaceDetections(
            boxes=boxes[keep].astype(np.float32),
            scores=scores[keep].astype(np.float32),
            landmarks=landmarks[keep].astype(np.float32),
        )

    def _proposals(self, levels: list[_PyramidLevel]) -> np.ndarray:
        """P-Net over the pyramid: candidate boxes [K,4] after per-level and global NMS and regression."""
        found = []
        for level in levels:
            out = self.pnet(_normalise(level.image)[None])
            prob = out["prob"][0, 1]
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            top_left = np.floor((_PNET_STRIDE * cells + 1) / level.scale)
            bottom_right = np.floor((_PNET_STRIDE * cells + _PNET_CELL) / level.scale)
            boxes = np.concatenate([top_left, bottom_right], axis=1)
            scores = prob[ys, xs]
            offsets = out["reg"][0][:, ys, xs].T
            keep = non_max_suppression(boxes, scores, 0.5)
            found.append((boxes[keep], scores[keep], offsets[keep]))
        if not found:
            return np.zeros((0, 4), np.float32)
        boxes, scores, offsets = (np.concatenate(part) for part in zip(*found))
        keep = non_max_suppression(boxes, scores, 0.7)
        return _square(_regress(boxes[keep], offsets[keep], plus_one=False))

    def _crops(self, levels: list[_PyramidLevel], boxes: np.ndarray, size: int) -> np.ndarray:
        """Cut and resize every box to ``size`` x ``size`` at once: [K,3,size,size] float32.

        A box covers the pixels trunc(x1)-1 .. trunc(x2)-1 (MTCNN's one-based convention); outside the
        image it is padded with black. Each box is sampled bilinearly from the smallest level on which it
        is still at least ``size`` pixels wide, so sampling never skips pixels.
        """
        ints = np.trunc(boxes).astype(np.float32)
        left, top = ints[:, 0] - 1, ints[:, 1] - 1
        side_w = ints[:, 2] - ints[:, 0] + 1
        side_h = ints[:, 3] - ints[:, 1] + 1

        base = levels[0]
        out = np.empty((len(boxes), size, size, 3), np.uint8)
        # Level per box: scales are descending; pick the last one where the box still spans `size`.
        level_scales = np.array([level.width / base.width for level in levels], np.float32)
        fits = np.minimum(side_w, side_h)[:, None] * level_scales[None, :] >= size
        choice = np.where(fits.any(axis=1), fits.shape[1] - 1 - np.argmax(fits[:, ::-1], axis=1), 0)

        grid = (np.arange(size, dtype=np.float32) + 0.5) / size
        for index in np.unique(choice):
            members = np.nonzero(choice == index)[0]
            level = levels[index]
            sx, sy = level.width / base.width, level.height / base.height
            # Sample centres in the level's pixel coordinates; one remap call cuts all members.
            xs = (left[members, None] + grid[None, :] * side_w[members, None]) * sx - 0.5
            ys = (top[members, None] + grid[None, :] * side_h[members, None]) * sy - 0.5
            map_x = np.broadcast_to(xs[:, None, :], (len(members), size, size)).reshape(-1, size)
            map_y = np.broadcast_to(ys[:, :, None], (len(members), size, size)).reshape(-1, size)
            patches = cv2.remap(
                level.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
            )
            out[members] = patches.reshape(len(members), size, size, 3)
        return _normalise(out)
