"""Shared pytest setup: make the layer package importable the way Lambda sees it (``/opt/python``)."""

from __future__ import annotations

import sys
from pathlib import Path

LAYERS_DIR = Path(__file__).resolve().parents[1] / "layers"
if str(LAYERS_DIR) not in sys.path:
    sys.path.insert(0, str(LAYERS_DIR))
