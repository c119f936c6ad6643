"""The build tooling around template.yaml: the built template, pruning and the 200 MB budget check.

These run on small synthetic trees (no wheel downloads); the real layer is built and measured with
``infra/build_layer.py --verify`` and ``benchmarks/layer_size.py`` (see README).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.lambda_loader import REPO_ROOT, function_spec, load_template


def _load_script(relative: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO_ROOT / relative)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build_layer = _load_script("infra/build_layer.py")
layer_size = _load_script("benchmarks/layer_size.py")


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(size))


def test_built_template_points_at_built_directories(tmp_path: Path) -> None:
    for logical_id in (*build_layer.FUNCTIONS, build_layer.LAYER_ID):
        (tmp_path / logical_id).mkdir()
    build_layer.write_built_template(tmp_path, "arm64")

    built = load_template(tmp_path / "template.yaml")

    assert built["Resources"]["MeaaLayer"]["Properties"]["ContentUri"] == "MeaaLayer"
    assert "BuildMethod" not in built["Resources"]["MeaaLayer"].get("Metadata", {}), "sam must not rebuild it"
    for logical_id in build_layer.FUNCTIONS:
        assert function_spec(logical_id, tmp_path / "template.yaml").code_dir == (tmp_path / logical_id).resolve()
    source = load_template()
    assert built["Parameters"] == source["Parameters"] and built["Outputs"] == source["Outputs"]


def test_functions_in_the_build_script_match_the_template() -> None:
    for logical_id, source in build_layer.FUNCTIONS.items():
        assert function_spec(logical_id).code_dir == REPO_ROOT / source


def test_prune_drops_dead_weight_but_keeps_runtime_files_and_meaa(tmp_path: Path) -> None:
    layer = build_layer.LayerBuild(arch="arm64", out_dir=tmp_path / "MeaaLayer")
    site = layer.site_dir
    kept = [
        "numpy/_core/_multiarray_umath.so",
        "numpy/linalg/__init__.py",
        "numpy/f2py/__init__.py",  # `from numpy import *` imports it
        "cv2/cv2.abi3.so",
        "onnxruntime/capi/onnxruntime_pybind11_state.so",
        "onnxruntime/capi/_pybind_state.py",
        "meaa/models/pnet.onnx",
        "meaa/tests_of_nothing.py",
        "numpy-2.4.6.dist-info/METADATA",
    ]
    dropped = [
        "numpy/_core/tests/test_a.py",
        "numpy/_core/include/numpy/ndarraytypes.h",
        "cv2/data/haarcascade_frontalface_default.xml",
        "onnxruntime/tools/symbolic_shape_infer.py",
        "onnxruntime/transformers/fusion.py",
        "onnxruntime/capi/libonnxruntime.so.1.32.0",
        "onnxruntime/capi/__pycache__/x.cpython-312.pyc",
        "google/protobuf/message.py",
        "numpy-2.4.6.dist-info/RECORD",
        "bin/f2py",
    ]
    for relative in kept + dropped:
        _write(site / relative, 10)

    assert build_layer.prune(layer) == 10 * len(dropped)

    assert all((site / relative).exists() for relative in kept)
    assert not any((site / relative).exists() for relative in dropped)


def test_budget_check_passes_under_and_fails_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "MeaaLayer/python/numpy/core.so", 120_000)
    _write(tmp_path / "MeaaLayer/python/numpy.libs/openblas.so", 30_000)
    _write(tmp_path / "MeaaLayer/python/opencv_python_headless.libs/libavcodec.so", 5_000)
    _write(tmp_path / "ApiFunction/app.py", 1_000)
    _write(tmp_path / "ApiFunction/pydantic_core/core.so", 20_000)

    assert layer_size.main([str(tmp_path), "--budget-mb", "0.2"]) == 0
    table = capsys.readouterr().out
    assert "| ApiFunction | 0.2 |" in table  # 176 kB layer + 21 kB function
    assert layer_size.main([str(tmp_path), "--budget-mb", "0.15"]) == 1


def test_package_grouping_folds_libs_and_dist_info_into_the_import_name() -> None:
    assert layer_size.group_name(Path("numpy.libs/libopenblas.so")) == "numpy"
    assert layer_size.group_name(Path("numpy-2.4.6.dist-info/METADATA")) == "numpy"
    assert layer_size.group_name(Path("opencv_python_headless.libs/libavcodec.so")) == "cv2"
    assert layer_size.group_name(Path("opencv_python_headless-4.13.0.92.dist-info/RECORD")) == "cv2"
    assert layer_size.group_name(Path("typing_extensions.py")) == "typing_extensions"
