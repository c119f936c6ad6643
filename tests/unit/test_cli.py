"""``python -m meaa predict``: JSON lines, annotated images, error lines instead of tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from devkit.images import encode
from devkit.sample_faces import astronaut_bgr, no_face_images

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers")}
    return subprocess.run(
        [sys.executable, "-m", "meaa", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_predict_json_one_line_per_image_and_annotations(tmp_path: Path) -> None:
    face = tmp_path / "face.jpg"
    face.write_bytes(encode(astronaut_bgr(), ".jpg", jpeg_quality=90))
    cat = tmp_path / "cat.png"
    cat.write_bytes(encode(no_face_images()["chelsea"], ".png"))
    out_dir = tmp_path / "annotated"

    result = run_cli("predict", str(face), str(cat), "--json", "--annotate", str(out_dir))

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(face), str(cat)]
    assert lines[0]["face_count"] == 1 and lines[0]["mood"] == "positive"
    assert set(lines[0]["faces"][0]) >= {"box", "score", "landmarks", "mood", "moods", "emotions"}
    assert lines[1]["faces"] == [] and lines[1]["mood"] is None
    drawn = cv2.imread(str(out_dir / "face.annotated.jpg"))
    assert drawn is not None and drawn.shape == (512, 512, 3)
    # The box was drawn: the annotated picture differs from the original along the box edge.
    x, y, _w, h = (lines[0]["faces"][0]["box"][k] for k in "xywh")
    original = cv2.imdecode(np.frombuffer(face.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    edge = (slice(y + h // 2, y + h // 2 + 1), slice(x - 1, x + 2))
    assert abs(drawn[edge].astype(int) - original[edge].astype(int)).max() > 40


def test_bad_files_give_error_lines_and_a_nonzero_exit(tmp_path: Path) -> None:
    face = tmp_path / "face.jpg"
    face.write_bytes(encode(astronaut_bgr(), ".jpg"))
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    missing = tmp_path / "missing.jpg"

    result = run_cli("predict", str(text), str(face), str(missing), "--json")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["error"]["code"] == "invalid_image"
    assert lines[1]["face_count"] == 1  # a bad file does not stop the others
    assert lines[2]["error"]["code"] == "unreadable_file"


def test_human_readable_output(tmp_path: Path) -> None:
    face = tmp_path / "face.jpg"
    face.write_bytes(encode(astronaut_bgr(), ".jpg"))
    result = run_cli("predict", str(face))
    assert result.returncode == 0
    assert result.stdout.startswith(f"{face}: 1 face(s): positive")


def test_predict_summarises_a_video(tmp_path: Path) -> None:
    from devkit.aws import write_face_video

    clip = write_face_video(tmp_path / "clip.mp4")
    result = subprocess.run(
        [sys.executable, "-m", "meaa", "predict", str(clip), "--json"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["file"] == str(clip) and line["frames_sampled"] == 6 and line["frames_with_face"] == 3
    assert sum(line["mood_counts"].values()) == line["frames_with_reliable_face"]
