"""Measure everything one GPU session (gpu_distill.sh) trained, here, for MODEL_CARD's table of candidates.

    model_build/.venv/bin/python -m model_build.distill_report --archives DIR_WITH_THE_TGZ_FILES \
        --data ../shared/data --work model_build/cache/distill1 --out model_build/runs/distill1

Unpacks the archives into ``--work``, exports each teacher to ONNX (export.py; temperature fitted on the
FER2013 holdout, as the session did for the students), evaluates every model on fer2013_val through
``MoodClassifier`` (with intervals and ms/face), the student recipes on jaffe_dev leave-one-subject-out
(their fold models), and writes ``candidates.json`` beside the session's logs. Nothing here chooses a
model: which form ships is decided by the speed rule stated in MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np

from meaa.classifier import MoodClassifier
from meaa.labels import MOODS, emotion_labels_to_moods
from model_build.cpu_numerics import cpu_features, describe_features
from model_build.evaluate import (
    classifier_intervals,
    evaluate_classifier,
    fold_specs_for,
    loso_evaluation,
    ms_per_face,
    resolve_model,
)
from model_build.export import export_checkpoint
from model_build.jaffe_views import load_jaffe
from model_build.metrics import classification_report

WHAT = {
    "t_w3_s1": "teacher: width 3, seed 1",
    "t_w3_s2": "teacher: width 3, seed 2",
    "t_w4_s5": "teacher: width 4, seed 5",
    "t_w2_s3": "teacher: width 2, seed 3 (= plain training, no distillation, no JAFFE)",
    "t_ft64": "teacher: the fer network fine-tuned (64 px, lr 3e-4)",
    "fer": "teacher: the fer network as converted (= `emotion`)",
    "final": "student: width 2, distilled from all teachers, JAFFE (5 subjects) in training",
    "final_flip": "the same, flip averaging in the graph",
    "final_nofer": "student without the fer network among its teachers",
    "final_nokd": "student on the same views and JAFFE, labels only (no distillation)",
    "final_nojaffe": "student distilled from all teachers, no JAFFE",
}


def unpack(archives: Path, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for name in ("students.tgz", "teachers.tgz", "onnx.tgz", "logs.tgz"):
        if (archives / name).exists():
            with tarfile.open(archives / name) as archive:
                archive.extractall(work, filter="data")
    for name in ("numerics_gpu_host.npz", "numerics_gpu_host.json"):
        if (archives / name).exists():
            shutil.copy(archives / name, work / name)


TEACHERS = ("t_w2_s3", "t_w3_s1", "t_w3_s2", "t_w4_s5", "t_ft64")
NEVER_SAW_JAFFE = ("fer", "final_nojaffe", *TEACHERS)


def _loso_summary(loso: dict) -> dict:
    return {k: loso[k] for k in ("weighted_f1", "weighted_f1_ci95_subjects", "accuracy", "margin_chosen")}


def last_holdout_f1(log_dir: Path, name: str) -> tuple[float | None, int | None]:
    """The last epoch's holdout weighted F1 and its epoch, from the run's JSON log or its text log."""
    json_path, text_path = log_dir / f"{name}.json", log_dir / f"{name}.log"
    if json_path.exists():
        history = json.loads(json_path.read_text()).get("history") or []
        if history:
            return history[-1]["val_weighted_f1"], history[-1]["epoch"]
    if text_path.exists():  # train.py prints "NAME epoch N loss L val wF1 F ..." per epoch
        epochs = re.findall(r"epoch\s+(\d+) loss \S+ (?:val|holdout) wF1 (\S+)", text_path.read_text())
        if epochs:
            return float(epochs[-1][1]), int(epochs[-1][0])
    return None, None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archives", required=True)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--work", default="model_build/cache/distill1")
    parser.add_argument("--out", default="model_build/runs/distill1")
    parser.add_argument(
        "--holdout",
        default="model_build/cache/splits/fer2013_holdout.npz",
        help="splits.py's holdout (temperature of the exported teachers)",
    )
    args = parser.parse_args(argv)
    work, out, data = Path(args.work), Path(args.out), Path(args.data)
    unpack(Path(args.archives), work)
    out.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    for pattern in ("*.json", "*.log", "lscpu.txt"):
        for item in logs.glob(pattern):
            shutil.copy(item, out / item.name)

    onnx_dir = work / "onnx"
    for checkpoint in sorted((work / "ck").glob("t_*/best.pt")):
        target = onnx_dir / f"{checkpoint.parent.name}.onnx"
        if not target.exists():
            export_checkpoint(checkpoint, args.holdout, target)
    with np.load(data / "fer2013_val.npz") as val:
        images, labels = val["images"], val["labels"].astype(np.int64)
    jaffe_images, jaffe_labels, subjects = load_jaffe(data / "jaffe_dev.npz")

    previous = json.loads((out / "candidates.json").read_text()) if (out / "candidates.json").exists() else {}
    measured = {row["name"]: row for row in previous.get("rows", [])}  # a rerun measures only what is new
    subject_list = sorted(set(subjects.tolist()))
    rows = []
    names = [p.stem for p in sorted(onnx_dir.glob("*.onnx")) if not p.stem.startswith("fold_") and "int8" not in p.stem]
    for name in ["fer", *names]:
        spec = resolve_model("emotion") if name == "fer" else resolve_model(str(onnx_dir / f"{name}.onnx"))
        if name == "fer":
            spec = type(spec)("fer", spec.path, spec.classes, spec.input_size, None)  # uncalibrated, like the teachers
        row = measured.get(name)
        if row is None:
            result = evaluate_classifier(spec, images, labels, timing=False)
            holdout, epochs = last_holdout_f1(out, name.removesuffix("_flip"))
            row = {
                "name": name,
                "what": WHAT.get(name, name),
                "epochs": epochs,
                "holdout_weighted_f1": holdout,
                "bytes": result["bytes"],
                "fer2013_val": {k: result["moods4"][k] for k in ("weighted_f1", "weighted_f1_ci95", "accuracy", "ece")},
            }
        row.pop("ms_per_face", None)  # timings: one interleaved pass below, not per row on a busy host
        if "jaffe_dev_loso" not in row and name in ("final", "final_flip"):
            suffix = "_flip" if name.endswith("_flip") else ""
            folds = {s: resolve_model(str(onnx_dir / f"fold_{s}{suffix}.onnx")) for s in subject_list}
            row["jaffe_dev_loso"] = _loso_summary(loso_evaluation(folds, jaffe_images, jaffe_labels, subjects))
        elif "jaffe_dev_loso" not in row and name in NEVER_SAW_JAFFE:
            folds = dict.fromkeys(subject_list, spec)  # it never saw JAFFE: it is its own fold model
            row["jaffe_dev_loso"] = _loso_summary(loso_evaluation(folds, jaffe_images, jaffe_labels, subjects))
        rows.append(row)
        print(
            json.dumps({"name": name, "fer2013_val": row["fer2013_val"], "jaffe": row.get("jaffe_dev_loso")}),
            flush=True,
        )

    mood_labels = emotion_labels_to_moods(labels)
    teachers = [resolve_model(str(onnx_dir / f"{t}.onnx")) for t in TEACHERS if (onnx_dir / f"{t}.onnx").exists()]
    if "teacher_ensemble" not in measured and teachers:
        baseline_spec = resolve_model("emotion")
        fer = MoodClassifier(baseline_spec.path, baseline_spec.classes, threads=1)  # uncalibrated
        moods = np.mean([t.classifier(1).predict(images).moods for t in teachers] + [fer.predict(images).moods], axis=0)
        moods = moods.astype(np.float64)
        report = classification_report(moods, mood_labels, MOODS)
        measured["teacher_ensemble"] = {
            "name": "teacher_ensemble",
            "what": "mean of the six teachers' mood probabilities (not shippable: six models)",
            "epochs": None,
            "holdout_weighted_f1": None,
            "bytes": sum(t.path.stat().st_size for t in teachers) + baseline_spec.path.stat().st_size,
            "fer2013_val": {
                "weighted_f1": report.weighted_f1,
                "weighted_f1_ci95": classifier_intervals(moods, mood_labels)["weighted_f1_ci95"],
                "accuracy": report.accuracy,
                "ece": report.ece,
            },
        }
    if "teacher_ensemble" in measured:
        rows.append(measured["teacher_ensemble"])

    # Speed of the shipped candidates, interleaved with the baseline so a busy host's load hits all alike.
    timed = {
        "emotion": resolve_model("emotion"),
        "final": resolve_model(str(onnx_dir / "final.onnx")),
        "final_flip": resolve_model(str(onnx_dir / "final_flip.onnx")),
    }
    rounds: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(3):
        for name, spec in timed.items():
            rounds[name].append(ms_per_face(spec.classifier(1), images, 500))
    timing = {
        name: {
            "ms_per_face_rounds": [round(v, 3) for v in values],
            "vs_emotion_rounds": [round(v / e, 2) for v, e in zip(values, rounds["emotion"], strict=True)],
        }
        for name, values in rounds.items()
    }
    print(json.dumps(timing), flush=True)
    baseline_loso = previous.get("baseline_jaffe_dev_loso") or _loso_summary(
        loso_evaluation(fold_specs_for("emotion", None, subjects), jaffe_images, jaffe_labels, subjects)
    )
    summary = {
        "rows": rows,
        "baseline_jaffe_dev_loso": baseline_loso,
        "timing": timing,
        "timing_host": describe_features(cpu_features()),
    }
    (out / "candidates.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
