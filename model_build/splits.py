"""Held-out split of FER2013 Training, so that fer2013_val (PublicTest) is never used to choose anything.

Every new model trains on the *fit* part and uses the *holdout* part for everything that is a choice:
monitoring, the calibration temperature, teacher weights. fer2013_val is then reported untouched.

The split is a pure function of the data (no random state to carry around): faces are grouped by their
FER2013 source ``ids`` and by identical pixels (a few images repeat), and a group goes to the holdout when
the sha256 of its key falls in the lowest ``fraction`` of the hash space. So a group never straddles
the two parts, and the same files give the same split on every machine.

    python -m model_build.splits ../shared/data/fer2013_train.npz --out-dir model_build/cache/splits \
        [--geometry model_build/cache/fer2013_train_geometry.npz]

``--geometry`` (``model_build/geometry.py``'s table) is split the same way and stored beside the images
as ``crop_found``, ``crop_scale``, ``crop_center`` for ``train.py --pipeline-crop-prob``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HOLDOUT_FRACTION = 0.1


@dataclass(frozen=True)
class TrainSplit:
    """Boolean masks over fer2013_train: ``fit`` (train on it) and ``holdout`` (choose on it)."""

    fit: np.ndarray
    holdout: np.ndarray

    def summary(self) -> dict:
        return {"fit": int(self.fit.sum()), "holdout": int(self.holdout.sum())}


def group_keys(images: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    """One key per image; images sharing an id or identical pixels share a key (union-find)."""
    count = len(images)
    parent = np.arange(count)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union_equal(values) -> None:
        first: dict = {}
        for index, value in enumerate(values):
            if value in first:
                a, b = find(first[value]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first[value] = index

    union_equal(hashlib.sha256(image.tobytes()).digest() for image in images)
    if ids is not None:
        union_equal(int(value) for value in ids)
    roots = np.array([find(i) for i in range(count)])
    # The key of a group is the id (or pixel hash) of its first member, so it does not depend on order.
    first_id = ids[roots] if ids is not None else roots
    return np.asarray(first_id)


def split_train(images: np.ndarray, ids: np.ndarray | None, fraction: float = HOLDOUT_FRACTION) -> TrainSplit:
    keys = group_keys(images, ids)
    threshold = int(fraction * 2**32)
    in_holdout = np.array(
        [int.from_bytes(hashlib.sha256(f"fer2013:{key}".encode()).digest()[:4], "big") < threshold for key in keys]
    )
    return TrainSplit(fit=~in_holdout, holdout=in_holdout)


def limited_indices(count: int, limit: int) -> np.ndarray:
    """The seeded subset of ``limit`` rows that smoke runs use everywhere (train, bank, geometry)."""
    return np.sort(np.random.default_rng(0).permutation(count)[:limit])


def load_split(train_npz: str, fraction: float = HOLDOUT_FRACTION) -> tuple[np.ndarray, np.ndarray, TrainSplit]:
    """images, labels and the split of a FER2013 Training npz (its ``ids`` field, when present, groups)."""
    with np.load(train_npz) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
        ids = data["ids"] if "ids" in data.files else None
    return images, labels, split_train(images, ids, fraction)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", help="fer2013_train.npz (images, labels, ids)")
    parser.add_argument("--out-dir", required=True, help="writes fer2013_fit.npz and fer2013_holdout.npz here")
    parser.add_argument("--fraction", type=float, default=HOLDOUT_FRACTION)
    parser.add_argument("--geometry", help="geometry.py npz for the same file (found, scale, center)")
    args = parser.parse_args(argv)
    images, labels, split = load_split(args.train, args.fraction)
    extra: dict[str, np.ndarray] = {}
    if args.geometry:
        with np.load(args.geometry) as geometry:
            extra = {f"crop_{key}": geometry[key] for key in ("found", "scale", "center")}
        if any(len(value) != len(images) for value in extra.values()):
            raise SystemExit(f"{args.geometry} does not have one row per image of {args.train}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, mask in (("fit", split.fit), ("holdout", split.holdout)):
        arrays = {key: value[mask] for key, value in extra.items()}
        np.savez(out / f"fer2013_{name}.npz", images=images[mask], labels=labels[mask].astype(np.uint8), **arrays)
    summary = {
        **split.summary(),
        "fraction": args.fraction,
        "holdout_label_counts": np.bincount(labels[split.holdout], minlength=7).tolist(),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
