"""The pipeline against its networks alone ("the floor"), peak memory and the API Lambda's init; markdown tables.

    python -m benchmarks.bench_pipeline [--rounds 60] [--cold-runs 5] [--data ../shared/data]   (make bench)

First the table of issue 20's targets, for the exact cascade (facenet-pytorch's, ``MEAA_DETECT_CASCADE=exact``)
beside the fast one (the default), with the checks that guard the fast one: faces found
(``benchmarks/faces_found.py``: the data-free sets always, jaffe_dev and FER2013 frames when ``--data`` has them)
and jaffe_dev's out-of-fold moods (``benchmarks/cascade_moods.py``, with ``--data``). Then the details below.

The floor is what no glue can beat: the four networks at one onnxruntime thread on what a 640x480 frame
gives them, P-Net over the pyramid for a 48 px minimum face (factor 0.709), R-Net on 32 crops, O-Net on 4,
the mood model on one face, with plain onnxruntime sessions (default options, one thread) and no decoding,
resampling, NMS or Python around them. Each frame's time is ``MoodEstimator().analyze(jpeg_bytes)``, decode
included, and is reported as a ratio to the floor measured in the same process, interleaved with it round by
round (one floor, then every frame once, in an order that rotates), so a busy machine slows both alike.
Medians of wall time, and of the process's CPU time, which another process's load barely moves.

Peak RSS is a fresh process's after warm runs over a selfie, a group photo and a 1080p frame. The API
init is the Lambda cold start of ``ApiFunction`` without SnapStart, as ``devkit/lambda_loader.py`` imports it
(fresh process; imports, FastAPI app, model warm-up), split into its steps in another fresh process;
``python -X importtime`` says which imports dominate it. With SnapStart, a fresh process runs the init, the
before-snapshot hook (``meaa_api.snapstart.prime``, paid when a version is published), the after-restore hook,
then a first upload: what a restored copy still does before its first answer, against the same upload warm.

Frames are JPEG q90 files built from scikit-image's real face (``devkit/sample_faces.py``) before any child
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

    PARTS = ("P-Net pyramid", f"R-Net x{FLOOR_RNET_CROPS}", f"O-Net x{FLOOR_ONET_CROPS}", "mood x1")

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


CASCADES = ("exact", "fast")


def _estimator(cascade: str) -> object:
    import dataclasses

    from meaa import MoodEstimator
    from meaa.config import Settings

    settings = Settings.from_env()
    return MoodEstimator(
        dataclasses.replace(settings, detection=dataclasses.replace(settings.detection, cascade=cascade))
    )


def child_speed(folder: Path, rounds: int) -> dict:
    """Floor and frames (each through both cascades) interleaved round by round; per-round samples for medians."""
    estimators = {cascade: _estimator(cascade) for cascade in CASCADES}
    floor = Floor()
    data = {frame.name: _frame_bytes(folder, frame) for frame in FRAMES}
    for _ in range(5):  # warm both: onnxruntime's first runs per shape allocate
        for function in floor.parts().values():
            function()
        for estimator in estimators.values():
            for payload in data.values():
                estimator.analyze(payload)

    runs = [(cascade, name) for name in data for cascade in CASCADES]
    calls = {run: network_calls(estimators[run[0]], data[run[1]]) for run in runs}
    samples: dict[str, dict[str, list[float]]] = {}

    def record(name: str, **values: float) -> None:
        for key, value in values.items():
            samples.setdefault(name, {}).setdefault(key, []).append(value)

    faces: dict[str, int] = {}
    for index in range(rounds):
        floor_wall = floor_cpu = 0.0
        for part, function in floor.parts().items():
            wall, cpu, _ = _timed(function)
            record(part, wall=wall, cpu=cpu)
            floor_wall, floor_cpu = floor_wall + wall, floor_cpu + cpu
        record("floor", wall=floor_wall, cpu=floor_cpu)
        for cascade, name in runs[index % len(runs) :] + runs[: index % len(runs)]:
            key = f"{cascade}:{name}"
            wall, cpu, analysis = _timed(lambda c=cascade, n=name: estimators[c].analyze(data[n]))
            faces[key] = len(analysis.faces)
            timings = analysis.timings_ms
            record(
                key,
                wall=wall,
                cpu=cpu,
                decode=timings["decode"],
                detect=timings["detect"],
                quality=timings.get("quality", 0.0),
                classify=timings["classify"],
            )
            wall, cpu, _ = _timed(lambda run=(cascade, name): floor.replay(calls[run]))
            record(key, networks_wall=wall, networks_cpu=cpu)
    medians = {name: {key: statistics.median(values) for key, values in keys.items()} for name, keys in samples.items()}
    crops = {
        f"{cascade}:{name}": {
            file: sum(len(call.batch) for call in frame_calls if call.model_file == file) for file in floor.by_file
        }
        for (cascade, name), frame_calls in calls.items()
    }
    return {"medians": medians, "faces": faces, "crops": crops, "load": os.getloadavg()}


def _set_stage_batch(size: int | None) -> None:
    """Override the detector's R-Net/O-Net batch size (``--stage-batches`` sweeps it)."""
    if size:
        import meaa.detector

        meaa.detector._STAGE_BATCH = size


def child_rss(folder: Path, repeats: int, stage_batch: int | None = None, cascade: str = "fast") -> dict:
    """Peak RSS of this fresh process after warm runs over the selfie, group and 1080p frames."""
    _set_stage_batch(stage_batch)
    estimator = _estimator(cascade)
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
    started, started_cpu = time.perf_counter(), time.process_time()
    load_handler("ApiFunction")
    total, total_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    # load_handler reads template.yaml first; Lambda does not, so its time is taken off.
    started, started_cpu = time.perf_counter(), time.process_time()
    function_spec("ApiFunction")
    template, template_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    # The CPU time is the steadier figure on a shared host: a fresh process's wall time also waits on the disk.
    return {"init_ms": (total - template) * 1000, "init_cpu_ms": (total_cpu - template_cpu) * 1000}


_INIT_MARKER = "-- loading the API handler --"


def child_api_init_parts() -> dict:
    """The API init's steps, in the handler's order, each timed: imports, app, model load, warm-up run."""
    from devkit.lambda_loader import function_spec

    os.environ.update(function_spec("ApiFunction").environment)
    started = time.perf_counter()
    import mangum  # what meaa_api.lambda_handler imports, without running it
    from aws_lambda_powertools.logging import correlation_paths  # noqa: F401

    from meaa.config import Settings
    from meaa_api import app as api_app
    from meaa_api import snapstart  # noqa: F401

    imported = time.perf_counter()
    app = api_app.create_app(Settings.from_env())
    mangum.Mangum(app, lifespan="off")
    created = time.perf_counter()
    estimator = app.state.meaa.estimator
    _ = estimator.model_version  # loads the models
    loaded = time.perf_counter()
    app.state.meaa.warm_up()
    warmed = time.perf_counter()
    return {
        "import_ms": (imported - started) * 1000,
        "app_ms": (created - imported) * 1000,
        "load_ms": (loaded - created) * 1000,
        "warm_up_ms": (warmed - loaded) * 1000,
    }


def _upload_event(payload: bytes) -> dict:
    from meaa_api.snapstart import gateway_event

    return gateway_event("POST", "/upload-meaa-image", payload)


def child_first_request(folder: Path, snapstart: bool) -> dict:
    """The handler's init, then (``snapstart``) its before-snapshot and after-restore hooks as the runtime runs
    them, then the same 640x480 upload twice: the first answer after init or restore, and warm."""
    import snapshot_restore_py

    from devkit.lambda_loader import function_spec, lambda_context, load_handler

    os.environ.update(function_spec("ApiFunction").environment)
    started = time.perf_counter()
    handler = load_handler("ApiFunction")
    init = time.perf_counter() - started
    started = time.perf_counter()
    function_spec("ApiFunction")  # load_handler reads template.yaml first; Lambda does not (as child_api_init)
    result = {"init_ms": (init - (time.perf_counter() - started)) * 1000}
    if snapstart:
        mark = time.perf_counter()
        for function, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
            function(*args, **kwargs)
        result["prime_ms"] = (time.perf_counter() - mark) * 1000
        mark = time.perf_counter()
        for function, args, kwargs in snapshot_restore_py.get_after_restore():
            function(*args, **kwargs)
        result["refresh_ms"] = (time.perf_counter() - mark) * 1000
    event = _upload_event(_frame_bytes(folder, FRAMES[0]))
    for key in ("first_ms", "warm_ms"):
        context = lambda_context("ApiFunction")  # reads template.yaml: outside the timing
        mark = time.perf_counter()
        answer = handler(event, context)
        result[key] = (time.perf_counter() - mark) * 1000
        if answer["statusCode"] != 200:
            raise RuntimeError(f"upload answered {answer['statusCode']}: {answer['body'][:200]}")
    return result


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
    "rss": lambda args: child_rss(args.frames, args.rss_repeats, args.stage_batch, args.cascade),
    "api-init-parts": lambda args: child_api_init_parts(),
    "first-request": lambda args: child_first_request(args.frames, snapstart=False),
    "snapstart": lambda args: child_first_request(args.frames, snapstart=True),
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


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(folder: Path, args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    speed, _ = _run_child("speed", "--frames", str(folder), "--rounds", str(args.rounds))
    repeats = ("--rss-repeats", str(args.rss_repeats))
    rss = {
        c: [_run_child("rss", "--frames", str(folder), *repeats, "--cascade", c)[0] for _ in range(3)] for c in CASCADES
    }
    colds = [_run_child("cold", "--frames", str(folder))[0] for _ in range(args.cold_runs)]
    inits = [_run_child("api-init")[0] for _ in range(args.cold_runs)]
    parts = [_run_child("api-init-parts")[0] for _ in range(args.cold_runs)]
    firsts = [_run_child("first-request", "--frames", str(folder))[0] for _ in range(3)]
    snaps = [_run_child("snapstart", "--frames", str(folder))[0] for _ in range(3)]
    _, importtime_log = _run_child("api-init", importtime=True)
    load_after = os.getloadavg()

    med, floor = speed["medians"], speed["medians"]["floor"]
    selfie, crowd, large = FRAMES[0].name, FRAMES[2].name, FRAMES[3].name

    def ratio(cascade: str, frame: str, reference: dict) -> str:
        row = med[f"{cascade}:{frame}"]
        return f"{row['wall'] / reference['wall']:.2f}x ({row['cpu'] / reference['cpu']:.2f}x)"

    print(f"Machine: {_machine()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after.")
    print(f"MEAA_THREADS={os.environ.get('MEAA_THREADS', '1')}; medians over {args.rounds} interleaved rounds.\n")
    print("Issue 20's targets: ratios to the floor (or the selfie) measured in the same run, wall time (CPU time)\n")
    print("| measure | exact cascade | fast cascade (default) | target |")
    print("| --- | --- | --- | --- |")
    print(f"| {selfie}, x floor | {ratio('exact', selfie, floor)} | {ratio('fast', selfie, floor)} | <= 1.4x |")
    print(f"| {large}, x floor | {ratio('exact', large, floor)} | {ratio('fast', large, floor)} | <= 2.0x |")
    print(
        f"| {crowd}, x the selfie | {ratio('exact', crowd, med[f'exact:{selfie}'])} | "
        f"{ratio('fast', crowd, med[f'fast:{selfie}'])} | <= 2.5x |"
    )
    print(
        f"| peak RSS | {_median(rss['exact'], 'peak_mb'):.0f} MB | {_median(rss['fast'], 'peak_mb'):.0f} MB "
        "| <= 150 MB |"
    )
    init = f"{_median(inits, 'init_ms'):.0f} ms ({_median(inits, 'init_cpu_ms'):.0f} ms)"
    print(f"| API Lambda init, without SnapStart, from this venv | {init} (either) | | <= 800 ms |")
    print("\nThe deployed artifacts' init, with the bytecode they ship: `python -m benchmarks.cold_init` (make bench).")
    _print_budget(med, floor)
    if not args.no_checks:
        _print_checks(args.data)
    _print_details(speed, args)
    _print_fresh_processes(colds, rss, inits, parts, firsts, snaps, args)
    print(
        "\nAPI init: time importing each package (`python -X importtime`, one run; a package's time includes "
        "what it imports)\n"
    )
    print("| package | ms |")
    print("| --- | --- |")
    for name, ms in top_imports(importtime_log, args.top_imports):
        print(f"| `{name}` | {ms:.0f} |")


def _print_checks(data_dir: Path) -> None:
    from benchmarks import cascade_moods, faces_found

    exact, fast = faces_found.estimators()
    sets = faces_found.image_sets(data_dir, None, None)
    print("\nFaces found: the fast cascade against the exact one (`python -m benchmarks.faces_found`)\n")
    print(faces_found.table({name: faces_found.compare(samples, exact, fast) for name, samples in sets.items()}))
    if (data_dir / "jaffe_dev.npz").exists():
        print("\nMoods: jaffe_dev out of fold through each cascade (`python -m benchmarks.cascade_moods`)\n")
        print(cascade_moods.table(data_dir))
        print(
            "\nfer2013_val's figures come from its 48x48 crops without detection: no cascade moves them "
            "(`make verify-metrics` recomputes every recorded figure)."
        )
    else:
        print(f"\n(no {data_dir}/jaffe_dev.npz: jaffe_dev and FER2013 checks skipped)")


def _print_budget(med: dict, floor: dict) -> None:
    """What a ratio target leaves for everything but the networks: the frame's own networks (replayed alone) are
    part of any answer, so the target minus their share of the floor is all that decoding, resampling, NMS and
    the quality and crop steps may cost together; beside it, what they cost in this run."""
    print("\nWhat the targets leave for the work around the networks (fast cascade, x floor, wall time)\n")
    print("| frame | target | its networks alone | left for the rest | the rest, measured | of which decode |")
    print("| --- | --- | --- | --- | --- | --- |")
    for frame, target in ((FRAMES[0], 1.4), (FRAMES[3], 2.0)):
        row = med[f"fast:{frame.name}"]
        networks, total = row["networks_wall"] / floor["wall"], row["wall"] / floor["wall"]
        print(
            f"| {frame.name} | {target:.1f}x | {networks:.2f}x | {target - networks:.2f}x | "
            f"{total - networks:.2f}x | {row['decode'] / floor['wall']:.2f}x |"
        )


def _print_details(speed: dict, args: argparse.Namespace) -> None:
    med, floor = speed["medians"], speed["medians"]["floor"]
    print("\nThe floor: the networks alone (plain onnxruntime sessions, 1 thread, 640x480 workload)\n")
    print("| network | wall ms | CPU ms |")
    print("| --- | --- | --- |")
    for part in Floor.PARTS:
        print(f"| {part} | {med[part]['wall']:.2f} | {med[part]['cpu']:.2f} |")
    print(f"| **floor** | **{floor['wall']:.2f}** | **{floor['cpu']:.2f}** |")

    print("\n`MoodEstimator().analyze(jpeg_bytes)`, decode included, against the floor (wall ms)\n")
    print(
        "| frame | cascade | faces | decode | detect | quality | classify | **total** | **x floor** | x floor, CPU "
        "| R-Net / O-Net crops | its networks alone | x floor | total / its networks |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for frame in FRAMES:
        for cascade in CASCADES:
            key = f"{cascade}:{frame.name}"
            row, crops = med[key], speed["crops"][key]
            print(
                f"| {frame.name} | {cascade} | {speed['faces'][key]} | {row['decode']:.2f} | {row['detect']:.2f} | "
                f"{row['quality']:.2f} | {row['classify']:.2f} | **{row['wall']:.2f}** | "
                f"**{row['wall'] / floor['wall']:.2f}** | {row['cpu'] / floor['cpu']:.2f} | "
                f"{crops['rnet.onnx']} / {crops['onet.onnx']} | {row['networks_wall']:.2f} | "
                f"{row['networks_wall'] / floor['wall']:.2f} | {row['wall'] / row['networks_wall']:.2f} |"
            )
    print(
        f"\nIts networks alone: the same plain sessions replaying exactly the inputs that frame's analyze gave its "
        f"networks (P-Net levels, R-Net and O-Net crops, mood crops), timed in the same rounds; the floor's "
        f"workload is R-Net x{FLOOR_RNET_CROPS} and O-Net x{FLOOR_ONET_CROPS}."
    )


def _print_fresh_processes(colds, rss, inits, parts, firsts, snaps, args: argparse.Namespace) -> None:
    print(f"\nFresh processes, fast cascade (medians: RSS of 3 per cascade, the others of {args.cold_runs})\n")
    print("| import meaa | load models | first 640x480 frame | cold start | RSS, models loaded | peak RSS (exact) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| {_median(colds, 'import_ms'):.0f} ms | {_median(colds, 'load_ms'):.0f} ms | "
        f"{_median(colds, 'first_frame_ms'):.0f} ms | {_median(colds, 'cold_ms'):.0f} ms | "
        f"{_median(rss['fast'], 'loaded_mb'):.0f} MB | {_median(rss['fast'], 'peak_mb'):.0f} MB "
        f"({_median(rss['exact'], 'peak_mb'):.0f} MB) |"
    )
    print(
        f"\nPeak RSS: warm runs ({args.rss_repeats} each) over the "
        + ", ".join(frame.name for frame in FRAMES if frame.in_rss_run)
        + "."
    )
    print("\nAPI Lambda init without SnapStart: the handler's steps, each timed in a fresh process (medians)\n")
    print("| imports | FastAPI app | load models | warm-up run | sum | the handler's import, whole |")
    print("| --- | --- | --- | --- | --- | --- |")
    steps = [_median(parts, key) for key in ("import_ms", "app_ms", "load_ms", "warm_up_ms")]
    print(
        "| "
        + " | ".join(f"{ms:.0f} ms" for ms in steps)
        + f" | {sum(steps):.0f} ms | **{_median(inits, 'init_ms'):.0f} ms** |"
    )
    print("\nFirst upload (640x480 selfie, through the Lambda handler) after a cold start (medians of 3 processes)\n")
    print("| start | init | before snapshot (at publish) | after restore | first upload | same upload, warm |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| without SnapStart | {_median(firsts, 'init_ms'):.0f} ms | | | {_median(firsts, 'first_ms'):.0f} ms | "
        f"{_median(firsts, 'warm_ms'):.0f} ms |"
    )
    print(
        f"| SnapStart (hooks run as the runtime does) | ({_median(snaps, 'init_ms'):.0f} ms at publish) | "
        f"{_median(snaps, 'prime_ms'):.0f} ms | {_median(snaps, 'refresh_ms'):.1f} ms | "
        f"{_median(snaps, 'first_ms'):.0f} ms | {_median(snaps, 'warm_ms'):.0f} ms |"
    )
    print(
        "\nA restored copy's cold start is Lambda's restore (the REPORT line's `Restore Duration`, which includes the "
        "after-restore hook) plus its first answer; neither the init nor the priming is in it."
    )


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
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="for the checks")
    parser.add_argument("--no-checks", action="store_true", help="timings only (no faces-found or mood check)")
    parser.add_argument(
        "--stage-batches", type=int, nargs="+", help="instead: sweep the detector's R-Net/O-Net batch size (CPU, RSS)"
    )
    parser.add_argument("--child", choices=sorted(_CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage-batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cascade", choices=CASCADES, default="fast", help=argparse.SUPPRESS)
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
