"""Shared pytest setup: make the layer package importable the way Lambda sees it (``/opt/python``),
and the repository root importable so tests can share helpers as ``tests.images`` etc."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "layers"):  # layers ends up first
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
