"""Do the mood models give the same answers on every CPU? Run them on one machine, compare machines.

Integer (INT8) kernels differ between processors: x86 without VNNI multiplies u8 x s8 into 16-bit
sums that can saturate, x86 with AVX-512 VNNI and arm64 with dot-product instructions do not. So the
numbers of a model must be measured where it runs. This script has three steps:

    # optional: resize here once, so that every machine gets the same pixels (see ``prepare``)
    python -m model_build.cpu_numerics prepare ../shared/data/fer2013_val.npz --out model_build/cache/val_crops.npz
    # on each machine (meaa's runtime: numpy, onnxruntime, opencv; also under qemu-aarch64, see
    # model_build/arm64/README.md): every model's outputs and the CPU's features
    python -m model_build.cpu_numerics run ../shared/data/fer2013_val.npz \
        --model layers/meaa/models/emotion.onnx ... --out OUT/numerics_HOST
    # anywhere: the differences between machines, per model
    python -m model_build.cpu_numerics compare OUT/numerics_A.npz OUT/numerics_B.npz ...

``run`` uses one intra-op thread, as the service does (``meaa.onnx_model``).
``features`` prints what ``cpu_features`` reads (also recorded by every run).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np

from meaa.classifier import MoodClassifier, resize_crops
from meaa.labels import EMOTIONS, MOODS, emotion_labels_to_moods
from meaa.onnx_model import OnnxModel

X86_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
# Linux auxiliary-vector bits for arm64 (asm/hwcap.h): read through getauxval, which qemu-user emulates.
AT_HWCAP, AT_HWCAP2 = 16, 26
ARM64_HWCAP = {"asimddp (dot product)": (AT_HWCAP, 1 << 20), "sve": (AT_HWCAP, 1 << 22)}
ARM64_HWCAP2 = {"i8mm": (AT_HWCAP2, 1 << 13), "bf16": (AT_HWCAP2, 1 << 14)}
# Two probabilities agree across CPUs when they differ by no more than this (float32 kernels reorder sums).
PROBABILITY_TOLERANCE = 1e-4


def cpu_features() -> dict:
    """The CPU facts that decide which onnxruntime kernels run: architecture, model, SIMD features."""
    machine = platform.machine()
    info: dict = {"machine": machine}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.lower().startswith("model name"):
            info["model_name"] = line.split(":", 1)[1].strip()
            break
    if machine in ("x86_64", "AMD64"):
        flags: set[str] = set()
        for line in cpuinfo.splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        info["features"] = {flag: flag in flags for flag in X86_FLAGS}
        info["vnni"] = bool(flags & {"avx512_vnni", "avx_vnni"})
    elif machine in ("aarch64", "arm64"):
        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype = ctypes.c_ulong
        info["features"] = {
            name: bool(getauxval(kind) & bit) for name, (kind, bit) in {**ARM64_HWCAP, **ARM64_HWCAP2}.items()
        }
        info["dotprod"] = info["features"]["asimddp (dot product)"]
        if "QEMU_CPU" in os.environ:
            info["emulated"] = f"qemu-user, QEMU_CPU={os.environ['QEMU_CPU']}"
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    info["numpy"] = np.__version__
    return info


def describe_features(info: dict) -> str:
    """One line for logs and tables, e.g. ``x86_64 AMD EPYC: avx2 (no avx512f, no avx512_vnni, ...)``."""
    features = info.get("features", {})
    have = [name for name, on in features.items() if on]
    lack = [f"no {name}" for name, on in features.items() if not on]
    return f"{info['machine']} {info.get('model_name', '')}".strip() + ": " + ", ".join(have + lack)


def prepare(data_npz: str, out: str, sizes: tuple[int, ...] = (48, 64)) -> None:
    """The npz plus its faces resized here to each model side (``c48``, ``c64``) for ``run``.

    Measured: OpenCV's 8-bit INTER_LINEAR enlargement (48 -> 64 px) is not bit-exact across
    architectures (x86-64 and arm64 builds of the same version differ by one grey level in about a
    quarter of the pixels), so a comparison of the models' arithmetic must feed every machine these.
    """
    with np.load(data_npz) as data:
        arrays = {key: data[key] for key in data.files}
    arrays.update({f"c{size}": resize_crops(arrays["images"], size) for size in sizes})
    np.savez_compressed(out, **arrays)


def sha256_of(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(data_npz: str, models: list[str], out_prefix: str) -> dict:
    """Each model through ``meaa.classifier.MoodClassifier`` (1 thread, uncalibrated) on a FER-style npz.

    The faces are resized to each model's side by ``meaa.classifier.resize_crops`` (OpenCV's 8-bit
    resize is bit-exact across CPUs); the sha256 of the pixels fed at each size is recorded, so a
    comparison can tell a model's arithmetic from a difference in its input.
    """
    with np.load(data_npz) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
        # Crops resized elsewhere (``prepare``): the same pixels everywhere, so only the models' arithmetic differs.
        crops: dict[int, np.ndarray] = {
            int(key[1:]): data[key] for key in data.files if key[0] == "c" and key[1:].isdigit()
        }
    mood_labels = emotion_labels_to_moods(labels)
    outputs: dict[str, np.ndarray] = {}
    summary: dict = {
        "cpu": cpu_features(),
        "data": Path(data_npz).name,
        "inputs_sha256": {},
        "inputs_resized_here": [],
        "models": {},
    }
    for path in models:
        classifier = _classifier(path)
        size = classifier.input_size
        if size not in crops:
            crops[size] = resize_crops(images, size)
            summary["inputs_resized_here"].append(size)
        if str(size) not in summary["inputs_sha256"]:
            summary["inputs_sha256"][str(size)] = hashlib.sha256(crops[size].tobytes()).hexdigest()
        predictions = [classifier.predict(batch) for batch in np.array_split(crops[size], 16)]
        moods = np.concatenate([p.moods for p in predictions])
        name = Path(path).stem
        row = {
            "input_size": size,
            "sha256": sha256_of(path),
            "accuracy_4": float((moods.argmax(1) == mood_labels).mean()),
            "weighted_f1_4": _weighted_f1(moods.argmax(1), mood_labels, len(MOODS)),
        }
        if classifier.has_emotions:
            emotions = np.concatenate([p.emotions for p in predictions])
            row["accuracy_7"] = float((emotions.argmax(1) == labels).mean())
            outputs[name] = emotions.astype(np.float32)
        else:
            outputs[name] = moods.astype(np.float32)
        summary["models"][name] = row
        # Written after every model: a run cut short by a time limit still leaves what it measured.
        np.savez_compressed(out_prefix + ".npz", **outputs)
        Path(out_prefix + ".json").write_text(json.dumps(summary, indent=1))
    return summary


def _classifier(path: str) -> MoodClassifier:
    outputs = int(OnnxModel(path, threads=1).session.get_outputs()[0].shape[-1])
    classes = {len(EMOTIONS): EMOTIONS, len(MOODS): MOODS}[outputs]
    return MoodClassifier(path, classes, threads=1)


def _weighted_f1(predictions: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """Weighted F1 in plain numpy (model_build.metrics needs nothing more, but this runs on bare hosts)."""
    total = 0.0
    for c in range(classes):
        tp = float(((predictions == c) & (labels == c)).sum())
        denominator = float((predictions == c).sum() + (labels == c).sum())
        total += (2 * tp / denominator if denominator else 0.0) * float((labels == c).sum())
    return total / len(labels)


def _same_pixels(summary: dict, reference: dict, model: str) -> bool:
    """Both runs fed this model the same pixels (compared at its input size, or at every size both used)."""
    ours, theirs = summary.get("inputs_sha256", {}), reference.get("inputs_sha256", {})
    size = summary["models"][model].get("input_size")
    sizes = [str(size)] if size is not None else set(ours) & set(theirs)
    return all(ours.get(s) == theirs.get(s) for s in sizes)


def compare(prefixes: list[str]) -> dict:
    """Per model: the largest probability difference and argmax disagreements between machines."""
    runs = []
    for prefix in prefixes:
        with np.load(prefix + ".npz") as data:
            runs.append((prefix, json.loads(Path(prefix + ".json").read_text()), {k: data[k] for k in data.files}))
    reference_prefix, reference_summary, reference = runs[0]
    count = len(next(iter(reference.values()))) if reference else 0
    result: dict = {
        "reference": {"run": reference_prefix, "cpu": describe_features(reference_summary["cpu"])},
        "inputs": f"{reference_summary.get('data', '?')}, {count} faces; sha256 of the pixels fed at each size: "
        + ", ".join(
            f"{size} px {digest[:12]}" for size, digest in sorted(reference_summary.get("inputs_sha256", {}).items())
        ),
        "count": count,
        "models": {},
    }
    for name, expected in reference.items():
        rows = []
        for prefix, summary, outputs in runs[1:]:
            if name not in outputs:
                continue
            got = outputs[name]
            difference = float(np.abs(got - expected).max())
            rows.append(
                {
                    "run": prefix,
                    "same_pixels": _same_pixels(summary, reference_summary, name),
                    "cpu": describe_features(summary["cpu"]),
                    "same_file": summary["models"][name]["sha256"] == reference_summary["models"][name]["sha256"],
                    "max_abs_difference": difference,
                    "within_tolerance": difference <= PROBABILITY_TOLERANCE,
                    "argmax_7_disagreements": int((got.argmax(1) != expected.argmax(1)).sum()),
                    "weighted_f1_4": summary["models"][name]["weighted_f1_4"],
                    "reference_weighted_f1_4": reference_summary["models"][name]["weighted_f1_4"],
                }
            )
        result["models"][name] = rows
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prepare_parser = sub.add_parser("prepare", help="add the faces resized here (c48, c64) to an npz")
    prepare_parser.add_argument("data")
    prepare_parser.add_argument("--out", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("data", help="FER-style npz: images uint8 [N,H,W], labels")
    run_parser.add_argument("--model", action="append", required=True)
    run_parser.add_argument("--out", required=True, help="output prefix (.npz + .json)")
    compare_parser = sub.add_parser("compare")
    compare_parser.add_argument("runs", nargs="+", help="output prefixes of run; the first is the reference")
    compare_parser.add_argument("--json")
    features_parser = sub.add_parser("features", help="print this CPU's features")
    del features_parser
    args = parser.parse_args(argv)
    result: dict
    if args.command == "prepare":
        prepare(args.data, args.out)
        result = {"written": args.out}
    elif args.command == "run":
        result = run(args.data, args.model, args.out)
    elif args.command == "compare":
        result = compare([prefix.removesuffix(".npz") for prefix in args.runs])
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
    else:
        result = cpu_features()
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
