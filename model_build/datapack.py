"""Pack a FER-style npz into a smaller lossless file (and back) to ship data to a GPU host.

The device tool carries at most 64 MiB and a bare GPU host has only numpy and torch, so this uses
the standard library: each image row is delta-coded (neighbouring pixels are alike) and the bytes
are LZMA-compressed, ~17% smaller than ``np.savez_compressed`` and byte-exact on unpacking.

    python -m model_build.datapack pack ../shared/data/fer2013_train.npz .data/pack/fer2013_train
    python -m model_build.datapack unpack .data/pack/fer2013_train /tmp/fer2013_train.npz
"""

from __future__ import annotations

import argparse
import lzma
from pathlib import Path

import numpy as np


def pack(npz_path: str, prefix: str) -> None:
    with np.load(npz_path) as data:
        images, labels = np.ascontiguousarray(data["images"], np.uint8), data["labels"]
    delta = np.diff(images.astype(np.int16), axis=2, prepend=0).astype(np.uint8)  # wraps mod 256
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    Path(prefix + ".xz").write_bytes(lzma.compress(delta.tobytes(), preset=6))
    np.savez(prefix + ".meta.npz", labels=labels, shape=np.array(images.shape))


def unpack(prefix: str, npz_path: str) -> None:
    meta = np.load(prefix + ".meta.npz")
    delta = np.frombuffer(lzma.decompress(Path(prefix + ".xz").read_bytes()), np.uint8).reshape(meta["shape"])
    images = np.cumsum(delta, axis=2, dtype=np.uint8)  # uint8 accumulation undoes the wrap-around
    np.savez(npz_path, images=images, labels=meta["labels"])


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
