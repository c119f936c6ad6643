"""JPEG: the size and EXIF orientation from the segments before the first scan (``read_jpeg_header``), then
every segment and scan to EOI (``parse_jpeg``): only Huffman-coded 8-bit sequential or progressive frames
(SOF0-2), every colour component coded, scans counted against ``max_jpeg_scans``, and each scan holding at
least the data its blocks need, so a short file claiming a huge size is refused as truncated."""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from meaa.config import DecodeSettings
from meaa.errors import ImageTooLarge, InvalidImage, UnsupportedFormat

from .exif import exif_orientation
from .headers import ImageHeader, checked_size, promises_more, truncated

_JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
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
# A marker: 0xFF (after any fill 0xFFs) and a byte that is not 0xFF. A pattern starting with a literal byte is
# searched at C speed; a lookbehind or a leading repeat was 30 times slower.
_JPEG_MARKER = re.compile(rb"\xff[^\xff]")
# The end of a scan's entropy-coded data: 0xFF followed by neither a stuffed 0x00, a restart marker RST0-7
# nor fill. Restart markers are counted as scan data: padding a scan with them makes it as large as a real
# image of that size, which is all the data check asks for.
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Real files have a few dozen segments (ICC profiles split into <= 255 APP2 chunks, ~2 per progressive
# scan); the cap bounds the Python work an adversarial file full of empty segments can cause.
_JPEG_MAX_SEGMENTS = 4096


@dataclass(frozen=True)
class JpegComponent:
    ident: int
    h_sampling: int
    v_sampling: int


@dataclass(frozen=True)
class JpegScan:
    components: tuple[int, ...]  # component ids
    spectral_start: int
    successive_high: int
    data_bytes: int  # entropy-coded bytes (stuffing and restart markers included)


@dataclass(frozen=True)
class JpegLayout:
    sof_marker: int
    components: tuple[JpegComponent, ...]
    scans: tuple[JpegScan, ...]

    @property
    def progressive(self) -> bool:
        return self.sof_marker == 0xC2

    def blocks(self, component: JpegComponent, width: int, height: int) -> tuple[int, int]:
        """8x8 blocks of one component across and down (libjpeg's width/height_in_blocks)."""
        h_max = max(c.h_sampling for c in self.components)
        v_max = max(c.v_sampling for c in self.components)
        return (
            math.ceil(math.ceil(width * component.h_sampling / h_max) / 8),
            math.ceil(math.ceil(height * component.v_sampling / v_max) / 8),
        )


class _Markers:
    """The markers of a JPEG after SOI that begin a segment (standalone markers, which have no length, are
    skipped but counted against the segment cap). A marker is 0xFF, any fill 0xFFs and a marker byte; junk
    before it is tolerated, as libjpeg does. ``pos`` is just past the last marker; set it to the end of what
    the caller read to search on from there. Exhausted when no marker is left."""

    def __init__(self, data: bytes, cap_message: str) -> None:
        self.data = data
        self.pos = 2
        self._cap_message = cap_message

    def __iter__(self) -> Iterator[int]:
        for _ in range(_JPEG_MAX_SEGMENTS):
            found = _JPEG_MARKER.search(self.data, self.pos)
            if found is None:
                return
            marker = self.data[found.start() + 1]
            self.pos = found.end()
            if marker not in _JPEG_STANDALONE_MARKERS and marker != 0x00:
                yield marker
        raise InvalidImage(self._cap_message)


def read_jpeg_header(data: bytes) -> ImageHeader:
    """Walk the marker segments up to the first SOS: size from SOFn, orientation from EXIF APP1."""
    size: tuple[int, int] | None = None
    orientation: int | None = None  # from the first EXIF block
    end = len(data)
    markers = _Markers(data, f"the JPEG has more than {_JPEG_MAX_SEGMENTS} segments before its image data")
    for marker in markers:
        if marker in (_JPEG_SOS, _JPEG_EOI):
            if size is None:
                raise InvalidImage("the JPEG has no frame header (SOF) before its image data")
            break
        pos = markers.pos
        if pos + 2 > end:
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise InvalidImage("the JPEG has a malformed segment length")
        segment_start, segment_end = pos + 2, pos + length
        if marker in _JPEG_SOF_MARKERS and size is None:
            size = _frame_size(data, segment_start)
            if size is None:
                break
        elif marker == _JPEG_APP1 and orientation is None and data.startswith(b"Exif\x00\x00", segment_start):
            orientation = exif_orientation(data[segment_start + 6 : min(segment_end, end)])
        markers.pos = segment_end
    if size is None:
        raise truncated("jpeg")
    return checked_size("jpeg", size[0], size[1], orientation or 1)


def _frame_size(data: bytes, segment_start: int) -> tuple[int, int] | None:
    """(width, height) from a SOFn segment's payload; None when the data ends first."""
    if segment_start + 5 > len(data):
        return None
    height, width = struct.unpack_from(">HH", data, segment_start + 1)  # after precision
    if height == 0:  # "defined later by a DNL marker": libjpeg cannot decode it either
        raise InvalidImage("the JPEG leaves its height to a DNL marker, which is not supported")
    return width, height


def parse_jpeg(data: bytes, header: ImageHeader, limits: DecodeSettings) -> JpegLayout:
    """Walk every segment and scan to EOI; refuse what libjpeg would spend unbounded work or memory on."""
    sof_marker: int | None = None
    components: tuple[JpegComponent, ...] = ()
    scans: list[JpegScan] = []
    end = len(data)
    markers = _Markers(data, f"the JPEG has more than {_JPEG_MAX_SEGMENTS} segments")
    for marker in markers:
        if marker == _JPEG_EOI:
            break
        pos = markers.pos
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
            scans.append(_jpeg_scan(data, payload, segment_end, components, len(scans), limits))
            segment_end += scans[-1].data_bytes
        elif marker == _JPEG_DNL:
            raise InvalidImage("the JPEG leaves its height to a DNL marker, which is not supported")
        markers.pos = segment_end
    else:
        raise InvalidImage("the JPEG data ends before its end marker (truncated?)")
    if sof_marker is None or not scans:
        raise InvalidImage("the JPEG has no image data (no scan)")
    layout = JpegLayout(sof_marker, components, tuple(scans))
    _check_jpeg_data(layout, header)
    return layout


def _jpeg_scan(
    data: bytes,
    payload: bytes,
    data_start: int,
    components: tuple[JpegComponent, ...],
    scans_before: int,
    limits: DecodeSettings,
) -> JpegScan:
    """One scan: its SOS header, and its entropy-coded data up to the next marker that is not a restart."""
    if scans_before >= limits.max_jpeg_scans:
        raise ImageTooLarge(
            f"the JPEG has more than {limits.max_jpeg_scans} scans; each is a pass over the whole image "
            "(a normal progressive JPEG has about 10)"
        )
    scan_header = _jpeg_scan_header(payload, components)
    ended = _JPEG_SCAN_END.search(data, data_start)
    if ended is None:
        raise InvalidImage("the JPEG data ends inside a scan (truncated?)")
    return JpegScan(*scan_header, data_bytes=ended.start() - data_start)


def _jpeg_frame(marker: int, payload: bytes) -> tuple[JpegComponent, ...]:
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
        components.append(JpegComponent(ident, horizontal, vertical))
    return tuple(components)


def _jpeg_scan_header(payload: bytes, components: tuple[JpegComponent, ...]) -> tuple[tuple[int, ...], int, int]:
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


def _check_jpeg_data(layout: JpegLayout, header: ImageHeader) -> None:
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
            raise promises_more(header, f"a scan holds {scan.data_bytes} bytes of the {needed} it needs at least")
    missing = [ident for ident in by_ident if ident not in coded]
    if missing:
        raise promises_more(header, f"{len(missing)} of its {len(by_ident)} colour components are never coded")
