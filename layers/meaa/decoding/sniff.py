"""The format, by magic bytes: JPEG, PNG, WebP and BMP are read; other formats (including some OpenCV could
decode, such as TIFF) are refused by name, which keeps the attack surface to four well-fuzzed decoders."""

from __future__ import annotations

from meaa.errors import InvalidImage, UnsupportedFormat

from .bmp import read_bmp_header
from .headers import ImageHeader, as_bytes
from .jpeg import read_jpeg_header
from .png import PNG_SIGNATURE, read_png_header
from .webp import read_webp_header

SUPPORTED_FORMATS = ("jpeg", "png", "webp", "bmp")


def read_image_header(data: bytes) -> ImageHeader:
    """Sniff the format by magic bytes and read the stored size (and JPEG EXIF orientation)."""
    data = as_bytes(data)
    if not data:
        raise InvalidImage("the image data is empty")
    if data[:3] == b"\xff\xd8\xff" or (data[:2] == b"\xff\xd8" and len(data) < 3):
        return read_jpeg_header(data)
    if data[:8] == PNG_SIGNATURE:
        return read_png_header(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return read_webp_header(data)
    if data[:2] == b"BM":
        return read_bmp_header(data)
    known = _sniff_unsupported(data)
    if known is not None:
        raise UnsupportedFormat(f"{known} is not a supported format; send JPEG, PNG, WebP or BMP")
    raise InvalidImage("the data is not an image (expected JPEG, PNG, WebP or BMP)")


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
