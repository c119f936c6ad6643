"""Face crops for the mood classifier: a square around the detector box, optionally eye-aligned."""

from __future__ import annotations

import cv2
import numpy as np

# Never warp at more than this multiple of the output size: a larger crop is shrunk by INTER_AREA
# afterwards, which averages pixels instead of skipping them.
_MAX_WARP_FACTOR = 4


def crop_faces(
    image_bgr: np.ndarray,
    boxes: np.ndarray,
    landmarks: np.ndarray,
    size: int,
    *,
    margin: float,
    align: bool,
) -> np.ndarray:
    """Gray uint8 crops [K,size,size] of each face.

    The crop is the square of side ``max(w, h) * (1 + 2 * margin)`` centred on the box (on the eye
    midpoint's horizontal line when aligning, rotated so the eyes are level); outside the image it is
    black, as the classifier's FER2013-style training crops were padded.
    """
    crops = np.empty((len(boxes), size, size), np.uint8)
    for index, (box, points) in enumerate(zip(boxes, landmarks, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
        center = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
        angle = 0.0
        if align:
            left_eye, right_eye = points[0], points[1]
            dx, dy = right_eye - left_eye
            angle = float(np.degrees(np.arctan2(dy, dx)))
        warp_size = int(min(max(side, size), size * _MAX_WARP_FACTOR))
        scale = warp_size / max(side, 1.0)
        # Rotate about the box centre by `angle`, scale to warp_size, and put the centre mid-output.
        matrix = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle, scale)
        matrix[:, 2] += warp_size / 2.0 - center
        patch = cv2.warpAffine(
            image_bgr,
            matrix,
            (warp_size, warp_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
        if warp_size != size:
            gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
        crops[index] = gray
    return crops
