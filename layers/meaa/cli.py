"""``python -m meaa predict FILE... [--json] [--annotate OUT_DIR]``.

One line per file: an image's faces and moods, or a video's summary (.mp4, .mov, .avi, .m4v: its sampled
frames' mood counts and timeline, as the batch function stores it). A file that cannot be read or decoded
gives an error line (never a traceback) and the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from meaa.errors import MeaaError
from meaa.object_keys import VIDEO_SUFFIXES, suffix_of


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m meaa", description="Facial mood estimation.")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="find faces and moods in images")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--json", action="store_true", help="one JSON object per line (the API's answer shape)")
    predict.add_argument("--annotate", metavar="OUT_DIR", help="write each image with boxes and moods drawn")
    return parser


def _describe(result: dict) -> str:
    if "error" in result:
        return f"{result['file']}: error {result['error']['code']}: {result['error']['message']}"
    if "frames_sampled" in result:
        return (
            f"{result['file']}: video, {result['frames_sampled']} frame(s) sampled, "
            f"{result['frames_with_reliable_face']} with a reliable face, mood {result['mood']}"
        )
    faces = ", ".join(
        f"{face['mood']} {face['moods'][face['mood']]:.2f} at {tuple(face['box'].values())}" for face in result["faces"]
    )
    return f"{result['file']}: {result['face_count']} face(s){': ' + faces if faces else ''}"


def predict(paths: list[str], as_json: bool, annotate_dir: str | None) -> int:
    from meaa.pipeline import MoodEstimator

    estimator = MoodEstimator()
    failures = 0
    for path in paths:
        try:
            result = {"file": path, **_predict_one(estimator, path, annotate_dir)}
        except MeaaError as error:
            failures += 1
            result = {"file": path, "error": error.to_dict()}
        except OSError as error:
            failures += 1
            result = {"file": path, "error": {"code": "unreadable_file", "message": error.strerror or str(error)}}
        print(json.dumps(result) if as_json else _describe(result), flush=True)
    return 1 if failures else 0


def _predict_one(estimator, path: str, annotate_dir: str | None) -> dict:
    """An image's ``Analysis.to_dict()``, or a video's summary (what the batch function stores for it)."""
    if suffix_of(path) in VIDEO_SUFFIXES:
        from meaa.video_scoring import score_video

        return score_video(estimator, path, estimator.settings.video_scoring).attributes()
    with open(path, "rb") as handle:
        data = handle.read()
    analysis = estimator.analyze(data)
    if annotate_dir:
        _write_annotated(data, analysis, path, annotate_dir, estimator)
    return analysis.to_dict()


def _write_annotated(data: bytes, analysis, path: str, out_dir: str, estimator) -> None:
    import cv2

    from meaa.annotate import draw_analysis
    from meaa.decoding import decode_image

    image = decode_image(data, estimator.settings.decoding)
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    cv2.imwrite(os.path.join(out_dir, f"{stem}.annotated.jpg"), draw_analysis(image, analysis))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "predict":
        return predict(args.images, args.json, args.annotate)
    return 2


if __name__ == "__main__":
    sys.exit(main())
