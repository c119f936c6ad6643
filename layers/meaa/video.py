"""Sample frames of a video file at a fixed rate with OpenCV (FFmpeg backend, from Lambda's /tmp), within caps.

Each sampled frame is a BGR uint8 array for ``MoodEstimator.analyze``. Before anything is decoded the
container is sniffed (MP4/MOV or AVI; FFmpeg is told the demuxer and may read nothing but this file), and
frame sizes are checked where they are declared (container, then codec headers), because opening a file
already decodes a frame for some codecs; Motion JPEG frames' own headers are checked like images, with the
operator's ``DecodeSettings``. While sampling, frames keep the first one's size, decoded frames are capped
(``truncated_by`` says so), and times come from decoded timestamps, not the container's count or rate.
What each check stops, measured: README, "Videos" (``python -m benchmarks.hostile_inputs``).
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

import cv2
import numpy as np

from meaa.config import DecodeSettings, VideoSettings
from meaa.errors import ImageTooLarge, InvalidVideo, MeaaError, UnsupportedFormat

# Container frame rates outside this range are treated as unknown.
_PLAUSIBLE_FPS = (1.0, 1000.0)
# FFmpeg's demuxer names for the two containers the sniffer accepts.
_DEMUXERS = {"iso": "mov", "avi": "avi"}
_ISO_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"})
# Codec tags of Motion JPEG (every packet a JPEG image), in AVI and in QuickTime/MP4.
_MJPEG_TAGS = frozenset({"mjpg", "jpeg", "mjpa", "avrn", "avdj", "dmb1", "ljpg", "jpgl"})
# The probe reads headers only: a moov box holds sample tables (about 1 MB per hour of video).
_MAX_HEADER_BYTES = 64 << 20
_MAX_BOXES = 100_000
_MAX_TRACKS = 32


@dataclass(frozen=True)
class VideoInfo:
    """What the container and codec say about the video stream (fps 0 when unknown or implausible)."""

    fps: float
    frame_count: int  # as declared by the container: informational only, never trusted
    width: int
    height: int


@dataclass(frozen=True)
class SampledFrame:
    """One decoded frame, its index in the stream and its presentation time."""

    index: int
    time_ms: int
    image: np.ndarray


class VideoSampler:
    """Decodes a video sequentially and yields one frame per ``1 / sample_fps`` seconds.

    Decoding is sequential (``grab`` every frame, ``retrieve`` only the sampled ones) because seeking
    is unreliable across containers and codecs. Raises ``InvalidVideo`` (not a video, or no decodable
    frame), ``UnsupportedFormat`` (a container other than MP4/MOV/AVI) and ``ImageTooLarge`` (frames over
    ``limits.max_frame_pixels``, or Motion JPEG frames over ``frame_decoding``'s caps), at construction or
    while sampling.
    """

    def __init__(self, path: str, sample_fps: float, limits: VideoSettings, frame_decoding: DecodeSettings) -> None:
        if not sample_fps > 0:
            raise ValueError("sample_fps must be positive")
        self.path = path
        self.sample_fps = sample_fps
        self.limits = limits
        self.frame_decoding = frame_decoding
        self.frames_decoded = 0
        self.truncated_by: str | None = None  # "max_decoded_frames" when sampling stopped at that cap
        self._last_time_ms: float | None = None
        self._frame_interval_ms = 0.0
        container = sniff_container(path)
        for width, height in declared_frame_sizes(path, container):
            _check_frame_size(width, height, self.limits, "declares")
        self._capture = _open_capture(path, container)
        try:
            capture = self._capture
            fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            if width <= 0 or height <= 0:
                raise InvalidVideo("corrupt or unsupported video: no frame size")
            _check_frame_size(width, height, self.limits, "has")
            frame_count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
            self.info = VideoInfo(
                fps=fps if math.isfinite(fps) and _PLAUSIBLE_FPS[0] <= fps <= _PLAUSIBLE_FPS[1] else 0.0,
                frame_count=int(frame_count) if math.isfinite(frame_count) and frame_count > 0 else 0,
                width=width,
                height=height,
            )
            if _fourcc(capture) in _MJPEG_TAGS:
                _check_mjpeg_packets(path, container, self.limits, self.frame_decoding)
        except BaseException:
            self._capture.release()
            raise

    def frames(self) -> Iterator[SampledFrame]:
        interval_ms = 1000.0 / self.sample_fps
        next_sample_ms = 0.0
        index = -1
        first_shape: tuple[int, ...] | None = None
        while True:
            if self.frames_decoded >= self.limits.max_decoded_frames:
                self.truncated_by = "max_decoded_frames"
                break
            if not self._capture.grab():
                break
            index += 1
            self.frames_decoded += 1
            time_ms = self._frame_time_ms()
            if time_ms + 0.5 < next_sample_ms:
                continue
            ok, image = self._capture.retrieve()
            if not ok or image is None:
                continue
            if first_shape is None:
                if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                    raise InvalidVideo(f"unsupported video frame layout {image.shape} {image.dtype}")
                _check_frame_size(image.shape[1], image.shape[0], self.limits, "decodes to")
                first_shape = image.shape
            elif image.shape != first_shape:
                raise InvalidVideo(
                    f"the video's frame size changes from {first_shape[1]}x{first_shape[0]} to "
                    f"{image.shape[1]}x{image.shape[0]}"
                )
            # The next sample is the first frame at or after the next multiple of the interval (computed,
            # not stepped to, so a timestamp far in the future costs nothing).
            next_sample_ms = (math.floor((time_ms + 0.5) / interval_ms) + 1) * interval_ms
            yield SampledFrame(index=index, time_ms=round(time_ms), image=image)
        if self.frames_decoded == 0:
            raise InvalidVideo("corrupt or unsupported video: no decodable frame")

    def _frame_time_ms(self) -> float:
        """The frame's presentation time from its timestamp; where that is missing or goes backwards,
        one frame interval after the previous frame's."""
        stamp = float(self._capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
        previous = self._last_time_ms
        if previous is not None:
            if stamp > previous and math.isfinite(stamp):
                self._frame_interval_ms = stamp - previous
            step = 1000.0 / self.info.fps if self.info.fps else self._frame_interval_ms
            if not (math.isfinite(stamp) and stamp > previous):
                stamp = previous + step
        elif not math.isfinite(stamp) or stamp < 0:
            stamp = 0.0
        self._last_time_ms = stamp
        return stamp

    @property
    def duration_ms(self) -> int:
        """From the decoded frames: the last one's time plus one frame interval (0 before any decoding)."""
        if self._last_time_ms is None:
            return 0
        step = 1000.0 / self.info.fps if self.info.fps else self._frame_interval_ms
        return round(self._last_time_ms + step)

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> VideoSampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- before decoding ---------------------------------------------------------------------------------


def sniff_container(path: str) -> str:
    """``"iso"`` (MP4, MOV, M4V, 3GP) or ``"avi"`` from the first bytes; raises for anything else."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if len(head) >= 8 and head[4:8] in _ISO_FIRST_BOXES:
        return "iso"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        raise UnsupportedFormat("Matroska/WebM video is not supported; send MP4, MOV or AVI")
    raise InvalidVideo("corrupt or unsupported video: not an MP4, MOV or AVI file")


def declared_frame_sizes(path: str, container: str) -> list[tuple[int, int]]:
    """(width, height) of every video track, as the container's headers declare them (no decoding)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if container == "avi":
            return _avi_frame_sizes(handle, size)
        return _iso_frame_sizes(handle, size)


def _check_frame_size(width: int, height: int, limits: VideoSettings, verb: str) -> None:
    if width * height > limits.max_frame_pixels:
        raise ImageTooLarge(
            f"the video {verb} {width}x{height} frames = {width * height} pixels; "
            f"the limit is {limits.max_frame_pixels}"
        )


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise InvalidVideo("corrupt video: its headers end early (truncated?)")
    return data


def _avi_frame_sizes(handle: BinaryIO, file_size: int) -> list[tuple[int, int]]:
    """RIFF 'AVI ': the main header (avih) and each video stream's format (strf, a BITMAPINFOHEADER)."""
    handle.seek(12)
    while handle.tell() + 8 <= file_size:
        kind, length = struct.unpack("<4sI", _read_exact(handle, 8))
        if kind == b"LIST" and length >= 4 and _read_exact(handle, 4) == b"hdrl":
            if length > _MAX_HEADER_BYTES:
                raise InvalidVideo("corrupt video: its AVI header list is implausibly large")
            return _avi_header_sizes(_read_exact(handle, length - 4))
        handle.seek(length + (length & 1) - (4 if kind == b"LIST" and length >= 4 else 0), os.SEEK_CUR)
    raise InvalidVideo("corrupt video: the AVI has no header list (hdrl)")


def _avi_header_sizes(hdrl: bytes) -> list[tuple[int, int]]:
    sizes = []
    stream_type = b""
    for kind, payload in _riff_chunks(hdrl):
        if kind == b"avih" and len(payload) >= 40:
            sizes.append(struct.unpack_from("<II", payload, 32))
        elif kind == b"LIST" and payload[:4] == b"strl":
            for inner, body in _riff_chunks(payload[4:]):
                if inner == b"strh" and len(body) >= 4:
                    stream_type = body[:4]
                elif inner == b"strf" and stream_type == b"vids" and len(body) >= 12:
                    width, height = struct.unpack_from("<ii", body, 4)
                    sizes.append((abs(width), abs(height)))
    return sizes


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 0
    for _ in range(_MAX_BOXES):
        if pos + 8 > len(data):
            return
        kind, length = struct.unpack_from("<4sI", data, pos)
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)


def _iso_frame_sizes(handle: BinaryIO, file_size: int) -> list[tuple[int, int]]:
    """ISO media: the top-level boxes up to 'moov', then each track's visual sample entries (stsd)."""
    pos = 0
    for _ in range(_MAX_BOXES):
        if pos + 8 > file_size:
            break
        handle.seek(pos)
        length, kind = struct.unpack(">I4s", _read_exact(handle, 8))
        header = 8
        if length == 1:
            (length,) = struct.unpack(">Q", _read_exact(handle, 8))
            header = 16
        elif length == 0:
            length = file_size - pos
        if length < header:
            raise InvalidVideo("corrupt video: an MP4 box has an impossible size")
        if kind == b"moov":
            if length > _MAX_HEADER_BYTES:
                raise InvalidVideo("corrupt video: its MP4 header (moov) is implausibly large")
            return _moov_frame_sizes(_read_exact(handle, length - header))
        pos += length
    raise InvalidVideo("corrupt video: the MP4 has no header (moov box)")


def _iso_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    for _ in range(_MAX_BOXES):
        if pos + 8 > end:
            return
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1 and pos + 16 <= end:
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif length == 0:
            length = end - pos
        if length < header or pos + length > end:
            raise InvalidVideo("corrupt video: an MP4 box runs past its parent")
        yield kind, pos + header, pos + length
        pos += length


def _moov_frame_sizes(moov: bytes) -> list[tuple[int, int]]:
    sizes = []
    tracks = 0
    for kind, start, end in _iso_boxes(moov):
        if kind != b"trak":
            continue
        tracks += 1
        if tracks > _MAX_TRACKS:
            raise InvalidVideo(f"corrupt video: more than {_MAX_TRACKS} tracks")
        stsd = _find_box(moov, start, end, (b"mdia", b"minf", b"stbl", b"stsd"))
        handler = _find_box(moov, start, end, (b"mdia", b"hdlr"))
        if stsd is None or handler is None or moov[handler[0] + 8 : handler[0] + 12] != b"vide":
            continue
        # stsd: version/flags (4), entry count (4), then sample entries; a visual entry has 6 reserved
        # bytes, a data reference index (2), 16 bytes of pre-defined/reserved, width (2), height (2).
        for _, entry_start, entry_end in _iso_boxes(moov, stsd[0] + 8, stsd[1]):
            if entry_end - entry_start >= 28:
                sizes.append(struct.unpack_from(">HH", moov, entry_start + 24))
    return sizes


def _find_box(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> tuple[int, int] | None:
    for kind, inner_start, inner_end in _iso_boxes(data, start, end):
        if kind == path[0]:
            return (inner_start, inner_end) if len(path) == 1 else _find_box(data, inner_start, inner_end, path[1:])
    return None


@contextlib.contextmanager
def _ffmpeg_options(container: str) -> Iterator[None]:
    """OpenCV reads ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` at each open: the demuxer, and no protocol but files."""
    name = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
    saved = os.environ.get(name)
    os.environ[name] = f"input_format;{_DEMUXERS[container]}|protocol_whitelist;file"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def _open_capture(path: str, container: str, *, packets_only: bool = False) -> cv2.VideoCapture:
    params = [cv2.CAP_PROP_FORMAT, -1] if packets_only else [cv2.CAP_PROP_N_THREADS, 1]
    with _ffmpeg_options(container):
        capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        capture.release()
        raise InvalidVideo("corrupt or unsupported video: OpenCV cannot open it")
    return capture


def _fourcc(capture: cv2.VideoCapture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC) or 0)
    return code.to_bytes(4, "little").decode("latin-1").strip().lower()


def _check_mjpeg_packets(path: str, container: str, limits: VideoSettings, decoding: DecodeSettings) -> None:
    """Every Motion JPEG frame's header, read by demuxing alone, passes the image checks (the operator's decode
    caps) at the frame cap; a frame's bytes are bounded by the object's size, not by the image file cap."""
    from meaa.decoding import EncodedImage  # the image decoder's checks, applied to each frame

    frame_limits = replace(decoding, max_image_bytes=1 << 62, max_image_pixels=limits.max_frame_pixels)
    capture = _open_capture(path, container, packets_only=True)
    try:
        for _ in range(limits.max_decoded_frames):
            if not capture.grab():
                break
            ok, packet = capture.retrieve()
            if not ok or packet is None or not packet.size:
                continue
            try:
                EncodedImage.parse(packet.reshape(-1).tobytes(), frame_limits)
            except ImageTooLarge as error:
                raise ImageTooLarge(f"a Motion JPEG frame is too large: {error.message}") from None
            except MeaaError as error:
                raise InvalidVideo(f"a Motion JPEG frame is not a valid JPEG: {error.message}") from None
    finally:
        capture.release()
