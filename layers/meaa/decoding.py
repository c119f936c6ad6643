"""Safe image decoding: sniff, size-check from the header, then decode with OpenCV.

Why this module parses headers itself: the byte and pixel caps must be enforced *before* any pixel
buffer exists, so a decompression bomb (a few KB claiming 100000 x 100000 pixels) is refused without
allocating. Only JPEG, PNG, WebP and BMP ever reach ``cv2.imdecode``; every other input (including
formats OpenCV could decode, such as TIFF, PNM, EXR or HDR) is refused by its magic bytes, which keeps
the attack surface to four well-fuzzed decoders.

Output is always BGR uint8 ``HxWx3``, C-contiguous:

- gray -> BGR; 16-bit -> 8-bit by ``round(v / 257)`` (so 65535 -> 255 and 257 -> 1; not ``v >> 8``);
- PNG/WebP alpha is composited over white (what a viewer shows; transparent pixels often hide black
  or garbage colour); BMP's fourth byte is ignored (in 32-bit BI_RGB files it is usually padding);
- JPEG EXIF orientation (tag 0x0112, either byte order) is parsed here and applied with
  ``cv2.flip``/``cv2.rotate``/``cv2.transpose`` after a decode that ignores it, so behaviour does not
  depend on OpenCV's flags or version. A malformed EXIF block is ignored, not an error. EXIF in PNG
  or WebP is ignored (phone photos are JPEG; HEIC is unsupported).

OpenCV's own backstop, ``OPENCV_IO_MAX_IMAGE_PIXELS`` (default 2**30), is read once when ``cv2`` is
first imported; ``meaa/__init__.py`` sets it to ``OPENCV_PIXEL_CEILING`` if unset, before any
``import cv2`` of the package -- effective when that is the process's first ``import cv2``. Whatever value is in force,
``decode_image`` refuses images above ``min(max_pixels, that value)`` as ``ImageTooLarge``, so the
two limits never disagree into a confusing ``InvalidImage``.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from meaa.config import DecodeSettings
from meaa.errors import ImageTooLarge, InvalidImage, InvalidInput, UnsupportedFormat

__all__ = ["SUPPORTED_FORMATS", "ImageHeader", "decode_image", "read_image_header", "read_image_size"]

SUPPORTED_FORMATS = ("jpeg", "png", "webp", "bmp")

# Limits OpenCV enforces itself (environment, read at cv2 import; defaults from OpenCV's loadsave.cpp).
_OPENCV_MAX_PIXELS = int(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"])
_OPENCV_MAX_WIDTH = int(os.environ.get("OPENCV_IO_MAX_IMAGE_WIDTH") or 1 << 20)
_OPENCV_MAX_HEIGHT = int(os.environ.get("OPENCV_IO_MAX_IMAGE_HEIGHT") or 1 << 20)

# JPEG and BMP: 8-bit BGR straight from the decoder (CMYK and gray converted by libjpeg), orientation
# left to us. PNG and WebP: samples as stored, so we see alpha and 16 bits and convert them ourselves.
_IMREAD_FLAGS = {
    "jpeg": cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
    "bmp": cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
    "png": cv2.IMREAD_UNCHANGED,
    "webp": cv2.IMREAD_UNCHANGED,
}

_JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, RST0-7: no length
_JPEG_SOS, _JPEG_EOI, _JPEG_APP1 = 0xDA, 0xD9, 0xE1
_JPEG_MARKER = re.compile(rb"(?<=\xff)[^\xff]")  # a marker byte: the first non-0xFF after 0xFF(s); linear time
# Real files have a few dozen segments before the scan (ICC profiles split into <= 255 APP2 chunks);
# the cap bounds the Python work an adversarial file full of empty segments can cause.
_JPEG_MAX_SEGMENTS = 4096
_EXIF_ORIENTATION_TAG = 0x0112
_BMP_INFO_HEADER_SIZES = frozenset({40, 52, 56, 64, 108, 124})  # BITMAPINFOHEADER .. BITMAPV5HEADER


@dataclass(frozen=True)
class ImageHeader:
    """What the header says, read without decoding. ``width``/``height`` are as stored."""

    format: str
    width: int
    height: int
    orientation: int = 1  # EXIF orientation, 1..8 (1 = as stored); JPEG only

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) after applying the orientation: the decoded image's size."""
        if self.orientation >= 5:  # 5..8 swap the axes
            return self.height, self.width
        return self.width, self.height


def read_image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` of the image ``decode_image`` would return, from the header only."""
    header = read_image_header(data)
    width, height = header.upright_size
    return header.format, width, height


def decode_image(data: bytes, limits: DecodeSettings) -> np.ndarray:
    """Decode JPEG/PNG/WebP/BMP bytes to BGR uint8 ``HxWx3``, upright, refusing oversize input first.

    Raises ``ImageTooLarge`` (over ``limits.max_image_bytes`` or ``max_image_pixels``, checked before decoding),
    ``UnsupportedFormat`` (a recognised non-supported format), ``InvalidImage`` (anything else that
    does not decode), ``InvalidInput`` (not bytes at all).
    """
    data = _as_bytes(data)
    max_bytes, max_pixels = limits.max_image_bytes, limits.max_image_pixels
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {max_bytes}")
    header = read_image_header(data)
    pixel_limit = min(max_pixels, _OPENCV_MAX_PIXELS)
    if header.width * header.height > pixel_limit:
        raise ImageTooLarge(
            f"image is {header.width}x{header.height} = {header.width * header.height} pixels; "
            f"the limit is {pixel_limit}"
        )
    if header.width > _OPENCV_MAX_WIDTH or header.height > _OPENCV_MAX_HEIGHT:
        raise ImageTooLarge(
            f"image is {header.width}x{header.height}; a side may be at most "
            f"{_OPENCV_MAX_WIDTH}x{_OPENCV_MAX_HEIGHT}"
        )
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), _IMREAD_FLAGS[header.format])
    except cv2.error:
        image = None
    if image is None:
        raise InvalidImage(f"the {header.format.upper()} data is corrupt or truncated")
    return _apply_orientation(_to_bgr8(image), header.orientation)


def read_image_header(data: bytes) -> ImageHeader:
    """Sniff the format by magic bytes and read the stored size (and JPEG EXIF orientation)."""
    data = _as_bytes(data)
    if not data:
        raise InvalidImage("the image data is empty")
    if data[:3] == b"\xff\xd8\xff" or data[:2] == b"\xff\xd8" and len(data) < 3:
        return _read_jpeg_header(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _read_png_header(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _read_webp_header(data)
    if data[:2] == b"BM":
        return _read_bmp_header(data)
    known = _sniff_unsupported(data)
    if known is not None:
        raise UnsupportedFormat(f"{known} is not a supported format; send JPEG, PNG, WebP or BMP")
    raise InvalidImage("the data is not an image (expected JPEG, PNG, WebP or BMP)")


# --- helpers -----------------------------------------------------------------------------------------


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise InvalidInput(f"image data must be bytes, not {type(data).__name__}")


def _checked_size(fmt: str, width: int, height: int, orientation: int = 1) -> ImageHeader:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the {fmt.upper()} header gives an empty size {width}x{height}")
    return ImageHeader(fmt, width, height, orientation)


def _truncated(fmt: str) -> InvalidImage:
    return InvalidImage(f"the {fmt.upper()} data ends before its header does (truncated?)")


def _read_jpeg_header(data: bytes) -> ImageHeader:
    """Walk the marker segments up to the first SOS: size from SOFn, orientation from EXIF APP1."""
    size: tuple[int, int] | None = None
    orientation = 1
    found_exif = False
    end = len(data)
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        # Next marker: 0xFF, any fill 0xFFs, a marker byte; junk before it is tolerated, as libjpeg does.
        found = _JPEG_MARKER.search(data, pos)
        if found is None:
            break
        marker = data[found.start()]
        pos = found.end()
        if marker in _JPEG_STANDALONE_MARKERS or marker == 0x00:
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            if size is None:
                raise InvalidImage("the JPEG has no frame header (SOF) before its image data")
            break
        if pos + 2 > end:
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise InvalidImage("the JPEG has a malformed segment length")
        segment_start, segment_end = pos + 2, pos + length
        if marker in _JPEG_SOF_MARKERS and size is None:
            if segment_start + 5 > end:
                break
            height, width = struct.unpack_from(">HH", data, segment_start + 1)  # after precision
            if height == 0:  # "defined later by a DNL marker": libjpeg cannot decode it either
                raise InvalidImage("the JPEG leaves its height to a DNL marker, which is not supported")
            size = (width, height)
        elif marker == _JPEG_APP1 and not found_exif and data.startswith(b"Exif\x00\x00", segment_start):
            found_exif = True
            orientation = _exif_orientation(data[segment_start + 6 : min(segment_end, end)])
        pos = segment_end
    else:
        raise InvalidImage(f"the JPEG has more than {_JPEG_MAX_SEGMENTS} segments before its image data")
    if size is None:
        raise _truncated("jpeg")
    return _checked_size("jpeg", size[0], size[1], orientation)


def _exif_orientation(tiff: bytes) -> int:
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


def _read_png_header(data: bytes) -> ImageHeader:
    # Signature (8), then the IHDR chunk: length (4), b"IHDR", width (4), height (4), ...
    if len(data) < 24:
        raise _truncated("png")
    if data[12:16] != b"IHDR":
        raise InvalidImage("the PNG does not start with an IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    if width > 0x7FFFFFFF or height > 0x7FFFFFFF:  # the PNG spec's limit
        raise InvalidImage(f"the PNG header gives an impossible size {width}x{height}")
    return _checked_size("png", width, height)


def _read_webp_header(data: bytes) -> ImageHeader:
    # RIFF header (12), then the first chunk: fourcc (4), size (4), payload from offset 20.
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Frame tag (3 bytes; bit 0 clear = key frame), start code 9D 01 2A, 14-bit width and height.
        if len(data) < 30:
            raise _truncated("webp")
        if data[20] & 1 or data[23:26] != b"\x9d\x01\x2a":
            raise InvalidImage("the WebP VP8 chunk does not start with a key frame")
        width, height = struct.unpack_from("<HH", data, 26)
        return _checked_size("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        # Signature 0x2F, then 14 bits width-1, 14 bits height-1 (little-endian bit packing).
        if len(data) < 25:
            raise _truncated("webp")
        if data[20] != 0x2F:
            raise InvalidImage("the WebP VP8L chunk has a bad signature")
        (bits,) = struct.unpack_from("<I", data, 21)
        return _checked_size("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        # Flags (1) + reserved (3), canvas width-1 and height-1 as 24-bit little-endian.
        if len(data) < 30:
            raise _truncated("webp")
        if data[20] & 0x02:
            raise UnsupportedFormat("animated WebP images are not supported; send a single frame")
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _checked_size("webp", width, height)
    if len(data) < 16:
        raise _truncated("webp")
    raise InvalidImage("the WebP has no VP8, VP8L or VP8X chunk first")


def _read_bmp_header(data: bytes) -> ImageHeader:
    # File header (14), then the DIB header whose first field is its own size.
    if len(data) < 18:
        raise _truncated("bmp")
    (info_size,) = struct.unpack_from("<I", data, 14)
    if info_size == 12:  # BITMAPCOREHEADER: unsigned 16-bit sides
        if len(data) < 22:
            raise _truncated("bmp")
        width, height = struct.unpack_from("<HH", data, 18)
    elif info_size in _BMP_INFO_HEADER_SIZES:  # signed 32-bit; negative height = rows stored top-down
        if len(data) < 26:
            raise _truncated("bmp")
        width, height = struct.unpack_from("<ii", data, 18)
        height = abs(height)
    else:
        raise InvalidImage(f"the BMP has an unknown header size {info_size}")
    return _checked_size("bmp", width, height)


def _sniff_unsupported(data: bytes) -> str | None:
    """Name a recognised image (or document) format that we do not decode."""
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIF/HEIC"
        return f"ISO media ({brand.decode('latin-1').strip() or 'unknown brand'})"
    if data[:5] == b"%PDF-":
        return "PDF"
    if data[:4] == b"8BPS":
        return "Photoshop (PSD)"
    if data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or data[:4] == b"\xff\x4f\xff\x51":
        return "JPEG 2000"
    if data[:2] == b"\xff\x0a" or data[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "JPEG XL"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or head.startswith(b"<?xml") and b"<svg" in head:
        return "SVG"
    return None


def _to_bgr8(image: np.ndarray) -> np.ndarray:
    """Whatever ``imdecode`` returned (gray/BGR/BGRA, 8 or 16 bit) -> BGR uint8."""
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=1.0 / 257.0)  # rounds: 65535 -> 255, 128 -> 0, 129 -> 1
    elif image.dtype != np.uint8:
        raise InvalidImage(f"unsupported sample type {image.dtype}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 3:
        return image
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return _composite_over_white(image)
    raise InvalidImage(f"unsupported channel count {channels}")


def _composite_over_white(bgra: np.ndarray) -> np.ndarray:
    alpha = bgra[..., 3:]
    if alpha.min() == 255:  # an alpha channel that is all opaque: just drop it
        return cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR)
    alpha16 = alpha.astype(np.uint16)
    # round((c * a + 255 * (255 - a)) / 255), in integers
    blended = bgra[..., :3] * alpha16 + 255 * (255 - alpha16) + 127
    return (blended // 255).astype(np.uint8)


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image upright per EXIF orientation (1 = as stored, 2..8 as TIFF 6.0 defines)."""
    if orientation == 2:  # mirrored left-right
        return cv2.flip(image, 1)
    if orientation == 3:  # upside down
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:  # mirrored top-bottom
        return cv2.flip(image, 0)
    if orientation == 5:  # mirrored along the main diagonal
        return cv2.transpose(image)
    if orientation == 6:  # stored rotated 90 degrees counter-clockwise
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:  # mirrored along the anti-diagonal
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:  # stored rotated 90 degrees clockwise
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image
