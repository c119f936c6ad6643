"""checkov (the scanner a hospital's security team runs) on template.yaml: clean, and every exception argued.

checkov reads the template as written: SAM's resources (``AWS::Serverless::Function`` with ``Globals``) have
its Lambda checks, but it does not run SAM's transform, so the roles and permissions SAM generates are scanned
here on the transformed template. Exceptions live in the template (``Metadata: checkov: skip:`` with ``id`` and
``comment``), where a reviewer reads them; each must say why and must still be needed: the scan without them
fails on exactly those checks and nothing else. checkov runs from its own venv (``make .venv-checkov/.installed``;
its pins conflict with .venv's), offline (``--skip-download``).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit.lambda_loader import REPO_ROOT, load_template
from tests.support.sam_template import transformed_template

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECK_ID = re.compile(r"^CKV2?_AWS_\d+$")
MIN_REASON_WORDS = 12


def unargued_skips(template: dict[str, Any]) -> list[str]:
    """Every checkov skip in the template without a check id or without a reason worth the name."""
    problems = []
    for name, resource in template["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        ids = [skip.get("id") for skip in skips]
        if len(ids) != len(set(ids)):
            problems.append(f"{name}: a check skipped twice")
        for skip in skips:
            check, comment = skip.get("id"), skip.get("comment")
            if not isinstance(check, str) or not CHECK_ID.match(check):
                problems.append(f"{name}: skip without a checkov check id: {skip}")
            elif not isinstance(comment, str) or len(comment.split()) < MIN_REASON_WORDS:
                problems.append(f"{name} {check}: the comment must say why, in at least {MIN_REASON_WORDS} words")
    return problems


def _skips(template: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (skip["id"], name)
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def _checkov(template: dict[str, Any], path: Path) -> dict[str, Any]:
    """checkov's JSON report on ``template`` (written as JSON CloudFormation to ``path``)."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make .venv-checkov/.installed` (make test does)")
    path.write_text(json.dumps(template))
    command = [
        str(CHECKOV),
        "--file",
        str(path),
        "--framework",
        "cloudformation",
        "--skip-download",
        "--output",
        "json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=path.parent)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: failed checks, reported below
    report = json.loads(result.stdout)
    counts = report["summary"]  # the line README quotes (pytest -s shows it)
    print(f"{path.name}: Passed checks: {counts['passed']}, Failed checks: {counts['failed']}, ", end="")
    print(f"Skipped checks: {counts['skipped']}")
    return report


def _failed(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(check["check_id"], check["resource"].split(".", 1)[1]) for check in report["results"]["failed_checks"]}


def test_every_skip_has_a_check_id_and_a_reason() -> None:
    assert unargued_skips(load_template()) == []
    assert len(_skips(load_template())) >= 9  # the exceptions README's security section lists


@pytest.mark.parametrize(
    "skip",
    [
        {"id": "CKV_AWS_19"},
        {"id": "CKV_AWS_19", "comment": "not needed"},
        {"id": "versioning", "comment": "a reason long enough to pass on words alone, but naming no checkov check id"},
    ],
)
def test_a_skip_without_a_reason_is_found(skip: dict[str, str]) -> None:
    template = copy.deepcopy(load_template())
    template["Resources"]["DropBucket"]["Metadata"]["checkov"]["skip"].append(skip)
    assert len(unargued_skips(template)) == 1


def test_checkov_fails_exactly_the_argued_checks_without_the_skips(tmp_path: Path) -> None:
    template = load_template()
    stripped = copy.deepcopy(template)
    for resource in stripped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    report = _checkov(stripped, tmp_path / "template-without-skips.json")
    assert _failed(report) == _skips(template), "a finding without its argued skip, or a skip no longer needed"
    assert report["summary"]["passed"] > 40


def test_checkov_passes_the_sam_transformed_template(tmp_path: Path) -> None:
    report = _checkov(transformed_template(), tmp_path / "transformed.json")
    assert _failed(report) == set(), "SAM's generated resources (roles, permissions, functions) fail a check"
    assert report["summary"]["passed"] > 60
    # SAM copies a function's Metadata to the AWS::Lambda::Function it generates: the same skips apply.
    skipped = {(check["check_id"], check["resource"].split(".", 1)[1]) for check in report["results"]["skipped_checks"]}
    assert skipped == _skips(load_template())


def test_make_checkov_scans_the_template_offline_without_blanket_skips() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    (line,) = [line for line in makefile.splitlines() if "/bin/checkov " in line]
    assert "--file template.yaml" in line and "--skip-download" in line
    assert "--skip-check" not in line and "--soft-fail" not in line  # exceptions only in the template, argued
    assert re.search(r"^test: .*\bcheckov\b", makefile, re.MULTILINE), "make test runs the scan"
