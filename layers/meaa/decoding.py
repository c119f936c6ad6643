"""Safe image decoding: sniff, check everything the headers promise, then decode with OpenCV within a budget.

Why this module parses headers itself: every cap must hold *before* any pixel buffer exists or any decoder
work starts, so a decompression bomb, a header that promises far more data than the file holds, or a
progressive JPEG that repeats one scan thousands of times is refused cheaply. Only JPEG, PNG, WebP and BMP
ever reach OpenCV; every other input (including formats OpenCV could decode, such as TIFF, PNM, EXR or
HDR) is refused by its magic bytes, which keeps the attack surface to four well-fuzzed decoders.

What is checked before decoding (``EncodedImage.parse``), each with a typed error:

- bytes (``max_image_bytes``), pixels from the header (``max_image_pixels`` and OpenCV's own limits);
- JPEG: the whole marker structure up to EOI, every scan counted (``max_jpeg_scans``) by skipping the
  entropy-coded data between markers; only Huffman-coded 8-bit sequential or progressive frames (SOF0-2:
  what cameras and browsers write; arithmetic, lossless, hierarchical and 12-bit JPEGs are refused); every
  colour component must be coded, and each scan must hold at least the data its blocks need (Huffman codes
  are at least one bit: two bits per block and component in a sequential scan, one in a DC scan), so a
  368-byte file claiming 7000x7000 is refused as truncated while a flat 7000x7000 photo is not;
- PNG: the chunk structure up to IEND; IDAT must hold at least the image's raw size / 1032 (deflate's
  largest ratio); only the chunks that define pixels (IHDR, PLTE, tRNS, IDAT, IEND) are passed to the
  decoder: text, ICC, EXIF and animation chunks are dropped, since OpenCV 4.13 inflates every zTXt/iTXt
  chunk (100 of them in 684 KB cost 4.5 s and 676 MB) and an APNG took four full-size buffers;
- WebP: the RIFF chunks, the VP8X canvas against the bitstream's own size, animation refused;
- BMP: the pixel rows an uncompressed file needs must be present;
- memory: the bytes the decode will hold (``decode_bytes``: pixels as the decoder stores them -- channels x
  bytes per sample, e.g. 8 B/px for 16-bit RGBA -- plus its own buffers, such as a progressive JPEG's
  coefficients at 128 B per 8x8 block, or a lossless WebP's ARGB copy) against ``max_decode_bytes``.

Images over 4 MiB of pixels are decoded through ``cv2.imread`` into an array the Python binding allocates
(the bytes are handed to it as an in-memory file, ``memfd``), because ``cv2.imdecode`` returns a Mat that
the binding then copies: a full-size image cost twice its size at peak. JPEGs can be decoded at 1/2, 1/4 or
1/8 size in the DCT domain (``EncodedImage.decode(reduction)``), which is how the pipeline decodes large
photos.

Output is always BGR uint8 ``HxWx3``, C-contiguous, upright:

- gray -> BGR; 16-bit -> 8-bit by ``round(v / 257)`` (so 65535 -> 255 and 257 -> 1; not ``v >> 8``);
- PNG/WebP alpha is composited over white (what a viewer shows; transparent pixels often hide black
  or garbage colour); BMP's fourth byte is ignored (in 32-bit BI_RGB files it is usually padding);
- those conversions run in place, a band of rows at a time, writing the 3-channel result over the front of
  the decoder's own buffer, so they add no full-size temporary;
- JPEG EXIF orientation (tag 0x0112, either byte order) is parsed here and applied with
  ``cv2.flip`` (in place) / ``cv2.rotate`` / ``cv2.transpose`` after a decode that ignores it, so behaviour
  does not depend on OpenCV's flags or version. A malformed EXIF block is ignored, not an error. EXIF in
  PNG or WebP is ignored (phone photos are JPEG; HEIC is unsupported).

OpenCV's own backstop, ``OPENCV_IO_MAX_IMAGE_PIXELS`` (default 2**30), is read once when ``cv2`` is
first imported; ``meaa/__init__.py`` sets it to ``OPENCV_PIXEL_CEILING`` if unset, before any
``import cv2`` of the package -- effective when that is the process's first ``import cv2``. Whatever value
is in force, images above ``min(max_pixels, that value)`` are refused as ``ImageTooLarge``, so the two
limits never disagree into a confusing ``InvalidImage``.
"""

from __future__ import annotations

import math
import os
import re
import struct
import tempfile
from dataclasses import dataclass, field

import cv2
import numpy as np

from meaa.config import DecodeSettings
from meaa.errors import ImageTooLarge, InvalidImage, InvalidInput, UnsupportedFormat

__all__ = [
    "REDUCTIONS",
    "SUPPORTED_FORMATS",
    "DecodedImage",
    "EncodedImage",
    "ImageHeader",
    "decode_image",
    "read_image_header",
    "read_image_size",
]

SUPPORTED_FORMATS = ("jpeg", "png", "webp", "bmp")
REDUCTIONS = (1, 2, 4, 8)  # JPEG's DCT-domain scales (cv2.IMREAD_REDUCED_COLOR_2/4/8)

# Limits OpenCV enforces itself (environment, read at cv2 import; defaults from OpenCV's loadsave.cpp).
_OPENCV_MAX_PIXELS = int(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"])
_OPENCV_MAX_WIDTH = int(os.environ.get("OPENCV_IO_MAX_IMAGE_WIDTH") or 1 << 20)
_OPENCV_MAX_HEIGHT = int(os.environ.get("OPENCV_IO_MAX_IMAGE_HEIGHT") or 1 << 20)

_JPEG_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}

_JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_DECODED_SOF = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
_JPEG_REFUSED_SOF = {
    0xC3: "lossless",
    0xC5: "hierarchical",
    0xC6: "hierarchical progressive",
    0xC7: "hierarchical lossless",
    0xC9: "arithmetic-coded",
    0xCA: "arithmetic-coded progressive",
    0xCB: "arithmetic-coded lossless",
    0xCD: "arithmetic-coded hierarchical",
    0xCE: "arithmetic-coded hierarchical",
    0xCF: "arithmetic-coded hierarchical",
}
_JPEG_STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, RST0-7: no length
_JPEG_SOS, _JPEG_EOI, _JPEG_APP1, _JPEG_DNL = 0xDA, 0xD9, 0xE1, 0xDC
# A marker: 0xFF (after any fill 0xFFs) and a byte that is not 0xFF; the marker byte follows the match's
# 0xFF. Patterns that start with a literal byte are searched at C speed (about 1 GB/s here); a lookbehind
# or a leading repeat made the same search 30 times slower.
_JPEG_MARKER = re.compile(rb"\xff[^\xff]")
# The end of a scan's entropy-coded data: 0xFF followed by neither a stuffed 0x00, a restart marker RST0-7
# nor fill. Restart markers are counted as scan data: padding a scan with them makes it as large as a real
# image of that size, which is all the data check asks for.
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Real files have a few dozen segments (ICC profiles split into <= 255 APP2 chunks, ~2 per progressive
# scan); the cap bounds the Python work an adversarial file full of empty segments can cause.
_JPEG_MAX_SEGMENTS = 4096
_JPEG_BLOCK_BYTES = 128  # one 8x8 block of 16-bit DCT coefficients, as libjpeg buffers them
_EXIF_ORIENTATION_TAG = 0x0112

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that define the pixels; every other chunk is dropped before decoding (see the module docstring).
_PNG_PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})
# libpng writes 8 KB IDAT chunks, so a 20 MB PNG has about 2,500; the cap bounds the Python loop.
_PNG_MAX_CHUNKS = 100_000
_DEFLATE_MAX_RATIO = 1032  # at best 2 bits (length and distance codes) per 258-byte match
# Bit depths allowed per colour type (PNG spec, table 11.1) and samples per pixel.
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

_BMP_INFO_HEADER_SIZES = frozenset({40, 52, 56, 64, 108, 124})  # BITMAPINFOHEADER .. BITMAPV5HEADER
_BMP_UNCOMPRESSED = frozenset({0, 3, 6})  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS

# Sides the decoders refuse themselves (libjpeg's JPEG_MAX_DIMENSION; libpng's default user limit):
# refused here, before decoding, as too large rather than as corrupt.
_DECODER_MAX_SIDE = {"jpeg": 65500, "png": 1_000_000}

# Rows converted per band by the in-place conversions; their temporaries take about 6 bands.
_BAND_BYTES = 1 << 20
# Decodes whose pixel buffers are at most this small go through cv2.imdecode (see _read_with_opencv).
_SMALL_DECODE_BYTES = 4 << 20
# What every decode holds besides its pixel buffers and input copies: the decoder's state, libraries'
# allocator slack, the band temporaries. Measured: 1-6 MB (tests/unit/test_hostile_inputs.py).
_DECODE_OVERHEAD_BYTES = 8 << 20


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


@dataclass(frozen=True)
class DecodedImage:
    """An upright BGR image decoded from bytes, possibly at reduced size.

    Each pixel of ``image`` covers ``reduction`` x ``reduction`` pixels of the full-resolution upright
    image, whose size is ``original_size`` (width, height): a point (x, y) of ``image`` is
    (x * reduction, y * reduction) in original pixels.
    """

    image: np.ndarray
    reduction: int
    original_size: tuple[int, int]

    @property
    def scale(self) -> float:
        """Pixels of ``image`` per original pixel (1, 1/2, 1/4 or 1/8)."""
        return 1.0 / self.reduction


@dataclass(frozen=True)
class _JpegComponent:
    ident: int
    h_sampling: int
    v_sampling: int


@dataclass(frozen=True)
class _JpegScan:
    components: tuple[int, ...]  # component ids
    spectral_start: int
    successive_high: int
    data_bytes: int  # entropy-coded bytes (stuffing and restart markers included)


@dataclass(frozen=True)
class _JpegLayout:
    sof_marker: int
    components: tuple[_JpegComponent, ...]
    scans: tuple[_JpegScan, ...]

    @property
    def progressive(self) -> bool:
        return self.sof_marker == 0xC2

    def blocks(self, component: _JpegComponent, width: int, height: int) -> tuple[int, int]:
        """8x8 blocks of one component across and down (libjpeg's width/height_in_blocks)."""
        h_max = max(c.h_sampling for c in self.components)
        v_max = max(c.v_sampling for c in self.components)
        return (
            math.ceil(math.ceil(width * component.h_sampling / h_max) / 8),
            math.ceil(math.ceil(height * component.v_sampling / v_max) / 8),
        )


@dataclass(frozen=True)
class _PngLayout:
    bit_depth: int
    color_type: int
    has_transparency: bool  # a tRNS chunk
    decoder_input: bytes  # the file reduced to its pixel chunks (the original bytes when nothing is dropped)

    @property
    def opaque_8bit(self) -> bool:
        """Decodable straight to BGR: no alpha to composite, no 16-bit samples to round.

        A gray image's tRNS counts as opaque: OpenCV ignores it (it keeps one channel)."""
        gray = self.color_type == 0
        return self.bit_depth <= 8 and self.color_type in (0, 2, 3) and (gray or not self.has_transparency)

    @property
    def decoded_pixel_bytes(self) -> int:
        """Bytes per pixel of OpenCV's output with IMREAD_UNCHANGED (grfmt_png.cpp: palette and RGB with
        tRNS, gray+alpha and RGBA become 4 channels; gray stays 1; 16-bit stays 16-bit)."""
        if self.opaque_8bit:
            return 3
        channels = 1 if self.color_type == 0 else 4 if self.color_type in (4, 6) or self.has_transparency else 3
        return channels * (2 if self.bit_depth == 16 else 1)


@dataclass(frozen=True)
class _WebpLayout:
    lossless: bool  # VP8L bitstream: libwebp decodes it through a full-size ARGB buffer
    alpha: bool  # decoded as BGRA (alpha flag, ALPH chunk or VP8L's alpha hint)
    alpha_chunk: bool  # lossy + ALPH: a separate alpha plane, itself possibly VP8L-compressed


@dataclass(frozen=True)
class _BmpLayout:
    bit_count: int
    compression: int


_Layout = _JpegLayout | _PngLayout | _WebpLayout | _BmpLayout


@dataclass(frozen=True)
class EncodedImage:
    """Image bytes that passed every check that needs no decoding; decodes on request, within the caps.

    ``EncodedImage.parse(data, limits)`` raises the typed errors; ``decode(reduction)`` decodes (JPEG at
    1/``reduction`` size in the DCT domain, other formats at full size only).
    """

    header: ImageHeader
    limits: DecodeSettings
    _data: bytes = field(repr=False, compare=False)
    _layout: _Layout = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, limits: DecodeSettings) -> EncodedImage:
        """Check ``data`` against ``limits`` from its headers alone.

        Raises ``ImageTooLarge`` (over the byte, pixel or scan cap, or more memory than ``max_decode_bytes``
        even at the smallest size it can be decoded at), ``UnsupportedFormat`` (a recognised format or JPEG
        variant that is not decoded), ``InvalidImage`` (malformed, truncated, or a header that promises
        more data than the file holds), ``InvalidInput`` (not bytes at all).
        """
        data = _as_bytes(data)
        if len(data) > limits.max_image_bytes:
            raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {limits.max_image_bytes}")
        header = read_image_header(data)
        _check_pixels(header, limits)
        layout: _Layout
        if header.format == "jpeg":
            layout = _parse_jpeg(data, header, limits)
        elif header.format == "png":
            layout = _parse_png(data, header)
        elif header.format == "webp":
            layout = _parse_webp(data, header)
        else:
            layout = _parse_bmp(data, header)
        encoded = cls(header, limits, data, layout)
        smallest = encoded.decode_bytes(encoded.reductions[-1])
        if smallest > limits.max_decode_bytes:
            raise ImageTooLarge(
                f"decoding this {header.width}x{header.height} {header.format.upper()} would take "
                f"{smallest / 1e6:.0f} MB; the limit is {limits.max_decode_bytes / 1e6:.0f} MB"
            )
        return encoded

    @property
    def reductions(self) -> tuple[int, ...]:
        """Sizes it can be decoded at, as divisors of each side: (1, 2, 4, 8) for JPEG, else (1,)."""
        return REDUCTIONS if self.header.format == "jpeg" else (1,)

    def reduced_size(self, reduction: int) -> tuple[int, int]:
        """Upright (width, height) of ``decode(reduction)``'s image (libjpeg rounds up)."""
        width, height = self.header.upright_size
        return -(-width // reduction), -(-height // reduction)

    def decode_bytes(self, reduction: int = 1) -> int:
        """Memory ``decode(reduction)`` holds at its peak, in bytes (the model the caps are checked with).

        Measured against the process's peak RSS, layout by layout, by tests/unit/test_hostile_inputs.py.
        """
        pixel_buffers = self._pixel_buffer_bytes(reduction)
        copy = pixel_buffers if pixel_buffers <= _SMALL_DECODE_BYTES else 0  # cv2.imdecode's result, copied
        return _DECODE_OVERHEAD_BYTES + pixel_buffers + copy

    def _pixel_buffer_bytes(self, reduction: int) -> int:
        width, height = self.header.width, self.header.height
        out_w, out_h = -(-width // reduction), -(-height // reduction)
        layout = self._layout
        rotate_copy = out_w * out_h * 3 if self.header.orientation >= 5 else 0  # transpose needs a new array
        if isinstance(layout, _JpegLayout):
            coefficients = 0
            if layout.progressive or len(layout.scans[0].components) < len(layout.components):
                # Multi-scan: libjpeg keeps every coefficient of the image (at full resolution, whatever
                # the output scale), per component rounded up to its sampling factors.
                for component in layout.components:
                    across, down = layout.blocks(component, width, height)
                    across = -(-across // component.h_sampling) * component.h_sampling
                    down = -(-down // component.v_sampling) * component.v_sampling
                    coefficients += across * down * _JPEG_BLOCK_BYTES
            # Row buffers for upsampling and colour conversion: a few MCU rows of the full width.
            row_buffers = 64 * width * len(layout.components)
            return out_w * out_h * 3 + coefficients + row_buffers + rotate_copy
        if isinstance(layout, _PngLayout):
            pixels = width * height
            gray_to_bgr = pixels * 3 if not layout.opaque_8bit and layout.color_type == 0 else 0
            copy = len(layout.decoder_input) if layout.decoder_input is not self._data else 0
            return pixels * layout.decoded_pixel_bytes + gray_to_bgr + 8 * height + copy  # + libpng's row pointers
        if isinstance(layout, _WebpLayout):
            # Bytes per pixel, above the growth measured between 4 and 8 Mpx photo-like images (file
            # included: OpenCV reads it whole into memory first; `python -m benchmarks.hostile_inputs`):
            # lossy 3.1, lossy + alpha 9.4 (the alpha plane is itself a lossless bitstream), lossless 7.1,
            # lossless + alpha 8.2 (libwebp's ARGB copy).
            if layout.lossless:
                per_pixel = 10 if layout.alpha else 8
            else:
                per_pixel = 9 if layout.alpha_chunk else 4 if layout.alpha else 3
            return width * height * per_pixel + len(self._data)
        return width * height * 3 + 4 * width  # BMP: BGR output and a row buffer

    def decode(self, reduction: int = 1) -> DecodedImage:
        """Decode at 1/``reduction`` size (1 for non-JPEG), upright BGR uint8.

        Raises ``ImageTooLarge`` when that size needs more than ``max_decode_bytes`` and ``InvalidImage``
        when the data does not decode.
        """
        if reduction not in self.reductions:
            raise ValueError(f"a {self.header.format} image decodes at reductions {self.reductions}, not {reduction}")
        cost = self.decode_bytes(reduction)
        if cost > self.limits.max_decode_bytes:
            raise ImageTooLarge(
                f"decoding this {self.header.width}x{self.header.height} image at 1/{reduction} size would take "
                f"{cost / 1e6:.0f} MB; the limit is {self.limits.max_decode_bytes / 1e6:.0f} MB"
            )
        layout = self._layout
        data = self._data
        if isinstance(layout, _JpegLayout):
            flags = _JPEG_REDUCED_FLAGS[reduction] | cv2.IMREAD_IGNORE_ORIENTATION
        elif isinstance(layout, _PngLayout):
            data = layout.decoder_input
            flags = cv2.IMREAD_COLOR if layout.opaque_8bit else cv2.IMREAD_UNCHANGED
        elif isinstance(layout, _WebpLayout):
            flags = cv2.IMREAD_UNCHANGED if layout.alpha else cv2.IMREAD_COLOR
        else:
            flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        image = _read_with_opencv(data, flags, small=self._pixel_buffer_bytes(reduction) <= _SMALL_DECODE_BYTES)
        stored_size = (-(-self.header.width // reduction), -(-self.header.height // reduction))
        if image is None or image.size == 0:
            raise InvalidImage(f"the {self.header.format.upper()} data is corrupt or truncated")
        if (image.shape[1], image.shape[0]) != stored_size:
            raise InvalidImage(f"the {self.header.format.upper()} data does not match its header's size")
        image = _apply_orientation(_to_bgr8(image), self.header.orientation)
        return DecodedImage(image=image, reduction=reduction, original_size=self.header.upright_size)


def read_image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` of the image ``decode_image`` would return, from the header only."""
    header = read_image_header(data)
    width, height = header.upright_size
    return header.format, width, height


def decode_image(data: bytes, limits: DecodeSettings) -> np.ndarray:
    """Decode JPEG/PNG/WebP/BMP bytes to BGR uint8 ``HxWx3`` at full size, upright, refusing what cannot fit.

    Raises ``ImageTooLarge`` (over ``limits``: bytes, pixels, JPEG scans or decode memory, checked before
    decoding), ``UnsupportedFormat`` (a recognised non-supported format), ``InvalidImage`` (anything else
    that does not decode), ``InvalidInput`` (not bytes at all).
    """
    return EncodedImage.parse(data, limits).decode(1).image


def read_image_header(data: bytes) -> ImageHeader:
    """Sniff the format by magic bytes and read the stored size (and JPEG EXIF orientation)."""
    data = _as_bytes(data)
    if not data:
        raise InvalidImage("the image data is empty")
    if data[:3] == b"\xff\xd8\xff" or (data[:2] == b"\xff\xd8" and len(data) < 3):
        return _read_jpeg_header(data)
    if data[:8] == _PNG_SIGNATURE:
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


def _check_pixels(header: ImageHeader, limits: DecodeSettings) -> None:
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


def _read_with_opencv(data: bytes, flags: int, *, small: bool) -> np.ndarray | None:
    """Decode with OpenCV: small images with ``cv2.imdecode``, large ones with ``cv2.imread`` of ``data`` as an
    in-memory file (``memfd``), into an array the Python binding allocates.

    ``cv2.imdecode`` returns a Mat that the binding copies into a new array, so a 7000x7000 decode peaked at
    280 MB instead of 140 MB; the in-memory file costs a fixed 0.35 ms instead (2.3 against 1.9 ms for a
    640x480 JPEG), which only pays for itself on large images (``_SMALL_DECODE_BYTES``).
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


def _checked_size(fmt: str, width: int, height: int, orientation: int = 1) -> ImageHeader:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the {fmt.upper()} header gives an empty size {width}x{height}")
    return ImageHeader(fmt, width, height, orientation)


def _truncated(fmt: str) -> InvalidImage:
    return InvalidImage(f"the {fmt.upper()} data ends before its header does (truncated?)")


def _promises_more(header: ImageHeader, detail: str) -> InvalidImage:
    return InvalidImage(
        f"the {header.format.upper()} header promises {header.width}x{header.height} pixels but {detail} (truncated?)"
    )


# --- JPEG --------------------------------------------------------------------------------------------


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
        marker = data[found.start() + 1]
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


def _parse_jpeg(data: bytes, header: ImageHeader, limits: DecodeSettings) -> _JpegLayout:
    """Walk every segment and scan to EOI; refuse what libjpeg would spend unbounded work or memory on."""
    sof_marker: int | None = None
    components: tuple[_JpegComponent, ...] = ()
    scans: list[_JpegScan] = []
    end = len(data)
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        found = _JPEG_MARKER.search(data, pos)
        if found is None:
            raise InvalidImage("the JPEG data ends before its end marker (truncated?)")
        marker = data[found.start() + 1]
        pos = found.end()
        if marker in _JPEG_STANDALONE_MARKERS or marker == 0x00:
            continue
        if marker == _JPEG_EOI:
            break
        if pos + 2 > end:
            raise InvalidImage("the JPEG data ends inside a segment (truncated?)")
        (length,) = struct.unpack_from(">H", data, pos)
        segment_start, segment_end = pos + 2, pos + length
        if length < 2 or segment_end > end:
            raise InvalidImage("the JPEG has a segment longer than the data (truncated?)")
        payload = data[segment_start:segment_end]
        if marker in _JPEG_SOF_MARKERS:
            if sof_marker is not None:
                raise InvalidImage("the JPEG has two frame headers (SOF)")
            sof_marker = marker
            components = _jpeg_frame(marker, payload)
        elif marker == _JPEG_SOS:
            if sof_marker is None:
                raise InvalidImage("the JPEG has no frame header (SOF) before its image data")
            if len(scans) >= limits.max_jpeg_scans:
                raise ImageTooLarge(
                    f"the JPEG has more than {limits.max_jpeg_scans} scans; each is a pass over the whole image "
                    "(a normal progressive JPEG has about 10)"
                )
            scan_header = _jpeg_scan_header(payload, components)
            ended = _JPEG_SCAN_END.search(data, segment_end)
            if ended is None:
                raise InvalidImage("the JPEG data ends inside a scan (truncated?)")
            data_end = ended.start()
            scans.append(_JpegScan(*scan_header, data_bytes=data_end - segment_end))
            segment_end = data_end
        elif marker == _JPEG_DNL:
            raise InvalidImage("the JPEG leaves its height to a DNL marker, which is not supported")
        pos = segment_end
    else:
        raise InvalidImage(f"the JPEG has more than {_JPEG_MAX_SEGMENTS} segments")
    if sof_marker is None or not scans:
        raise InvalidImage("the JPEG has no image data (no scan)")
    layout = _JpegLayout(sof_marker, components, tuple(scans))
    _check_jpeg_data(layout, header)
    return layout


def _jpeg_frame(marker: int, payload: bytes) -> tuple[_JpegComponent, ...]:
    """The components of a SOFn segment; only what libjpeg decodes to BGR in bounded work is accepted."""
    if marker in _JPEG_REFUSED_SOF:
        raise UnsupportedFormat(
            f"{_JPEG_REFUSED_SOF[marker]} JPEG (SOF{marker - 0xC0}) is not supported; send a baseline or "
            "progressive JPEG"
        )
    if len(payload) < 6:
        raise InvalidImage("the JPEG frame header (SOF) is truncated")
    precision, count = payload[0], payload[5]
    if precision != 8:
        raise UnsupportedFormat(f"{precision}-bit JPEG is not supported; send an 8-bit JPEG")
    if count not in (1, 3, 4) or len(payload) < 6 + 3 * count:
        raise InvalidImage(f"the JPEG frame header lists {count} colour components (expected 1, 3 or 4)")
    components = []
    for index in range(count):
        ident, sampling = payload[6 + 3 * index], payload[7 + 3 * index]
        horizontal, vertical = sampling >> 4, sampling & 0x0F
        if not (1 <= horizontal <= 4 and 1 <= vertical <= 4):
            raise InvalidImage(f"the JPEG has an invalid sampling factor {horizontal}x{vertical}")
        components.append(_JpegComponent(ident, horizontal, vertical))
    return tuple(components)


def _jpeg_scan_header(payload: bytes, components: tuple[_JpegComponent, ...]) -> tuple[tuple[int, ...], int, int]:
    """(component ids, Ss, Ah) of an SOS segment."""
    if not payload or len(payload) < 4 + 2 * payload[0] or not 1 <= payload[0] <= 4:
        raise InvalidImage("the JPEG has a malformed scan header (SOS)")
    count = payload[0]
    idents = tuple(payload[1 + 2 * index] for index in range(count))
    known = {component.ident for component in components}
    if any(ident not in known for ident in idents):
        raise InvalidImage("a JPEG scan refers to a colour component its frame header does not have")
    spectral_start = payload[1 + 2 * count]
    successive_high = payload[3 + 2 * count] >> 4
    return idents, spectral_start, successive_high


def _check_jpeg_data(layout: _JpegLayout, header: ImageHeader) -> None:
    """Every component coded, and each scan at least as long as its blocks' shortest possible coding.

    Huffman codes are at least one bit long: a sequential scan codes each block with a DC difference and an
    end-of-block (>= 2 bits), a progressive DC scan with at least one bit; progressive AC scans can cover
    any number of blocks with an end-of-band run, so they need no minimum. A file shorter than that is
    truncated or lying about its size -- and libjpeg would decode it anyway, as flat gray, at full size.
    """
    by_ident = {component.ident: component for component in layout.components}
    coded: set[int] = set()
    for scan in layout.scans:
        if layout.progressive and scan.spectral_start > 0:
            continue
        bits_per_block = 1 if layout.progressive else 2
        if not layout.progressive or scan.successive_high == 0:
            coded.update(scan.components)
        blocks = 0
        for ident in scan.components:
            across, down = layout.blocks(by_ident[ident], header.width, header.height)
            blocks += across * down
        needed = -(-blocks * bits_per_block // 8)
        if scan.data_bytes < needed:
            raise _promises_more(header, f"a scan holds {scan.data_bytes} bytes of the {needed} it needs at least")
    missing = [ident for ident in by_ident if ident not in coded]
    if missing:
        raise _promises_more(header, f"{len(missing)} of its {len(by_ident)} colour components are never coded")


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


# --- PNG ---------------------------------------------------------------------------------------------


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


def _parse_png(data: bytes, header: ImageHeader) -> _PngLayout:
    """Walk the chunks to IEND; keep the pixel chunks; check IDAT can hold the image."""
    if len(data) < 33 or struct.unpack_from(">I", data, 8)[0] != 13:
        raise InvalidImage("the PNG's IHDR chunk is malformed or truncated")
    bit_depth, color_type, compression, filtering, interlace = data[24:29]
    if color_type not in _PNG_DEPTHS or bit_depth not in _PNG_DEPTHS[color_type]:
        raise InvalidImage(f"the PNG has an invalid colour type {color_type} with bit depth {bit_depth}")
    if compression or filtering or interlace > 1:
        raise InvalidImage("the PNG has an unknown compression, filter or interlace method")
    kept: list[tuple[int, int]] = []  # (start, end) of each kept chunk, in order
    dropped = False
    idat_bytes = 0
    has_transparency = False
    pos = 8
    for _ in range(_PNG_MAX_CHUNKS):
        if pos + 12 > len(data):
            raise InvalidImage("the PNG data ends before its IEND chunk (truncated?)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        chunk_end = pos + 12 + length
        if length > 0x7FFFFFFF or chunk_end > len(data):
            raise InvalidImage("the PNG has a chunk longer than the data (truncated?)")
        if kind in _PNG_PIXEL_CHUNKS:
            kept.append((pos, chunk_end))
            idat_bytes += length if kind == b"IDAT" else 0
            has_transparency |= kind == b"tRNS"
        elif not kind[:1].islower():  # an unknown critical chunk (uppercase first letter): libpng refuses it
            raise InvalidImage(f"the PNG has an unknown critical chunk {kind.decode('latin-1')!r}")
        else:
            dropped = True
        pos = chunk_end
        if kind == b"IEND":
            break
    else:
        raise InvalidImage(f"the PNG has more than {_PNG_MAX_CHUNKS} chunks")
    if pos < len(data):
        dropped = True  # bytes after IEND
    # The raw (filtered) rows the IDAT stream must inflate to, at least (Adam7 adds a little).
    raw_bytes = header.height * (1 + -(-header.width * bit_depth * _PNG_SAMPLES[color_type] // 8))
    if idat_bytes < raw_bytes // _DEFLATE_MAX_RATIO:
        raise _promises_more(
            header,
            f"its IDAT holds {idat_bytes} bytes and {raw_bytes} raw bytes need at least "
            f"{raw_bytes // _DEFLATE_MAX_RATIO}",
        )
    decoder_input = data if not dropped else _PNG_SIGNATURE + b"".join(data[a:b] for a, b in kept)
    return _PngLayout(bit_depth, color_type, has_transparency, decoder_input)


# --- WebP --------------------------------------------------------------------------------------------


def _read_webp_header(data: bytes) -> ImageHeader:
    # RIFF header (12), then the first chunk: fourcc (4), size (4), payload from offset 20.
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if len(data) < 30:
            raise _truncated("webp")
        width, height = _vp8_size(data, 20)
        return _checked_size("webp", width, height)
    if chunk == b"VP8L":
        if len(data) < 25:
            raise _truncated("webp")
        width, height, _ = _vp8l_info(data, 20)
        return _checked_size("webp", width, height)
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


def _vp8_size(data: bytes, offset: int) -> tuple[int, int]:
    """Frame tag (3 bytes; bit 0 clear = key frame), start code 9D 01 2A, 14-bit width and height."""
    if data[offset] & 1 or data[offset + 3 : offset + 6] != b"\x9d\x01\x2a":
        raise InvalidImage("the WebP VP8 chunk does not start with a key frame")
    width, height = struct.unpack_from("<HH", data, offset + 6)
    return width & 0x3FFF, height & 0x3FFF


def _vp8l_info(data: bytes, offset: int) -> tuple[int, int, bool]:
    """Signature 0x2F, then 14 bits width-1, 14 bits height-1, 1 bit alpha hint (little-endian packing)."""
    if data[offset] != 0x2F:
        raise InvalidImage("the WebP VP8L chunk has a bad signature")
    (bits,) = struct.unpack_from("<I", data, offset + 1)
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)


def _parse_webp(data: bytes, header: ImageHeader) -> _WebpLayout:
    """Walk the RIFF chunks: one VP8/VP8L bitstream, whose own size must be the canvas's."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 > len(data):
        raise InvalidImage("the WebP data is shorter than its RIFF header says (truncated?)")
    end = riff_size + 8
    pos = 12
    extended = alpha = alpha_chunk = False
    while pos + 8 <= end:
        kind, size = struct.unpack_from("<4sI", data, pos)
        payload = pos + 8
        if payload + size > end:
            raise InvalidImage("the WebP has a chunk longer than the data (truncated?)")
        if kind == b"VP8X":
            extended, alpha = True, bool(data[payload] & 0x10)
        elif kind == b"ALPH":
            alpha = alpha_chunk = True
        elif kind in (b"VP8 ", b"VP8L"):
            if kind == b"VP8 ":
                if size < 10:
                    raise _truncated("webp")
                width, height = _vp8_size(data, payload)
                first_partition = int.from_bytes(data[payload : payload + 3], "little") >> 5
                if first_partition > size - 10:
                    raise _promises_more(header, "its VP8 chunk is shorter than its first partition")
            else:
                if size < 5:
                    raise _truncated("webp")
                width, height, alpha_hint = _vp8l_info(data, payload)
                alpha |= alpha_hint
            if (width, height) != (header.width, header.height):
                raise InvalidImage(
                    f"the WebP canvas is {header.width}x{header.height} but its image is {width}x{height}"
                )
            return _WebpLayout(lossless=kind == b"VP8L", alpha=alpha, alpha_chunk=alpha_chunk and kind == b"VP8 ")
        elif not extended:
            break
        pos = payload + size + (size & 1)
    raise InvalidImage("the WebP has no VP8 or VP8L image data (truncated?)")


# --- BMP ---------------------------------------------------------------------------------------------


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


def _parse_bmp(data: bytes, header: ImageHeader) -> _BmpLayout:
    """An uncompressed BMP must hold all its rows; RLE ones may legitimately end early (end-of-bitmap)."""
    (info_size,) = struct.unpack_from("<I", data, 14)
    if info_size == 12:
        if len(data) < 26:
            raise _truncated("bmp")
        (bit_count,), compression = struct.unpack_from("<H", data, 24), 0
    else:
        if len(data) < 34:
            raise _truncated("bmp")
        bit_count, compression = struct.unpack_from("<HI", data, 28)
    (pixel_offset,) = struct.unpack_from("<I", data, 10)
    if compression in _BMP_UNCOMPRESSED and bit_count in (1, 2, 4, 8, 16, 24, 32):
        stride = (header.width * bit_count + 31) // 32 * 4
        if pixel_offset + stride * header.height > len(data):
            raise _promises_more(
                header, f"it holds {max(0, len(data) - pixel_offset)} bytes of pixels, not {stride * header.height}"
            )
    return _BmpLayout(bit_count, compression)


# --- other formats -----------------------------------------------------------------------------------


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
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG"
    return None


# --- after decoding ----------------------------------------------------------------------------------


def _to_bgr8(image: np.ndarray) -> np.ndarray:
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
    widening arithmetic, which took 1.6 s on a 7000x7000 RGBA PNG.
    """
    alpha = cv2.extractChannel(bgra, 3)
    bgr = cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR)
    if cv2.minMaxLoc(alpha)[0] == 255:  # an alpha channel that is all opaque: just drop it
        return bgr
    alpha3 = cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR)
    return cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(bgr), alpha3, scale=1.0 / 255.0))


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
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
