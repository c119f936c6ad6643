"""The build that ``sam build`` runs (template.yaml -> Makefile -> infra/lambda_build.py) and the size budget.

These run on the real template and Makefile and on small synthetic trees (no wheel downloads); the real
arm64 build is measured by ``tests/integration/test_built_artifacts.py`` and ``make layer``.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from benchmarks import layer_size
from devkit.lambda_loader import REPO_ROOT, load_template
from infra import lambda_build
from meaa_api.routers import docs

# The packages that ship (layer and functions): none may use what the build prunes.
SHIPPED_CODE = (REPO_ROOT / "layers/meaa", REPO_ROOT / "layers/meaa_aws", *(REPO_ROOT / "functions").glob("*/meaa_*"))


def _write(path: Path, size: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(size))


def _built_resources() -> dict[str, dict]:
    resources = load_template()["Resources"]
    return {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")
    }


def test_the_build_knows_every_function_and_the_layer_of_the_template() -> None:
    resources = _built_resources()
    functions = {name: r["Properties"]["CodeUri"] for name, r in resources.items() if r["Type"].endswith("Function")}
    layers = {
        name: r["Properties"]["ContentUri"] for name, r in resources.items() if r["Type"].endswith("LayerVersion")
    }
    assert functions == lambda_build.FUNCTIONS
    assert layers == {lambda_build.LAYER_ID: "layers/"}
    for package in lambda_build.LAYER_PACKAGES:
        assert (lambda_build.LAYER_SOURCE / package / "__init__.py").exists()


def test_architecture_and_python_version_are_the_templates() -> None:
    template = load_template()
    assert lambda_build.template_architecture() == template["Resources"]["MeaaLayer"]["Metadata"]["BuildArchitecture"]
    assert [lambda_build.template_architecture()] == template["Globals"]["Function"]["Architectures"]
    assert template["Globals"]["Function"]["Runtime"] == f"python{lambda_build.PYTHON_VERSION}"


def test_an_ambiguous_architecture_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "A:\n  Metadata:\n    BuildArchitecture: arm64\nB:\n  Metadata:\n    BuildArchitecture: x86_64\n"
    )
    with pytest.raises(ValueError, match="one BuildArchitecture"):
        lambda_build.template_architecture(template)


@pytest.mark.parametrize("logical_id", [lambda_build.LAYER_ID, *lambda_build.FUNCTIONS])
def test_sam_build_runs_the_makefiles_target_for_each_artifact(logical_id: str, tmp_path: Path) -> None:
    metadata = _built_resources()[logical_id]["Metadata"]
    # ContextPath: where sam finds the Makefile; WorkingDirectory: where make runs (so `-m infra...` resolves).
    assert metadata["BuildMethod"] == "makefile"
    assert metadata["ContextPath"] == "." and metadata["WorkingDirectory"] == "."
    # What sam runs: make --makefile <ContextPath>/Makefile build-<id>, with ARTIFACTS_DIR in the environment.
    artifacts = tmp_path / logical_id
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "--makefile", str(REPO_ROOT / "Makefile"), f"build-{logical_id}"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "ARTIFACTS_DIR": str(artifacts)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f'-m infra.lambda_build {logical_id} --out "{artifacts}"' in dry_run.stdout


def test_layer_prune_drops_dead_weight_and_keeps_what_runs(tmp_path: Path) -> None:
    site = tmp_path / "python"
    kept = [
        "numpy/_core/_multiarray_umath.cpython-312-aarch64-linux-gnu.so",
        "numpy/linalg/__init__.py",
        "numpy/f2py/__init__.py",
        "numpy.libs/libscipy_openblas64_.so",
        "cv2/cv2.abi3.so",
        "opencv_python_headless.libs/libavcodec.so.59",
        "onnxruntime/capi/onnxruntime_pybind11_state.so",
        "onnxruntime/capi/_pybind_state.py",
        "aws_lambda_powertools/logging/logger.py",
        "aws_lambda_powertools/metrics/provider/cloudwatch_emf/cloudwatch.py",
        "aws_lambda_powertools/utilities/idempotency/base.py",
        "aws_lambda_powertools/utilities/data_classes/s3_event.py",
        "aws_lambda_powertools/tracing/tracer.py",
        "numpy-2.4.6.dist-info/METADATA",
        "meaa/models/pnet.onnx",
        "meaa/tests/kept_because_meaa_is_never_pruned.py",
        "meaa_aws/observability.py",
    ]
    dropped = [
        "numpy/_core/tests/test_a.py",
        "numpy/_core/include/numpy/ndarraytypes.h",
        "numpy/_core/_multiarray_tests.cpython-312-aarch64-linux-gnu.so",
        "numpy/_core/_simd.cpython-312-aarch64-linux-gnu.so",
        "numpy/random/_generator.cpython-312-aarch64-linux-gnu.so",
        "cv2/data/haarcascade_frontalface_default.xml",
        "onnxruntime/tools/symbolic_shape_infer.py",
        "onnxruntime/quantization/quantize.py",
        "onnxruntime/capi/libonnxruntime.so.1.32.0",
        "onnxruntime/capi/__pycache__/x.cpython-312.pyc",
        "google/protobuf/message.py",
        "packaging/version.py",
        "aws_lambda_powertools/event_handler/api_gateway.py",
        "aws_lambda_powertools/utilities/parser/models/s3.py",
        "aws_lambda_powertools/metrics/provider/datadog/datadog.py",
        "numpy-2.4.6.dist-info/RECORD",
        "bin/f2py",
    ]
    for relative in kept + dropped:
        _write(site / relative)
    own = tuple(site / package for package in lambda_build.LAYER_PACKAGES)

    assert lambda_build.prune_tree(site, lambda_build.LAYER_PRUNE, keep=own) == 10 * len(dropped)

    assert [relative for relative in kept if not (site / relative).exists()] == []
    assert [relative for relative in dropped if (site / relative).exists()] == []


def test_function_prune_keeps_the_docs_assets_and_the_function_code(tmp_path: Path) -> None:
    static = tmp_path / "fastapi_offline" / "static"
    for name in (*docs.ASSETS, "redoc.standalone.js"):
        _write(static / name)
    _write(tmp_path / "pydantic/v1/main.py")
    _write(tmp_path / "pydantic/main.py")
    _write(tmp_path / "meaa_api/app.py")
    _write(tmp_path / "meaa_api/static/app.js.map")  # the function's own files are never pruned

    lambda_build.prune_tree(tmp_path, lambda_build.FUNCTION_PRUNE, keep=(tmp_path / "meaa_api",))

    assert sorted(path.name for path in static.iterdir()) == sorted(docs.ASSETS)
    assert not (tmp_path / "pydantic/v1").exists() and (tmp_path / "pydantic/main.py").exists()
    assert (tmp_path / "meaa_api/app.py").exists() and (tmp_path / "meaa_api/static/app.js.map").exists()


def _imported_modules(path: Path) -> set[str]:
    """Modules a source file imports, and ``alias.attribute`` uses of an imported module (``np.random``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: dict[str, str] = {}
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                used.add(alias.name)
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            used.add(node.module)
            used.update(f"{node.module}.{alias.name}" for alias in node.names)  # "numpy.*" for a star import
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.add(f"{aliases[node.value.id]}.{node.attr}")
    return used


def _needs(module: str, pruned: str) -> bool:
    """``module`` is ``pruned`` or inside it, or a star import of a package that holds it."""
    if module.endswith(".*"):
        return pruned.startswith(module[:-1]) or _needs(module[:-2], pruned)
    return module == pruned or module.startswith(pruned + ".")


def test_shipped_code_uses_nothing_that_the_build_prunes() -> None:
    sources = [path for root in SHIPPED_CODE for path in root.rglob("*.py")]
    assert len(sources) > 20
    offenders = {
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in sources
        for module in _imported_modules(path)
        if any(_needs(module, pruned) for pruned in lambda_build.PRUNED_MODULES)
    }
    assert not offenders, "pruned by infra/lambda_build.py but used: " + ", ".join(sorted(offenders))


def test_the_scan_sees_aliased_and_from_imports(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text("import numpy as np\nfrom packaging import version\nx = np.random.default_rng(0)\n")
    assert {"numpy.random", "packaging.version"} <= _imported_modules(source)
    assert _needs("numpy.*", "numpy.random") and _needs("numpy.random.mtrand", "numpy.random")
    assert not _needs("numpy.linalg", "numpy.random") and not _needs("numpy", "numpy.random")


def test_layer_build_copies_the_packages_and_fails_over_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    installed: list[Path] = []
    # Only pip's download is left out here (tests/integration/test_built_artifacts.py installs for real).
    monkeypatch.setattr(
        lambda_build, "install_requirements", lambda target, arch, requirements: installed.append(target)
    )
    out = tmp_path / "MeaaLayer"

    assert lambda_build.main(["MeaaLayer", "--out", str(out), "--arch", "arm64", "--budget-mb", "100"]) == 0
    assert installed == [out / "python"]
    assert (out / "python/meaa/models/manifest.json").exists() and (out / "python/meaa_aws/observability.py").exists()
    # The repository's own caches are not copied; the layer's packages get Python 3.12 bytecode beside their sources.
    caches = list((out / "python").rglob("*.pyc"))
    assert caches and all(path.parent.name == "__pycache__" and ".cpython-312." in path.name for path in caches)
    assert (out / "python/meaa/pipeline.py").exists()

    assert lambda_build.main(["MeaaLayer", "--out", str(out), "--arch", "arm64", "--budget-mb", "0.5"]) == 1
    assert "MeaaLayer alone is over the 0.5 MB budget" in caplog.text


def test_budget_check_passes_under_and_fails_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "MeaaLayer/python/numpy/core.so", 120_000)
    _write(tmp_path / "MeaaLayer/python/numpy.libs/openblas.so", 30_000)
    _write(tmp_path / "MeaaLayer/python/opencv_python_headless.libs/libavcodec.so", 5_000)
    _write(tmp_path / "ApiFunction/meaa_api/app.py", 1_000)
    _write(tmp_path / "ApiFunction/pydantic_core/core.so", 20_000)
    _write(tmp_path / "BatchFunction/meaa_batch/handler.py", 2_000)

    assert layer_size.main([str(tmp_path), "--budget-mb", "0.2"]) == 0
    table = capsys.readouterr().out
    assert "| ApiFunction | 0.2 |" in table and "| BatchFunction | 0.2 |" in table  # 155 kB layer + each function
    assert layer_size.main([str(tmp_path), "--budget-mb", "0.17"]) == 1  # the API's 176 kB is over, the batch's not
    rows = {row.function: row for row in layer_size.check_budget(tmp_path, budget=170_000)}
    assert (rows["ApiFunction"].unzipped, rows["ApiFunction"].fits) == (176_000, False)
    assert (rows["BatchFunction"].unzipped, rows["BatchFunction"].fits) == (157_000, True)


def test_budget_check_needs_a_built_layer(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sam build"):
        layer_size.check_budget(tmp_path)


def test_package_grouping_folds_libs_and_dist_info_into_the_import_name() -> None:
    assert layer_size.group_name(Path("numpy.libs/libopenblas.so")) == "numpy"
    assert layer_size.group_name(Path("numpy-2.4.6.dist-info/METADATA")) == "numpy"
    assert layer_size.group_name(Path("opencv_python_headless.libs/libavcodec.so")) == "cv2"
    assert layer_size.group_name(Path("opencv_python_headless-4.13.0.92.dist-info/RECORD")) == "cv2"
    assert layer_size.group_name(Path("typing_extensions.py")) == "typing_extensions"
