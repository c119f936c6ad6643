"""Where the browser tests find Chromium and its driver, and what they do without them.

Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them with apt), or the paths in
``CHROMIUM_BINARY`` / ``CHROMEDRIVER``. Without them the browser tests skip and say how to enable them; with
``MEAA_BROWSER_TESTS=1`` (what ``.ci/run`` sets, after ``make test`` installed them) they fail instead, so CI
cannot pass without having run them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ENABLE_HINT = (
    "to run it: `make browser` (installs chromium and chromium-driver with apt), or `MEAA_BROWSER_TESTS=1 make test`,"
    " or set CHROMIUM_BINARY and CHROMEDRIVER"
)
BROWSER_TESTS_REQUIRED = os.environ.get("MEAA_BROWSER_TESTS") == "1"


def _find(env_name: str, *candidates: str) -> str | None:
    configured = os.environ.get(env_name)
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in candidates:
        found = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if found:
            return found
    return None


CHROMIUM = _find("CHROMIUM_BINARY", "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = _find("CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")


def require_chromium() -> tuple[str, str]:
    """Chromium's and chromedriver's paths; skips the test without them (fails when they were asked for)."""
    if CHROMIUM and CHROMEDRIVER:
        return CHROMIUM, CHROMEDRIVER
    missing = f"no browser: chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}"
    if BROWSER_TESTS_REQUIRED:
        pytest.fail(f"MEAA_BROWSER_TESTS=1 asks for the browser tests, but {missing}", pytrace=False)
    pytest.skip(f"{missing}; {ENABLE_HINT}")
