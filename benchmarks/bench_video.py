"""Face tracking for video (``MoodEstimator.analyze_frames``) against full detection on every frame.

    python -m benchmarks.bench_video [--frames 120] [--redetect-every 5]      (run from the repo root)

Generated clips: scikit-image's real face (a selfie frame, and a group photo of six) panned along a smooth
path and zoomed in and out over a black border, at a slow and a fast pace (pixels the picture moves per
frame; sampled video at 2 fps moves a lot more between frames than 30 fps does). For each clip, every frame
is analysed twice in the same process, interleaved: alone (``analyze``, the full cascade) and as part of
the clip (``analyze_frames``, which follows the faces and re-detects every N frames or when it loses one).
Agreement is measured against the full detection of the same frame: the faces it has too, the IoU of each
matched box, the largest landmark distance as a fraction of the face's width, and the same top mood. Times
are the process's CPU time (a shared machine's other processes barely move it), means over the clip at one
onnxruntime thread.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from dataclasses import dataclass

import cv2
import numpy as np

from meaa.config import Settings
from meaa.results import Analysis


@dataclass(frozen=True)
class ClipSpec:
    name: str
    faces: int
    step_px: float  # mean movement of the picture per frame


@dataclass(frozen=True)
class Agreement:
    """One clip's tracked analyses against full detection of the same frames."""

    frames: int
    tracked_frames: int  # frames answered by tracking alone (no full detection)
    reference_faces: int  # faces full detection found, over all frames
    matched: int  # ... that the tracked analysis has too (IoU >= 0.5)
    extra: int  # tracked faces full detection did not find
    min_iou: float  # over matched faces
    median_iou: float
    max_landmark_error: float  # largest landmark distance / face width, over matched faces
    same_mood: int  # matched faces with the same top mood


def moving_clip(base: np.ndarray, count: int, step_px: float) -> list[np.ndarray]:
    """``count`` frames of ``base`` panned on a Lissajous path (+-12 % of the width, +-8 % of the height)
    and zoomed +-10 %, at a pace that moves the picture about ``step_px`` pixels per frame."""
    height, width = base.shape[:2]
    amp_x, amp_y, amp_zoom = 0.12 * width, 0.08 * height, 0.10
    # Path length of one period, roughly: the x and y swings plus the zoom's corner displacement.
    period_px = 4 * amp_x + 8 * amp_y + 4 * amp_zoom * math.hypot(width, height) / 2
    period = max(2, round(period_px / step_px))
    frames = []
    for index in range(count):
        phase = 2 * math.pi * index / period
        zoom = 1.0 + amp_zoom * math.sin(phase)
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, zoom)
        matrix[:, 2] += (amp_x * math.sin(phase), amp_y * math.sin(2 * phase))
        frames.append(cv2.warpAffine(base, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT))
    return frames


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = inter_w * inter_h
    return inter / float(aw * ah + bw * bh - inter)


def compare(tracked: list[Analysis], full: list[Analysis]) -> Agreement:
    """Match faces frame by frame: each full-detection face to the tracked face it overlaps most."""
    ious, landmark_errors = [], []
    reference_faces = matched = extra = same_mood = 0
    for mine, reference in zip(tracked, full, strict=True):
        reference_faces += len(reference.faces)
        used = set()
        for face in reference.faces:
            overlaps = [_iou(candidate.box, face.box) for candidate in mine.faces]
            best = int(np.argmax(overlaps)) if overlaps else -1
            if best < 0 or overlaps[best] < 0.5:
                continue
            used.add(best)
            other = mine.faces[best]
            matched += 1
            ious.append(overlaps[best])
            landmark_errors.append(
                max(math.dist(p, q) for p, q in zip(other.landmarks, face.landmarks, strict=True)) / face.box[2]
            )
            same_mood += other.mood == face.mood
        extra += len(mine.faces) - len(used)
    return Agreement(
        frames=len(full),
        tracked_frames=sum("detect" not in analysis.timings_ms for analysis in tracked),
        reference_faces=reference_faces,
        matched=matched,
        extra=extra,
        min_iou=min(ious, default=1.0),
        median_iou=statistics.median(ious) if ious else 1.0,
        max_landmark_error=max(landmark_errors, default=0.0),
        same_mood=same_mood,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument(
        "--redetect-every",
        type=int,
        default=Settings().video_scoring.redetect_every,
        help="full detection every n-th frame (default: the service's MEAA_VIDEO_REDETECT_EVERY default)",
    )
    args = parser.parse_args()
    os.environ.setdefault("MEAA_THREADS", "1")

    from benchmarks.bench_pipeline import Floor
    from devkit.sample_faces import group_frame, one_face_frame
    from meaa import MoodEstimator

    estimator = MoodEstimator()
    floor = Floor()
    bases = {1: one_face_frame(640, 480), 6: group_frame(640, 480, columns=3, rows=2).image}
    clips = [
        ClipSpec(f"{label}, {pace}", faces, step)
        for faces, label in ((1, "selfie"), (6, "group of 6"))
        for pace, step in (("slow", 4.0), ("fast", 16.0))
    ]
    print(
        f"640x480 frames, {args.frames} per clip, re-detection every {args.redetect_every} frames, "
        f"MEAA_THREADS={os.environ['MEAA_THREADS']}\n"
    )
    print(
        "| clip | px/frame | full, CPU ms/frame | tracked clip, CPU ms/frame | ratio | tracked / floor "
        "| tracked frames | faces found | extra faces | box IoU min / median | max landmark error | same top mood |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for clip in clips:
        frames = moving_clip(bases[clip.faces], args.frames, clip.step_px)
        estimator.analyze(frames[0])  # load the models outside the timings
        # Interleaved frame by frame (the generator is lazy), so a busy machine slows both alike.
        following = estimator.analyze_frames(frames, redetect_every=args.redetect_every)
        full, tracked, full_ms, tracked_ms, floor_ms = [], [], [], [], []
        for frame in frames:
            started = time.process_time()
            for network in floor.parts().values():
                network()
            floor_ms.append((time.process_time() - started) * 1000)
            started = time.process_time()
            full.append(estimator.analyze(frame))
            full_ms.append((time.process_time() - started) * 1000)
            started = time.process_time()
            tracked.append(next(following))
            tracked_ms.append((time.process_time() - started) * 1000)
        agreement = compare(tracked, full)
        full_mean, tracked_mean = statistics.fmean(full_ms), statistics.fmean(tracked_ms)
        print(
            f"| {clip.name} | {clip.step_px:g} | {full_mean:.1f} | {tracked_mean:.1f} | "
            f"{tracked_mean / full_mean:.2f} | {tracked_mean / statistics.fmean(floor_ms):.2f} | "
            f"{agreement.tracked_frames}/{agreement.frames} | {agreement.matched}/{agreement.reference_faces} | "
            f"{agreement.extra} | {agreement.min_iou:.2f} / {agreement.median_iou:.2f} | "
            f"{agreement.max_landmark_error:.3f} | {agreement.same_mood}/{agreement.matched} |"
        )
    print(
        "\nTimes are CPU-time means over the clip (full detection on every frame vs analyze_frames, which includes "
        "its own re-detections); tracked / floor: against the floor of `python -m benchmarks.bench_pipeline`, timed "
        "between the frames. Faces found: full detection's faces that the tracked answer has too (IoU >= 0.5); "
        "IoU, landmark error (largest distance between matched landmarks / face width) and mood over those."
    )


if __name__ == "__main__":
    main()
