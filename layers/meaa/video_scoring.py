"""A video -> its sampled frames' analyses and a summary: what the batch function stores and the CLI prints.

``score_video`` decodes the file with ``meaa.video.VideoSampler``, analyses the sampled frames with the
estimator (``MoodEstimator.analyze_frames``: a full detection every ``redetect_every`` frames, the faces
followed in between), hands each frame's analysis to ``on_frame`` (the batch function writes it as a FRAME
item) and adds it to a ``meaa.store.VideoSummary``. It stops at ``max_frames`` sampled frames, at ``deadline``
(``time.monotonic()`` seconds) or where the sampler stops at its decoded-frame cap, and says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from meaa.config import VideoScoringSettings
from meaa.pipeline import MoodEstimator
from meaa.store import VideoSummary
from meaa.video import SampledFrame, VideoSampler

FrameCallback = Callable[[SampledFrame, dict[str, Any]], None]


@dataclass
class VideoScore:
    """A scored video: the summary of its sampled frames and what the container and the decoder said."""

    summary: VideoSummary
    width: int
    height: int
    source_fps: float
    sample_fps: float
    duration_ms: int
    frames_decoded: int
    truncated_by: str | None
    model_version: str | None

    def attributes(self) -> dict[str, Any]:
        """The summary's attributes and the video's details, as stored in its RESULT item."""
        truncated_by = self.truncated_by or ("timeline_segments" if self.summary.segments_dropped else None)
        return {
            **self.summary.attributes(),
            "width": self.width,
            "height": self.height,
            "source_fps": self.source_fps,
            "sample_fps": self.sample_fps,
            "duration_ms": self.duration_ms,
            "frames_decoded": self.frames_decoded,
            "truncated": truncated_by is not None,
            "truncated_by": truncated_by,
            "model_version": self.model_version,
        }


def score_video(
    estimator: MoodEstimator,
    path: str,
    scoring: VideoScoringSettings,
    deadline: float | None = None,
    on_frame: FrameCallback | None = None,
) -> VideoScore:
    """Analyse the sampled frames of the video at ``path``; raises ``InvalidVideo`` if it cannot be decoded."""
    summary = VideoSummary(max_segments=scoring.max_timeline_segments)
    truncated_by: str | None = None
    model_version: str | None = None
    caps = estimator.settings
    with VideoSampler(path, scoring.sample_fps, caps.video, caps.decoding) as sampler:
        sampled: list[SampledFrame] = []

        def images() -> Iterator[np.ndarray]:
            for frame in sampler.frames():
                sampled.append(frame)
                yield frame.image

        for result in estimator.analyze_frames(images(), redetect_every=scoring.redetect_every):
            frame = sampled.pop()
            analysis = result.to_dict()
            model_version = analysis["model_version"]
            if on_frame is not None:
                on_frame(frame, analysis)
            summary.add(frame.time_ms, analysis)
            if summary.frames_sampled >= scoring.max_frames:
                truncated_by = "max_video_frames"
            elif deadline is not None and time.monotonic() > deadline:
                truncated_by = "time_limit"
            if truncated_by:
                break
        truncated_by = truncated_by or sampler.truncated_by  # the decoded-frame cap (settings.video)
        return VideoScore(
            summary=summary,
            width=sampler.info.width,
            height=sampler.info.height,
            source_fps=sampler.info.fps,
            sample_fps=scoring.sample_fps,
            duration_ms=sampler.duration_ms,
            frames_decoded=sampler.frames_decoded,
            truncated_by=truncated_by,
            model_version=model_version,
        )
