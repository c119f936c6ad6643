"""Run the built BatchFunction + pruned MeaaLayer on moto: the artifacts that would be deployed.

``infra/build_layer.py --verify`` checks the layer alone; this runs the batch handler from the build
directory (its ``template.yaml``, ``BatchFunction/``, ``MeaaLayer/python``) the way Lambda composes
them: function code first, then the layer, then what the runtime provides (boto3, here from the
venv, which also provides moto). numpy, OpenCV, onnxruntime and meaa must come from the built layer.
Only for a build of this machine's architecture (``--arch x86_64`` here).

Usage::

    python infra/build_layer.py --arch x86_64 --out build/x86_64
    python infra/smoke_built.py build/x86_64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path)
    args = parser.parse_args(argv)
    build_dir = args.build_dir.resolve()

    # Nothing heavy may be imported before the handler: numpy, cv2 and onnxruntime must resolve to
    # the layer, which load_handler puts first on sys.path.
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.lambda_loader import lambda_context, load_handler

    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="smoke",
        AWS_SECRET_ACCESS_KEY="smoke",
        MEAA_TABLE_NAME="meaa-results-test",
        MEAA_VIDEO_SAMPLE_FPS="2",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    with mock_aws():
        handler = load_handler("BatchFunction", build_dir / "template.yaml")
        import cv2
        import meaa
        import numpy
        import onnxruntime

        for module in (numpy, cv2, onnxruntime, meaa):
            if not str(Path(module.__file__).resolve()).startswith(str(build_dir / "MeaaLayer" / "python")):
                raise SystemExit(f"{module.__name__} came from {module.__file__}, not the built layer")

        import boto3

        from tests.support.aws import (
            BUCKET,
            all_items,
            create_results_table,
            event_for,
            face_jpeg,
            face_video_bytes,
            put_object,
        )

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        create_results_table(boto3.client("dynamodb"))
        with tempfile.TemporaryDirectory() as scratch:
            objects = [
                put_object(s3, "incoming/smoke/s1/face.jpg", face_jpeg()),
                put_object(s3, "incoming/smoke/s1/clip.mp4", face_video_bytes(Path(scratch))),
                put_object(s3, "incoming/smoke/s1/broken.jpg", b"not an image"),
            ]
        answer = handler(event_for(objects), lambda_context("BatchFunction"))
        items = all_items(boto3.resource("dynamodb"))

    statuses = [(outcome["key"].rsplit("/", 1)[1], outcome["status"]) for outcome in answer["outcomes"]]
    results = {item["key"].rsplit("/", 1)[1]: item for item in items if item["sk"].endswith("#RESULT")}
    expected = [("face.jpg", "scored"), ("clip.mp4", "scored"), ("broken.jpg", "failed")]
    ok = (
        statuses == expected
        and results["face.jpg"]["face_count"] == 1
        and results["clip.mp4"]["frames_with_face"] == 3
        and results["broken.jpg"]["error"]["code"] == "invalid_image"
    )
    print(f"built artifacts in {build_dir}: numpy {numpy.__version__}, cv2 {cv2.__version__}, "
          f"onnxruntime {onnxruntime.__version__} from the layer; outcomes {statuses}; "
          f"{len(items)} items; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
