"""The deploy path for real: plain ``sam build`` gives artifacts that fit the budget, and the built code runs.

Slow on purpose (about two minutes, wheels from PyPI or pip's cache): it is the only test of what deploys.

- ``sam build`` (arm64, through the Makefile's ``build-*`` targets) into a temporary directory: the layer plus
  each function stays under ``benchmarks.layer_size.BUDGET_BYTES`` unzipped, and the built template points at
  the built directories;
- ``infra.smoke_built``: the same artifacts built for this machine run in bare interpreters whose path is the
  function, the layer and boto3 only (the layer's cascade on a real face, both handlers on moto's server).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.layer_size import BUDGET_BYTES, check_budget
from devkit.lambda_loader import REPO_ROOT, function_spec, load_template
from infra import lambda_build, smoke_built

BUILD_TIMEOUT_S = 1200  # a hung pip is a failure, not a measurement


@pytest.fixture(scope="module")
def sam_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam-build")
    sam = Path(sys.executable).parent / "sam"
    result = subprocess.run(
        [str(sam), "build", "--build-dir", str(build_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return build_dir


def test_sam_build_gives_a_layer_and_functions_within_the_budget(sam_build_dir: Path) -> None:
    rows = check_budget(sam_build_dir)
    assert {row.function for row in rows} == set(lambda_build.FUNCTIONS)
    for row in rows:
        assert row.fits, f"{row.function}: layer + function {row.unzipped / 1e6:.1f} MB > {BUDGET_BYTES / 1e6:.0f} MB"
    site = sam_build_dir / lambda_build.LAYER_ID / "python"
    assert (site / "meaa/models/manifest.json").exists() and (site / "meaa_aws/observability.py").exists()
    assert not (site / "numpy/random").exists() and not (site / "onnxruntime/tools").exists(), "pruned"
    assert any(path.name.endswith("aarch64-linux-gnu.so") for path in (site / "numpy/_core").iterdir()), "arm64 wheels"


def test_the_built_template_points_at_the_built_artifacts(sam_build_dir: Path) -> None:
    built_template = sam_build_dir / "template.yaml"
    resources = load_template(built_template)["Resources"]
    assert resources["MeaaLayer"]["Properties"]["ContentUri"] == "MeaaLayer"
    for logical_id in lambda_build.FUNCTIONS:
        spec = function_spec(logical_id, built_template)
        assert spec.code_dir == (sam_build_dir / logical_id).resolve()
        assert (spec.code_dir / Path(*spec.module_name.split("."))).with_suffix(".py").exists()
        assert spec.layer_dirs == ((sam_build_dir / "MeaaLayer" / "python").resolve(),)


def test_the_same_build_for_this_machine_runs_the_cascade_and_both_handlers(tmp_path: Path) -> None:
    report = smoke_built.smoke(tmp_path / "native")
    failed = [f"{name}: {detail}" for name, ok, detail in report.checks if not ok]
    assert report.ok, "\n".join(failed)
    assert len(report.checks) >= 10
