"""Guards over the code's layout, from the AST of every .py in the tree (no import is executed).

- No import cycle among the project's modules. Both module-level and function-level imports count (a lazy
  import inside a function still ties the two modules together). An edge goes to the module named, not to its
  parent packages' ``__init__`` (which Python also runs, and which a package's facade imports back).
- ``tests/`` is a leaf: no file outside it imports ``tests`` (what tools share with tests is ``devkit``).
- Runtime modules (``layers/``, ``functions/``) are at most ``MAX_RUNTIME_LINES`` lines.
- The core (``layers/meaa``) reads no deployed function's settings (``settings.api``, ``.batch``, ``.store``);
  ``config.py``, which declares them, derives the effective caps from them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where each installed package lives (pyproject.toml's package-dir); other top-level folders are packages
# named as their folder (model_build, benchmarks, infra, devkit, tests).
PACKAGE_DIRS = {
    "meaa": "layers/meaa",
    "meaa_aws": "layers/meaa_aws",
    "meaa_api": "functions/api/meaa_api",
    "meaa_batch": "functions/batch/meaa_batch",
}
SKIPPED_PARTS = {".aws-sam", "artifacts", "cache", "runs", "__pycache__", ".git", "node_modules"}  # and every .venv*
MAX_RUNTIME_LINES = 600
# Cycles known and owned by work in progress, each with what removes it. The test fails when one is gone,
# so the exception is removed with it.
KNOWN_CYCLES: dict[frozenset[str], str] = {}
DEPLOYED_SETTINGS = {"api", "batch", "store"}


def python_files() -> Iterator[Path]:
    for path in sorted(REPO_ROOT.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).parts
        if not SKIPPED_PARTS.intersection(parts) and not any(part.startswith(".venv") for part in parts):
            yield path


def module_name(path: Path) -> str:
    relative = path.relative_to(REPO_ROOT).with_suffix("")
    for package, folder in PACKAGE_DIRS.items():
        if relative.is_relative_to(folder):
            relative = Path(package, relative.relative_to(folder))
            break
    parts = relative.parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in python_files()}


def imported_names(path: Path) -> Iterator[tuple[str, int]]:
    """(absolute module name, line) of every import in the file, at any depth; ``from X import Y`` gives
    ``X.Y`` when that is a module of the project, else ``X``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                yield (candidate if candidate in MODULES else source), node.lineno


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _ in imported_names(path):
            while target and target not in MODULES:  # `import a.b.c` of a project module a.b.c, or a name in it
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module (each holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_project() -> None:
    graph = import_graph()
    assert {"meaa", "meaa.pipeline", "meaa.decoding.jpeg", "meaa_api.app", "meaa_batch.handler", "devkit.aws"} <= set(
        graph
    )
    assert "meaa.config" in graph["meaa.pipeline"] and "meaa.decoding.jpeg" in graph["meaa.decoding.image"]
    assert "meaa.store.items" in graph["meaa.store"]  # a relative import in a package's __init__
    assert "meaa.decoding" in graph["meaa.video"]  # a function-level import


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]


def test_no_import_cycle_among_the_projects_modules() -> None:
    cycles = {frozenset(component) for component in strongly_connected(import_graph())}
    unknown = [sorted(cycle) for cycle in cycles if cycle not in KNOWN_CYCLES]
    assert not unknown, f"import cycles: {unknown}"
    gone = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in cycles]
    assert not gone, f"these known cycles are gone: remove them from KNOWN_CYCLES: {gone}"


def test_nothing_outside_tests_imports_tests() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for module, path in MODULES.items()
        if module.split(".")[0] != "tests"
        for name, line in imported_names(path)
        if name == "tests" or name.startswith("tests.")
    ]
    assert not offenders
    assert "-m tests." not in (REPO_ROOT / "Makefile").read_text(encoding="utf-8")


@pytest.mark.parametrize("folder", ["layers", "functions"])
def test_runtime_modules_are_at_most_600_lines(folder: str) -> None:
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in (REPO_ROOT / folder).rglob("*.py")}
    assert sizes, folder
    too_long = {str(path.relative_to(REPO_ROOT)): lines for path, lines in sizes.items() if lines > MAX_RUNTIME_LINES}
    assert not too_long


def test_the_core_reads_no_deployed_functions_settings() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "layers" / "meaa").rglob("*.py")):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            reads_a_part = isinstance(node, ast.Attribute) and node.attr in DEPLOYED_SETTINGS
            if reads_a_part and ast.unparse(node.value).lower().endswith("settings"):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert not offenders
