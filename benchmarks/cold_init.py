"""Each function's Lambda init from its built artifacts, with the bytecode they ship against sources only.

Lambda's /opt and /var/task are read-only, so Python cannot cache bytecode there: artifacts of sources alone
make every cold start compile what it imports. This builds the layer and both functions for this machine twice
(``infra.lambda_build``: once as deployed, once with ``--no-bytecode``), then times the init as
``infra/smoke_built.py`` runs the artifacts: a fresh ``python -S -P`` whose path is the function, the layer and
boto3, importing the handler's module (which loads and warms the models). Runs of the two builds alternate, so
a busy machine slows both alike; the table gives medians and their ratio.

Usage (``make bench`` runs it after ``benchmarks.bench_pipeline``)::

    python -m benchmarks.cold_init [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from devkit.aws import moto_environment
from devkit.lambda_loader import function_spec
from infra.lambda_build import FUNCTIONS, LAYER_ID, build, host_arch
from infra.smoke_built import compiled_in, run_isolated, runtime_dir

BUILDS = {"sources only": False, "with bytecode (deployed)": True}


def build_both(root: Path) -> dict[str, dict[str, Path]]:
    """Each build's importable directories: the layer's and each function's."""
    arch, built = host_arch(), {}
    for name, bytecode in BUILDS.items():
        folder = root / ("bytecode" if bytecode else "sources")
        ids = (LAYER_ID, *FUNCTIONS)
        built[name] = {i: build(i, folder / i, arch, bytecode=bytecode).site_dir for i in ids}
    return built


def time_inits(built: dict[str, dict[str, Path]], runtime: Path, runs: int) -> dict[tuple[str, str], list[dict]]:
    """``runs`` inits of every function from every build, alternating builds within each round."""
    samples: dict[tuple[str, str], list[dict]] = {}
    for _ in range(runs):
        for logical_id in FUNCTIONS:
            spec = function_spec(logical_id)
            # The deployed variables; the resources' names as tests name them (init creates clients, calls none).
            names = {key: value for key, value in moto_environment().items() if value is not None}
            env = {**spec.environment, **names, "POWERTOOLS_LOG_LEVEL": "WARNING"}
            for name, dirs in built.items():
                path = [dirs[logical_id], dirs[LAYER_ID], runtime]
                run = run_isolated(["init", spec.handler], path, dirs[logical_id], env)
                compiled = len(compiled_in(run, [dirs[logical_id], dirs[LAYER_ID]]))  # not the boto3 stand-in's
                samples.setdefault((logical_id, name), []).append({**run.result, "compiled": compiled})
    return samples


def report(samples: dict[tuple[str, str], list[dict]], runs: int) -> None:
    print(f"Lambda init from the built artifacts ({host_arch()}, {os.cpu_count()} CPUs), medians of {runs} fresh ")
    print("processes per cell, wall ms (CPU ms); modules: those the init compiled from source\n")
    names = list(BUILDS)
    print(f"| function | {names[0]} | modules | {names[1]} | modules | ratio, wall |")
    print("| --- | --- | --- | --- | --- | --- |")
    for logical_id in FUNCTIONS:
        cells, walls = [], []
        for name in names:
            runs_of = samples[(logical_id, name)]
            wall = statistics.median(run["init_ms"] for run in runs_of)
            cpu = statistics.median(run["init_cpu_ms"] for run in runs_of)
            compiled = statistics.median(run["compiled"] for run in runs_of)
            cells += [f"{wall:.0f} ({cpu:.0f})", f"{compiled:.0f}"]
            walls.append(wall)
        print(f"| {logical_id} | {' | '.join(cells)} | {walls[1] / walls[0]:.2f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per function and build")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        built = build_both(Path(scratch))
        samples = time_inits(built, runtime_dir(Path(scratch) / "runtime"), args.runs)
    report(samples, args.runs)


if __name__ == "__main__":
    main()
