"""The artifacts ship Python 3.12 bytecode (``infra.lambda_build.compile_bytecode``), since Lambda cannot cache it.

A small site directory stands in for a built one: a third-party package, OpenCV's source-read config, one of
the project's own packages and a file that is not Python 3.12. It is compiled, then imported the way
``infra/smoke_built.py`` imports the real artifacts (``python -S -P``, that directory alone on the path, no
bytecode writes), and ``infra/lambda_child.py`` reports which modules that process had to compile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import lambda_build
from infra.lambda_child import RESULT_MARK

CHILD = Path(lambda_build.__file__).with_name("lambda_child.py")


def _site(root: Path) -> Path:
    files = {
        "thirdparty/__init__.py": "",
        "thirdparty/mod.py": "def where():\n    raise ValueError('from thirdparty')\n",
        "cv2/__init__.py": "import os\nexec(open(os.path.join(os.path.dirname(__file__), 'config.py')).read())\n",
        "cv2/config.py": "LOADED = True\n",
        "own/__init__.py": "",
        "own/handler.py": "import thirdparty.mod\nimport cv2\n\n\ndef handler(event, context):\n    return 1\n",
        "broken/legacy.py": "print 'python 2'\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _child(site: Path, *args: str) -> dict:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(
        [sys.executable, "-S", "-P", str(CHILD), *args], env=env, cwd=site, capture_output=True, text=True, check=True
    )
    line = next(line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARK))
    return json.loads(line[len(RESULT_MARK) :])


def test_other_packages_ship_bytecode_alone_and_own_ones_keep_their_sources(tmp_path: Path) -> None:
    site = _site(tmp_path)
    compiled = lambda_build.compile_bytecode(site, "/opt/python", own=(site / "own",))

    assert compiled == 6  # every file but the Python 2 one
    assert not (site / "thirdparty/mod.py").exists() and (site / "thirdparty/mod.pyc").exists()
    assert (site / "cv2/config.py").exists() and list((site / "cv2/__pycache__").glob("config.cpython-312.pyc"))
    assert (site / "own/handler.py").exists() and list((site / "own/__pycache__").glob("handler.cpython-312.pyc"))
    assert (site / "broken/legacy.py").exists() and not (site / "broken/legacy.pyc").exists()
    # Hash-based and never checked (flags 0b01 in the header), so neither an mtime nor a missing source matters.
    assert int.from_bytes((site / "thirdparty/mod.pyc").read_bytes()[4:8], "little") == 0b01


def test_the_compiled_tree_imports_without_compiling_and_names_the_deployed_paths(tmp_path: Path) -> None:
    site = _site(tmp_path)
    before = _child(site, "init", "own.handler.handler")
    lambda_build.compile_bytecode(site, "/opt/python", own=(site / "own",))
    after = _child(site, "init", "own.handler.handler")

    assert len(before["compiled"]) == 5 and after["compiled"] == []  # own, own.handler, thirdparty(.mod), cv2
    probe = "import thirdparty.mod\ntry:\n    thirdparty.mod.where()\nexcept ValueError as e:\n"
    probe += "    print(e.__traceback__.tb_next.tb_frame.f_code.co_filename)\n"
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    traced = subprocess.run([sys.executable, "-S", "-P", "-c", probe], env=env, capture_output=True, text=True)
    assert traced.stdout.strip() == "/opt/python/thirdparty/mod.py"


def test_bytecode_for_another_python_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_build, "PYTHON_VERSION", "3.13")
    with pytest.raises(RuntimeError, match=r"must be compiled by Python 3\.13"):
        lambda_build.compile_bytecode(_site(tmp_path), "/opt/python", own=())
    assert (tmp_path / "thirdparty/mod.py").exists(), "nothing changed"
