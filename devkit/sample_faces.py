"""Frames built from real faces that ship with scikit-image, for tests and benchmarks.

scikit-image's ``astronaut`` (Eileen Collins, public domain) has one frontal face at about
x 180-268, y 60-175; ``coffee`` and ``chelsea`` (a cat) have none. A group photo is built by
pasting varied copies of that real face (scaled, mirrored, relit, gray) onto a real background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data

# The astronaut's head with some hair and collar around it, in the 512x512 original.
_HEAD = (150, 20, 300, 215)  # x1, y1, x2, y2


def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def no_face_images() -> dict[str, np.ndarray]:
    return {
        "coffee": cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR),
        "chelsea": cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR),
    }


def one_face_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """A selfie-like frame: the astronaut's upper body cropped to the frame's aspect and resized."""
    image = astronaut_bgr()
    crop_h = min(512, round(512 * height / width))
    return cv2.resize(image[:crop_h], (width, height), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class GroupFrame:
    image: np.ndarray
    heads: list[tuple[int, int, int, int]]  # where each pasted head is: x, y, w, h


def group_frame(width: int = 640, height: int = 480, columns: int = 3, rows: int = 2) -> GroupFrame:
    """``columns * rows`` real faces in a grid on the ``coffee`` photo, each varied differently."""
    background = cv2.resize(no_face_images()["coffee"], (width, height), interpolation=cv2.INTER_AREA)
    x1, y1, x2, y2 = _HEAD
    head = astronaut_bgr()[y1:y2, x1:x2]
    cell_w, cell_h = width // columns, height // rows
    heads = []
    for index in range(columns * rows):
        variant = head
        if index % 2:
            variant = cv2.flip(variant, 1)
        if index % 3 == 1:
            variant = cv2.cvtColor(cv2.cvtColor(variant, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if index % 3 == 2:
            variant = cv2.convertScaleAbs(variant, alpha=0.7, beta=10)
        scale = min(cell_w / variant.shape[1], cell_h / variant.shape[0]) * (0.95 - 0.08 * (index % 3))
        w, h = round(variant.shape[1] * scale), round(variant.shape[0] * scale)
        variant = cv2.resize(variant, (w, h), interpolation=cv2.INTER_AREA)
        cx, cy = (index % columns) * cell_w + cell_w // 2, (index // columns) * cell_h + cell_h // 2
        left, top = cx - w // 2, cy - h // 2
        background[top : top + h, left : left + w] = variant
        heads.append((left, top, w, h))
    return GroupFrame(background, heads)


def turned_head(yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """The astronaut's photo with her head turned in depth: ``yaw`` degrees towards the picture's right
    (negative: left), ``pitch`` degrees as if seen from a phone held below the face (negative: from above).

    A flat-photo warp (perspective, squeeze) cannot do this: the landmarks of a photo of a face have no depth,
    so its nose never moves across its eyes. Here every pixel gets a depth from a head-shaped model (an
    ellipsoid with a nose on it, in millimetres at the face's 0.6 px/mm) and is moved as a point at that depth
    turns, seen from far away: x' = x cos(yaw) + z sin(yaw). That is a 2.5-D rendering, plausible up to about
    30 degrees (beyond, the hair and the background smear).
    """
    image = astronaut_bgr()
    height, width = image.shape[:2]
    centre_x, centre_y, px_per_mm = 224.0, 125.0, 0.6  # between the eyes and the mouth
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = (cols - centre_x) / px_per_mm, (rows - centre_y) / px_per_mm
    head = 80.0 * np.sqrt(np.clip(1.0 - (x / 80.0) ** 2 - (y / 110.0) ** 2, 0.0, None))
    depth = head + 18.0 * np.exp(-(x**2 + (y - 5.0) ** 2) / (2 * 12.0**2))  # the nose, 18 mm proud
    turn, nod = np.radians(yaw), np.radians(pitch)
    source_x = (x - depth * np.sin(turn)) / np.cos(turn)  # the inverse map, with the depth at the target
    source_y = (y + depth * np.sin(nod)) / np.cos(nod)
    map_x = (source_x * px_per_mm + centre_x).astype(np.float32)
    map_y = (source_y * px_per_mm + centre_y).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
