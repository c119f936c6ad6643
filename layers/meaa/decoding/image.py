"""Bytes -> an upright BGR image: ``EncodedImage.parse`` runs every check the headers allow, ``decode`` decodes
within the caps (JPEG at 1/2, 1/4 or 1/8 size in the DCT domain when asked)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meaa.config import DecodeSettings
from meaa.errors import ImageTooLarge, InvalidImage

from .bmp import parse_bmp
from .budget import SMALL_DECODE_BYTES, Layout, check_pixels, decode_bytes, pixel_buffer_bytes
from .exif import apply_orientation
from .headers import ImageHeader, as_bytes
from .jpeg import parse_jpeg
from .opencv import REDUCTIONS, decode_flags, read_with_opencv, to_bgr8
from .png import PngLayout, parse_png
from .sniff import read_image_header
from .webp import parse_webp


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
class EncodedImage:
    """Image bytes that passed every check that needs no decoding; decodes on request, within the caps.

    ``EncodedImage.parse(data, limits)`` raises the typed errors; ``decode(reduction)`` decodes (JPEG at
    1/``reduction`` size in the DCT domain, other formats at full size only).
    """

    header: ImageHeader
    limits: DecodeSettings
    _data: bytes = field(repr=False, compare=False)
    _layout: Layout = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, limits: DecodeSettings) -> EncodedImage:
        """Check ``data`` against ``limits`` from its headers alone.

        Raises ``ImageTooLarge`` (over the byte, pixel or scan cap, or more memory than ``max_decode_bytes``
        even at the smallest size it can be decoded at), ``UnsupportedFormat`` (a recognised format or JPEG
        variant that is not decoded), ``InvalidImage`` (malformed, truncated, or a header that promises
        more data than the file holds), ``InvalidInput`` (not bytes at all).
        """
        data = as_bytes(data)
        if len(data) > limits.max_image_bytes:
            raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {limits.max_image_bytes}")
        header = read_image_header(data)
        check_pixels(header, limits)
        layout: Layout
        if header.format == "jpeg":
            layout = parse_jpeg(data, header, limits)
        elif header.format == "png":
            layout = parse_png(data, header)
        elif header.format == "webp":
            layout = parse_webp(data, header)
        else:
            layout = parse_bmp(data, header)
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
        """Memory ``decode(reduction)`` holds at its peak, in bytes (``meaa.decoding.budget``'s model)."""
        return decode_bytes(self.header, self._layout, self._data, reduction)

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
        data = layout.decoder_input if isinstance(layout, PngLayout) else self._data
        small = pixel_buffer_bytes(self.header, layout, self._data, reduction) <= SMALL_DECODE_BYTES
        image = read_with_opencv(data, decode_flags(layout, reduction), small=small)
        stored_size = (-(-self.header.width // reduction), -(-self.header.height // reduction))
        if image is None or image.size == 0:
            raise InvalidImage(f"the {self.header.format.upper()} data is corrupt or truncated")
        if (image.shape[1], image.shape[0]) != stored_size:
            raise InvalidImage(f"the {self.header.format.upper()} data does not match its header's size")
        image = apply_orientation(to_bgr8(image), self.header.orientation)
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
