"""The pipeline against its networks alone ("the floor"), peak memory and the API Lambda's init; markdown tables.

    python -m benchmarks.bench_pipeline [--rounds 60] [--cold-runs 5]      (make bench; run from the repo root)

The floor is what no glue can beat: the four networks at one onnxruntime thread on what a 640x480 frame
gives them, P-Net over the pyramid for a 48 px minimum face (factor 0.709), R-Net on 32 crops, O-Net on 4,
the mood model on one face, with plain onnxruntime sessions (default options, one thread) and no decoding,
resampling, NMS or Python around them. Each frame's time is ``MoodEstimator().analyze(jpeg_bytes)``, decode
included, and is reported as a ratio to the floor measured in the same process, interleaved with it round by
round (one floor, then every frame once, in an order that rotates), so a busy machine slows both alike.
Medians of wall time, and of the process's CPU time, which another process's load barely moves.

Peak RSS is a fresh process's after warm runs over a selfie, a group photo and a 1080p frame. The API
init is the Lambda cold start of ``ApiFunction`` as ``tests/lambda_loader.py`` imports it (fresh process;
imports, FastAPI app, model warm-up); ``python -X importtime`` says which imports dominate it.

Frames are JPEG q90 files built from scikit-image's real face (``tests/sample_faces.py``) before any child
starts, so the measured children never import scikit-image.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the API-init child must not have numpy loaded before the handler
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# The floor's fixed workload (issue 13): a 640x480 frame, 48 px minimum face, R-Net on 32, O-Net on 4.
FLOOR_FRAME = (480, 640)
FLOOR_MIN_FACE = 48
FLOOR_SCALE_FACTOR = 0.709
FLOOR_RNET_CROPS = 32
FLOOR_ONET_CROPS = 4
PNET_CELL = 12


@dataclass(frozen=True)
class FrameSpec:
    """A benchmark frame: its table name, file stem and which runs use it."""

    name: str
    stem: str
    in_rss_run: bool


FRAMES = (
    FrameSpec("640x480 selfie", "selfie_640x480", True),
    FrameSpec("640x480 group (6 faces)", "group_640x480", True),
    FrameSpec("1280x720 crowd (10 faces)", "crowd_1280x720", False),
    FrameSpec("1920x1080 selfie", "selfie_1920x1080", True),
)


def write_frames(folder: Path) -> None:
    """The benchmark frames as JPEG q90 files in ``folder``."""
    from devkit.images import encode
    from devkit.sample_faces import group_frame, one_face_frame

    images = {
        "selfie_640x480": one_face_frame(640, 480),
        "group_640x480": group_frame(640, 480, columns=3, rows=2).image,
        "crowd_1280x720": group_frame(1280, 720, columns=5, rows=2).image,
        "selfie_1920x1080": one_face_frame(1920, 1080),
    }
    for stem, image in images.items():
        (folder / f"{stem}.jpg").write_bytes(encode(image, ".jpg", jpeg_quality=90))


def _frame_bytes(folder: Path, frame: FrameSpec) -> bytes:
    return (folder / f"{frame.stem}.jpg").read_bytes()


# -- the floor ---------------------------------------------------------------------------------------


def floor_pyramid_shapes() -> list[tuple[int, int]]:
    """P-Net input sizes for the floor frame: 12/48 * 0.709^k while the short side stays >= 12 px."""
    height, width = FLOOR_FRAME
    shapes = []
    scale = PNET_CELL / FLOOR_MIN_FACE
    while min(height, width) * scale >= PNET_CELL:
        shapes.append((int(height * scale + 1), int(width * scale + 1)))
        scale *= FLOOR_SCALE_FACTOR
    return shapes


@dataclass(frozen=True)
class NetworkCall:
    """One network run inside ``analyze``: the model's file name and the batch it was given."""

    model_file: str
    batch: np.ndarray


def network_calls(estimator: object, payload: bytes) -> list[NetworkCall]:
    """The network runs of one ``estimator.analyze(payload)``, recorded by wrapping ``OnnxModel.__call__``
    for that one (untimed) call."""
    from meaa.onnx_model import OnnxModel

    calls: list[NetworkCall] = []
    original = OnnxModel.__call__

    def recording(model: OnnxModel, batch: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(NetworkCall(os.path.basename(model.path), batch.copy()))
        return original(model, batch)

    OnnxModel.__call__ = recording
    try:
        estimator.analyze(payload)
    finally:
        OnnxModel.__call__ = original
    return calls


class Floor:
    """The four networks in plain onnxruntime sessions (default options, one thread) on fixed inputs."""

    def __init__(self) -> None:
        import numpy as np
        import onnxruntime as ort

        from meaa.classifier import load_manifest
        from meaa.config import Settings

        settings = Settings()
        models = load_manifest(settings.models_dir)["models"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1

        def session(key: str) -> ort.InferenceSession:
            path = os.path.join(settings.models_dir, models[key]["file"])
            return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])

        self.pnet, self.rnet, self.onet = session("pnet"), session("rnet"), session("onet")
        self.mood = session(settings.mood_model)
        # By file name, to replay what the pipeline fed its own sessions (``NetworkCall``).
        self.by_file = {
            models[key]["file"]: value
            for key, value in (
                ("pnet", self.pnet),
                ("rnet", self.rnet),
                ("onet", self.onet),
                (settings.mood_model, self.mood),
            )
        }
        rng = np.random.default_rng(0)

        def batch(session: ort.InferenceSession, count: int, channels: int, height: int, width: int) -> dict:
            values = rng.uniform(-1.0, 1.0, (count, channels, height, width)).astype(np.float32)
            return {session.get_inputs()[0].name: values}

        self.levels = [batch(self.pnet, 1, 3, h, w) for h, w in floor_pyramid_shapes()]
        self.rnet_input = batch(self.rnet, FLOOR_RNET_CROPS, 3, 24, 24)
        self.onet_input = batch(self.onet, FLOOR_ONET_CROPS, 3, 48, 48)
        mood_side = int(self.mood.get_inputs()[0].shape[-1])
        self.mood_input = batch(self.mood, 1, 1, mood_side, mood_side)

    def replay(self, calls: list[NetworkCall]) -> None:
        """Run the networks on exactly the inputs one ``analyze`` gave them."""
        for call in calls:
            session = self.by_file[call.model_file]
            session.run(None, {session.get_inputs()[0].name: call.batch})

    def parts(self) -> dict[str, Callable[[], object]]:
        return {
            "P-Net pyramid": lambda: [self.pnet.run(None, level) for level in self.levels],
            f"R-Net x{FLOOR_RNET_CROPS}": lambda: self.rnet.run(None, self.rnet_input),
            f"O-Net x{FLOOR_ONET_CROPS}": lambda: self.onet.run(None, self.onet_input),
            "mood x1": lambda: self.mood.run(None, self.mood_input),
        }


# -- children ----------------------------------------------------------------------------------------


def _timed(function: Callable[[], object]) -> tuple[float, float, object]:
    """(wall ms, process CPU ms, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return (time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0, result


def child_speed(folder: Path, rounds: int) -> dict:
    """Floor and frames interleaved round by round; per-round samples for medians."""
    from meaa import MoodEstimator

    estimator = MoodEstimator()
    floor = Floor()
    data = {frame.name: _frame_bytes(folder, frame) for frame in FRAMES}
    for _ in range(5):  # warm both: onnxruntime's first runs per shape allocate
        for function in floor.parts().values():
            function()
        for payload in data.values():
            estimator.analyze(payload)

    calls = {name: network_calls(estimator, payload) for name, payload in data.items()}
    samples: dict[str, dict[str, list[float]]] = {}

    def record(name: str, **values: float) -> None:
        for key, value in values.items():
            samples.setdefault(name, {}).setdefault(key, []).append(value)

    names = list(data)
    faces: dict[str, int] = {}
    for index in range(rounds):
        floor_wall = floor_cpu = 0.0
        for part, function in floor.parts().items():
            wall, cpu, _ = _timed(function)
            record(part, wall=wall, cpu=cpu)
            floor_wall, floor_cpu = floor_wall + wall, floor_cpu + cpu
        record("floor", wall=floor_wall, cpu=floor_cpu)
        for name in names[index % len(names) :] + names[: index % len(names)]:
            wall, cpu, analysis = _timed(lambda name=name: estimator.analyze(data[name]))
            faces[name] = len(analysis.faces)
            timings = analysis.timings_ms
            record(
                name,
                wall=wall,
                cpu=cpu,
                decode=timings["decode"],
                detect=timings["detect"],
                quality=timings.get("quality", 0.0),
                classify=timings["classify"],
            )
            wall, cpu, _ = _timed(lambda name=name: floor.replay(calls[name]))
            record(name, networks_wall=wall, networks_cpu=cpu)
    medians = {name: {key: statistics.median(values) for key, values in keys.items()} for name, keys in samples.items()}
    crops = {
        name: {file: sum(len(call.batch) for call in frame_calls if call.model_file == file) for file in floor.by_file}
        for name, frame_calls in calls.items()
    }
    return {"medians": medians, "faces": faces, "crops": crops, "load": os.getloadavg()}


def _set_stage_batch(size: int | None) -> None:
    """Override the detector's R-Net/O-Net batch size (``--stage-batches`` sweeps it)."""
    if size:
        import meaa.detector

        meaa.detector._STAGE_BATCH = size


def child_rss(folder: Path, repeats: int, stage_batch: int | None = None) -> dict:
    """Peak RSS of this fresh process after warm runs over the selfie, group and 1080p frames."""
    from meaa import MoodEstimator

    _set_stage_batch(stage_batch)
    estimator = MoodEstimator()
    _ = estimator.model_version  # loads the models
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for frame in FRAMES:
        if frame.in_rss_run:
            payload = _frame_bytes(folder, frame)
            for _ in range(repeats):
                estimator.analyze(payload)
    return {"loaded_mb": loaded_mb, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_cold(folder: Path) -> dict:
    """Import, model load and first frame in this fresh process."""
    started = time.perf_counter()
    from meaa import MoodEstimator

    imported = time.perf_counter()
    data = _frame_bytes(folder, FRAMES[0])
    prepared = time.perf_counter()
    estimator = MoodEstimator()
    _ = estimator.model_version  # loads the models
    loaded = time.perf_counter()
    estimator.analyze(data)
    first = time.perf_counter()
    return {
        "import_ms": (imported - started) * 1000,
        "load_ms": (loaded - prepared) * 1000,
        "first_frame_ms": (first - loaded) * 1000,
        "cold_ms": (first - started - (prepared - imported)) * 1000,
    }


def child_api_init() -> dict:
    """The API function's init as Lambda runs it: import the handler module (imports, app, warm-up)."""
    from devkit.lambda_loader import function_spec, load_handler

    os.environ.update(function_spec("ApiFunction").environment)
    print(_INIT_MARKER, file=sys.stderr, flush=True)  # -X importtime: what follows is the handler's
    started = time.perf_counter()
    load_handler("ApiFunction")
    total = time.perf_counter() - started
    # load_handler reads template.yaml first; Lambda does not, so its time is taken off.
    started = time.perf_counter()
    function_spec("ApiFunction")
    template = time.perf_counter() - started
    return {"init_ms": (total - template) * 1000, "template_ms": template * 1000}


_INIT_MARKER = "-- loading the API handler --"


def child_stage_batches(folder: Path, rounds: int, sizes: list[int]) -> dict:
    """CPU ms per frame (medians) at each R-Net/O-Net batch size, alternated round by round in one process."""
    from meaa import MoodEstimator

    estimator = MoodEstimator()
    data = {frame.name: _frame_bytes(folder, frame) for frame in FRAMES}
    for payload in data.values():
        estimator.analyze(payload)
    samples: dict[str, dict[str, list[float]]] = {str(size): {name: [] for name in data} for size in sizes}
    for index in range(rounds):
        for size in sizes[index % len(sizes) :] + sizes[: index % len(sizes)]:
            _set_stage_batch(size)
            for name, payload in data.items():
                _, cpu, _ = _timed(lambda payload=payload: estimator.analyze(payload))
                samples[str(size)][name].append(cpu)
    return {size: {name: statistics.median(values) for name, values in row.items()} for size, row in samples.items()}


_CHILDREN = {
    "speed": lambda args: child_speed(args.frames, args.rounds),
    "rss": lambda args: child_rss(args.frames, args.rss_repeats, args.stage_batch),
    "stage-batches": lambda args: child_stage_batches(args.frames, args.rounds, args.stage_batches),
    "cold": lambda args: child_cold(args.frames),
    "api-init": lambda args: child_api_init(),
}


def _run_child(mode: str, *args: str, importtime: bool = False) -> tuple[dict, str]:
    """Run this module as a child (fresh process, one onnxruntime thread); its JSON answer and stderr."""
    env = {**os.environ, "MEAA_THREADS": os.environ.get("MEAA_THREADS", "1"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "benchmarks.bench_pipeline"]
    process = subprocess.run(
        [*command, "--child", mode, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(process.stdout.strip().splitlines()[-1]), process.stderr


def top_imports(importtime_log: str, count: int) -> list[tuple[str, float]]:
    """Time spent importing each top-level package during the handler's import, from ``-X importtime``.

    A package's figure sums its imports made from outside it (what it imports in turn included), so
    packages overlap (``fastapi`` includes ``pydantic``): each figure is what importing that package cost.
    """
    entries = []  # (depth, package, cumulative ms), in the log's order: a module after its own imports
    for line in importtime_log.split(_INIT_MARKER, 1)[-1].splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        depth = (len(name) - len(name.lstrip(" "))) // 2
        entries.append((depth, name.strip().split(".", 1)[0], int(cumulative) / 1000.0))
    totals: dict[str, float] = {}
    stack: list[int] = []  # walking backwards, the enclosing import of an entry is the last one shallower
    for index in range(len(entries) - 1, -1, -1):
        depth, package, cumulative = entries[index]
        while stack and entries[stack[-1]][0] >= depth:
            stack.pop()
        if not stack or entries[stack[-1]][1] != package:
            totals[package] = totals.get(package, 0.0) + cumulative
        stack.append(index)
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


# -- report ------------------------------------------------------------------------------------------


def _machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    return f"{model}, {os.cpu_count()} logical CPUs"


def report(folder: Path, args: argparse.Namespace) -> None:
    threads = os.environ.get("MEAA_THREADS", "1")
    load_before = os.getloadavg()
    speed, _ = _run_child("speed", "--frames", str(folder), "--rounds", str(args.rounds))
    med = speed["medians"]
    floor = med["floor"]
    print(
        f"Machine: {_machine()}; load average {load_before[0]:.1f} before, {speed['load'][0]:.1f} after the speed run."
    )
    print(f"MEAA_THREADS={threads}; medians over {args.rounds} interleaved rounds.\n")
    print("The floor: the networks alone (plain onnxruntime sessions, 1 thread, 640x480 workload)\n")
    print("| network | wall ms | CPU ms |")
    print("| --- | --- | --- |")
    for part in (key for key in med if key not in speed["faces"] and key != "floor"):
        print(f"| {part} | {med[part]['wall']:.2f} | {med[part]['cpu']:.2f} |")
    print(f"| **floor** | **{floor['wall']:.2f}** | **{floor['cpu']:.2f}** |")

    print("\n`MoodEstimator().analyze(jpeg_bytes)`, decode included, against the floor (wall ms)\n")
    print(
        "| frame | faces | decode | detect | quality | classify | **total** | **x floor** | x floor, CPU time "
        "| R-Net / O-Net crops | its networks alone | x floor | total / its networks |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for frame in FRAMES:
        row, crops = med[frame.name], speed["crops"][frame.name]
        print(
            f"| {frame.name} | {speed['faces'][frame.name]} | {row['decode']:.2f} | {row['detect']:.2f} | "
            f"{row['quality']:.2f} | {row['classify']:.2f} | **{row['wall']:.2f}** | "
            f"**{row['wall'] / floor['wall']:.2f}** | "
            f"{row['cpu'] / floor['cpu']:.2f} | {crops['rnet.onnx']} / {crops['onet.onnx']} | "
            f"{row['networks_wall']:.2f} | {row['networks_wall'] / floor['wall']:.2f} | "
            f"{row['wall'] / row['networks_wall']:.2f} |"
        )
    print(
        f"\nIts networks alone: the same plain sessions replaying exactly the inputs that frame's analyze gave its "
        f"networks (P-Net levels, R-Net and O-Net crops, mood crops), timed in the same rounds; the floor's "
        f"workload is R-Net x{FLOOR_RNET_CROPS} and O-Net x{FLOOR_ONET_CROPS}."
    )
    selfie, crowd = med[FRAMES[0].name], med[FRAMES[2].name]
    print(
        f"\n{FRAMES[2].name} / {FRAMES[0].name}: {crowd['wall'] / selfie['wall']:.2f}x wall, "
        f"{crowd['cpu'] / selfie['cpu']:.2f}x CPU."
    )

    rss = [_run_child("rss", "--frames", str(folder), "--rss-repeats", str(args.rss_repeats))[0] for _ in range(3)]
    colds = [_run_child("cold", "--frames", str(folder))[0] for _ in range(args.cold_runs)]
    inits = [_run_child("api-init")[0] for _ in range(args.cold_runs)]
    cold = {key: statistics.median(run[key] for run in colds) for key in colds[0]}
    print(f"\nFresh processes (medians: RSS of 3, the others of {args.cold_runs})\n")
    print(
        "| import meaa | load models | first 640x480 frame | cold start | RSS, models loaded | "
        "peak RSS after warm runs | API Lambda init |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {cold['import_ms']:.0f} ms | {cold['load_ms']:.0f} ms | {cold['first_frame_ms']:.0f} ms | "
        f"{cold['cold_ms']:.0f} ms | {statistics.median(r['loaded_mb'] for r in rss):.0f} MB | "
        f"**{statistics.median(r['peak_mb'] for r in rss):.0f} MB** | "
        f"**{statistics.median(i['init_ms'] for i in inits):.0f} ms** |"
    )
    print(
        f"\nPeak RSS: warm runs ({args.rss_repeats} each) over the "
        + ", ".join(frame.name for frame in FRAMES if frame.in_rss_run)
        + "."
    )

    _, log = _run_child("api-init", importtime=True)
    print(
        "\nAPI init: time importing each package (`python -X importtime`, one run; a package's time includes "
        "what it imports)\n"
    )
    print("| package | ms |")
    print("| --- | --- |")
    for name, ms in top_imports(log, args.top_imports):
        print(f"| `{name}` | {ms:.0f} |")


def report_stage_batches(folder: Path, args: argparse.Namespace) -> None:
    sizes = [str(size) for size in args.stage_batches]
    cpu, _ = _run_child(
        "stage-batches", "--frames", str(folder), "--rounds", str(args.rounds), "--stage-batches", *sizes
    )
    print(f"R-Net/O-Net batch size: CPU ms per analyze (medians of {args.rounds} alternating rounds) and peak RSS\n")
    print("| batch | " + " | ".join(frame.name for frame in FRAMES) + " | peak RSS |")
    print("| --- |" + " --- |" * (len(FRAMES) + 1))
    for size in sizes:
        runs = [
            _run_child("rss", "--frames", str(folder), "--rss-repeats", str(args.rss_repeats), "--stage-batch", size)
        ]
        times = " | ".join(f"{cpu[size][frame.name]:.2f}" for frame in FRAMES)
        print(f"| {size} | {times} | {runs[0][0]['peak_mb']:.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds of floor + every frame")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes for cold start and API init")
    parser.add_argument("--rss-repeats", type=int, default=10, help="warm runs per frame in the RSS child")
    parser.add_argument("--top-imports", type=int, default=10)
    parser.add_argument(
        "--stage-batches", type=int, nargs="+", help="instead: sweep the detector's R-Net/O-Net batch size (CPU, RSS)"
    )
    parser.add_argument("--child", choices=sorted(_CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_CHILDREN[args.child](args)))
        return
    with tempfile.TemporaryDirectory() as folder:
        write_frames(Path(folder))
        if args.stage_batches:
            report_stage_batches(Path(folder), args)
        else:
            report(Path(folder), args)


if __name__ == "__main__":
    main()
