"""Sample frames of a video file at a fixed rate with OpenCV (FFmpeg backend, from Lambda's /tmp).

Each sampled frame is a BGR uint8 array for ``MoodEstimator.analyze``; a file OpenCV cannot open, or
from which it decodes no frame, raises ``meaa.errors.InvalidVideo``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from meaa.errors import InvalidVideo

# Container frame rates outside this range are treated as unknown (then OpenCV's timestamps are used).
_PLAUSIBLE_FPS = (1.0, 1000.0)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the stream (fps 0 when unknown)."""

    fps: float
    frame_count: int
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
    is unreliable across containers and codecs.
    """

    def __init__(self, path: str, sample_fps: float) -> None:
        if not sample_fps > 0:
            raise ValueError("sample_fps must be positive")
        self.path = path
        self.sample_fps = sample_fps
        self._capture = cv2.VideoCapture(path)
        if not self._capture.isOpened():
            self._capture.release()
            raise InvalidVideo("corrupt or unsupported video: OpenCV cannot open it")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.info = VideoInfo(
            fps=fps if math.isfinite(fps) and _PLAUSIBLE_FPS[0] <= fps <= _PLAUSIBLE_FPS[1] else 0.0,
            frame_count=max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
        self.frames_decoded = 0

    def _frame_time_ms(self, index: int) -> int:
        if self.info.fps:
            return int(round(index * 1000.0 / self.info.fps))
        return int(round(self._capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0))

    def frames(self) -> Iterator[SampledFrame]:
        interval_ms = 1000.0 / self.sample_fps
        next_sample_ms = 0.0
        index = -1
        while self._capture.grab():
            index += 1
            self.frames_decoded += 1
            time_ms = self._frame_time_ms(index)
            if time_ms + 0.5 < next_sample_ms:
                continue
            ok, image = self._capture.retrieve()
            if not ok or image is None:
                continue
            # Catch up after gaps (variable frame rate) rather than emitting a burst of frames.
            while next_sample_ms <= time_ms + 0.5:
                next_sample_ms += interval_ms
            yield SampledFrame(index=index, time_ms=time_ms, image=image)
        if self.frames_decoded == 0:
            raise InvalidVideo("corrupt or unsupported video: no decodable frame")

    @property
    def duration_ms(self) -> int:
        """Duration from the stream's frame count, or from what was decoded."""
        if self.info.fps and self.info.frame_count:
            return int(round(self.info.frame_count * 1000.0 / self.info.fps))
        return self._frame_time_ms(max(self.frames_decoded - 1, 0))

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoSampler":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
