"""Pack a FER-style npz into a smaller lossless file (and back) to ship data to a GPU host.

The device tool carries at most 64 MiB and a bare GPU host has only numpy and torch, so this uses
the standard library: each image is delta-coded along both axes (each pixel minus its left, upper and
upper-left neighbours' plane, modulo 256), and the bytes LZMA-compressed: 78 % of the raw size on
FER2013 (a row delta alone: 80 %; these JPEG-derived faces hold little redundancy), byte-exact on
unpacking.

    python -m model_build.datapack pack ../shared/data/fer2013_train.npz .data/pack/fer2013_train
    python -m model_build.datapack unpack .data/pack/fer2013_train /tmp/fer2013_train.npz
"""

from __future__ import annotations

import argparse
import lzma
from pathlib import Path

import numpy as np


def pack(npz_path: str, prefix: str) -> None:
    """Images delta-coded and LZMA-compressed; every other array (labels, crop geometry...) kept as is."""
    with np.load(npz_path) as data:
        images = np.ascontiguousarray(data["images"], np.uint8)
        others = {key: data[key] for key in data.files if key not in ("images", "shape", "classes")}
    wide = images.astype(np.int16)
    delta = np.diff(np.diff(wide, axis=2, prepend=0), axis=1, prepend=0).astype(np.uint8)  # wraps mod 256
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    Path(prefix + ".xz").write_bytes(lzma.compress(delta.tobytes(), preset=6))
    np.savez(prefix + ".meta.npz", shape=np.array(images.shape), **others)


def unpack(prefix: str, npz_path: str) -> None:
    with np.load(prefix + ".meta.npz") as meta:
        others = {key: meta[key] for key in meta.files if key != "shape"}
        shape = meta["shape"]
    delta = np.frombuffer(lzma.decompress(Path(prefix + ".xz").read_bytes()), np.uint8).reshape(shape)
    # uint8 accumulation (rows, then columns) undoes both deltas and the wrap-around.
    images = np.cumsum(np.cumsum(delta, axis=1, dtype=np.uint8), axis=2, dtype=np.uint8)
    np.savez(npz_path, images=images, **others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pack_parser = sub.add_parser("pack")
    pack_parser.add_argument("npz")
    pack_parser.add_argument("prefix")
    unpack_parser = sub.add_parser("unpack")
    unpack_parser.add_argument("prefix")
    unpack_parser.add_argument("npz")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.npz, args.prefix)
    else:
        unpack(args.prefix, args.npz)


if __name__ == "__main__":
    main()
