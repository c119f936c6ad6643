"""Build test images in memory: real encodings, EXIF orientation, and headers that lie.

Everything here is generated (OpenCV encoders plus hand-built headers with ``struct``), so tests need
no files. The hand-built parts (EXIF segments, PNG chunks, WebP VP8X, patched size fields) are written
from the format specifications, independently of ``meaa.decoding``'s parsers, so they can catch them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import cv2
import numpy as np

EXIF_ORIENTATION_TAG = 0x0112
TIFF_SHORT = 3
TIFF_ASCII = 2
JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def encode(image: np.ndarray, ext: str, **params: int) -> bytes:
    """Encode with OpenCV; ``params`` are ``cv2.IMWRITE_*`` names without the prefix, lowercase.

    Example: ``encode(img, ".jpg", jpeg_quality=95, jpeg_progressive=1)``;
    ``encode(img, ".webp", webp_quality=101)`` is lossless WebP.
    """
    flat: list[int] = []
    for name, value in params.items():
        flat += [getattr(cv2, "IMWRITE_" + name.upper()), int(value)]
    ok, buffer = cv2.imencode(ext, image, flat)
    if not ok:
        raise ValueError(f"OpenCV could not encode {image.shape} {image.dtype} as {ext}")
    return buffer.tobytes()


def pattern_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric uint8 image (JPEG-friendly; no two orientations look alike)."""
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    planes = [
        255 * rows * (0.3 + 0.7 * cols),
        255 * cols**2,
        255 * (0.5 + 0.5 * np.sin(6 * rows + 3 * cols + seed)),
        255 * (1 - rows * cols),
    ]
    full = np.zeros((height, width), np.float32)
    image = np.stack([plane + full for plane in planes[:channels]], axis=-1).round().astype(np.uint8)
    return image[..., 0] if channels == 1 else image


# --- JPEG -------------------------------------------------------------------------------------------


def jpeg_segments(jpeg: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(marker, offset of the 0xFF, segment length incl. its 2 length bytes)`` up to SOS."""
    pos = 2
    while pos + 4 <= len(jpeg):
        marker = jpeg[pos + 1]
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        yield marker, pos, length
        if marker == 0xDA:
            return
        pos += 2 + length


def exif_app1_payload(orientation: int, byte_order: str = "<") -> bytes:
    """An ``Exif\\0\\0`` + TIFF payload whose IFD0 holds Make and Orientation (sorted, as the spec wants)."""
    endian = "<" if byte_order == "<" else ">"
    make = b"MEAA test camera\x00"
    entry_count = 2
    ifd_offset = 8
    make_offset = ifd_offset + 2 + 12 * entry_count + 4
    tiff = (b"II" if endian == "<" else b"MM") + struct.pack(endian + "HI", 42, ifd_offset)
    tiff += struct.pack(endian + "H", entry_count)
    tiff += struct.pack(endian + "HHII", 0x010F, TIFF_ASCII, len(make), make_offset)
    # A SHORT value sits left-justified in the 4-byte value field.
    tiff += struct.pack(endian + "HHIHH", EXIF_ORIENTATION_TAG, TIFF_SHORT, 1, orientation, 0)
    tiff += struct.pack(endian + "I", 0)  # no IFD1
    tiff += make
    return b"Exif\x00\x00" + tiff


def with_app1(jpeg: bytes, payload: bytes, after_app0: bool = False) -> bytes:
    """Insert an APP1 segment with ``payload`` right after SOI (where EXIF puts it), or after the
    JFIF APP0 segment that OpenCV writes (where some editors put it)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    at = 2
    if after_app0:
        marker, offset, length = next(jpeg_segments(jpeg))
        if marker != 0xE0:
            raise ValueError("the JPEG has no APP0 segment first")
        at = offset + 2 + length
    return jpeg[:at] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[at:]


def with_exif_orientation(jpeg: bytes, orientation: int, byte_order: str = "<", after_app0: bool = False) -> bytes:
    """The same JPEG with an EXIF APP1 segment carrying ``orientation`` (1..8 are meaningful)."""
    return with_app1(jpeg, exif_app1_payload(orientation, byte_order), after_app0)


def jpeg_with_claimed_size(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF says ``width`` x ``height`` (16-bit fields, so up to 65535)."""
    jpeg = bytearray(encode(pattern_image(16, 16), ".jpg"))
    for marker, offset, _ in jpeg_segments(bytes(jpeg)):
        if marker in JPEG_SOF_MARKERS:
            # Segment: FF Cn, length(2), precision(1), height(2), width(2), components(1), ...
            struct.pack_into(">HH", jpeg, offset + 5, height, width)
            return bytes(jpeg)
    raise AssertionError("OpenCV wrote a JPEG without SOF")


def jpeg_without_frame_header() -> bytes:
    """SOI, then straight to SOS: there is no size anywhere."""
    jpeg = encode(pattern_image(16, 16), ".jpg")
    for marker, offset, _ in jpeg_segments(jpeg):
        if marker == 0xDA:
            return jpeg[:2] + jpeg[offset:]
    raise AssertionError("OpenCV wrote a JPEG without SOS")


# --- PNG --------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_claimed_size(width: int, height: int) -> bytes:
    """A well-formed PNG (signature, IHDR with a correct CRC, IEND) claiming ``width`` x ``height``
    RGB pixels, with a tiny IDAT: a decoder that trusts it allocates gigabytes; ours must not."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x80" * 3 * min(width, 16))
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_raw(
    samples: np.ndarray,
    color_type: int,
    bit_depth: int = 8,
    palette: np.ndarray | None = None,
    transparency: bytes | None = None,
) -> bytes:
    """A PNG written by hand (filter 0 on every row) for layouts OpenCV's encoder cannot produce:
    gray+alpha (``color_type`` 4), palette (3) with ``palette`` RGB rows and optional tRNS bytes.

    ``samples`` is HxW (gray or palette indices) or HxWxC in PNG channel order (RGB, GA, RGBA);
    ``bit_depth`` must be 8 or 16 (samples written big-endian).
    """
    height, width = samples.shape[:2]
    dtype = ">u2" if bit_depth == 16 else np.uint8
    rows = np.ascontiguousarray(samples.astype(dtype)).reshape(height, -1).view(np.uint8)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    chunks = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        chunks += png_chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if transparency is not None:
        chunks += png_chunk(b"tRNS", transparency)
    chunks += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    return PNG_SIGNATURE + chunks


def png_16bit(height: int, width: int, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A 16-bit BGR PNG of random samples, and the uint16 array it holds."""
    samples = np.random.default_rng(seed).integers(0, 65536, size=(height, width, 3), dtype=np.uint16)
    return encode(samples, ".png"), samples


def png_bgra(image_bgra: np.ndarray) -> bytes:
    """A 4-channel (BGRA) PNG."""
    if image_bgra.ndim != 3 or image_bgra.shape[2] != 4:
        raise ValueError("expected HxWx4")
    return encode(image_bgra, ".png")


# --- WebP -------------------------------------------------------------------------------------------


def webp_with_vp8x(webp: bytes, width: int | None = None, height: int | None = None, flags: int = 0) -> bytes:
    """Wrap a simple WebP (one VP8/VP8L chunk) in the extended format: RIFF, VP8X, original chunks.

    The canvas defaults to the bitstream's own size (a valid file); pass ``width``/``height`` to lie,
    ``flags=0x02`` to claim an animation, ``0x10`` to announce alpha.
    """
    if webp[:4] != b"RIFF" or webp[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    image = cv2.imdecode(np.frombuffer(webp, np.uint8), cv2.IMREAD_UNCHANGED)
    canvas_w = image.shape[1] if width is None else width
    canvas_h = image.shape[0] if height is None else height
    vp8x = bytes([flags, 0, 0, 0]) + (canvas_w - 1).to_bytes(3, "little") + (canvas_h - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x + webp[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- BMP --------------------------------------------------------------------------------------------


def bmp_with_claimed_size(width: int, height: int) -> bytes:
    """A real BMP (BITMAPINFOHEADER) whose header says ``width`` x ``height`` (negative = top-down)."""
    bmp = bytearray(encode(pattern_image(4, 4), ".bmp"))
    struct.pack_into("<ii", bmp, 18, width, height)
    return bytes(bmp)


def bmp_top_down(image: np.ndarray) -> bytes:
    """A 24-bit BMP stored top-down (negative height), which OpenCV's encoder never writes."""
    height, width = image.shape[:2]
    stride = (width * 3 + 3) & ~3
    rows = np.zeros((height, stride), np.uint8)
    rows[:, : width * 3] = image.reshape(height, width * 3)
    pixels = rows.tobytes()
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


# --- Other formats: just enough of a header to be recognised ---------------------------------------

UNSUPPORTED_SAMPLES: dict[str, bytes] = {
    "gif87a": b"GIF87a" + struct.pack("<HH", 8, 8) + b"\x00" * 16,
    "gif89a": b"GIF89a" + struct.pack("<HH", 8, 8) + b"\x00" * 16,
    "tiff_le": b"II*\x00\x08\x00\x00\x00" + b"\x00" * 16,
    "tiff_be": b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 16,
    "heic": struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic",
    "avif": struct.pack(">I", 24) + b"ftypavif" + b"\x00\x00\x00\x00avifmif1",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
    "svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n',
    "psd": b"8BPS\x00\x01" + b"\x00" * 20,
    "jpeg2000": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 16,
    "jpegxl": b"\xff\x0a" + b"\x00" * 16,
}
