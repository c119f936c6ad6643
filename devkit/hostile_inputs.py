"""Hostile and careless inputs, generated deterministically: images and videos by category, each with the
outcome ``meaa`` must give. Used by tests/unit/test_hostile_inputs.py and benchmarks/hostile_inputs.py.

``catalogue()`` lists every input as a ``HostileInput`` (category, name, a function making its bytes, the
outcomes allowed: ``"ok"`` or an error code of ``meaa.errors``). Bytes are built by hand from the format
specifications (JPEG segments, PNG chunks, RIFF/AVI chunks, BMP headers) or with OpenCV's encoders at small
sizes, so even a 7000x7000 image is made in milliseconds without holding its pixels.

Run categories in a fresh process and get each input's outcome, CPU seconds and peak RSS as JSON::

    .venv/bin/python -m devkit.hostile_inputs --category jpeg_scans,png_bombs [--only NAME] [--selfie FILE]
    .venv/bin/python -m devkit.hostile_inputs --list
    .venv/bin/python -m devkit.hostile_inputs --layouts   # decode memory model vs measured, per layout

The child loads and warms the models first (like a Lambda function after init), then for each input:
makes the bytes, returns freed memory to the system (``malloc_trim``), resets the peak RSS
(``/proc/self/clear_refs``), runs ``MoodEstimator().analyze`` (videos: ``VideoSampler`` and ``analyze`` on
every sampled frame), and reads the peak back (``VmHWM``). Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

BUDGET_RSS_MB = 512  # README "Input images": peak RSS of a function process, whatever the bytes
LAMBDA_BASELINE_MB = 230  # a function process with its models loaded holds 170-230 MB
BUDGET_CPU_S = 5.0  # CPU seconds per input on the development machine (measured, not asserted)

OK = ("ok",)
INVALID_IMAGE = ("invalid_image",)
TOO_LARGE = ("image_too_large",)
UNSUPPORTED = ("unsupported_format",)
INVALID_VIDEO = ("invalid_video",)
ANY_TYPED = ("ok", "invalid_image", "image_too_large", "unsupported_format")


@dataclass(frozen=True)
class HostileInput:
    """One input: ``make()`` builds its bytes; ``expected`` lists the outcomes that are right for it."""

    category: str
    name: str
    make: Callable[[], bytes] = field(repr=False)
    expected: tuple[str, ...]
    kind: str = "image"  # or "video" (written to a file with ``suffix`` and sampled)
    suffix: str = ".mp4"
    duration_ms: int | None = None  # videos: the duration the sampler must report


# --- JPEG, by hand -------------------------------------------------------------------------------------


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _dqt() -> bytes:
    return _segment(0xDB, b"\x00" + bytes([1] * 64))


def _dht(table_class_and_id: int, symbols_by_length: list[list[int]]) -> bytes:
    counts = bytes(len(symbols) for symbols in symbols_by_length) + bytes(16 - len(symbols_by_length))
    return _segment(0xC4, bytes([table_class_and_id]) + counts + bytes(s for row in symbols_by_length for s in row))


def _sof(marker: int, width: int, height: int, components: list[tuple[int, int]], precision: int = 8) -> bytes:
    body = bytes([precision]) + struct.pack(">HHB", height, width, len(components))
    return _segment(marker, body + b"".join(bytes([ident, sampling, 0]) for ident, sampling in components))


def _sos(component_ids: list[int], start: int, end: int, high: int = 0, low: int = 0) -> bytes:
    selectors = b"".join(bytes([ident, 0x00]) for ident in component_ids)
    return _segment(0xDA, bytes([len(component_ids)]) + selectors + bytes([start, end, (high << 4) | low]))


def _blocks(width: int, height: int) -> int:
    return ((width + 7) // 8) * ((height + 7) // 8)


# One-symbol Huffman tables: DC difference 0 and end-of-block are each the one-bit code "0", so a flat
# block costs two zero bits: the smallest a sequential JPEG can be.
_FLAT_TABLES = _dht(0x00, [[0]]) + _dht(0x10, [[0x00]])
# AC table for end-of-band runs: symbol EOBk (k << 4) is the 4-bit code k, followed by k extra bits.
_EOB_RUN_TABLE = _dht(0x10, [[], [], [], [k << 4 for k in range(15)]])


def flat_jpeg(
    width: int, height: int, components: int = 1, sof: int = 0xC0, precision: int = 8, data_bytes: int | None = None
) -> bytes:
    """A flat gray JPEG at two bits per block (all-zero entropy bytes); components share one sampling."""
    ids = list(range(1, components + 1))
    blocks = _blocks(width, height) * components
    data = bytes((2 * blocks + 7) // 8 if data_bytes is None else data_bytes)
    return (
        b"\xff\xd8"
        + _dqt()
        + _sof(sof, width, height, [(i, 0x11) for i in ids], precision)
        + _FLAT_TABLES
        + _sos(ids, 0, 63)
        + data
        + b"\xff\xd9"
    )


def _eob_runs(blocks: int) -> bytes:
    bits = []
    left = blocks
    while left > 0:
        run = min(left, 32767)
        left -= run
        k = run.bit_length() - 1
        bits.append(format(k, "04b") + (format(run - (1 << k), f"0{k}b") if k else ""))
    text = "".join(bits)
    text += "1" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big").replace(b"\xff", b"\xff\x00") if text else b""


def progressive_jpeg(width: int, height: int, ac_scans: int, dc_refinements: int = 0, dc_scan: bool = True) -> bytes:
    """A flat gray progressive JPEG: one DC scan (a bit per block), optional DC refinement scans (a bit per
    block each), then ``ac_scans`` copies of one AC scan that skips every block with end-of-band runs (about
    45 bytes at 7000x7000, and libjpeg still visits every block: ~7 ms a scan)."""
    blocks = _blocks(width, height)
    out = b"\xff\xd8" + _dqt() + _sof(0xC2, width, height, [(1, 0x11)]) + _dht(0x00, [[0]])
    if dc_scan:
        out += _sos([1], 0, 0, 0, 1) + bytes((blocks + 7) // 8)
    for _ in range(dc_refinements):
        out += _sos([1], 0, 0, 1, 0) + bytes((blocks + 7) // 8)
    out += _EOB_RUN_TABLE + (_sos([1], 1, 63) + _eob_runs(blocks)) * ac_scans
    return out + b"\xff\xd9"


def encoded_jpeg(width: int = 64, height: int = 48, **params: int) -> bytes:
    from devkit.images import encode, pattern_image

    return encode(pattern_image(height, width), ".jpg", **params)


def _insert_after_soi(jpeg: bytes, segments: bytes) -> bytes:
    return jpeg[:2] + segments + jpeg[2:]


def _exif(entries: bytes, count: int, ifd_offset: int = 8, endian: str = "<") -> bytes:
    head = (b"II" if endian == "<" else b"MM") + struct.pack(endian + "HI", 42, ifd_offset)
    return b"Exif\x00\x00" + head + struct.pack(endian + "H", count) + entries + struct.pack(endian + "I", 0)


def _with_app1(jpeg: bytes, payload: bytes) -> bytes:
    return _insert_after_soi(jpeg, _segment(0xE1, payload))


def _jpeg_with_orientation(jpeg: bytes, orientation: int, kind: int = 3) -> bytes:
    value = struct.pack("<HH", orientation, 0) if kind == 3 else struct.pack("<I", orientation)
    return _with_app1(jpeg, _exif(struct.pack("<HHI", 0x0112, kind, 1) + value, 1))


def _restart_jpeg(width: int, height: int) -> bytes:
    """Flat gray JPEG with a restart interval of one MCU: a restart marker after every block."""
    blocks = _blocks(width, height)
    data = b"".join(b"\x00" + bytes([0xFF, 0xD0 + index % 8]) for index in range(blocks - 1)) + b"\x00"
    dri = _segment(0xDD, struct.pack(">H", 1))
    return (
        b"\xff\xd8"
        + _dqt()
        + dri
        + _sof(0xC0, width, height, [(1, 0x11)])
        + _FLAT_TABLES
        + _sos([1], 0, 63)
        + data
        + b"\xff\xd9"
    )


def _claiming(
    category: str, claimed: Callable[[int, int], bytes], sizes: tuple[tuple[int, int], ...], holds: str
) -> Iterator[HostileInput]:
    """Small files whose header claims each of ``sizes``: each is an ``invalid_image`` (truncated or lying)."""
    for width, height in sizes:
        make = lambda w=width, h=height: claimed(w, h)  # noqa: E731 - bound per size
        yield HostileInput(category, f"claims_{width}x{height}_holds_{holds}", make, INVALID_IMAGE)


def _jpeg_categories() -> Iterator[HostileInput]:
    scans = "jpeg_scans"
    for count in (1, 10, 64):
        yield HostileInput(
            scans, f"progressive_7000x7000_{count}_scans", lambda n=count: progressive_jpeg(7000, 7000, n - 1), OK
        )
    for count in (65, 1000, 3000, 43000):
        yield HostileInput(
            scans,
            f"progressive_7000x7000_{count}_scans",
            lambda n=count: progressive_jpeg(7000, 7000, n - 1),
            TOO_LARGE,
        )
    yield HostileInput(
        scans, "progressive_1000x1000_64_dc_refinements", lambda: progressive_jpeg(1000, 1000, 0, dc_refinements=63), OK
    )
    yield HostileInput(
        scans,
        "progressive_1000x1000_200_dc_refinements",
        lambda: progressive_jpeg(1000, 1000, 0, dc_refinements=199),
        TOO_LARGE,
    )
    yield HostileInput(scans, "progressive_16x16_65_scans", lambda: progressive_jpeg(16, 16, 64), TOO_LARGE)
    yield HostileInput(scans, "opencv_progressive_640x480", lambda: encoded_jpeg(640, 480, jpeg_progressive=1), OK)
    yield HostileInput(
        scans,
        "progressive_7000x7000_ac_scans_only",
        lambda: progressive_jpeg(7000, 7000, 5, dc_scan=False),
        INVALID_IMAGE,
    )

    lies = "jpeg_header_lies"
    from devkit.images import jpeg_with_claimed_size

    sizes = ((7000, 7000), (4000, 3000), (20000, 2400), (65500, 700), (700, 65500), (1920, 1080))
    yield from _claiming(lies, jpeg_with_claimed_size, sizes, "16x16")
    yield HostileInput(
        lies,
        "flat_7000x7000_half_its_data",
        lambda: flat_jpeg(7000, 7000, data_bytes=_blocks(7000, 7000) // 8),
        INVALID_IMAGE,
    )
    yield HostileInput(
        lies,
        "flat_7000x7000_data_is_restart_markers",
        lambda: flat_jpeg(7000, 7000, data_bytes=0).replace(
            b"\xff\xd9", b"".join(bytes([0xFF, 0xD0 + i % 8]) for i in range(60000)) + b"\xff\xd9"
        ),
        INVALID_IMAGE,
    )
    yield HostileInput(lies, "flat_7000x7000_exactly_its_data", lambda: flat_jpeg(7000, 7000), OK)
    yield HostileInput(lies, "flat_7000x7000_3_components", lambda: flat_jpeg(7000, 7000, 3), OK)
    yield HostileInput(lies, "flat_4000x3000_3_components", lambda: flat_jpeg(4000, 3000, 3), OK)
    yield HostileInput(
        lies,
        "flat_7000x7000_3_components_1_coded",
        lambda: flat_jpeg(7000, 7000, 3).replace(_sos([1, 2, 3], 0, 63), _sos([1], 0, 63)),
        INVALID_IMAGE,
    )
    yield HostileInput(lies, "claims_60000x60000", lambda: jpeg_with_claimed_size(60000, 60000), TOO_LARGE)

    variants = "jpeg_variants"
    for marker in (0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
        yield HostileInput(
            variants, f"sof{marker - 0xC0}_7000x7000", lambda m=marker: flat_jpeg(7000, 7000, sof=m), UNSUPPORTED
        )
    yield HostileInput(variants, "sof1_extended_sequential", lambda: flat_jpeg(640, 480, sof=0xC1), OK)
    yield HostileInput(variants, "12_bit_precision", lambda: flat_jpeg(640, 480, sof=0xC1, precision=12), UNSUPPORTED)
    yield HostileInput(variants, "16_bit_precision", lambda: flat_jpeg(640, 480, precision=16), UNSUPPORTED)
    yield HostileInput(variants, "2_components", lambda: flat_jpeg(640, 480, 2), INVALID_IMAGE)
    yield HostileInput(variants, "cmyk_4_components", lambda: flat_jpeg(640, 480, 4), OK)
    yield HostileInput(
        variants,
        "sampling_factor_0",
        lambda: flat_jpeg(64, 64).replace(b"\x01\x11\x00", b"\x01\x01\x00", 1),
        INVALID_IMAGE,
    )
    yield HostileInput(
        variants,
        "sampling_factor_5x5",
        lambda: flat_jpeg(64, 64).replace(b"\x01\x11\x00", b"\x01\x55\x00", 1),
        INVALID_IMAGE,
    )
    yield HostileInput(
        variants,
        "height_0_dnl",
        lambda: flat_jpeg(64, 64).replace(struct.pack(">HH", 64, 64), struct.pack(">HH", 0, 64), 1),
        INVALID_IMAGE,
    )
    yield HostileInput(
        variants,
        "two_frame_headers",
        lambda: flat_jpeg(64, 64).replace(_FLAT_TABLES, _sof(0xC0, 64, 64, [(1, 0x11)]) + _FLAT_TABLES),
        INVALID_IMAGE,
    )
    yield HostileInput(
        variants,
        "scan_names_unknown_component",
        lambda: flat_jpeg(64, 64).replace(_sos([1], 0, 63), _sos([7], 0, 63)),
        INVALID_IMAGE,
    )
    yield HostileInput(variants, "opencv_baseline_4_2_0", lambda: encoded_jpeg(640, 480, jpeg_quality=90), OK)
    yield HostileInput(
        variants, "opencv_gray", lambda: cv2.imencode(".jpg", np.full((48, 64), 90, np.uint8))[1].tobytes(), OK
    )

    markers = "jpeg_markers"
    comment = _segment(0xFE, b"x")
    yield HostileInput(markers, "4000_comment_segments", lambda: _insert_after_soi(encoded_jpeg(), comment * 4000), OK)
    yield HostileInput(
        markers, "5000_comment_segments", lambda: _insert_after_soi(encoded_jpeg(), comment * 5000), INVALID_IMAGE
    )
    yield HostileInput(
        markers,
        "60_icc_segments_of_64kb",
        lambda: _insert_after_soi(encoded_jpeg(), _segment(0xE2, b"ICC_PROFILE\x00" + bytes(65000)) * 60),
        OK,
    )
    yield HostileInput(markers, "restart_after_every_block_2000x2000", lambda: _restart_jpeg(2000, 2000), OK)
    yield HostileInput(
        markers, "fill_bytes_before_markers", lambda: encoded_jpeg().replace(b"\xff\xdb", b"\xff" * 50 + b"\xdb"), OK
    )
    yield HostileInput(markers, "trailing_garbage_after_eoi", lambda: encoded_jpeg() + bytes(range(256)) * 40, OK)
    yield HostileInput(markers, "second_image_after_eoi", lambda: encoded_jpeg() + flat_jpeg(7000, 7000), OK)
    yield HostileInput(markers, "no_end_marker", lambda: encoded_jpeg()[:-2], INVALID_IMAGE)
    yield HostileInput(markers, "soi_eoi_only", lambda: b"\xff\xd8\xff\xd9", INVALID_IMAGE)
    yield HostileInput(
        markers, "segment_length_past_end", lambda: encoded_jpeg()[:2] + b"\xff\xfe\xff\xff" + b"x" * 100, INVALID_IMAGE
    )
    yield HostileInput(
        markers,
        "segment_length_1",
        lambda: encoded_jpeg()[:2] + b"\xff\xfe\x00\x01" + encoded_jpeg()[2:],
        INVALID_IMAGE,
    )
    yield HostileInput(
        markers,
        "restart_interval_65535_no_restarts",
        lambda: _insert_after_soi(flat_jpeg(640, 480), _segment(0xDD, b"\xff\xff")),
        OK,
    )

    exif = "jpeg_exif"
    for orientation in range(1, 9):
        yield HostileInput(
            exif, f"orientation_{orientation}", lambda o=orientation: _jpeg_with_orientation(encoded_jpeg(), o), OK
        )
    for orientation in (0, 9, 255, 65535):
        yield HostileInput(
            exif,
            f"orientation_value_{orientation}",
            lambda o=orientation: _jpeg_with_orientation(encoded_jpeg(), o),
            OK,
        )
    yield HostileInput(exif, "orientation_as_long", lambda: _jpeg_with_orientation(encoded_jpeg(), 6, kind=4), OK)
    yield HostileInput(exif, "orientation_6_on_4000x3000", lambda: _jpeg_with_orientation(flat_jpeg(4000, 3000), 6), OK)
    yield HostileInput(
        exif,
        "orientation_6_on_7000x7000_progressive",
        lambda: _jpeg_with_orientation(progressive_jpeg(7000, 7000, 1), 6),
        OK,
    )
    yield HostileInput(exif, "ifd_claims_65535_entries", lambda: _with_app1(encoded_jpeg(), _exif(b"", 65535)), OK)
    yield HostileInput(
        exif, "ifd_offset_past_end", lambda: _with_app1(encoded_jpeg(), _exif(b"", 1, ifd_offset=0xFFFFFFF0)), OK
    )
    yield HostileInput(
        exif, "ifd_points_at_itself", lambda: _with_app1(encoded_jpeg(), _exif(b"", 0)[:-4] + struct.pack("<I", 8)), OK
    )
    yield HostileInput(
        exif,
        "64kb_of_random_exif",
        lambda: _with_app1(encoded_jpeg(), b"Exif\x00\x00II*\x00" + np.random.default_rng(5).bytes(65000)),
        OK,
    )
    yield HostileInput(
        exif,
        "100_exif_segments",
        lambda: _insert_after_soi(
            encoded_jpeg(), _segment(0xE1, _exif(struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0), 1)) * 100
        ),
        OK,
    )
    yield HostileInput(
        exif,
        "big_endian_orientation_8",
        lambda: _with_app1(encoded_jpeg(), _exif(struct.pack(">HHIHH", 0x0112, 3, 1, 8, 0), 1, endian=">")),
        OK,
    )


# --- PNG, by hand --------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def flat_png(
    width: int,
    height: int,
    color_type: int,
    bit_depth: int = 8,
    *,
    interlace: int = 0,
    palette: bytes | None = None,
    transparency: bytes | None = None,
    extra: bytes = b"",
    idat_chunk: int = 1 << 20,
) -> bytes:
    """A flat PNG made without holding its pixels or compressing them all: 7000x7000 RGBA8 is about 200 KB."""
    bits = _SAMPLES[color_type] * bit_depth
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    pieces, checksum = [], 1
    for x0, y0, dx, dy in passes if interlace else [(0, 0, 1, 1)]:
        pass_w = max(0, (width - x0 + dx - 1) // dx)
        pass_h = max(0, (height - y0 + dy - 1) // dy)
        if pass_w and pass_h:
            row = b"\x00" + bytes([0x55]) * ((pass_w * bits + 7) // 8)
            piece, checksum = _deflate_repeated(row, pass_h, checksum)
            pieces.append(piece)
    stream = b"\x78\xda" + b"".join(pieces) + b"\x03\x00" + struct.pack(">I", checksum)  # empty final block
    out = b"\x89PNG\r\n\x1a\n" + _png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    )
    out += extra
    if palette is not None:
        out += _png_chunk(b"PLTE", palette)
    if transparency is not None:
        out += _png_chunk(b"tRNS", transparency)
    out += b"".join(_png_chunk(b"IDAT", stream[i : i + idat_chunk]) for i in range(0, len(stream), idat_chunk))
    return out + _png_chunk(b"IEND", b"")


def _deflate_repeated(row: bytes, times: int, checksum: int) -> tuple[bytes, int]:
    """Raw deflate of ``row * times`` (not final), and the running Adler-32: a band of rows is compressed
    once and its bytes repeated, which is valid deflate because each band ends with a full flush (no match
    reaches back into the previous band)."""
    band_rows = max(1, min(times, (1 << 20) // len(row)))
    band = row * band_rows
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(band) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats, rest = divmod(times, band_rows)
    for _ in range(repeats):
        checksum = zlib.adler32(band, checksum)
    out = piece * repeats
    if rest:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        out += compressor.compress(row * rest) + compressor.flush(zlib.Z_FULL_FLUSH)
        checksum = zlib.adler32(row * rest, checksum)
    return out, checksum


def _png_with(extra: bytes, base: bytes | None = None) -> bytes:
    base = base if base is not None else flat_png(64, 48, 2)
    at = base.index(b"IDAT") - 4
    return base[:at] + extra + base[at:]


def _apng(width: int, height: int, frames: int) -> bytes:
    """An animated PNG: acTL, then fcTL + fdAT per extra frame (the default image is the first frame)."""
    still = flat_png(width, height, 6)
    idat_at = still.index(b"IDAT") - 4
    idat_end = still.index(b"IEND") - 4
    image_data = b"".join(  # the IDAT payloads
        still[pos + 8 : pos + 8 + struct.unpack_from(">I", still, pos)[0]] for pos in _chunk_positions(still, b"IDAT")
    )
    control = _png_chunk(b"acTL", struct.pack(">II", frames, 0))
    sequence = 0
    out = still[:idat_at] + control
    for frame in range(frames):
        out += _png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 1, 10, 0, 0))
        sequence += 1
        if frame == 0:
            out += still[idat_at:idat_end]
        else:
            out += _png_chunk(b"fdAT", struct.pack(">I", sequence) + image_data)
            sequence += 1
    return out + still[idat_end:]


def _chunk_positions(png: bytes, kind: bytes) -> Iterator[int]:
    pos = 8
    while pos + 8 <= len(png):
        length = struct.unpack_from(">I", png, pos)[0]
        if png[pos + 4 : pos + 8] == kind:
            yield pos
        pos += 12 + length


def _png_categories() -> Iterator[HostileInput]:
    bombs = "png_bombs"
    palette = b"\x10\x20\x30\x40\x50\x60"
    yield HostileInput(bombs, "rgb8_7000x7000", lambda: flat_png(7000, 7000, 2), OK)
    yield HostileInput(bombs, "rgba8_7000x7000", lambda: flat_png(7000, 7000, 6), TOO_LARGE)
    yield HostileInput(bombs, "rgba16_7000x7000", lambda: flat_png(7000, 7000, 6, 16), TOO_LARGE)
    yield HostileInput(
        bombs,
        "palette_trns_7000x7000",
        lambda: flat_png(7000, 7000, 3, palette=palette, transparency=b"\x80"),
        TOO_LARGE,
    )
    yield HostileInput(bombs, "palette_7000x7000", lambda: flat_png(7000, 7000, 3, palette=palette), OK)
    yield HostileInput(bombs, "gray8_7000x7000", lambda: flat_png(7000, 7000, 0), OK)
    yield HostileInput(bombs, "gray1_7000x7000", lambda: flat_png(7000, 7000, 0, 1), OK)
    yield HostileInput(bombs, "gray16_7000x7000", lambda: flat_png(7000, 7000, 0, 16), TOO_LARGE)
    yield HostileInput(bombs, "gray_alpha8_7000x7000", lambda: flat_png(7000, 7000, 4), TOO_LARGE)
    yield HostileInput(bombs, "rgb16_7000x7000", lambda: flat_png(7000, 7000, 2, 16), TOO_LARGE)
    yield HostileInput(bombs, "rgba8_6000x6000", lambda: flat_png(6000, 6000, 6), OK)
    yield HostileInput(bombs, "rgba16_4000x4000", lambda: flat_png(4000, 4000, 6, 16), OK)
    yield HostileInput(bombs, "gray16_5000x5000", lambda: flat_png(5000, 5000, 0, 16), OK)
    yield HostileInput(bombs, "rgb8_interlaced_7000x7000", lambda: flat_png(7000, 7000, 2, interlace=1), OK)
    yield HostileInput(bombs, "rgb8_16000x3000", lambda: flat_png(16000, 3000, 2), OK)
    yield HostileInput(bombs, "rgb8_10000x6000", lambda: flat_png(10000, 6000, 2), TOO_LARGE)

    lies = "png_header_lies"
    from devkit.images import png_with_claimed_size

    sizes = ((7000, 7000), (50000, 1000), (1000, 50000), (5000, 5000))
    yield from _claiming(lies, png_with_claimed_size, sizes, "16_pixels")
    yield HostileInput(
        lies,
        "claims_rgba16_5000x5000_tiny_idat",
        lambda: flat_png(16, 16, 6, 16).replace(struct.pack(">II", 16, 16), struct.pack(">II", 5000, 5000), 1),
        INVALID_IMAGE,
    )
    yield HostileInput(lies, "no_iend", lambda: flat_png(64, 48, 2)[:-12], INVALID_IMAGE)
    yield HostileInput(lies, "no_idat", lambda: flat_png(64, 48, 2)[:33] + _png_chunk(b"IEND", b""), INVALID_IMAGE)
    yield HostileInput(
        lies,
        "bad_ihdr_crc",
        lambda: flat_png(64, 48, 2)[:29] + b"\x00\x00\x00\x00" + flat_png(64, 48, 2)[33:],
        INVALID_IMAGE,
    )
    yield HostileInput(
        lies,
        "chunk_length_past_end",
        lambda: _png_with(struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + b"x" * 20),
        INVALID_IMAGE,
    )
    yield HostileInput(
        lies,
        "bit_depth_3",
        lambda: flat_png(64, 48, 2).replace(b"\x08\x02\x00\x00\x00", b"\x03\x02\x00\x00\x00", 1),
        INVALID_IMAGE,
    )
    yield HostileInput(
        lies,
        "color_type_5",
        lambda: flat_png(64, 48, 2).replace(b"\x08\x02\x00\x00\x00", b"\x08\x05\x00\x00\x00", 1),
        INVALID_IMAGE,
    )
    yield HostileInput(lies, "idat_truncated_by_half", lambda: flat_png(640, 480, 2)[:-40], INVALID_IMAGE)

    chunks = "png_chunks"
    bomb = zlib.compress(b"a" * 7_000_000, 9)
    yield HostileInput(
        chunks, "100_ztxt_bombs_of_7mb", lambda: _png_with(_png_chunk(b"zTXt", b"Comment\x00\x00" + bomb) * 100), OK
    )
    yield HostileInput(
        chunks,
        "100_itxt_bombs_of_7mb",
        lambda: _png_with(_png_chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + bomb) * 100),
        OK,
    )
    yield HostileInput(chunks, "iccp_bomb", lambda: _png_with(_png_chunk(b"iCCP", b"icc\x00\x00" + bomb)), OK)
    yield HostileInput(
        chunks, "20_text_chunks_of_1mb", lambda: _png_with(_png_chunk(b"tEXt", b"k\x00" + b"x" * 1_000_000) * 20), OK
    )
    yield HostileInput(chunks, "99000_tiny_unknown_chunks", lambda: _png_with(_png_chunk(b"abCd", b"x") * 99_000), OK)
    yield HostileInput(
        chunks, "101000_tiny_unknown_chunks", lambda: _png_with(_png_chunk(b"abCd", b"x") * 101_000), INVALID_IMAGE
    )
    yield HostileInput(
        chunks, "exif_chunk_garbage", lambda: _png_with(_png_chunk(b"eXIf", np.random.default_rng(2).bytes(4000))), OK
    )
    yield HostileInput(chunks, "unknown_critical_chunk", lambda: _png_with(_png_chunk(b"ABCD", b"x")), INVALID_IMAGE)
    yield HostileInput(chunks, "apng_3000x3000_10_frames", lambda: _apng(3000, 3000, 10), OK)
    yield HostileInput(chunks, "idat_in_1_byte_chunks", lambda: flat_png(2000, 2000, 2, idat_chunk=1), OK)
    yield HostileInput(chunks, "data_after_iend", lambda: flat_png(64, 48, 2) + bytes(100_000), OK)


# --- WebP ----------------------------------------------------------------------------------------------


def _webp(width: int, height: int, quality: int, alpha: bool = False) -> bytes:
    image = np.full((height, width, 4 if alpha else 3), 120, np.uint8)
    if alpha:
        image[..., 3] = 128
    return cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])[1].tobytes()


def _riff(body: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_patched_size(webp: bytes, width: int, height: int) -> bytes:
    """The same bitstream with its own header claiming another size (VP8 or VP8L)."""
    data = bytearray(webp)
    if data[12:16] == b"VP8 ":
        struct.pack_into("<HH", data, 26, width, height)
    else:
        bits = struct.unpack_from("<I", data, 21)[0] & ~((1 << 28) - 1)
        struct.pack_into("<I", data, 21, bits | (width - 1) | (height - 1) << 14)
    return bytes(data)


def _webp_categories() -> Iterator[HostileInput]:
    from devkit.images import webp_with_vp8x

    def item(name: str, make: Callable[[], bytes], expected: tuple[str, ...]) -> HostileInput:
        return HostileInput("webp", name, make, expected)

    def claiming(quality: int, side: int) -> Callable[[], bytes]:
        """A 64x48 WebP (quality 101: lossless) whose bitstream header claims side x side."""
        return lambda: _webp_patched_size(_webp(64, 48, quality), side, side)

    def canvas(width: int | None = None, height: int | None = None, flags: int = 0) -> Callable[[], bytes]:
        """A 64x48 lossy WebP in a VP8X container (its canvas and flags as given)."""
        return lambda: webp_with_vp8x(_webp(64, 48, 80), width, height, flags=flags)

    yield item("lossy_4000x3000", lambda: _webp(4000, 3000, 80), OK)
    yield item("lossless_4000x3000", lambda: _webp(4000, 3000, 101), OK)
    yield item("lossy_alpha_4000x3000", lambda: _webp(4000, 3000, 80, alpha=True), OK)
    yield item("lossless_alpha_4000x3000", lambda: _webp(4000, 3000, 101, alpha=True), OK)
    yield item("lossless_header_claims_7000x7000", claiming(101, 7000), TOO_LARGE)
    yield item("lossless_header_claims_5000x5000", claiming(101, 5000), TOO_LARGE)
    yield item("lossy_header_claims_7000x7000", claiming(80, 7000), INVALID_IMAGE)
    yield item("lossless_header_claims_4000x4000", claiming(101, 4000), INVALID_IMAGE)
    yield item("vp8x_canvas_7000x7000_image_64x48", canvas(7000, 7000), INVALID_IMAGE)
    yield item("vp8x_canvas_16383x16383", canvas(16383, 16383), TOO_LARGE)
    yield item("vp8x_animated", canvas(flags=0x02), UNSUPPORTED)
    yield item(
        "riff_size_past_end",
        lambda: _webp(64, 48, 80)[:4] + struct.pack("<I", 1 << 30) + _webp(64, 48, 80)[8:],
        INVALID_IMAGE,
    )
    yield item(
        "first_partition_past_end",
        lambda: (lambda d: d[:20] + bytes([d[20] | 0xE0, 0xFF, 0xFF]) + d[23:])(_webp(64, 48, 80)),
        INVALID_IMAGE,
    )
    yield item(
        "vp8x_without_image",
        lambda: _riff(
            b"WEBP"
            + b"VP8X"
            + struct.pack("<I", 10)
            + bytes(4)
            + (63).to_bytes(3, "little")
            + (47).to_bytes(3, "little")
        ),
        INVALID_IMAGE,
    )


# --- BMP -----------------------------------------------------------------------------------------------


def _bmp(
    width: int,
    height: int,
    bit_count: int,
    compression: int = 0,
    pixels: bytes | None = None,
    palette_colours: int | None = None,
    info_size: int = 40,
) -> bytes:
    colours = (1 << bit_count if bit_count <= 8 else 0) if palette_colours is None else palette_colours
    palette = bytes(4 * min(colours, 256))
    stride = (width * bit_count + 31) // 32 * 4
    if pixels is None:
        pixels = bytes(stride * abs(height))
    info = struct.pack(
        "<IiiHHIIiiII", info_size, width, height, 1, bit_count, compression, len(pixels), 2835, 2835, colours, 0
    ) + bytes(info_size - 40)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def _bmp_categories() -> Iterator[HostileInput]:
    bmp = "bmp"
    from devkit.images import bmp_with_claimed_size

    yield HostileInput(bmp, "claims_7000x7000_holds_4x4", lambda: bmp_with_claimed_size(7000, 7000), INVALID_IMAGE)
    yield HostileInput(
        bmp, "claims_7000x7000_top_down_holds_4x4", lambda: bmp_with_claimed_size(7000, -7000), INVALID_IMAGE
    )
    yield HostileInput(bmp, "rle8_7000x7000_end_of_bitmap_at_once", lambda: _bmp(7000, 7000, 8, 1, b"\x00\x01"), OK)
    # OpenCV's RLE4 reader reads past an early end-of-bitmap and gives up: refused, not decoded.
    yield HostileInput(
        bmp, "rle4_7000x7000_end_of_bitmap_at_once", lambda: _bmp(7000, 7000, 4, 2, b"\x00\x01"), INVALID_IMAGE
    )
    yield HostileInput(
        bmp,
        "rle4_7000x7000_one_row_per_line",
        lambda: _bmp(7000, 7000, 4, 2, (b"\xff\x11" * 27 + b"\x00\x00") * 7000),
        OK,
    )
    yield HostileInput(
        bmp,
        "rle8_7000x7000_one_row_per_line",
        lambda: _bmp(7000, 7000, 8, 1, (b"\xff\x05" * 27 + b"\x00\x00") * 7000),
        OK,
    )
    yield HostileInput(bmp, "1_bit_7000x7000", lambda: _bmp(7000, 7000, 1), OK)
    yield HostileInput(bmp, "24_bit_2000x1500", lambda: _bmp(2000, 1500, 24), OK)
    yield HostileInput(bmp, "16_bit_640x480", lambda: _bmp(640, 480, 16), OK)
    yield HostileInput(bmp, "32_bit_bitfields_640x480", lambda: _bmp(640, 480, 32, 3), OK)
    yield HostileInput(
        bmp,
        "core_header_640x480",
        lambda: (
            b"BM"
            + struct.pack("<IHHI", 26 + 640 * 480 * 3, 0, 0, 26)
            + struct.pack("<IHHHH", 12, 640, 480, 1, 24)
            + bytes(640 * 480 * 3)
        ),
        OK,
    )
    yield HostileInput(bmp, "bit_count_64", lambda: _bmp(64, 48, 64), INVALID_IMAGE)
    yield HostileInput(
        bmp, "embedded_jpeg_compression", lambda: _bmp(64, 48, 24, 4, b"\xff\xd8\xff\xd9"), INVALID_IMAGE
    )
    yield HostileInput(
        bmp, "palette_claims_4_billion_colours", lambda: _bmp(64, 48, 8, palette_colours=0xFFFFFFFF), INVALID_IMAGE
    )
    yield HostileInput(bmp, "negative_width", lambda: _bmp(-64, 48, 24, pixels=bytes(64 * 48 * 3)), INVALID_IMAGE)
    yield HostileInput(bmp, "width_over_opencv_limit", lambda: bmp_with_claimed_size((1 << 20) + 1, 1), TOO_LARGE)


# --- sizes, formats, random ----------------------------------------------------------------------------


def _misc_categories() -> Iterator[HostileInput]:
    sizes = "extreme_sizes"
    yield HostileInput(sizes, "jpeg_65500x16", lambda: flat_jpeg(65500, 16), OK)
    yield HostileInput(sizes, "jpeg_16x65500", lambda: flat_jpeg(16, 65500), OK)
    yield HostileInput(sizes, "jpeg_65501x16_over_libjpeg_limit", lambda: flat_jpeg(65501, 16), TOO_LARGE)
    yield HostileInput(sizes, "jpeg_1x1", lambda: flat_jpeg(1, 1), OK)
    yield HostileInput(sizes, "png_1x1000000", lambda: flat_png(1, 1_000_000, 2), OK)
    yield HostileInput(sizes, "png_1000000x1", lambda: flat_png(1_000_000, 1, 2), OK)
    yield HostileInput(sizes, "png_1x1000001_over_libpng_limit", lambda: flat_png(1, 1_000_001, 0), TOO_LARGE)
    yield HostileInput(sizes, "bmp_1x1048577_over_opencv_limit", lambda: _bmp(1, (1 << 20) + 1, 8), TOO_LARGE)
    yield HostileInput(sizes, "png_8000x6250_rgb_exactly_50mpx", lambda: flat_png(8000, 6250, 2), OK)
    yield HostileInput(sizes, "jpeg_8000x6250_flat_exactly_50mpx", lambda: flat_jpeg(8000, 6250), OK)
    yield HostileInput(sizes, "jpeg_8000x6251_over_50mpx", lambda: flat_jpeg(8000, 6251), TOO_LARGE)

    formats = "formats"
    from devkit.images import UNSUPPORTED_SAMPLES

    for name, sample in UNSUPPORTED_SAMPLES.items():
        yield HostileInput(formats, name, lambda s=sample: s, UNSUPPORTED)
    yield HostileInput(formats, "empty", lambda: b"", INVALID_IMAGE)
    yield HostileInput(formats, "html", lambda: b"<!DOCTYPE html><html><body>hello</body></html>", INVALID_IMAGE)
    yield HostileInput(formats, "zeros_1mb", lambda: bytes(1 << 20), INVALID_IMAGE)
    yield HostileInput(formats, "over_20_mib", lambda: b"\xff\xd8\xff" + bytes(21 << 20), TOO_LARGE)

    fuzz = "random_corruption"
    sources = {
        "jpeg": lambda: encoded_jpeg(64, 48),
        "progressive": lambda: encoded_jpeg(64, 48, jpeg_progressive=1),
        "png": lambda: flat_png(64, 48, 6),
        "webp": lambda: _webp(64, 48, 80),
        "bmp": lambda: _bmp(64, 48, 24),
    }
    for fmt, make in sources.items():
        for seed in range(8):
            yield HostileInput(fuzz, f"{fmt}_seed_{seed}", lambda m=make, s=seed: _mutated(m(), s), ANY_TYPED)


def _mutated(data: bytes, seed: int) -> bytes:
    """A truncation and a few random bytes anywhere (headers included), seeded."""
    rng = np.random.default_rng(seed)
    mutated = bytearray(data[: rng.integers(len(data) // 2, len(data) + 1)])
    for position in rng.integers(0, len(mutated), size=rng.integers(1, 6)):
        mutated[position] = rng.integers(0, 256)
    return bytes(mutated)


# --- videos --------------------------------------------------------------------------------------------


def _avi_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def mjpeg_avi(
    frames: list[bytes],
    width: int,
    height: int,
    rate: int = 10,
    scale: int = 1,
    declared_frames: int | None = None,
    header_size: tuple[int, int] | None = None,
) -> bytes:
    """An AVI with a Motion JPEG stream (RIFF 'AVI ', hdrl with avih/strh/strf, movi, idx1)."""
    header_w, header_h = header_size or (width, height)
    count = len(frames) if declared_frames is None else declared_frames
    avih = struct.pack(
        "<10I4I", int(1e6 * scale / rate) if rate else 0, 0, 0, 0x10, count, 0, 1, 0, header_w, header_h, 0, 0, 0, 0
    )
    strh = (
        b"vids"
        + b"MJPG"
        + struct.pack("<IHHIIIIIIIIhhhh", 0, 0, 0, 0, scale, rate, 0, count, 0, 0xFFFFFFFF, 0, 0, 0, header_w, header_h)
    )
    strf = struct.pack("<IiiHH4sIiiII", 40, header_w, header_h, 1, 24, b"MJPG", header_w * header_h * 3, 0, 0, 0, 0)
    strl = _avi_chunk(b"LIST", b"strl" + _avi_chunk(b"strh", strh) + _avi_chunk(b"strf", strf))
    hdrl = _avi_chunk(b"LIST", b"hdrl" + _avi_chunk(b"avih", avih) + strl)
    movi, index, offset = [], [], 4
    for frame in frames:
        chunk = _avi_chunk(b"00dc", frame)
        index.append(b"00dc" + struct.pack("<III", 0x10, offset, len(frame)))
        offset += len(chunk)
        movi.append(chunk)
    body = b"AVI " + hdrl + _avi_chunk(b"LIST", b"movi" + b"".join(movi)) + _avi_chunk(b"idx1", b"".join(index))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mp4v_video(frames: int = 20, fps: float = 10.0, width: int = 64, height: int = 48) -> bytes:
    """An MPEG-4 Part 2 video in MP4 written by OpenCV (the codec its wheels can write)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "v.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        for index in range(frames):
            writer.write(np.full((height, width, 3), (index * 8) % 256, np.uint8))
        writer.release()
        return Path(path).read_bytes()


def _mp4_patched_stsd_size(mp4: bytes, width: int, height: int) -> bytes:
    data = bytearray(mp4)
    at = data.index(b"mp4v", data.index(b"stsd"))  # the visual sample entry's type
    struct.pack_into(">HH", data, at + 4 + 24, width, height)
    return bytes(data)


def _small_frame(seed: int = 0) -> bytes:
    return (
        encoded_jpeg(64, 48, jpeg_quality=80)
        if seed == 0
        else cv2.imencode(".jpg", np.full((48, 64, 3), 40 * seed % 256, np.uint8))[1].tobytes()
    )


def _video_categories() -> Iterator[HostileInput]:
    video = "video"

    def item(
        name: str,
        make: Callable[[], bytes],
        expected: tuple[str, ...],
        suffix: str = ".avi",
        duration_ms: int | None = None,
    ) -> HostileInput:
        return HostileInput(video, name, make, expected, kind="video", suffix=suffix, duration_ms=duration_ms)

    giant = lambda: flat_jpeg(16000, 16000, 3)  # noqa: E731  3 MB of JPEG, 768 MB as BGR
    yield item("mjpeg_avi_one_16000x16000_frame", lambda: mjpeg_avi([giant()], 16000, 16000), TOO_LARGE)
    yield item("mjpeg_avi_8000x8000_frames", lambda: mjpeg_avi([flat_jpeg(8000, 8000)] * 2, 8000, 8000), TOO_LARGE)
    yield item(
        "mjpeg_avi_header_64x48_frame_16000x16000",
        lambda: mjpeg_avi([giant()], 16000, 16000, header_size=(64, 48)),
        TOO_LARGE,
    )
    yield item(
        "mjpeg_avi_small_frame_then_16000x16000", lambda: mjpeg_avi([_small_frame(), giant()], 64, 48), TOO_LARGE
    )
    yield item(
        "mjpeg_avi_frame_with_1000_scans",
        lambda: mjpeg_avi([_small_frame(), progressive_jpeg(64, 48, 999)], 64, 48),
        TOO_LARGE,
    )
    yield item(
        "mjpeg_avi_frame_header_lie",
        lambda: mjpeg_avi([_small_frame(), flat_jpeg(2000, 2000, data_bytes=10)], 64, 48),
        INVALID_VIDEO,
    )
    yield item(
        "mjpeg_avi_declares_2147483647_frames",
        lambda: mjpeg_avi([_small_frame(i % 3) for i in range(20)], 64, 48, declared_frames=2**31 - 1),
        OK,
        duration_ms=2000,
    )
    yield item(
        "mjpeg_avi_10_frames_at_1_per_1000_s",
        lambda: mjpeg_avi([_small_frame(i % 3) for i in range(10)], 64, 48, rate=1, scale=1000),
        OK,
        duration_ms=10_000_000,
    )
    yield item(
        "mjpeg_avi_rate_0",
        lambda: mjpeg_avi([_small_frame(i % 3) for i in range(5)], 64, 48, rate=0),
        ANY_TYPED + INVALID_VIDEO,
    )
    yield item(
        "mjpeg_avi_3840x2160_frames", lambda: mjpeg_avi([flat_jpeg(3840, 2160, 3)] * 3, 3840, 2160), OK, duration_ms=300
    )
    yield item("mjpeg_avi_3840x2161_frames", lambda: mjpeg_avi([flat_jpeg(3840, 2161, 3)] * 3, 3840, 2161), TOO_LARGE)
    yield item(
        "mjpeg_avi_truncated_at_half",
        lambda: (lambda d: d[: len(d) // 2])(mjpeg_avi([_small_frame(i % 3) for i in range(20)], 64, 48)),
        OK + INVALID_VIDEO,
    )
    yield item("mp4v_2s", lambda: mp4v_video(20, 10.0), OK, suffix=".mp4", duration_ms=2000)
    yield item(
        "mp4v_stsd_declares_8000x8000",
        lambda: _mp4_patched_stsd_size(mp4v_video(5), 8000, 8000),
        TOO_LARGE,
        suffix=".mp4",
    )
    yield item(
        "mp4_moov_size_past_end",
        lambda: (lambda d: d.replace(d[d.index(b"moov") - 4 : d.index(b"moov")], struct.pack(">I", 0x7FFFFFFF), 1))(
            mp4v_video(5)
        ),
        INVALID_VIDEO,
        suffix=".mp4",
    )
    yield item("mp4_100_tracks", lambda: _mp4_with_tracks(mp4v_video(5), 100), INVALID_VIDEO, suffix=".mp4")
    yield item("matroska_header", lambda: b"\x1a\x45\xdf\xa3" + bytes(1000), UNSUPPORTED, suffix=".mp4")
    yield item(
        "hls_playlist",
        lambda: b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n",
        INVALID_VIDEO,
        suffix=".mp4",
    )
    yield item("concat_list", lambda: b"ffconcat version 1.0\nfile '/etc/passwd'\n", INVALID_VIDEO, suffix=".mp4")
    yield item("empty", lambda: b"", INVALID_VIDEO)
    yield item("zeros", lambda: bytes(4096), INVALID_VIDEO)
    yield item(
        "riff_avi_header_list_of_2gb",
        lambda: (
            b"RIFF" + struct.pack("<I", 100) + b"AVI " + b"LIST" + struct.pack("<I", 0x7FFFFFF0) + b"hdrl" + bytes(64)
        ),
        INVALID_VIDEO,
    )
    yield item("jpeg_image_named_mp4", lambda: encoded_jpeg(), INVALID_VIDEO, suffix=".mp4")


def _mp4_with_tracks(mp4: bytes, tracks: int) -> bytes:
    """The video's moov with its track box repeated ``tracks`` times (sizes fixed up)."""
    moov_at = mp4.index(b"moov") - 4
    moov_len = struct.unpack_from(">I", mp4, moov_at)[0]
    moov = mp4[moov_at + 8 : moov_at + moov_len]
    trak_at = moov.index(b"trak") - 4
    trak = moov[trak_at : trak_at + struct.unpack_from(">I", moov, trak_at)[0]]
    body = moov + trak * (tracks - 1)
    return mp4[:moov_at] + struct.pack(">I", len(body) + 8) + b"moov" + body + mp4[moov_at + moov_len :]


def catalogue() -> list[HostileInput]:
    """Every hostile input, in a stable order."""
    items = [
        *_jpeg_categories(),
        *_png_categories(),
        *_webp_categories(),
        *_bmp_categories(),
        *_misc_categories(),
        *_video_categories(),
    ]
    names = [(item.category, item.name) for item in items]
    if len(set(names)) != len(names):
        raise AssertionError("two hostile inputs share a name")
    return items


def categories() -> list[str]:
    return list(dict.fromkeys(item.category for item in catalogue()))


_SELFIE_FILE: list[str] = []  # set by --selfie: the bytes of selfie_jpeg(), made by the parent process


def selfie_jpeg() -> bytes:
    """scikit-image's astronaut as a 640x480 selfie frame, JPEG quality 90 (a child reads it from ``--selfie``
    when given: importing scikit-image's image reader costs a second of CPU per process)."""
    if _SELFIE_FILE:
        return Path(_SELFIE_FILE[0]).read_bytes()
    from devkit.sample_faces import one_face_frame

    return cv2.imencode(".jpg", one_face_frame(640, 480), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


# What a normal request costs, measured beside the hostile inputs (category "reference", not in the catalogue).
REFERENCE = HostileInput("reference", "selfie_640x480_jpeg_q90", selfie_jpeg, OK)


# --- running one category in this process (the child) ------------------------------------------------


def status_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def release_freed_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only: elsewhere freed memory may stay resident
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _run_one(item: HostileInput, estimator) -> dict:
    """Outcome, CPU seconds and peak RSS of one input (bytes made before the measurement starts)."""
    from meaa.errors import MeaaError
    from meaa.video import VideoSampler

    data = item.make()
    path = None
    if item.kind == "video":
        descriptor, path = tempfile.mkstemp(suffix=item.suffix)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    release_freed_memory()
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS restarts from the current RSS
    before_mb = status_mb("VmRSS")
    started = time.process_time()
    result: dict = {"category": item.category, "name": item.name, "bytes": len(data)}
    try:
        if item.kind == "video":
            with VideoSampler(path, 2.0, estimator.settings.video, estimator.settings.decoding) as sampler:
                sampled = 0
                for frame in sampler.frames():
                    estimator.analyze(frame.image)
                    sampled += 1
                result.update(
                    frames_sampled=sampled, frames_decoded=sampler.frames_decoded, duration_ms=sampler.duration_ms
                )
        else:
            analysis = estimator.analyze(data)
            result.update(width=analysis.width, height=analysis.height, faces=len(analysis.faces))
        result["outcome"] = "ok"
    except MeaaError as error:
        result["outcome"] = error.code
        result["message"] = error.message
    except Exception as error:  # noqa: BLE001 - reported as a failure of the input, with its type
        result["outcome"] = f"untyped:{type(error).__name__}"
        result["message"] = str(error)[:300]
    finally:
        if path:
            os.unlink(path)
    result["cpu_s"] = time.process_time() - started
    result["peak_rss_mb"] = status_mb("VmHWM")
    result["rss_before_mb"] = before_mb
    return result


def run_categories(names: list[str], only: str | None = None) -> dict:
    """Run every input of the categories ``names`` (or just ``only``) here, after loading and warming the
    models. The peak RSS is reset before each input, so each input's peak is its own."""
    from meaa import MoodEstimator

    estimator = MoodEstimator()
    estimator.warm_up()
    estimator.analyze(selfie_jpeg())  # a real face: every stage warm
    release_freed_memory()
    baseline = status_mb("VmRSS")
    items = [
        item for item in [*catalogue(), REFERENCE] if item.category in names and (only is None or item.name == only)
    ]
    if not items:
        raise SystemExit(f"no input {names}/{only}")
    return {"categories": names, "baseline_rss_mb": baseline, "results": [_run_one(item, estimator) for item in items]}


# --- the decode memory model against measurement -------------------------------------------------------


def _textured(height: int, width: int, channels: int) -> np.ndarray:
    """Smooth gradients plus seeded noise: compresses like a photo (flat images can hide decoder buffers)."""
    from devkit.images import pattern_image

    noise = np.random.default_rng(0).integers(0, 24, (height, width, channels), np.uint8)
    return cv2.add(pattern_image(height, width, channels=max(channels, 3))[..., :channels], noise)


def decode_layouts(height: int = 1200, width: int = 2000) -> list[tuple[str, Callable[[], bytes], int]]:
    """(name, bytes, reduction) of one image per decoder layout the memory model distinguishes.

    The default 2.4 Mpx keeps the test quick; benchmarks/hostile_inputs.py measures them at 4 and 8 Mpx."""
    from devkit.images import encode, pattern_image, png_raw, with_exif_orientation

    jpeg = lambda **p: encode(_textured(height, width, 3), ".jpg", jpeg_quality=90, **p)  # noqa: E731
    ramp16 = np.full((height, width), 30000, np.uint16) + np.arange(width, dtype=np.uint16)
    gray16 = lambda: png_raw(ramp16, 0, 16)  # noqa: E731
    return [
        ("jpeg baseline", jpeg, 1),
        ("jpeg baseline 1/4", jpeg, 4),
        ("jpeg progressive", lambda: jpeg(jpeg_progressive=1), 1),
        ("jpeg progressive 1/8", lambda: jpeg(jpeg_progressive=1), 8),
        (
            "jpeg 4:4:4 progressive",
            lambda: jpeg(jpeg_progressive=1, jpeg_sampling_factor=cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
            1,
        ),
        ("jpeg gray", lambda: encode(_textured(height, width, 1), ".jpg"), 1),
        ("jpeg cmyk flat", lambda: flat_jpeg(width, height, 4), 1),
        ("jpeg orientation 6", lambda: with_exif_orientation(jpeg(), 6), 1),
        ("jpeg orientation 3", lambda: with_exif_orientation(jpeg(), 3), 1),
        ("png rgb8", lambda: encode(_textured(height, width, 3), ".png"), 1),
        ("png rgba8", lambda: encode(_textured(height, width, 4), ".png"), 1),
        ("png rgb16", lambda: encode(_textured(height, width, 3).astype(np.uint16) * 257, ".png"), 1),
        ("png rgba16", lambda: encode(_textured(height, width, 4).astype(np.uint16) * 257, ".png"), 1),
        ("png gray8", lambda: encode(_textured(height, width, 1), ".png"), 1),
        ("png gray16", gray16, 1),
        ("png gray+alpha", lambda: flat_png(width, height, 4), 1),
        ("png palette", lambda: flat_png(width, height, 3, palette=bytes(range(48))), 1),
        ("png palette+tRNS", lambda: flat_png(width, height, 3, palette=bytes(range(48)), transparency=b"\x80"), 1),
        ("png interlaced", lambda: flat_png(width, height, 2, interlace=1), 1),
        (
            "png with text chunks",
            lambda: _png_with(
                _png_chunk(b"tEXt", b"k\x00" + bytes(1 << 20)) * 4, encode(_textured(height, width, 3), ".png")
            ),
            1,
        ),
        ("webp lossy", lambda: encode(_textured(height, width, 3), ".webp", webp_quality=80), 1),
        ("webp lossy alpha", lambda: encode(_textured(height, width, 4), ".webp", webp_quality=80), 1),
        # Smooth gradients without noise: still too many colours for a palette (so libwebp decodes through
        # its ARGB buffer) and two to three times faster to encode losslessly than the noisy texture.
        ("webp lossless", lambda: encode(pattern_image(height, width), ".webp", webp_quality=101), 1),
        ("webp lossless alpha", lambda: encode(pattern_image(height, width, 4), ".webp", webp_quality=101), 1),
        ("bmp 24-bit", lambda: encode(_textured(height, width, 3), ".bmp"), 1),
        ("bmp 32-bit", lambda: encode(_textured(height, width, 4), ".bmp"), 1),
        ("bmp 8-bit", lambda: encode(_textured(height, width, 1), ".bmp"), 1),
    ]


def measure_decode_layouts(height: int = 1200, width: int = 2000) -> list[dict]:
    """Peak RSS growth of ``EncodedImage.decode`` per layout, beside the model's ``decode_bytes``."""
    from meaa.config import DecodeSettings
    from meaa.decoding import EncodedImage

    limits = DecodeSettings(max_image_bytes=1 << 40)
    rows = []
    for name, make, reduction in decode_layouts(height, width):
        encoded = EncodedImage.parse(make(), limits)
        release_freed_memory()
        Path("/proc/self/clear_refs").write_text("5")
        before = status_mb("VmRSS")
        image = encoded.decode(reduction).image
        peak = status_mb("VmHWM")
        rows.append(
            {
                "layout": name,
                "reduction": reduction,
                "shape": list(image.shape),
                "measured_mb": peak - before,
                "model_mb": encoded.decode_bytes(reduction) / 2**20,
            }
        )
        del image, encoded
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--category", help="run these categories (comma separated) in this process; print JSON")
    parser.add_argument("--only", help="just this input of the category")
    parser.add_argument("--layouts", action="store_true", help="measure the decode memory model per layout (JSON)")
    parser.add_argument("--layout-size", default="1200x2000", help="height x width of the --layouts images")
    parser.add_argument("--list", action="store_true", help="list categories and inputs")
    parser.add_argument("--selfie", help="a file holding selfie_jpeg()'s bytes (saves importing scikit-image)")
    args = parser.parse_args(argv)
    if args.selfie:
        _SELFIE_FILE.append(args.selfie)
    if args.layouts:
        height, width = (int(side) for side in args.layout_size.split("x"))
        print(json.dumps(measure_decode_layouts(height, width)))
    elif args.category:
        print(json.dumps(run_categories(args.category.split(","), args.only)))
    else:
        for item in catalogue():
            print(f"{item.category}/{item.name}: {' or '.join(item.expected)}")


if __name__ == "__main__":
    sys.exit(main())
