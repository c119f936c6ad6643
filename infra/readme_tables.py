"""README's generated tables: the settings (``meaa.config.settings_table``) and the errors
(``meaa.errors.error_table``), kept between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` markers.

    python -m infra.readme_tables          # exit 1 and say which table is stale
    python -m infra.readme_tables --write  # rewrite them

``tests/unit/test_settings_and_errors.py`` runs the check, so a new setting or error cannot go undocumented.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from meaa.config import settings_table
from meaa.errors import error_table

README = Path(__file__).resolve().parents[1] / "README.md"
TABLES = {"settings": settings_table, "errors": error_table}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)


def stale_tables(text: str) -> list[str]:
    """Names of the tables whose README copy differs from the generated one (or whose markers are missing)."""
    stale = []
    for name, make in TABLES.items():
        found = _pattern(name).search(text)
        if found is None or found.group(2) != make() + "\n":
            stale.append(name)
    return stale


def rewrite(text: str) -> str:
    for name, make in TABLES.items():
        text = _pattern(name).sub(lambda match, make=make: match.group(1) + make() + "\n" + match.group(3), text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the tables in README.md")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    if args.write:
        README.write_text(rewrite(text), encoding="utf-8")
        return 0
    stale = stale_tables(text)
    if stale:
        print(f"README.md: stale tables {stale}; run python -m infra.readme_tables --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
