"""What ``infra/smoke_built.py`` runs inside a bare interpreter whose path holds only the built artifacts.

Run as a file (``python -S -P infra/lambda_child.py ...``), never imported: it imports only the standard
library until the command imports the artifacts' own packages. The answer is one JSON line after
``RESULT_MARK`` on stdout; everything else the handlers print (JSON logs, EMF metrics) goes there too.

    lambda_child.py handler <module.function> <event.json> <function name>
    lambda_child.py init <module.function>
    lambda_child.py layer <face.jpg>
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

RESULT_MARK = "SMOKE_RESULT "
WATCHED = ("numpy", "cv2", "onnxruntime", "meaa", "meaa_aws", "aws_lambda_powertools", "boto3", "fastapi", "pydantic")


class LambdaContext:
    """The attributes of Lambda's context that the handlers and Powertools read."""

    function_version = "$LATEST"
    memory_limit_in_mb = 1769
    log_stream_name = "smoke"

    def __init__(self, function_name: str, timeout_s: float = 300.0) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def _origins() -> dict[str, str]:
    return {name: str(getattr(sys.modules[name], "__file__", "")) for name in WATCHED if name in sys.modules}


def _compiled_at_import() -> list[str]:
    """The files of modules imported from source with no bytecode beside them: this process compiled them (it
    cannot write them back, as Lambda cannot)."""
    compiled = []
    for module in list(sys.modules.values()):
        spec, cached = getattr(module, "__spec__", None), getattr(module, "__cached__", None)
        from_source = spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader)
        if from_source and cached and not os.path.exists(cached):
            compiled.append(str(spec.origin))
    return sorted(compiled)


def run_handler(handler_path: str, event_path: str, function_name: str) -> dict[str, Any]:
    module_name, function = handler_path.rsplit(".", 1)
    event = json.loads(Path(event_path).read_text())
    handler = getattr(importlib.import_module(module_name), function)
    answer = handler(event, LambdaContext(function_name))
    return {"result": answer, "origins": _origins(), "compiled": _compiled_at_import()}


def time_init(handler_path: str) -> dict[str, Any]:
    """Lambda's init of a function: importing its handler's module (wall and CPU milliseconds)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    importlib.import_module(handler_path.rsplit(".", 1)[0])
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return {"init_ms": wall * 1000.0, "init_cpu_ms": cpu * 1000.0, "compiled": _compiled_at_import()}


def check_layer(face_path: str) -> dict[str, Any]:
    """Every ONNX model opens, the cascade runs on a real face, OpenCV's FFmpeg writes and reads an mp4."""
    import cv2
    import numpy
    import onnxruntime

    import meaa_aws.clients
    import meaa_aws.observability  # noqa: F401 - Powertools, as both functions import it
    from meaa import MoodEstimator
    from meaa.config import Settings

    models = sorted(Path(Settings().models_dir).glob("*.onnx"))
    for model in models:
        onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    analysis = MoodEstimator().analyze(Path(face_path).read_bytes())
    path = os.path.join(tempfile.mkdtemp(), "clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(5):
        writer.write(numpy.zeros((240, 320, 3), dtype=numpy.uint8))
    writer.release()
    capture = cv2.VideoCapture(path)
    return {
        "origins": _origins(),
        "versions": {"numpy": numpy.__version__, "cv2": cv2.__version__, "onnxruntime": onnxruntime.__version__},
        "models_opened": [model.name for model in models],
        "faces": [face.mood for face in analysis.faces],
        "video_decoded": bool(capture.isOpened() and capture.read()[0]),
        "compiled": _compiled_at_import(),
    }


def main(argv: list[str]) -> int:
    command, *args = argv
    commands = {"handler": run_handler, "init": time_init, "layer": check_layer}
    answer = commands[command](*args)
    print(RESULT_MARK + json.dumps(answer, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
