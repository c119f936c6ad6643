"""Build one Lambda artifact of template.yaml for ``sam build``: the MeaaLayer or a function, pruned.

``sam build`` runs the repository Makefile's ``build-<LogicalId>`` targets (template.yaml: ``BuildMethod:
makefile``), which run ``python -m infra.lambda_build <LogicalId> --out $(ARTIFACTS_DIR)``. SAM's own python
builder installs the requirements but cannot drop what is dead weight at run time, and its layer + API
function do not fit this project's 170 MB budget; this does what it does (manylinux wheels for the target
architecture, never sdists; the package code copied beside them) and then prunes.

- ``MeaaLayer`` -> ``<out>/python/``: ``layers/requirements.txt`` and the layer's packages (``meaa`` with its
  models, ``meaa_aws``); Lambda mounts it at /opt/python. Fails when the layer alone is over the budget.
- ``ApiFunction`` / ``BatchFunction`` -> ``<out>/``: the function's ``requirements.txt`` and its package;
  Lambda unpacks it at /var/task.
- Both ship Python 3.12 bytecode (``compile_bytecode``): Lambda cannot write a bytecode cache, so without it
  every cold start compiles what it imports.

Only the standard library and pip are needed (no virtual environment, no Docker): plain ``sam build`` works
from a fresh clone. ``infra/smoke_built.py`` builds the same artifacts for this machine's architecture and
runs them (the layer's cascade, both handlers on moto); ``benchmarks/layer_size.py`` prints the sizes.

Usage::

    sam build                                                  # what deploys: all three, arm64
    python -m infra.lambda_build MeaaLayer --out build/layer   # one artifact by hand
"""

from __future__ import annotations

import argparse
import logging
import platform
import py_compile
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.layer_size import BUDGET_BYTES

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
PYTHON_VERSION = "3.12"  # template.yaml's Runtime: python3.12 (checked by tests/unit/test_build.py)

LAYER_ID = "MeaaLayer"
LAYER_SOURCE = REPO_ROOT / "layers"
LAYER_PACKAGES = ("meaa", "meaa_aws")
# Function logical id -> CodeUri, as in template.yaml (checked by tests/unit/test_build.py).
FUNCTIONS = {"ApiFunction": "functions/api", "BatchFunction": "functions/batch"}

# Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2_34 fits.
# pip does not expand a manylinux_2_34 tag to older ones, so list the tags the wheels we use carry.
PLATFORMS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
}

# What every artifact can lose: caches, install records, console scripts, C headers, type stubs.
COMMON_PRUNE: tuple[str, ...] = (
    "**/__pycache__",
    "**/*.pyc",
    "*.dist-info/RECORD",
    "*.dist-info/INSTALLER",
    "*.dist-info/REQUESTED",
    "*.dist-info/direct_url.json",
    "bin",
    "**/*.pyi",
    "**/*.h",
    "**/*.pxd",
    "**/*.a",
    "**/*.js.map",
)

# Paths (relative to python/) that nothing imports at run time. The layer's own packages are never pruned.
# ``infra/smoke_built.py`` proves each entry on a build for this machine: the layer imports, opens every
# ONNX model, runs the cascade on a real face and decodes a video; both handlers run on moto.
LAYER_PRUNE: tuple[str, ...] = (
    *COMMON_PRUNE,
    "**/tests",
    # onnxruntime: training and model-conversion tools, the quantization toolkit (the models ship already
    # quantized), transformers helpers, the test runner, C headers.
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/backend",
    "onnxruntime/datasets",
    "onnxruntime/include",
    # The C-API library: the Python binding (onnxruntime_pybind11_state) links ORT statically and neither
    # links nor dlopens it (readelf -d, and a grep of onnxruntime/*.py).
    "onnxruntime/capi/libonnxruntime.so*",
    # onnxruntime's install-time dependencies that only its tools import (grep of onnxruntime/**/*.py).
    "google",
    "protobuf-*.dist-info",
    "flatbuffers",
    "flatbuffers-*.dist-info",
    "packaging",
    "packaging-*.dist-info",
    # OpenCV: Haar cascades (meaa detects with MTCNN), typing helpers.
    "cv2/data",
    "cv2/typing",
    "cv2/py.typed",
    # numpy: static libraries and headers, the PyInstaller hook, docs, the extension modules of numpy's own
    # test suite (1.6 MB), and numpy.random (3.5 MB of extension modules): nothing in the layer or the
    # functions uses it (tests/unit/test_build.py scans the shipped packages for it). So `from numpy import *`
    # fails on this layer (it imports numpy.random); nothing shipped star-imports numpy (the scan checks).
    "numpy/_core/include",
    "numpy/_core/lib",
    "numpy/_core/_*_tests.*",
    "numpy/_core/_simd.*",
    "numpy/_pyinstaller",
    "numpy/doc",
    "numpy/random",
    # Powertools: the functions use its Logger, Metrics, idempotency and S3 event classes (and Tracer's
    # module, which its package imports); the REST event handler, parser, parameters, feature flags, data
    # masking, batch, streaming, validation and Datadog metrics are unused.
    "aws_lambda_powertools/event_handler",
    "aws_lambda_powertools/utilities/auth_alpha",
    "aws_lambda_powertools/utilities/batch",
    "aws_lambda_powertools/utilities/circuit_breaker",
    "aws_lambda_powertools/utilities/data_masking",
    "aws_lambda_powertools/utilities/feature_flags",
    "aws_lambda_powertools/utilities/kafka",
    "aws_lambda_powertools/utilities/metadata",
    "aws_lambda_powertools/utilities/parameters",
    "aws_lambda_powertools/utilities/parser",
    "aws_lambda_powertools/utilities/streaming",
    "aws_lambda_powertools/utilities/validation",
    "aws_lambda_powertools/metrics/provider/datadog",
)

# Paths (relative to the function's root) that its code never reads.
FUNCTION_PRUNE: tuple[str, ...] = (
    *COMMON_PRUNE,
    # /docs serves Swagger UI only (meaa_api.routers.docs.ASSETS), not ReDoc.
    "fastapi_offline/static/redoc.standalone.js",
    # pydantic's copy of its 1.x API: FastAPI imports it only to reject v1 models, and treats an
    # ImportError as "no v1 model" (fastapi/_compat/shared.py).
    "pydantic/v1",
)

# Module names that a pruned path held: tests/unit/test_build.py fails when shipped code refers to one.
PRUNED_MODULES: tuple[str, ...] = (
    "numpy.random",
    "packaging",
    "google.protobuf",
    "flatbuffers",
    "onnxruntime.tools",
    "onnxruntime.quantization",
    "onnxruntime.transformers",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.feature_flags",
    "aws_lambda_powertools.utilities.validation",
    "aws_lambda_powertools.utilities.streaming",
    "aws_lambda_powertools.utilities.data_masking",
    "pydantic.v1",
)

# Where Lambda puts each kind of artifact (what the bytecode's file names say, so tracebacks read as deployed).
RUNTIME_ROOTS = {"layer": "/opt/python", "function": "/var/task"}
# Packages whose source files are read as text at run time: OpenCV's loader exec()s its config*.py files.
KEEP_SOURCES = ("cv2",)

LOG = logging.getLogger("infra.lambda_build")


@dataclass(frozen=True)
class BuiltArtifact:
    """One built artifact: where its importable files are, and its size after pruning."""

    logical_id: str
    arch: str
    root: Path  # the artifact directory (sam's ARTIFACTS_DIR)
    site_dir: Path  # what Lambda puts on sys.path: <root>/python for the layer, <root> for a function
    bytes_unzipped: int
    bytes_pruned: int


def template_architecture(template_path: Path = TEMPLATE_PATH) -> str:
    """The layer's ``BuildArchitecture`` (read with a regular expression: this module needs no PyYAML)."""
    found = re.findall(r"^\s+BuildArchitecture:\s*(\S+)\s*$", template_path.read_text(), flags=re.M)
    if len(set(found)) != 1 or found[0] not in PLATFORMS:
        raise ValueError(f"{template_path}: expected one BuildArchitecture in {sorted(PLATFORMS)}, found {found}")
    return found[0]


def host_arch() -> str:
    return {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}[platform.machine().lower()]


def install_requirements(target: Path, arch: str, requirements: Path) -> None:
    """Install ``requirements`` into ``target`` from wheels for Lambda's platform (nothing is compiled here)."""
    lines = [line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines()]
    if not any(lines):
        return
    platforms = [arg for tag in PLATFORMS[arch] for arg in ("--platform", tag)]
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile", "--no-warn-conflicts",
        *platforms,
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        "--target", str(target),
        "-r", str(requirements),
    ]  # fmt: skip
    LOG.info("%s: pip install -r %s (%s wheels)", target.name, requirements.relative_to(REPO_ROOT), arch)
    subprocess.run(command, check=True)


def prune_tree(root: Path, globs: tuple[str, ...], keep: tuple[Path, ...] = ()) -> int:
    """Delete what ``globs`` match under ``root`` (never inside ``keep``); returns the bytes removed."""
    removed = 0
    for pattern in globs:
        for path in sorted(root.glob(pattern), key=lambda p: len(p.parts), reverse=True):
            if not (path.exists() or path.is_symlink()) or any(kept == path or kept in path.parents for kept in keep):
                continue
            removed += tree_bytes(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    return removed


def tree_bytes(path: Path) -> int:
    """Bytes of a file or of every file under a directory (what Lambda counts, unzipped)."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _copy_code(source: Path, target: Path) -> None:
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"), dirs_exist_ok=True
    )


def compile_bytecode(site_dir: Path, runtime_root: str, own: tuple[Path, ...]) -> int:
    """Compile every module under ``site_dir`` for Python ``PYTHON_VERSION``; returns the modules compiled.

    Lambda's /opt and /var/task are read-only, so Python cannot cache bytecode there: without it, every cold start
    compiled each module it imported from source (the API's init: ``python -m benchmarks.cold_init``). The
    project's own packages (``own``) keep their sources, bytecode beside them in ``__pycache__``; other packages
    ship bytecode alone, in the source's place, because both would put layer + API function over the budget
    (README, "Package size"); ``KEEP_SOURCES`` keep theirs too. The pycs are hash-based and never checked
    against a source: an artifact does not change once built, and the same build gives the same bytes.
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON_VERSION:
        raise RuntimeError(
            f"bytecode for Lambda's python{PYTHON_VERSION} must be compiled by Python {PYTHON_VERSION}, not "
            f"{platform.python_version()} (set BUILD_PYTHON or PYTHON312)"
        )
    compiled = 0
    for source in sorted(site_dir.rglob("*.py")):
        relative = source.relative_to(site_dir)
        keep_source = relative.parts[0] in KEEP_SOURCES or any(root in source.parents for root in own)
        try:
            py_compile.compile(
                str(source),
                cfile=None if keep_source else str(source.with_suffix(".pyc")),
                dfile=f"{runtime_root}/{relative.as_posix()}",
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError as error:  # not Python 3.12 (a template, a Python 2 leftover): as shipped
            LOG.warning("%s: left as source (%s)", relative, error.msg.strip().splitlines()[-1])
            continue
        if not keep_source:
            source.unlink()
        compiled += 1
    return compiled


def build_layer(out_dir: Path, arch: str, *, prune: bool = True, bytecode: bool = True) -> BuiltArtifact:
    """The layer: ``<out_dir>/python/`` holds the pinned requirements and the layer's packages."""
    site_dir = _fresh_dir(out_dir / "python")
    install_requirements(site_dir, arch, LAYER_SOURCE / "requirements.txt")
    for package in LAYER_PACKAGES:
        _copy_code(LAYER_SOURCE / package, site_dir / package)
    own = tuple(site_dir / package for package in LAYER_PACKAGES)
    removed = prune_tree(site_dir, LAYER_PRUNE, keep=own) if prune else 0
    if bytecode:
        compile_bytecode(site_dir, RUNTIME_ROOTS["layer"], own)
    return BuiltArtifact(LAYER_ID, arch, out_dir, site_dir, tree_bytes(site_dir), removed)


def build_function(
    logical_id: str, out_dir: Path, arch: str, *, prune: bool = True, bytecode: bool = True
) -> BuiltArtifact:
    """A function: its requirements, then its code at the root (Lambda's /var/task)."""
    source = REPO_ROOT / FUNCTIONS[logical_id]
    if out_dir.exists():
        for child in out_dir.iterdir():  # sam creates ARTIFACTS_DIR; keep the directory, empty it
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    requirements = source / "requirements.txt"
    if requirements.exists():
        install_requirements(out_dir, arch, requirements)
    _copy_code(source, out_dir)
    own = tuple(path for path in out_dir.iterdir() if (source / path.name).exists())
    removed = prune_tree(out_dir, FUNCTION_PRUNE, keep=own) if prune else 0
    if bytecode:
        compile_bytecode(out_dir, RUNTIME_ROOTS["function"], own)
    return BuiltArtifact(logical_id, arch, out_dir, out_dir, tree_bytes(out_dir), removed)


def build(logical_id: str, out_dir: Path, arch: str, *, prune: bool = True, bytecode: bool = True) -> BuiltArtifact:
    if logical_id == LAYER_ID:
        return build_layer(out_dir, arch, prune=prune, bytecode=bytecode)
    if logical_id in FUNCTIONS:
        return build_function(logical_id, out_dir, arch, prune=prune, bytecode=bytecode)
    raise KeyError(f"{logical_id} is not built here: one of {LAYER_ID}, {', '.join(FUNCTIONS)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logical_id", choices=[LAYER_ID, *FUNCTIONS])
    parser.add_argument("--out", type=Path, required=True, help="the artifact directory (sam: $ARTIFACTS_DIR)")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default=None, help="default: template.yaml's")
    parser.add_argument("--no-prune", action="store_true", help="keep everything (to measure what pruning saves)")
    parser.add_argument("--no-bytecode", action="store_true", help="ship sources only (to measure what bytecode saves)")
    parser.add_argument("--budget-mb", type=float, default=BUDGET_BYTES / 1e6)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    arch = args.arch or template_architecture()
    artifact = build(args.logical_id, args.out.resolve(), arch, prune=not args.no_prune, bytecode=not args.no_bytecode)
    LOG.info(
        "%s (%s): %.1f MB unzipped, %.1f MB pruned, in %s",
        artifact.logical_id, artifact.arch, artifact.bytes_unzipped / 1e6, artifact.bytes_pruned / 1e6, artifact.root,
    )  # fmt: skip
    if artifact.logical_id == LAYER_ID and artifact.bytes_unzipped > args.budget_mb * 1e6:
        LOG.error("%s alone is over the %.1f MB budget (layer + each function must fit)", LAYER_ID, args.budget_mb)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
