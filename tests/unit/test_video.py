"""Video frame sampling (meaa.video): one frame per interval, typed errors for what is not a video or is too
large, frame sizes checked before decoding, times and duration from the decoded frames."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from meaa import video
from meaa.config import DecodeSettings, VideoSettings
from meaa.errors import ImageTooLarge, InvalidVideo, UnsupportedFormat


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
    with video.VideoSampler(str(path), sample_fps, VideoSettings(), DecodeSettings()) as sampler:
        sampled = list(sampler.frames())
        assert [frame.time_ms for frame in sampled] == expected_ms
        assert all(frame.image.shape == (48, 64, 3) for frame in sampled)
        assert sampler.frames_decoded == frames
        assert sampler.duration_ms == round(frames * 1000 / fps)


def test_sampler_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    garbage = tmp_path / "x.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(InvalidVideo):
        video.VideoSampler(str(garbage), 2.0, VideoSettings(), DecodeSettings())
    with pytest.raises(ValueError):
        video.VideoSampler(str(_write_video(tmp_path / "ok.mp4", 3, 10)), 0, VideoSettings(), DecodeSettings())


def _small_jpeg(value: int) -> bytes:
    return cv2.imencode(".jpg", np.full((48, 64, 3), value, np.uint8))[1].tobytes()


def _avi(tmp_path: Path, name: str, **kwargs) -> Path:
    from devkit.hostile_inputs import mjpeg_avi

    path = tmp_path / name
    path.write_bytes(mjpeg_avi(**kwargs))
    return path


def test_duration_and_times_come_from_decoded_frames_not_the_declared_count(tmp_path: Path) -> None:
    frames = [_small_jpeg(10 * i) for i in range(20)]
    path = _avi(tmp_path, "lie.avi", frames=frames, width=64, height=48, declared_frames=2**31 - 1)
    with video.VideoSampler(str(path), 2.0, VideoSettings(), DecodeSettings()) as sampler:
        assert sampler.info.frame_count == 2**31 - 1  # what the header says, kept for information only
        assert [frame.time_ms for frame in sampler.frames()] == [0, 500, 1000, 1500]
        assert (sampler.frames_decoded, sampler.duration_ms, sampler.truncated_by) == (20, 2000, None)


def test_an_implausible_frame_rate_still_gives_the_timestamps_duration(tmp_path: Path) -> None:
    frames = [_small_jpeg(10 * i) for i in range(10)]
    path = _avi(tmp_path, "slow.avi", frames=frames, width=64, height=48, rate=1, scale=1000)  # 1 frame / 1000 s
    with video.VideoSampler(str(path), 2.0, VideoSettings(), DecodeSettings()) as sampler:
        assert sampler.info.fps == 0.0
        times = [frame.time_ms for frame in sampler.frames()]
    assert times == [index * 1_000_000 for index in range(10)]
    assert sampler.duration_ms == 10_000_000


def test_decoding_stops_at_the_decoded_frame_cap(tmp_path: Path) -> None:
    path = _write_video(tmp_path / "v.mp4", 30, 10)
    with video.VideoSampler(str(path), 10.0, VideoSettings(max_decoded_frames=12), DecodeSettings()) as sampler:
        assert len(list(sampler.frames())) == 12
        assert (sampler.frames_decoded, sampler.truncated_by, sampler.duration_ms) == (12, "max_decoded_frames", 1200)


@pytest.mark.parametrize("declared", [True, False], ids=["header_says_so", "header_understates"])
def test_oversize_frames_are_refused_before_decoding(tmp_path: Path, declared: bool) -> None:
    from devkit.hostile_inputs import flat_jpeg

    frame = flat_jpeg(4000, 3000)
    path = _avi(
        tmp_path, "big.avi", frames=[frame], width=4000, height=3000, header_size=None if declared else (64, 48)
    )
    with pytest.raises(ImageTooLarge, match="4000x3000"):
        video.VideoSampler(str(path), 2.0, VideoSettings(), DecodeSettings())
    larger = VideoSettings(max_frame_pixels=4000 * 3000)
    assert video.VideoSampler(str(path), 2.0, larger, DecodeSettings()).info.width == 4000


def test_every_motion_jpeg_frame_is_checked_before_decoding(tmp_path: Path) -> None:
    from devkit.hostile_inputs import flat_jpeg

    path = _avi(tmp_path, "grows.avi", frames=[_small_jpeg(10), flat_jpeg(4000, 3000)], width=64, height=48)
    with pytest.raises(ImageTooLarge, match="Motion JPEG frame"):
        video.VideoSampler(str(path), 2.0, VideoSettings(), DecodeSettings())


@pytest.mark.parametrize(
    ("operator_caps", "message"),
    [({"max_decode_bytes": 1_000_000}, "would take"), ({"max_jpeg_scans": 8}, "scans")],
    ids=["MEAA_MAX_DECODE_BYTES", "MEAA_MAX_JPEG_SCANS"],
)
def test_motion_jpeg_frames_are_checked_against_the_operators_decode_caps(
    tmp_path: Path, operator_caps: dict[str, int], message: str
) -> None:
    from devkit.hostile_inputs import progressive_jpeg

    # Within the default caps (200 MB, 64 scans): a progressive frame of 48 scans (8 MB of decode memory).
    frames = [_small_jpeg(10), progressive_jpeg(64, 48, 47)]
    path = _avi(tmp_path, "caps.avi", frames=frames, width=64, height=48)
    with video.VideoSampler(str(path), 2.0, VideoSettings(), DecodeSettings()):
        pass
    with pytest.raises(ImageTooLarge, match=rf"Motion JPEG frame.*{message}"):
        video.VideoSampler(str(path), 2.0, VideoSettings(), DecodeSettings(**operator_caps))


def test_scoring_a_video_applies_the_decode_caps_an_operator_set(tmp_path: Path) -> None:
    from devkit.hostile_inputs import progressive_jpeg
    from meaa import MoodEstimator
    from meaa.config import Settings
    from meaa.video_scoring import score_video

    path = _avi(tmp_path, "scans.avi", frames=[_small_jpeg(10), progressive_jpeg(64, 48, 47)], width=64, height=48)
    settings = Settings.from_env({"MEAA_MAX_JPEG_SCANS": "8"})
    with pytest.raises(ImageTooLarge, match=r"Motion JPEG frame.*scans"):  # refused before any model is loaded
        score_video(MoodEstimator(settings), str(path), settings.video_scoring)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"\x1a\x45\xdf\xa3" + bytes(100), UnsupportedFormat),
        (b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n", InvalidVideo),
        (b"ffconcat version 1.0\nfile '/etc/passwd'\n", InvalidVideo),
        (b"", InvalidVideo),
    ],
    ids=["matroska", "hls_playlist", "concat_list", "empty"],
)
def test_only_mp4_mov_and_avi_containers_reach_ffmpeg(tmp_path: Path, content: bytes, error: type) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(error):
        video.VideoSampler(str(path), 2.0, VideoSettings(), DecodeSettings())


def test_ffmpeg_options_are_set_only_while_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "probesize;32")
    with video.VideoSampler(str(_write_video(tmp_path / "v.mp4", 3, 10)), 2.0, VideoSettings(), DecodeSettings()):
        assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "probesize;32"
