"""PNG: the chunk structure up to IEND; IDAT must hold at least the image's raw size / 1032 (deflate's
largest ratio); only the chunks that define pixels reach the decoder (OpenCV inflates every text chunk)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from meaa.errors import InvalidImage

from .headers import ImageHeader, checked_size, promises_more, truncated

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that define the pixels; every other chunk is dropped before decoding (see the module docstring).
_PNG_PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})
# libpng writes 8 KB IDAT chunks, so a 20 MB PNG has about 2,500; the cap bounds the Python loop.
_PNG_MAX_CHUNKS = 100_000
_DEFLATE_MAX_RATIO = 1032  # at best 2 bits (length and distance codes) per 258-byte match
# Bit depths allowed per colour type (PNG spec, table 11.1) and samples per pixel.
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@dataclass(frozen=True)
class PngLayout:
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


def read_png_header(data: bytes) -> ImageHeader:
    # Signature (8), then the IHDR chunk: length (4), b"IHDR", width (4), height (4), ...
    if len(data) < 24:
        raise truncated("png")
    if data[12:16] != b"IHDR":
        raise InvalidImage("the PNG does not start with an IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    if width > 0x7FFFFFFF or height > 0x7FFFFFFF:  # the PNG spec's limit
        raise InvalidImage(f"the PNG header gives an impossible size {width}x{height}")
    return checked_size("png", width, height)


def parse_png(data: bytes, header: ImageHeader) -> PngLayout:
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
        raise promises_more(
            header,
            f"its IDAT holds {idat_bytes} bytes and {raw_bytes} raw bytes need at least "
            f"{raw_bytes // _DEFLATE_MAX_RATIO}",
        )
    decoder_input = data if not dropped else PNG_SIGNATURE + b"".join(data[a:b] for a, b in kept)
    return PngLayout(bit_depth, color_type, has_transparency, decoder_input)
