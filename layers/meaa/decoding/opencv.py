"""The OpenCV call and what follows it: large images decode into an array the Python binding allocates
(``cv2.imdecode``'s result is copied, twice the memory at peak), and gray, 16-bit and alpha become BGR uint8
in place, a band of rows at a time (alpha composited over white; 16-bit narrowed by ``round(v / 257)``)."""

from __future__ import annotations

import os
import tempfile

import cv2
import numpy as np

from meaa.errors import InvalidImage

from .budget import Layout
from .jpeg import JpegLayout
from .png import PngLayout
from .webp import WebpLayout

REDUCTIONS = (1, 2, 4, 8)  # JPEG's DCT-domain scales (cv2.IMREAD_REDUCED_COLOR_2/4/8)
_JPEG_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
# Rows converted per band by the in-place conversions; their temporaries take about 6 bands.
_BAND_BYTES = 1 << 20


def read_with_opencv(data: bytes, flags: int, *, small: bool) -> np.ndarray | None:
    """Decode with OpenCV: small images with ``cv2.imdecode``, large ones with ``cv2.imread`` of ``data`` as an
    in-memory file (``memfd``), into an array the Python binding allocates.

    ``cv2.imdecode``'s Mat is copied by the binding (twice the image at peak: README, "Budgets"); the in-memory
    file costs a fixed fraction of a millisecond, which pays for itself on large images only
    (``SMALL_DECODE_BYTES``).
    """
    if small:
        try:
            return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error:
            return None
    try:
        descriptor = os.memfd_create("meaa-image", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # no memfd (not Linux): a temporary file does the same
        with tempfile.NamedTemporaryFile(suffix=".img") as handle:
            handle.write(data)
            handle.flush()
            return _imread(handle.name, flags)
    try:
        with os.fdopen(os.dup(descriptor), "wb") as handle:
            handle.write(data)
        return _imread(f"/proc/self/fd/{descriptor}", flags)
    finally:
        os.close(descriptor)


def _imread(path: str, flags: int) -> np.ndarray | None:
    try:
        image = cv2.imread(path, np.empty((0,), np.uint8), flags)
    except cv2.error:
        return None
    return image if isinstance(image, np.ndarray) else None


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Whatever the decoder returned (gray/BGR/BGRA, 8 or 16 bit) -> BGR uint8, reusing its buffer."""
    if image.dtype not in (np.uint8, np.uint16):
        raise InvalidImage(f"unsupported sample type {image.dtype}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 3, 4):
        raise InvalidImage(f"unsupported channel count {channels}")
    if image.dtype == np.uint8 and channels == 3:
        return image
    if channels == 1:
        if image.dtype == np.uint16:
            image = _convert_in_place(image[..., None], 1)[..., 0]
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return _convert_in_place(image, 3)


def _convert_in_place(image: np.ndarray, out_channels: int) -> np.ndarray:
    """16 -> 8 bit and alpha over white, a band of rows at a time, into the front of ``image``'s buffer.

    Row r of the result occupies bytes [r*W*C', (r+1)*W*C') of the buffer and row r of the source
    [r*W*B, (r+1)*W*B) with C' <= B (bytes per pixel), so writing a band never touches rows not yet read
    (each band is converted into a small temporary before it is written back).
    """
    height, width, channels = image.shape
    image = np.ascontiguousarray(image)
    buffer = image.reshape(-1).view(np.uint8)
    out = buffer[: height * width * out_channels].reshape(height, width, out_channels)
    band = max(1, _BAND_BYTES // max(1, width * channels * image.itemsize))
    for top in range(0, height, band):
        rows = image[top : top + band]
        if rows.dtype == np.uint16:
            rows = cv2.convertScaleAbs(rows, alpha=1.0 / 257.0)  # rounds: 65535 -> 255, 128 -> 0, 129 -> 1
        if channels == 4:
            rows = _composite_over_white(rows)
        # A new array by now (16-bit input was narrowed, 4-channel composited); OpenCV drops a 1-channel axis.
        out[top : top + band] = rows.reshape(-1, width, out_channels)
    return out


def _composite_over_white(bgra: np.ndarray) -> np.ndarray:
    """round((c * a + 255 * (255 - a)) / 255) for each colour c and alpha a: a new BGR array (one band).

    Computed as 255 - round((255 - c) * a / 255) with three uint8 OpenCV calls (the same numbers for all
    65,536 (c, a) pairs; tests/unit/test_decoding.py checks them), several times faster than numpy's
    widening arithmetic.
    """
    alpha = cv2.extractChannel(bgra, 3)
    bgr = cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR)
    if cv2.minMaxLoc(alpha)[0] == 255:  # an alpha channel that is all opaque: just drop it
        return bgr
    alpha3 = cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR)
    return cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(bgr), alpha3, scale=1.0 / 255.0))


def decode_flags(layout: Layout, reduction: int) -> int:
    """OpenCV's read flags for a layout: JPEGs at 1/``reduction`` size, orientation always applied by us; alpha
    and 16-bit PNG/WebP unchanged (converted after), everything else straight to BGR."""
    if isinstance(layout, JpegLayout):
        return _JPEG_REDUCED_FLAGS[reduction] | cv2.IMREAD_IGNORE_ORIENTATION
    if isinstance(layout, PngLayout):
        return cv2.IMREAD_COLOR if layout.opaque_8bit else cv2.IMREAD_UNCHANGED
    if isinstance(layout, WebpLayout):
        return cv2.IMREAD_UNCHANGED if layout.alpha else cv2.IMREAD_COLOR
    return cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
