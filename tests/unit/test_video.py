"""Video frame sampling (meaa.video): one frame per interval, typed error for what is not a video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from meaa import video
from meaa.errors import InvalidVideo


def _write_video(path: Path, frames: int, fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), index * 8 % 256, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(
    ("fps", "frames", "sample_fps", "expected_ms"),
    [
        (25, 50, 2.0, [0, 520, 1000, 1520]),  # 40 ms frames: the first frame at or after each 500 ms
        (10, 10, 30.0, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]),  # faster than the source: every frame
        (10, 25, 1.0, [0, 1000, 2000]),
    ],
)
def test_sampler_yields_one_frame_per_interval(tmp_path: Path, fps, frames, sample_fps, expected_ms) -> None:
    path = _write_video(tmp_path / "v.mp4", frames, fps)
    with video.VideoSampler(str(path), sample_fps) as sampler:
        sampled = list(sampler.frames())
        assert [frame.time_ms for frame in sampled] == expected_ms
        assert all(frame.image.shape == (48, 64, 3) for frame in sampled)
        assert sampler.frames_decoded == frames
        assert sampler.duration_ms == round(frames * 1000 / fps)


def test_sampler_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    garbage = tmp_path / "x.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(InvalidVideo):
        video.VideoSampler(str(garbage), 2.0)
    with pytest.raises(ValueError):
        video.VideoSampler(str(_write_video(tmp_path / "ok.mp4", 3, 10)), 0)
