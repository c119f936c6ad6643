"""Build the Lambda artifacts like ``sam build`` does, and prune the layer to fit Lambda's size limit.

``sam build`` installs ``layers/requirements.txt`` into the layer's ``python/`` and copies the package,
but it cannot drop what is dead weight at run time, and numpy + onnxruntime + opencv-python-headless
unzip to more than Lambda's 250 MB (function + layers) for x86_64. This script writes the same output
as ``sam build`` (``<out>/MeaaLayer/python/...``, ``<out>/ApiFunction``, ``<out>/BatchFunction`` and
``<out>/template.yaml`` pointing at them) from manylinux wheels for the target platform, then removes
files that nothing imports at run time. ``benchmarks/layer_size.py`` checks the budget.

Usage (``.aws-sam/build`` is where ``sam deploy`` looks for a built template)::

    python infra/build_layer.py --arch arm64 --out .aws-sam/build --verify
    python benchmarks/layer_size.py .aws-sam/build
    sam deploy --guided
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_SOURCE = REPO_ROOT / "layers"
PACKAGE_DIR = LAYER_SOURCE / "meaa"

# Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2_34 fits.
# pip does not expand a manylinux_2_34 tag to older ones, so list the tags the wheels we use carry.
PLATFORMS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
}
# Template logical id -> source directory (relative to the repository), as declared in template.yaml.
FUNCTIONS = {"ApiFunction": "functions/api", "BatchFunction": "functions/batch"}
LAYER_ID = "MeaaLayer"

# Paths (relative to python/) that nothing imports at run time. Each entry was checked by
# ``--verify``: the layer still imports meaa, opens every ONNX model and decodes images/videos.
PRUNE_GLOBS: tuple[str, ...] = (
    "**/__pycache__",
    "**/tests",
    "*.dist-info/RECORD",
    "*.dist-info/INSTALLER",
    "*.dist-info/REQUESTED",
    "*.dist-info/direct_url.json",
    "bin",
    # onnxruntime: training and model-conversion tools, the test runner, the C headers, the
    # quantization toolkit (we ship already-quantized models), transformers helpers.
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/backend",
    "onnxruntime/datasets",
    "onnxruntime/include",
    # The C-API library: the Python binding (onnxruntime_pybind11_state) links ORT statically and
    # neither links nor dlopens it (checked with readelf -d and a grep of onnxruntime/*.py).
    "onnxruntime/capi/libonnxruntime.so*",
    # onnxruntime's install-time deps that only its tools/transformers import: protobuf, flatbuffers.
    "google",
    "protobuf-*.dist-info",
    "flatbuffers",
    "flatbuffers-*.dist-info",
    # OpenCV: cascade XML files (meaa detects with MTCNN), type stubs, the cv2 config for Python 2.
    "cv2/data",
    "**/*.pyi",
    "cv2/typing",
    "cv2/py.typed",
    # numpy: C headers and static libs (numpy/f2py stays: ``from numpy import *`` imports it).
    "numpy/_core/include",
    "numpy/_core/lib",
    "numpy/_pyinstaller",
    "numpy/typing/tests",
    "numpy/doc",
    "**/*.a",
    "**/*.h",
    "**/*.pxd",
)


@dataclass(frozen=True)
class LayerBuild:
    """Where the layer was built and for which platform."""

    arch: str
    out_dir: Path

    @property
    def site_dir(self) -> Path:
        return self.out_dir / "python"


def install_requirements(target: Path, arch: str, requirements: Path, python_version: str) -> None:
    """Install wheels for the Lambda platform (never sdists: nothing is compiled here)."""
    if not requirements.read_text().strip() or all(
        line.strip().startswith("#") or not line.strip() for line in requirements.read_text().splitlines()
    ):
        return
    platforms = [arg for platform in PLATFORMS[arch] for arg in ("--platform", platform)]
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile", "--no-warn-conflicts",
        *platforms,
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--target", str(target),
        "-r", str(requirements),
    ]
    subprocess.run(command, check=True)


def build_function(source: Path, target: Path, arch: str, python_version: str) -> None:
    """A function artifact: its requirements, then its code at the root (Lambda's /var/task)."""
    target.mkdir(parents=True)
    requirements = source / "requirements.txt"
    if requirements.exists():
        install_requirements(target, arch, requirements, python_version)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    prune_tree(target, ("**/__pycache__", "*.dist-info/RECORD", "*.dist-info/INSTALLER", "bin"))


def write_built_template(out_dir: Path, arch: str) -> None:
    """template.yaml with CodeUri/ContentUri pointing at the built directories (as sam build writes)."""
    text = (REPO_ROOT / "template.yaml").read_text()
    replacements = {f"CodeUri: {source}\n": f"CodeUri: {logical_id}\n" for logical_id, source in FUNCTIONS.items()}
    replacements["ContentUri: layers/\n"] = f"ContentUri: {LAYER_ID}\n"
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise ValueError(f"template.yaml: expected exactly one {old!r}")
        text = text.replace(old, new)
    # Already built: keep sam from building again, and make the architecture the one built here.
    text = text.replace("      BuildMethod: python3.12\n", "")
    text = text.replace("[arm64]", f"[{arch}]").replace("BuildArchitecture: arm64", f"BuildArchitecture: {arch}")
    (out_dir / "template.yaml").write_text(text)


def copy_package(build: LayerBuild) -> None:
    """Copy the meaa package and its models (no caches)."""
    shutil.copytree(
        PACKAGE_DIR,
        build.site_dir / "meaa",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"),
        dirs_exist_ok=True,
    )


def prune(build: LayerBuild, globs: tuple[str, ...] = PRUNE_GLOBS) -> int:
    """Delete run-time-dead paths from the layer (never from meaa); returns the bytes removed."""
    return prune_tree(build.site_dir, globs, keep=build.site_dir / "meaa")


def prune_tree(root: Path, globs: tuple[str, ...], keep: Path | None = None) -> int:
    removed = 0
    for pattern in globs:
        for path in sorted(root.glob(pattern), key=lambda p: len(p.parts), reverse=True):
            if not path.exists() or (keep is not None and keep in path.parents):
                continue
            removed += _tree_size(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    return removed


def _tree_size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def write_zip(build: LayerBuild, zip_path: Path) -> None:
    """Zip the layer the way Lambda expects it (``python/...`` at the root), deterministic order."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(build.out_dir.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(build.out_dir))


def _face_jpeg(directory: Path) -> Path | None:
    """scikit-image's astronaut (one face) as a JPEG file, when this interpreter has scikit-image."""
    try:
        import cv2
        from skimage import data
    except ImportError:
        return None
    path = directory / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def verify(build: LayerBuild) -> None:
    """Run the layer in a fresh interpreter with only the layer on the path (this machine's arch).

    Imports, every ONNX model, the whole MTCNN cascade and the mood model on a real face (when
    scikit-image is available here), and an mp4 round trip through OpenCV's FFmpeg.
    """
    script = (
        "import os, sys, tempfile, numpy, cv2, onnxruntime, meaa, pathlib\n"
        "from meaa import MoodEstimator\n"
        "from meaa.config import Settings\n"
        "assert all(m.__file__.startswith(sys.argv[1]) for m in (numpy, cv2, onnxruntime, meaa))\n"
        "exec('from numpy import *; from cv2 import *', {})  # star imports reach every public submodule\n"
        "for model in sorted(pathlib.Path(Settings().models_dir).glob('*.onnx')):\n"
        "    onnxruntime.InferenceSession(str(model), providers=['CPUExecutionProvider'])\n"
        "image = numpy.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=numpy.uint8)\n"
        "faces = -1\n"
        "if len(sys.argv) > 2:\n"
        "    analysis = MoodEstimator().analyze(pathlib.Path(sys.argv[2]).read_bytes())\n"
        "    faces = len(analysis.faces)\n"
        "    assert faces == 1 and analysis.faces[0].mood, 'no face found in the astronaut'\n"
        "path = os.path.join(tempfile.mkdtemp(), 'clip.mp4')\n"
        "writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10, (320, 240))\n"
        "[writer.write(image) for _ in range(5)]\n"
        "writer.release()\n"
        "capture = cv2.VideoCapture(path)\n"
        "assert capture.isOpened() and capture.read()[0], 'video decode failed'\n"
        "print('layer ok: numpy', numpy.__version__, 'cv2', cv2.__version__, 'onnxruntime',"
        " onnxruntime.__version__, '| faces in the astronaut:', faces if faces >= 0 else 'not checked')\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(build.site_dir),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with tempfile.TemporaryDirectory() as scratch:
        face = _face_jpeg(Path(scratch))
        arguments = [str(build.site_dir)] + ([str(face)] if face else [])
        subprocess.run([sys.executable, "-S", "-c", script, *arguments], check=True, env=env)


def host_arch() -> str:
    return {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}[platform.machine().lower()]


def verify_anywhere(build: LayerBuild, requirements: Path, python_version: str) -> None:
    """Verify the layer; for a foreign architecture, verify a twin built for this machine instead.

    The twin has the same pins, the same package and the same prune list, so it shows that pruning
    removed nothing the code imports (the part that can go wrong); the native libraries themselves
    come unchanged from the wheels.
    """
    if build.arch == host_arch():
        verify(build)
        return
    with tempfile.TemporaryDirectory() as scratch:
        twin = LayerBuild(arch=host_arch(), out_dir=Path(scratch) / LAYER_ID)
        twin.site_dir.mkdir(parents=True)
        install_requirements(twin.site_dir, twin.arch, requirements, python_version)
        copy_package(twin)
        prune(twin)
        logging.info("verifying a %s twin of the %s layer (same pins and prune list)", twin.arch, build.arch)
        verify(twin)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--out", type=Path, default=None, help="build directory (default build/<arch>)")
    parser.add_argument("--requirements", type=Path, default=LAYER_SOURCE / "requirements.txt")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--zip", type=Path, default=None, help="also write the layer zip here")
    parser.add_argument("--no-prune", action="store_true", help="keep everything (to measure pruning)")
    parser.add_argument("--verify", action="store_true", help="run the pruned layer: imports, models, image and video")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    out_dir = (args.out or REPO_ROOT / "build" / args.arch).resolve()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    build = LayerBuild(arch=args.arch, out_dir=out_dir / LAYER_ID)
    build.site_dir.mkdir(parents=True)
    install_requirements(build.site_dir, args.arch, args.requirements, args.python_version)
    copy_package(build)
    for logical_id, source in FUNCTIONS.items():
        build_function(REPO_ROOT / source, out_dir / logical_id, args.arch, args.python_version)
    write_built_template(out_dir, args.arch)
    if not args.no_prune:
        removed = prune(build)
        logging.info("pruned %.1f MB", removed / 1e6)
    if args.verify:
        verify_anywhere(build, args.requirements, args.python_version)
    if args.zip:
        write_zip(build, args.zip.resolve())
        logging.info("wrote %s (%.1f MB)", args.zip, args.zip.stat().st_size / 1e6)
    logging.info("built %s (template.yaml, %s, %s)", out_dir, LAYER_ID, ", ".join(FUNCTIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
