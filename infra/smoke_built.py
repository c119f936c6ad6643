"""Run the built artifacts the way Lambda composes them: the layer alone, then both handlers against moto.

Lambda puts a function's code (/var/task) first on ``sys.path``, then the layer (/opt/python), then what the
runtime ships (boto3 and its dependencies). Each check here runs in a fresh interpreter started with ``-S``
(no site-packages of this venv) whose ``PYTHONPATH`` is exactly that, from the function's directory: every
import must come from the artifacts, so a pruned file that is needed fails here.

This x86_64 machine cannot run the arm64 artifacts that deploy, so it builds the same artifacts for its own
architecture with the same code as ``sam build`` (``infra.lambda_build``: same pins, same prune lists), which
is what can go wrong; the native libraries come unchanged from the wheels.

1. the layer alone: numpy, OpenCV, onnxruntime, meaa and meaa_aws import from it; every ONNX model opens;
   the full MTCNN + mood cascade finds the one face in scikit-image's astronaut; an mp4 round trip decodes;
2. BatchFunction on moto's server: an image, a video and a corrupt file -> items, and its EMF metrics;
3. ApiFunction: ``events/api_upload_multipart.json`` -> 200 with one face, and its EMF metrics.

Usage (``make smoke``)::

    python -m infra.smoke_built                              # build into a temporary directory, run, report
    python -m infra.smoke_built --build-dir build/native     # keep the build (rebuilt each time)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.lambda_build import FUNCTIONS, LAYER_ID, REPO_ROOT, BuiltArtifact, build, host_arch
from infra.lambda_child import RESULT_MARK

# What Lambda's python3.12 runtime provides beside the interpreter (not in the layer or the functions).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "dateutil", "six", "urllib3", "jmespath")
CHILD_SCRIPT = Path(__file__).resolve().with_name("lambda_child.py")
RUN_TIMEOUT_S = 600  # a hung child is a failure, not a measurement


@dataclass
class Run:
    """One child interpreter's answer (the marked JSON line) and the JSON lines it logged (logs and EMF)."""

    result: dict[str, Any]
    json_lines: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> list[dict[str, Any]]:
        """The embedded-metric-format documents (``_aws.CloudWatchMetrics``) among the lines."""
        return [line for line in self.json_lines if "CloudWatchMetrics" in (line.get("_aws") or {})]

    def metric_names(self) -> set[str]:
        return {
            metric["Name"]
            for document in self.metrics()
            for directive in document["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        }


@dataclass
class SmokeReport:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, bool(ok), detail))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)


def build_native(build_dir: Path) -> dict[str, BuiltArtifact]:
    """The layer and both functions for this machine's architecture, as ``sam build`` lays them out."""
    arch = host_arch()
    return {logical_id: build(logical_id, build_dir / logical_id, arch) for logical_id in (LAYER_ID, *FUNCTIONS)}


def runtime_dir(directory: Path) -> Path:
    """A stand-in for Lambda's runtime packages: links to this venv's boto3 and its dependencies only."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed here (it stands in for Lambda's runtime)")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = directory / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return directory


def run_isolated(args: list[str], path: list[Path], cwd: Path, env: dict[str, str]) -> Run:
    """``infra/lambda_child.py args`` in ``python -S -P`` with only ``path`` importable, from ``cwd``."""
    child_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(entry) for entry in path),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(cwd),
        **env,
    }
    completed = subprocess.run(
        [sys.executable, "-S", "-P", str(CHILD_SCRIPT), *args],
        cwd=cwd, env=child_env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    result, json_lines = None, []
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK) :])
        elif line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                json_lines.append(json.loads(line))
    if completed.returncode != 0 or result is None:
        output = f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        raise RuntimeError(f"{' '.join(args[:2])} failed with exit status {completed.returncode}:\n{output}")
    return Run(result, json_lines)


def _inside(path: str, roots: list[Path]) -> bool:
    """Whether ``path`` lies under one of ``roots`` (links resolved)."""
    return any(root.resolve() in Path(path).resolve().parents for root in roots)


def _from_artifacts(origins: dict[str, str], roots: list[Path], names: tuple[str, ...]) -> list[str]:
    """Modules among ``names`` that were imported from outside ``roots`` (should be none)."""
    return [
        f"{name}: {origins.get(name)}" for name in names if not origins.get(name) or not _inside(origins[name], roots)
    ]


def compiled_in(run: Run, roots: list[Path]) -> list[str]:
    """Modules of the artifacts that the child compiled from source (should be none: they ship bytecode)."""
    return [path for path in run.result["compiled"] if _inside(path, roots)]


def _face_jpeg(directory: Path) -> Path:
    from devkit.aws import face_jpeg

    path = directory / "face.jpg"
    path.write_bytes(face_jpeg())
    return path


def check_layer(artifacts: dict[str, BuiltArtifact], runtime: Path, scratch: Path, report: SmokeReport) -> None:
    layer = artifacts[LAYER_ID].site_dir
    run = run_isolated(["layer", str(_face_jpeg(scratch))], [layer, runtime], scratch, {"MEAA_THREADS": "1"})
    found = run.result
    outside = _from_artifacts(found["origins"], [layer], ("numpy", "cv2", "onnxruntime", "meaa", "meaa_aws"))
    report.check("layer: numpy, cv2, onnxruntime, meaa, meaa_aws import from it", not outside, "; ".join(outside))
    report.check("layer: every ONNX model opens", len(found["models_opened"]) >= 4, ", ".join(found["models_opened"]))
    report.check("layer: the cascade finds the astronaut's face", len(found["faces"]) == 1, str(found["faces"]))
    report.check("layer: an mp4 decodes", found["video_decoded"], json.dumps(found["versions"]))
    compiled = compiled_in(run, [layer])
    report.check("layer: every module it imported came as bytecode", not compiled, ", ".join(compiled[:5]))


def _function_env(logical_id: str, extra: dict[str, str]) -> dict[str, str]:
    from devkit.lambda_loader import function_spec

    return {**function_spec(logical_id).environment, **extra}


def check_batch(artifacts: dict[str, BuiltArtifact], runtime: Path, scratch: Path, report: SmokeReport) -> None:
    import boto3

    from devkit.aws import (
        all_items,
        create_drop_bucket_and_tables,
        event_for,
        face_jpeg,
        face_video_bytes,
        moto_environment,
        moto_server,
        put_object,
    )

    with moto_server() as endpoint:
        environment = {name: value for name, value in moto_environment(endpoint).items() if value is not None}
        session = boto3.Session(
            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
            region_name=environment["AWS_DEFAULT_REGION"],
        )
        s3 = session.client("s3", endpoint_url=endpoint)
        create_drop_bucket_and_tables(s3, session.client("dynamodb", endpoint_url=endpoint))
        objects = [
            put_object(s3, "incoming/smoke/s1/face.jpg", face_jpeg()),
            put_object(s3, "incoming/smoke/s1/clip.mp4", face_video_bytes(scratch)),
            put_object(s3, "incoming/smoke/s1/broken.jpg", b"not an image"),
        ]
        event_path = scratch / "s3_event.json"
        event_path.write_text(json.dumps(event_for(objects)))
        function = artifacts["BatchFunction"].site_dir
        run = run_isolated(
            ["handler", "meaa_batch.handler.handler", str(event_path), "BatchFunction"],
            [function, artifacts[LAYER_ID].site_dir, runtime],
            function,
            _function_env("BatchFunction", environment),
        )
        items = all_items(session.resource("dynamodb", endpoint_url=endpoint))

    roots = [function, artifacts[LAYER_ID].site_dir]
    outside = _from_artifacts(run.result["origins"], roots, ("numpy", "cv2", "meaa", "aws_lambda_powertools"))
    report.check("batch: meaa, numpy, cv2 and Powertools import from the artifacts", not outside, "; ".join(outside))
    compiled = compiled_in(run, roots)
    report.check("batch: every module it imported came as bytecode", not compiled, ", ".join(compiled[:5]))
    statuses = [(o["key"].rsplit("/", 1)[1], o["status"]) for o in run.result["result"]["outcomes"]]
    report.check(
        "batch: image and video scored, corrupt file failed",
        statuses == [("face.jpg", "scored"), ("clip.mp4", "scored"), ("broken.jpg", "failed")],
        str(statuses),
    )
    results = {item["key"].rsplit("/", 1)[1]: item for item in items if item["sk"].endswith("#RESULT")}
    report.check(
        "batch: items in DynamoDB",
        results.get("face.jpg", {}).get("face_count") == 1
        and results.get("clip.mp4", {}).get("frames_with_face", 0) > 0
        and (results.get("broken.jpg", {}).get("error") or {}).get("code") == "invalid_image",
        f"{len(items)} items",
    )
    names = run.metric_names()
    wanted = {"ObjectsScored", "ObjectsFailed", "FacesFound", "VideoFramesSampled", "Errors"}
    report.check("batch: EMF metrics", wanted <= names, ", ".join(sorted(names)))


def check_api(artifacts: dict[str, BuiltArtifact], runtime: Path, report: SmokeReport) -> None:
    function = artifacts["ApiFunction"].site_dir
    event = REPO_ROOT / "events" / "api_upload_multipart.json"
    run = run_isolated(
        ["handler", "meaa_api.lambda_handler.handler", str(event), "ApiFunction"],
        [function, artifacts[LAYER_ID].site_dir, runtime],
        function,
        _function_env("ApiFunction", {"AWS_DEFAULT_REGION": "us-east-1", "MEAA_AUTH_MODE": "none"}),
    )
    roots = [function, artifacts[LAYER_ID].site_dir]
    outside = _from_artifacts(run.result["origins"], roots, ("numpy", "meaa", "fastapi", "pydantic"))
    report.check("api: meaa, numpy, FastAPI and pydantic import from the artifacts", not outside, "; ".join(outside))
    compiled = compiled_in(run, roots)
    report.check("api: every module it imported came as bytecode", not compiled, ", ".join(compiled[:5]))
    answer = run.result["result"]
    body = json.loads(answer.get("body") or "{}")
    report.check(
        "api: the sample upload answers 200 with one face",
        answer.get("statusCode") == 200 and body.get("face_count") == 1,
        f"status {answer.get('statusCode')}, faces {body.get('face_count')}",
    )
    names = run.metric_names()
    wanted = {"RequestLatency", "FacesFound", "ReliableFaces", "StageLatency_total"}
    report.check("api: EMF metrics", wanted <= names, ", ".join(sorted(names)))


def smoke(build_dir: Path) -> SmokeReport:
    """Build for this machine, then each check; a check whose child fails is reported, and the others still run."""
    report = SmokeReport()
    artifacts = build_native(build_dir)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        runtime = runtime_dir(scratch / "runtime")
        checks = {
            "layer": lambda: check_layer(artifacts, runtime, scratch, report),
            "batch": lambda: check_batch(artifacts, runtime, scratch, report),
            "api": lambda: check_api(artifacts, runtime, report),
        }
        for name, check in checks.items():
            try:
                check()
            except (RuntimeError, subprocess.TimeoutExpired, KeyError, ValueError) as error:
                report.check(f"{name}: runs", False, str(error)[-2000:])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=None, help="keep the native build here (default: temporary)")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log
    if args.build_dir:
        report = smoke(args.build_dir.resolve())
    else:
        with tempfile.TemporaryDirectory() as build_dir:
            report = smoke(Path(build_dir))
    for name, ok, detail in report.checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f" ({detail})" if detail else ""))
    print(f"smoke test of the {host_arch()} build: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
