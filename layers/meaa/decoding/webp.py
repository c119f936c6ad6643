"""WebP: the RIFF chunks, one VP8 or VP8L bitstream whose own size must be the VP8X canvas's; no animation."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from meaa.errors import InvalidImage, UnsupportedFormat

from .headers import ImageHeader, checked_size, promises_more, truncated


@dataclass(frozen=True)
class WebpLayout:
    lossless: bool  # VP8L bitstream: libwebp decodes it through a full-size ARGB buffer
    alpha: bool  # decoded as BGRA (alpha flag, ALPH chunk or VP8L's alpha hint)
    alpha_chunk: bool  # lossy + ALPH: a separate alpha plane, itself possibly VP8L-compressed


def read_webp_header(data: bytes) -> ImageHeader:
    # RIFF header (12), then the first chunk: fourcc (4), size (4), payload from offset 20.
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if len(data) < 30:
            raise truncated("webp")
        width, height = _vp8_size(data, 20)
        return checked_size("webp", width, height)
    if chunk == b"VP8L":
        if len(data) < 25:
            raise truncated("webp")
        width, height, _ = _vp8l_info(data, 20)
        return checked_size("webp", width, height)
    if chunk == b"VP8X":
        # Flags (1) + reserved (3), canvas width-1 and height-1 as 24-bit little-endian.
        if len(data) < 30:
            raise truncated("webp")
        if data[20] & 0x02:
            raise UnsupportedFormat("animated WebP images are not supported; send a single frame")
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return checked_size("webp", width, height)
    if len(data) < 16:
        raise truncated("webp")
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


def parse_webp(data: bytes, header: ImageHeader) -> WebpLayout:
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
            width, height, alpha_hint = _bitstream_info(data, kind, payload, size, header)
            if (width, height) != (header.width, header.height):
                raise InvalidImage(
                    f"the WebP canvas is {header.width}x{header.height} but its image is {width}x{height}"
                )
            lossy = kind == b"VP8 "
            return WebpLayout(lossless=not lossy, alpha=alpha or alpha_hint, alpha_chunk=alpha_chunk and lossy)
        elif not extended:
            break
        pos = payload + size + (size & 1)
    raise InvalidImage("the WebP has no VP8 or VP8L image data (truncated?)")


def _bitstream_info(data: bytes, kind: bytes, payload: int, size: int, header: ImageHeader) -> tuple[int, int, bool]:
    """(width, height, alpha hint) of a VP8 (lossy) or VP8L (lossless) chunk, whose data must be there."""
    if kind == b"VP8 ":
        if size < 10:
            raise truncated("webp")
        width, height = _vp8_size(data, payload)
        first_partition = int.from_bytes(data[payload : payload + 3], "little") >> 5
        if first_partition > size - 10:
            raise promises_more(header, "its VP8 chunk is shorter than its first partition")
        return width, height, False
    if size < 5:
        raise truncated("webp")
    return _vp8l_info(data, payload)
