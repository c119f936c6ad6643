"""Measure what ``recipe.py`` trained, for MODEL_CARD's "Everything tried for issue 21" and the decision to ship.

    model_build/.venv/bin/python -m model_build.recipe_report --data ../shared/data \
        --work model_build/cache/recipe --out model_build/runs/recipe

Every ONNX file of ``WORK/onnx`` (temperature fitted on the FER2013 holdout by ``export.py``) is scored on
fer2013_val through ``MoodClassifier`` (faces resampled for the intervals); on jaffe_dev end to end and only out
of fold: ``final`` through its five fold models, a model that never saw JAFFE as its own fold model. ``final`` is
then set beside the shipped default and the baseline on the same faces (paired, the shipping rule of
MODEL_CARD.md) and timed beside them. The holdout figure of each row is its training log's last epoch. Writes
``OUT/candidates.json``; nothing here chooses: the recipe was fixed before these figures existed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from meaa.config import Settings
from meaa.labels import MOODS, emotion_labels_to_moods
from model_build.cpu_numerics import cpu_features, describe_features
from model_build.distill_report import last_holdout_f1
from model_build.evaluate import (
    MODELS_DIR,
    ModelSpec,
    bootstrap_interval,
    classifier_intervals,
    evaluate_classifier,
    loso_evaluation,
    ms_per_face,
    paired_difference,
    resolve_model,
    weighted_f1_of,
)
from model_build.jaffe_views import load_jaffe
from model_build.metrics import classification_report
from model_build.recipe import BASE_INIT, PLANS, STUDENT_ARGS, SUBJECTS, TEACHER_ARGS, flag_value, planned_epochs


def describe(plan: str = "recipe") -> dict[str, str]:
    """What each row is, in the words of the recipe's constants."""

    epochs = planned_epochs(plan)

    def teacher(name: str, extra: tuple[str, ...]) -> str:
        args = (*TEACHER_ARGS, *extra)
        schedule = f"{epochs[name]} epochs, cosine from lr {flag_value(args, '--lr')}, the fit split, no JAFFE"
        if "--init-from" in extra:
            return f"teacher: the fer network fine-tuned at {flag_value(args, '--input-size')} px, {schedule}"
        return f"teacher: width {flag_value(args, '--width')}, seed {flag_value(args, '--seed')}, {schedule}"

    return {
        "fer": "teacher: the fer network as converted (= `emotion`, uncalibrated)",
        **{name: teacher(name, extra) for name, extra in PLANS[plan].items()},
        "base": f"student, FER2013 only: {BASE_INIT}'s weights distilled {epochs['base']} more epochs "
        "from the teachers (no JAFFE: the folds' common ancestor)",
        "final": f"student: base fine-tuned {epochs['final']} epochs, distillation + JAFFE (5 subjects) "
        f"as {float(flag_value(STUDENT_ARGS, '--jaffe-fraction')):.0%} of the samples",
        "teacher_ensemble": "mean of the teachers' mood probabilities (not shippable: several models)",
    }


def _val_summary(result: dict) -> dict:
    return {k: result["moods4"][k] for k in ("weighted_f1", "weighted_f1_ci95", "accuracy", "ece")}


def _loso_summary(loso: dict) -> dict:
    keys = ("weighted_f1", "weighted_f1_ci95_subjects", "accuracy", "margin_chosen", "per_subject_weighted_f1")
    return {k: loso[k] for k in keys}


def paired_on_val(first: np.ndarray, second: np.ndarray, mood_labels: np.ndarray) -> dict:
    """weighted F1 of the answers ``first`` minus ``second`` on the same faces, faces resampled."""

    def statistic(i: np.ndarray) -> float:
        return weighted_f1_of(mood_labels[i], first[i]) - weighted_f1_of(mood_labels[i], second[i])

    return {
        "difference": statistic(np.arange(len(mood_labels))),
        "ci95_faces": bootstrap_interval(statistic, len(mood_labels)),
    }


def report(data: Path, work: Path, out: Path, logs: Path, plan: str = "recipe") -> dict:
    onnx_dir, teacher_names = work / "onnx", tuple(PLANS[plan])
    with np.load(data / "fer2013_val.npz") as val:
        images, labels = val["images"], val["labels"].astype(np.int64)
    jaffe_images, jaffe_labels, subjects = load_jaffe(data / "jaffe_dev.npz")
    mood_labels = emotion_labels_to_moods(labels)
    what = describe(plan)
    emotion = resolve_model("emotion")
    specs: dict[str, ModelSpec] = {"fer": ModelSpec("fer", emotion.path, emotion.classes, emotion.input_size, None)}
    for name in (*teacher_names, "base", "final"):
        if (onnx_dir / f"{name}.onnx").exists():
            specs[name] = resolve_model(str(onnx_dir / f"{name}.onnx"))

    rows, answers = [], {}
    for name, spec in specs.items():
        result = evaluate_classifier(spec, images, labels, timing=False)
        holdout, epochs = last_holdout_f1(logs, name)
        row = {
            "name": name,
            "what": what[name],
            "epochs": epochs,
            "holdout_weighted_f1": holdout,
            "bytes": result["bytes"],
            "fer2013_val": _val_summary(result),
        }
        folds = (
            {s: resolve_model(str(onnx_dir / f"fold_{s}.onnx")) for s in SUBJECTS}
            if name == "final"
            else dict.fromkeys(SUBJECTS, spec)  # it never saw JAFFE: it is its own fold model
        )
        loso = loso_evaluation(folds, jaffe_images, jaffe_labels, subjects)
        row["jaffe_dev_loso"] = _loso_summary(loso)
        answers[name] = (spec.classifier(1).predict(images).moods.astype(np.float64), loso["out_of_fold_predictions"])
        rows.append(row)
        print(json.dumps({"name": name, "fer2013_val": row["fer2013_val"], "jaffe": row["jaffe_dev_loso"]}), flush=True)

    teachers = [answers[name][0] for name in ("fer", *teacher_names) if name in answers]
    ensemble = np.mean(teachers, axis=0)
    ensemble_report = classification_report(ensemble, mood_labels, MOODS)
    rows.append(
        {
            "name": "teacher_ensemble",
            "what": what["teacher_ensemble"],
            "epochs": None,
            "holdout_weighted_f1": None,
            "bytes": sum(specs[name].path.stat().st_size for name in ("fer", *teacher_names) if name in specs),
            "fer2013_val": {
                "weighted_f1": ensemble_report.weighted_f1,
                "weighted_f1_ci95": classifier_intervals(ensemble, mood_labels)["weighted_f1_ci95"],
                "accuracy": ensemble_report.accuracy,
                "ece": ensemble_report.ece,
            },
        }
    )

    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())["models"]
    references = [Settings().mood_model, "emotion"]
    summary: dict = {
        "rows": rows,
        "baseline_jaffe_dev_loso": _loso_summary(manifest["emotion"]["evaluation"]["jaffe_dev_loso"]),
    }
    if "final" in answers:
        final_val, final_jaffe = answers["final"]
        paired = {}
        for reference in references:
            reference_val = resolve_model(reference).classifier(1).predict(images).moods
            reference_jaffe = manifest[reference]["evaluation"]["jaffe_dev_loso"]["out_of_fold_predictions"]
            jaffe_moods = emotion_labels_to_moods(jaffe_labels)
            jaffe = paired_difference(np.array(final_jaffe), np.array(reference_jaffe), jaffe_moods, subjects)
            val = paired_on_val(final_val.argmax(axis=1), reference_val.argmax(axis=1), mood_labels)
            paired[reference] = {
                "fer2013_val_weighted_f1": val,
                "jaffe_dev_loso_weighted_f1": jaffe,
                "rule_met": bool(val["ci95_faces"][0] > 0 and jaffe["ci95_subjects"][1] >= 0),
            }
        summary["final_vs"] = paired
        timed = {name: resolve_model(name) for name in references} | {"final": specs["final"]}
        rounds: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(3):  # interleaved, so a busy host's load hits all alike
            for name, spec in timed.items():
                rounds[name].append(ms_per_face(spec.classifier(1), images, 500))
        summary["timing"] = {
            name: {
                "ms_per_face_rounds": [round(v, 3) for v in values],
                "vs_emotion_rounds": [round(v / e, 2) for v, e in zip(values, rounds["emotion"], strict=True)],
            }
            for name, values in rounds.items()
        }
        summary["timing_host"] = describe_features(cpu_features())
    out.mkdir(parents=True, exist_ok=True)
    (out / "candidates.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--work", default="model_build/cache/recipe")
    parser.add_argument("--out", default="model_build/runs/recipe", help="candidates.json goes here")
    parser.add_argument("--logs", help="the recipe's training logs (default: --out)")
    parser.add_argument("--plan", choices=sorted(PLANS), default="recipe", help="whose teachers (recipe.PLANS)")
    args = parser.parse_args(argv)
    return report(Path(args.data), Path(args.work), Path(args.out), Path(args.logs or args.out), args.plan)


if __name__ == "__main__":
    main()
