"""The caps and the memory model: pixels and sides against the operator's and the decoders' own limits, and
the bytes a decode will hold (pixels as the decoder stores them plus its own buffers, such as a progressive
JPEG's coefficients or a lossless WebP's ARGB copy), checked against ``max_decode_bytes`` before decoding."""

from __future__ import annotations

import os

from meaa.config import DecodeSettings
from meaa.errors import ImageTooLarge

from .bmp import BmpLayout
from .headers import ImageHeader
from .jpeg import JpegLayout
from .png import PngLayout
from .webp import WebpLayout

# Limits OpenCV enforces itself (environment, read at cv2 import; defaults from OpenCV's loadsave.cpp).
_OPENCV_MAX_PIXELS = int(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"])
_OPENCV_MAX_WIDTH = int(os.environ.get("OPENCV_IO_MAX_IMAGE_WIDTH") or 1 << 20)
_OPENCV_MAX_HEIGHT = int(os.environ.get("OPENCV_IO_MAX_IMAGE_HEIGHT") or 1 << 20)
# Sides the decoders refuse themselves (libjpeg's JPEG_MAX_DIMENSION; libpng's default user limit):
# refused here, before decoding, as too large rather than as corrupt.
_DECODER_MAX_SIDE = {"jpeg": 65500, "png": 1_000_000}
# Decodes whose pixel buffers are at most this small go through cv2.imdecode (see read_with_opencv).
SMALL_DECODE_BYTES = 4 << 20
# What every decode holds besides its pixel buffers and input copies: the decoder's state, libraries'
# allocator slack, the band temporaries. Measured: 1-6 MB (tests/unit/test_hostile_inputs.py).
_DECODE_OVERHEAD_BYTES = 8 << 20
_JPEG_BLOCK_BYTES = 128  # one 8x8 block of 16-bit DCT coefficients, as libjpeg buffers them
Layout = JpegLayout | PngLayout | WebpLayout | BmpLayout


def check_pixels(header: ImageHeader, limits: DecodeSettings) -> None:
    side_limit = _DECODER_MAX_SIDE.get(header.format)
    if side_limit is not None and max(header.width, header.height) > side_limit:
        raise ImageTooLarge(
            f"image is {header.width}x{header.height}; a {header.format.upper()} side may be at most {side_limit}"
        )
    pixel_limit = min(limits.max_image_pixels, _OPENCV_MAX_PIXELS)
    if header.width * header.height > pixel_limit:
        raise ImageTooLarge(
            f"image is {header.width}x{header.height} = {header.width * header.height} pixels; "
            f"the limit is {pixel_limit}"
        )
    if header.width > _OPENCV_MAX_WIDTH or header.height > _OPENCV_MAX_HEIGHT:
        raise ImageTooLarge(
            f"image is {header.width}x{header.height}; a side may be at most {_OPENCV_MAX_WIDTH}x{_OPENCV_MAX_HEIGHT}"
        )


def decode_bytes(header: ImageHeader, layout: Layout, data: bytes, reduction: int) -> int:
    """Memory a decode at 1/``reduction`` holds at its peak, in bytes (the model the caps are checked with).

    Measured against the process's peak RSS, layout by layout, by tests/unit/test_hostile_inputs.py.
    """
    pixel_buffers = pixel_buffer_bytes(header, layout, data, reduction)
    copy = pixel_buffers if pixel_buffers <= SMALL_DECODE_BYTES else 0  # cv2.imdecode's result, copied
    return _DECODE_OVERHEAD_BYTES + pixel_buffers + copy


def pixel_buffer_bytes(header: ImageHeader, layout: Layout, data: bytes, reduction: int) -> int:
    """The pixel buffers of a decode at 1/``reduction``: the output, and what the format's decoder adds."""
    width, height = header.width, header.height
    out_w, out_h = -(-width // reduction), -(-height // reduction)
    rotate_copy = out_w * out_h * 3 if header.orientation >= 5 else 0  # transpose needs a new array
    if isinstance(layout, JpegLayout):
        coefficients = _jpeg_coefficient_bytes(layout, width, height)
        # Row buffers for upsampling and colour conversion: a few MCU rows of the full width.
        row_buffers = 64 * width * len(layout.components)
        return out_w * out_h * 3 + coefficients + row_buffers + rotate_copy
    if isinstance(layout, PngLayout):
        pixels = width * height
        gray_to_bgr = pixels * 3 if not layout.opaque_8bit and layout.color_type == 0 else 0
        copy = len(layout.decoder_input) if layout.decoder_input is not data else 0
        return pixels * layout.decoded_pixel_bytes + gray_to_bgr + 8 * height + copy  # + libpng's row pointers
    if isinstance(layout, WebpLayout):
        # Bytes per pixel, above the growth measured per layout (`python -m benchmarks.hostile_inputs`, its
        # last table); OpenCV also holds the whole file. Alpha and lossless cost more (libwebp's ARGB copy).
        if layout.lossless:
            per_pixel = 10 if layout.alpha else 8
        else:
            per_pixel = 9 if layout.alpha_chunk else 4 if layout.alpha else 3
        return width * height * per_pixel + len(data)
    return width * height * 3 + 4 * width  # BMP: BGR output and a row buffer


def _jpeg_coefficient_bytes(layout: JpegLayout, width: int, height: int) -> int:
    """A multi-scan JPEG's coefficient buffers: libjpeg keeps every coefficient of the image (at full
    resolution, whatever the output scale), per component rounded up to its sampling factors; 0 otherwise."""
    if not (layout.progressive or len(layout.scans[0].components) < len(layout.components)):
        return 0
    coefficients = 0
    for component in layout.components:
        across, down = layout.blocks(component, width, height)
        across = -(-across // component.h_sampling) * component.h_sampling
        down = -(-down // component.v_sampling) * component.v_sampling
        coefficients += across * down * _JPEG_BLOCK_BYTES
    return coefficients
