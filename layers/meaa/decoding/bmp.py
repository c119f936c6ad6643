"""BMP: the header's size, and the pixel rows an uncompressed file needs must be present."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from meaa.errors import InvalidImage

from .headers import ImageHeader, checked_size, promises_more, truncated

_BMP_INFO_HEADER_SIZES = frozenset({40, 52, 56, 64, 108, 124})  # BITMAPINFOHEADER .. BITMAPV5HEADER
_BMP_UNCOMPRESSED = frozenset({0, 3, 6})  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS


@dataclass(frozen=True)
class BmpLayout:
    bit_count: int
    compression: int


def read_bmp_header(data: bytes) -> ImageHeader:
    # File header (14), then the DIB header whose first field is its own size.
    if len(data) < 18:
        raise truncated("bmp")
    (info_size,) = struct.unpack_from("<I", data, 14)
    if info_size == 12:  # BITMAPCOREHEADER: unsigned 16-bit sides
        if len(data) < 22:
            raise truncated("bmp")
        width, height = struct.unpack_from("<HH", data, 18)
    elif info_size in _BMP_INFO_HEADER_SIZES:  # signed 32-bit; negative height = rows stored top-down
        if len(data) < 26:
            raise truncated("bmp")
        width, height = struct.unpack_from("<ii", data, 18)
        height = abs(height)
    else:
        raise InvalidImage(f"the BMP has an unknown header size {info_size}")
    return checked_size("bmp", width, height)


def parse_bmp(data: bytes, header: ImageHeader) -> BmpLayout:
    """An uncompressed BMP must hold all its rows; RLE ones may legitimately end early (end-of-bitmap)."""
    (info_size,) = struct.unpack_from("<I", data, 14)
    if info_size == 12:
        if len(data) < 26:
            raise truncated("bmp")
        (bit_count,), compression = struct.unpack_from("<H", data, 24), 0
    else:
        if len(data) < 34:
            raise truncated("bmp")
        bit_count, compression = struct.unpack_from("<HI", data, 28)
    (pixel_offset,) = struct.unpack_from("<I", data, 10)
    if compression in _BMP_UNCOMPRESSED and bit_count in (1, 2, 4, 8, 16, 24, 32):
        stride = (header.width * bit_count + 31) // 32 * 4
        if pixel_offset + stride * header.height > len(data):
            raise promises_more(
                header, f"it holds {max(0, len(data) - pixel_offset)} bytes of pixels, not {stride * header.height}"
            )
    return BmpLayout(bit_count, compression)
