"""Size breakdown of built Lambda artifacts, and the 170 MB budget check (exit status 1 when over).

Lambda allows 250 MB unzipped for a function plus all its layers; the project keeps 80 MB of headroom
for what comes next. Each function counts the layer plus its own code and dependencies, so every
function is checked as layer + function.

Usage (``make layer`` runs it on ``sam build``'s output)::

    python -m benchmarks.layer_size .aws-sam/build

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

BUDGET_BYTES = 170 * 1000 * 1000
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


def measure(root: Path, *, zipped: bool = True) -> dict[str, GroupSize]:
    """Per-package sizes of an artifact directory (``python/`` of a layer, or a function's root).

    ``zipped=False`` skips the deflate estimate (the budget is on unzipped bytes; deflate takes most of the time).
    """
    sizes: dict[str, GroupSize] = defaultdict(GroupSize)
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(root)
        size = sizes[group_name(relative)]
        size.files += 1
        if zipped:
            data = path.read_bytes()
            size.unzipped += len(data)
            size.zipped += min(len(zlib.compress(data, 9)), len(data)) + ZIP_ENTRY_OVERHEAD + 2 * len(str(relative))
        else:
            size.unzipped += path.stat().st_size
    return dict(sizes)


@dataclass(frozen=True)
class BudgetRow:
    """One function as Lambda counts it: the layer plus the function, unzipped (and deflated, when measured)."""

    function: str
    unzipped: int
    zipped: int
    budget: int

    @property
    def fits(self) -> bool:
        return self.unzipped <= self.budget


def artifact_dirs(build_dir: Path) -> tuple[Path, list[Path]]:
    """The layer's ``python/`` and every function directory of a ``sam build`` output."""
    layer_dir = build_dir / LAYER_NAME / "python"
    if not layer_dir.is_dir():
        raise FileNotFoundError(f"{layer_dir} not found: build first (sam build, or make layer)")
    functions = sorted(p for p in build_dir.iterdir() if p.is_dir() and p.name != LAYER_NAME)
    return layer_dir, functions


def budget_rows(
    layer: dict[str, GroupSize], functions: dict[str, dict[str, GroupSize]], budget: int = BUDGET_BYTES
) -> list[BudgetRow]:
    layer_unzipped = sum(size.unzipped for size in layer.values())
    layer_zipped = sum(size.zipped for size in layer.values())
    return [
        BudgetRow(
            name,
            layer_unzipped + sum(size.unzipped for size in sizes.values()),
            layer_zipped + sum(size.zipped for size in sizes.values()),
            budget,
        )
        for name, sizes in (functions or {"(layer only)": {}}).items()
    ]


def check_budget(build_dir: Path, budget: int = BUDGET_BYTES) -> list[BudgetRow]:
    """Layer + each function, unzipped only (what tests assert on a real build)."""
    layer_dir, function_dirs = artifact_dirs(build_dir)
    functions = {path.name: measure(path, zipped=False) for path in function_dirs}
    return budget_rows(measure(layer_dir, zipped=False), functions, budget)


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

    try:
        layer_dir, function_dirs = artifact_dirs(args.build_dir)
    except FileNotFoundError as error:
        parser.error(str(error))
    layer = measure(layer_dir)
    print(format_table(f"{LAYER_NAME} ({args.build_dir})", layer)[0])
    functions = {}
    for function_dir in function_dirs:
        functions[function_dir.name] = measure(function_dir)
        print()
        print(format_table(function_dir.name, functions[function_dir.name])[0])

    rows = budget_rows(layer, functions, int(args.budget_mb * 1e6))
    print()
    print("| function | layer + function MB unzipped | layer + function MB zipped | budget MB |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row.function} | {row.unzipped / 1e6:.1f} | {row.zipped / 1e6:.1f} | {args.budget_mb:.0f} |")
    if not all(row.fits for row in rows):
        print(f"\nOVER BUDGET: layer + function must stay <= {args.budget_mb:.0f} MB unzipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
