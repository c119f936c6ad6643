"""Size breakdown of built Lambda artifacts, and the 200 MB budget check (exit status 1 when over).

Lambda allows 250 MB unzipped for a function plus all its layers; we keep 50 MB of headroom. Each
function counts the layer plus its own code and dependencies, so the check is layer + largest function.

Usage (after ``python infra/build_layer.py --arch arm64``, or on ``sam build``'s output)::

    python benchmarks/layer_size.py build/arm64
    python benchmarks/layer_size.py .aws-sam/build

The directory holds ``MeaaLayer/python/...`` and one directory per function (``ApiFunction``, ...).
"""

from __future__ import annotations

import argparse
import re
import sys
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BUDGET_BYTES = 200 * 1000 * 1000
LAYER_NAME = "MeaaLayer"
# Distribution directories that belong to an import package of another name.
ALIASES = {"opencv_python_headless": "cv2"}
# Fixed per-file cost of a zip entry (local header + central directory record), plus the name twice.
ZIP_ENTRY_OVERHEAD = 30 + 46
SMALL_BYTES = 200_000


@dataclass
class GroupSize:
    """Bytes of one package (code, bundled .libs, dist-info) unzipped and deflated."""

    files: int = 0
    unzipped: int = 0
    zipped: int = 0


def group_name(relative: Path) -> str:
    """``numpy.libs/x.so`` and ``numpy-2.4.6.dist-info/METADATA`` both belong to ``numpy``."""
    top = relative.parts[0]
    if len(relative.parts) == 1 and top.endswith(".py"):
        return top[:-3]
    name = re.sub(r"-[^-]+\.dist-info$", "", top)
    name = re.sub(r"\.libs$", "", name).lower().replace("-", "_")
    return ALIASES.get(name, name)


def measure(root: Path) -> dict[str, GroupSize]:
    """Per-package sizes of an artifact directory (``python/`` of a layer, or a function's root)."""
    sizes: dict[str, GroupSize] = defaultdict(GroupSize)
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        relative = path.relative_to(root)
        size = sizes[group_name(relative)]
        size.files += 1
        size.unzipped += len(data)
        size.zipped += min(len(zlib.compress(data, 9)), len(data)) + ZIP_ENTRY_OVERHEAD + 2 * len(str(relative))
    return dict(sizes)


def format_table(title: str, sizes: dict[str, GroupSize]) -> tuple[str, GroupSize]:
    total = GroupSize(
        files=sum(s.files for s in sizes.values()),
        unzipped=sum(s.unzipped for s in sizes.values()),
        zipped=sum(s.zipped for s in sizes.values()),
    )
    lines = [f"### {title}", "", "| package | files | MB unzipped | MB zipped |", "| --- | ---: | ---: | ---: |"]
    small = GroupSize()
    small_names = 0
    for name, size in sorted(sizes.items(), key=lambda item: item[1].unzipped, reverse=True):
        if size.unzipped < SMALL_BYTES:  # one row for the crowd of small packages and modules
            small_names += 1
            small.files += size.files
            small.unzipped += size.unzipped
            small.zipped += size.zipped
            continue
        lines.append(f"| {name} | {size.files} | {size.unzipped / 1e6:.1f} | {size.zipped / 1e6:.1f} |")
    if small_names:
        lines.append(
            f"| ({small_names} others under {SMALL_BYTES / 1e6:.1f} MB) | {small.files} "
            f"| {small.unzipped / 1e6:.1f} | {small.zipped / 1e6:.1f} |"
        )
    lines.append(f"| **total** | {total.files} | **{total.unzipped / 1e6:.1f}** | **{total.zipped / 1e6:.1f}** |")
    return "\n".join(lines), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path, help="directory with MeaaLayer/ and the function directories")
    parser.add_argument("--budget-mb", type=float, default=BUDGET_BYTES / 1e6)
    args = parser.parse_args(argv)

    layer_dir = args.build_dir / LAYER_NAME / "python"
    if not layer_dir.is_dir():
        parser.error(f"{layer_dir} not found: build the layer first (infra/build_layer.py)")
    table, layer_total = format_table(f"{LAYER_NAME} ({args.build_dir})", measure(layer_dir))
    print(table)

    function_totals: dict[str, GroupSize] = {}
    for function_dir in sorted(p for p in args.build_dir.iterdir() if p.is_dir() and p.name != LAYER_NAME):
        if not (function_dir / "app.py").exists():
            continue
        table, function_totals[function_dir.name] = format_table(function_dir.name, measure(function_dir))
        print()
        print(table)

    print()
    print("| function | layer + function MB unzipped | layer + function MB zipped | budget MB |")
    print("| --- | ---: | ---: | ---: |")
    over = False
    for name, total in function_totals.items() or {"(layer only)": GroupSize()}.items():
        unzipped = layer_total.unzipped + total.unzipped
        zipped = layer_total.zipped + total.zipped
        over |= unzipped > args.budget_mb * 1e6
        print(f"| {name} | {unzipped / 1e6:.1f} | {zipped / 1e6:.1f} | {args.budget_mb:.0f} |")
    if over:
        print(f"\nOVER BUDGET: layer + function must stay <= {args.budget_mb:.0f} MB unzipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
