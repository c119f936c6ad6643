"""EXIF orientation: read from a JPEG's APP1 block (tag 0x0112, either byte order; a malformed block is
ignored) and applied after a decode that ignores it, so the result does not depend on OpenCV's flags."""

from __future__ import annotations

import struct

import cv2
import numpy as np

_EXIF_ORIENTATION_TAG = 0x0112


def exif_orientation(tiff: bytes) -> int:
    """Orientation from a TIFF-structured EXIF block's IFD0; 1 if absent or malformed."""
    if tiff[:4] == b"II*\x00":
        endian = "<"
    elif tiff[:4] == b"MM\x00*":
        endian = ">"
    else:
        return 1
    if len(tiff) < 8:
        return 1
    (ifd,) = struct.unpack_from(endian + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(endian + "H", tiff, ifd)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind = struct.unpack_from(endian + "HH", tiff, entry)
        if tag != _EXIF_ORIENTATION_TAG:
            continue
        if kind == 3:  # SHORT, the type the standard prescribes
            (value,) = struct.unpack_from(endian + "H", tiff, entry + 8)
        elif kind == 4:  # LONG, written by a few tools
            (value,) = struct.unpack_from(endian + "I", tiff, entry + 8)
        else:
            return 1
        return value if 1 <= value <= 8 else 1
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image upright per EXIF orientation (1 = as stored, 2..8 as TIFF 6.0 defines).

    Flips happen in place; the four orientations that swap the axes need a new array.
    """
    if orientation == 2:  # mirrored left-right
        return cv2.flip(image, 1, dst=image)
    if orientation == 3:  # upside down
        return cv2.flip(image, -1, dst=image)
    if orientation == 4:  # mirrored top-bottom
        return cv2.flip(image, 0, dst=image)
    if orientation == 5:  # mirrored along the main diagonal
        return cv2.transpose(image)
    if orientation == 6:  # stored rotated 90 degrees counter-clockwise
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:  # mirrored along the anti-diagonal
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:  # stored rotated 90 degrees clockwise
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image
