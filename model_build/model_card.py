"""The figures of MODEL_CARD.md and README.md's accuracy table, generated from the records that hold them.

No figure in those tables is typed by hand: each table sits between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->`` and is rendered here from the manifest's ``evaluation`` blocks (recomputed by
``make verify-metrics``) or from the committed logs under model_build/runs/ (training runs whose artifacts
are not shipped). ``verify_metrics`` fails when a table differs from what its records give; ``--write``
(or ``verify_metrics --write``) rewrites them.

    model_build/.venv/bin/python -m model_build.model_card --write
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from meaa.labels import MOODS
from model_build import quality_report
from model_build.recipe import NEXT_TEACHERS, TEACHERS, planned_epochs

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_CARD = REPO_ROOT / "model_build" / "MODEL_CARD.md"
README = REPO_ROOT / "README.md"
DOCUMENTS = (MODEL_CARD, README)
RUNS = REPO_ROOT / "model_build" / "runs"
MANIFEST = REPO_ROOT / "layers" / "meaa" / "models" / "manifest.json"
DISTILL_RUN = RUNS / "distill1"


def _f(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _ci(interval) -> str:
    low, high = interval
    return f"{low:.3f} to {high:.3f}"


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _features(measured_on: dict) -> str:
    features = measured_on.get("features", {})
    have = [name for name, on in features.items() if on]
    lack = [name for name, on in features.items() if not on]
    machine = " ".join(filter(None, (measured_on.get("machine", "?"), measured_on.get("model_name"))))
    return f"{machine}, {' '.join(have) or 'no listed features'}" + (f" (no {', '.join(lack)})" if lack else "")


def _speed(evaluation: dict) -> str:
    ms = evaluation.get("ms_per_face_1_thread")
    if ms is None:
        return "-"
    ratio = evaluation.get("ms_per_face_vs_emotion")
    return f"{ms:.2f}" + (f" ({ratio:.2f}x)" if ratio is not None else "")


def mood_entries(manifest: dict) -> dict[str, dict]:
    return {
        name: entry
        for name, entry in manifest["models"].items()
        if entry.get("kind") == "mood" and "evaluation" in entry
    }


def shipped_table(manifest: dict) -> str:
    """Per shipped mood model: fer2013_val, jaffe_dev out of fold, ECE, bytes, speed, with intervals."""
    lines = [
        "| model | fer2013_val weighted F1 (95 % CI) | 4-mood acc (95 % CI) | 7-class acc | macro F1 "
        "| ECE, top mood (95 % CI) | jaffe_dev out-of-fold weighted F1 (95 % CI: subjects / photos) | jaffe acc "
        "| bytes | ms/face, 1 thread (x `emotion`, same run) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in mood_entries(manifest).items():
        e = entry["evaluation"]
        v, j = e["fer2013_val"], e["jaffe_dev_loso"]
        seven = _f(v["accuracy_7"]) if "accuracy_7" in v else "-"
        lines.append(
            f"| `{name}` | {_f(v['weighted_f1_4'])} ({_ci(v['weighted_f1_4_ci95'])}) | {_f(v['accuracy_4'])} "
            f"({_ci(v['accuracy_4_ci95'])}) | {seven} | {_f(v['macro_f1_4'])} | "
            f"{_f(v['ece_4'])} ({_ci(v['ece_4_ci95'])}) | "
            f"{_f(j['weighted_f1'])} ({_ci(j['weighted_f1_ci95_subjects'])} / {_ci(j['weighted_f1_ci95_images'])}) | "
            f"{_f(j['accuracy'])} | {e['bytes']:,} | {_speed(e)} |"
        )
    machines = sorted({_features(entry["evaluation"]["measured_on"]) for entry in mood_entries(manifest).values()})
    lines.append("")
    lines.append(
        f"Measured on: {'; '.join(machines)} (figures: any CPU within 0.002; ms/face: that machine, the "
        "lowest of three interleaved medians of one face; it moves with the shared host's load, the ratio less)."
    )
    return "\n".join(lines)


def per_class_table(manifest: dict) -> str:
    lines = [
        "| model | fer2013_val F1 " + " / ".join(MOODS) + " | jaffe_dev out-of-fold F1 " + " / ".join(MOODS) + " |",
        "| --- | --- | --- |",
    ]
    for name, entry in mood_entries(manifest).items():
        v, j = entry["evaluation"]["fer2013_val"], entry["evaluation"]["jaffe_dev_loso"]
        lines.append(
            f"| `{name}` | "
            + " / ".join(_f(v["per_class_f1_4"][m]) for m in MOODS)
            + " | "
            + " / ".join(_f(j["per_class_f1"][m]) for m in MOODS)
            + " |"
        )
    return "\n".join(lines)


def loso_table(manifest: dict) -> str:
    entries = mood_entries(manifest)
    subjects = sorted(next(iter(entries.values()))["evaluation"]["jaffe_dev_loso"]["margin_chosen"]) if entries else []
    lines = [
        "| model | fold models | " + " | ".join(f"{s}: margin, weighted F1" for s in subjects) + " |",
        "| --- | --- | " + " | ".join("---" for _ in subjects) + " |",
    ]
    for name, entry in entries.items():
        j = entry["evaluation"]["jaffe_dev_loso"]
        folds = (
            f"`{j['fold_models_dir']}/fold_*.onnx`" if "fold_models_dir" in j else "the model itself (never saw JAFFE)"
        )
        cells = [f"{j['margin_chosen'][s]:+.2f}, {_f(j['per_subject_weighted_f1'][s])}" for s in subjects]
        lines.append(f"| `{name}` | {folds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shipping_rule_table(manifest: dict) -> str:
    lines = ["| default vs baseline | difference (95 % CI) | rule | met |", "| --- | --- | --- | --- |"]
    for name, entry in mood_entries(manifest).items():
        rule = entry["evaluation"].get("shipping_rule")
        if not rule:
            continue
        val, jaffe = rule["fer2013_val_weighted_f1"], rule["jaffe_dev_loso_weighted_f1"]
        lines.append(
            f"| `{name}` - `{rule['baseline']}`, fer2013_val weighted F1 | {val['difference']:+.3f} "
            f"({_ci(val['ci95_faces'])}) | wins: interval above 0 | {'yes' if val['ci95_faces'][0] > 0 else 'no'} |"
        )
        lines.append(
            f"| `{name}` - `{rule['baseline']}`, jaffe_dev out-of-fold weighted F1 | {jaffe['difference']:+.3f} "
            f"({_ci(jaffe['ci95_subjects'])}, subjects) | does not lose beyond its interval: upper end >= 0 | "
            f"{'yes' if jaffe['ci95_subjects'][1] >= 0 else 'no'} |"
        )
    return "\n".join(lines)


CROSS_CPU_RUNS = ("cross_cpu_x86.json", "cross_cpu_arm64.json", "cross_cpu_recipe.json")


def cross_cpu_table(_: dict) -> str:
    """One table per comparison file (model_build/cpu_numerics.py compare --json)."""
    parts = []
    for file_name in CROSS_CPU_RUNS:
        data = _load(RUNS / file_name)
        if not data:
            parts.append(f"(`runs/{file_name}`: not measured)")
            continue
        reference = f"{data['reference']['cpu']} (`{Path(data['reference']['run']).name}`)"
        lines = [
            f"`runs/{file_name}`. Reference: {reference}. Inputs: {data['inputs']}.",
            "",
            "| model | run | CPU | same pixels | max abs difference of the probabilities "
            f"| argmax differs (of {data['count']}) | weighted F1 there / here |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for model, rows in data["models"].items():
            for row in rows:
                same = "yes" if row["same_pixels"] else "no"
                lines.append(
                    f"| `{model}` | `{Path(row['run']).name}` | {row['cpu']} | {same} | "
                    f"{row['max_abs_difference']:.2g} | {row['argmax_7_disagreements']} | "
                    f"{row['weighted_f1_4']:.4f} / {row['reference_weighted_f1_4']:.4f} |"
                )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def candidates_table(_: dict) -> str:
    """Issue 8's GPU session (``distill_report.py``)."""
    return _candidates(_load(DISTILL_RUN / "candidates.json"))


def recipe_candidates_table(plan: str) -> str:
    """A plan of issue 21's CPU recipe (``recipe_report.py``, ``runs/PLAN/candidates.json``): the candidates, then
    ``final`` paired with the models shipped when the report ran."""
    data = _load(RUNS / plan / "candidates.json")
    if not data or "final_vs" not in data:
        return _candidates(data)
    lines = [
        _candidates(data),
        "",
        "`final` paired with the shipped models on the same faces and photos (the shipping rule):",
        "",
        "| `final` - | fer2013_val weighted F1 (95 % CI, faces) "
        "| jaffe_dev out-of-fold weighted F1 (95 % CI, subjects) "
        "| rule met (wins on fer2013_val, upper end on jaffe_dev >= 0) |",
        "| --- | --- | --- | --- |",
    ]
    for reference, pair in data["final_vs"].items():
        val, jaffe = pair["fer2013_val_weighted_f1"], pair["jaffe_dev_loso_weighted_f1"]
        lines.append(
            f"| `{reference}` | {val['difference']:+.3f} ({_ci(val['ci95_faces'])}) | {jaffe['difference']:+.3f} "
            f"({_ci(jaffe['ci95_subjects'])}) | {'yes' if pair['rule_met'] else 'no'} |"
        )
    return "\n".join(lines)


# One epoch line of model_build.loop's log: "NAME epoch N loss L val wF1 F acc A ece E lr R Ss".
_EPOCH_LINE = re.compile(r"^\S+ epoch\s+(\d+) loss \S+ (?:val|holdout) wF1 (\S+) acc \S+ ece (\S+) lr \S+ (\S+)s", re.M)


def progress_table(plan: str, reused: Iterable[str] = ()) -> str:
    """Issue 21's runs while they run: each training job of ``plan`` but those it reuses as another plan trained
    them, with its last logged epoch (``runs/PLAN/NAME.log``)."""
    lines = [
        "| job | epochs logged / planned | FER2013 holdout weighted F1 (last epoch) | its ECE | seconds (last epoch) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, planned in planned_epochs(plan).items():
        if name in reused:
            continue
        log = RUNS / plan / f"{name}.log"
        epochs = _EPOCH_LINE.findall(log.read_text()) if log.exists() else []
        if not epochs:
            lines.append(f"| {name} | 0 / {planned} | - | - | - |")
            continue
        epoch, f1, ece, seconds = epochs[-1]
        lines.append(
            f"| {name} | {int(epoch)} / {planned} | {float(f1):.4f} | {float(ece):.3f} | {float(seconds):.0f} |"
        )
    return "\n".join(lines)


def _candidates(data: dict | None) -> str:
    if not data:
        return "(not measured yet)"
    lines = [
        "| model | what | epochs | FER2013 holdout weighted F1 (last epoch) | fer2013_val weighted F1 (95 % CI) "
        "| ECE | jaffe_dev out-of-fold weighted F1 (95 % CI, subjects) | bytes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in data["rows"]:
        val = row["fer2013_val"]
        jaffe = row.get("jaffe_dev_loso")
        jaffe_text = f"{_f(jaffe['weighted_f1'])} ({_ci(jaffe['weighted_f1_ci95_subjects'])})" if jaffe else "-"
        holdout = _f(row["holdout_weighted_f1"]) if row.get("holdout_weighted_f1") is not None else "-"
        lines.append(
            f"| {row['name']} | {row['what']} | {row.get('epochs') or '-'} | {holdout} | {_f(val['weighted_f1'])} "
            f"({_ci(val['weighted_f1_ci95'])}) | {_f(val['ece'])} | {jaffe_text} | {row['bytes']:,} |"
        )
    base = data["baseline_jaffe_dev_loso"]
    lines += [
        "",
        f"Baseline `emotion` under the same jaffe_dev protocol: {_f(base['weighted_f1'])} "
        f"({_ci(base['weighted_f1_ci95_subjects'])}), margins chosen {base['margin_chosen']}.",
    ]
    timing = data.get("timing")
    if timing:
        lines += [
            "",
            f"Speed, ms per face at 1 thread, three interleaved rounds on {data['timing_host']} (busy, shared):",
            "",
        ]
        lines += ["| model | ms/face per round | x `emotion` in the same round |", "| --- | --- | --- |"]
        for name, row in timing.items():
            rounds = " / ".join(f"{v:.2f}" for v in row["ms_per_face_rounds"])
            ratios = " / ".join(f"{v:.2f}" for v in row["vs_emotion_rounds"])
            lines.append(f"| {name} | {rounds} | {ratios} |")
    return "\n".join(lines)


def history_table(_: dict) -> str:
    val, jaffe = _load(RUNS / "eval_fer2013_val.json"), _load(RUNS / "eval_jaffe_dev_pipeline.json")
    if not val or not jaffe:
        return "(logs missing)"
    jaffe_by_model = {r["model"]: r for r in jaffe["results"] if not r["settings"]}
    lines = [
        "| model (issue 4) | bytes | fer2013_val weighted F1 (selected on it) "
        "| jaffe_dev weighted F1 (margin tuned on it) |",
        "| --- | --- | --- | --- |",
    ]
    for r in val["results"]:
        j = jaffe_by_model.get(r["model"])
        jaffe_text = _f(j["weighted_f1"]) if j else "-"
        lines.append(f"| {r['model']} | {r['bytes']:,} | {_f(r['moods4']['weighted_f1'])} | {jaffe_text} |")
    return "\n".join(lines)


def readme_accuracy_table(manifest: dict) -> str:
    lines = [
        "| mood model | fer2013_val weighted F1 (95 % CI) | ECE (95 % CI) "
        "| jaffe_dev out-of-fold weighted F1 (95 % CI, subjects) | bytes | ms/face, 1 thread (x `emotion`) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in mood_entries(manifest).items():
        e = entry["evaluation"]
        v, j = e["fer2013_val"], e["jaffe_dev_loso"]
        lines.append(
            f"| `{name}` | {_f(v['weighted_f1_4'])} ({_ci(v['weighted_f1_4_ci95'])}) | {_f(v['ece_4'])} "
            f"({_ci(v['ece_4_ci95'])}) | {_f(j['weighted_f1'])} ({_ci(j['weighted_f1_ci95_subjects'])}) | "
            f"{e['bytes']:,} | {_speed(e)} |"
        )
    return "\n".join(lines)


QUALITY_RUN = RUNS / "quality_gate.json"


def _from_quality_record(render: Callable[[dict], str]) -> Callable[[dict], str]:
    """A table rendered from the quality gate's record (``model_build/quality_gate.py``), not the manifest."""

    def table(_: dict) -> str:
        record = _load(QUALITY_RUN)
        return render(record) if record else "(not measured yet)"

    return table


SECTIONS: dict[Path, dict[str, Callable[[dict], str]]] = {
    MODEL_CARD: {
        "shipped": shipped_table,
        "per-class": per_class_table,
        "loso": loso_table,
        "shipping-rule": shipping_rule_table,
        "cross-cpu": cross_cpu_table,
        "candidates": candidates_table,
        "recipe-progress": lambda _: progress_table("recipe"),
        "recipe2-progress": lambda _: progress_table("recipe2", reused=TEACHERS),
        "recipe3-progress": lambda _: progress_table("recipe3", reused=NEXT_TEACHERS),
        "recipe-candidates": lambda _: recipe_candidates_table("recipe"),
        "recipe2-candidates": lambda _: recipe_candidates_table("recipe2"),
        "history": history_table,
        "quality-selection": _from_quality_record(quality_report.selection_table),
        "quality-angles": _from_quality_record(quality_report.angle_table),
        "quality-fer2013-val": _from_quality_record(
            lambda r: quality_report.family_table(r["fer2013_val"]["families"])
        ),
        "quality-jaffe-dev": _from_quality_record(lambda r: quality_report.family_table(r["jaffe_dev"]["families"])),
        "quality-pose": _from_quality_record(quality_report.pose_section),
    },
    README: {
        "accuracy": readme_accuracy_table,
        "quality-evidence": _from_quality_record(quality_report.evidence_section),
    },
}


def _pattern(name: str) -> re.Pattern:
    start, end = rf"<!-- generated:{re.escape(name)} [^>]*-->\n", rf"<!-- /generated:{re.escape(name)} -->"
    return re.compile(rf"({start})(.*?)({end})", re.S)


def rendered(document: Path, manifest: dict) -> str:
    text = document.read_text()
    for name, render in SECTIONS[document].items():
        pattern = _pattern(name)
        if not pattern.search(text):
            continue
        body = render(manifest)
        match = pattern.search(text)
        text = text[: match.start(2)] + body + "\n" + text[match.end(2) :]
    return text


def write(manifest: dict) -> None:
    for document in DOCUMENTS:
        document.write_text(rendered(document, manifest))


def check(manifest: dict) -> list[str]:
    """Sections whose text differs from what the records give (and sections missing from a document)."""
    failures = []
    for document in DOCUMENTS:
        text = document.read_text()
        want = rendered(document, manifest)
        for name in SECTIONS[document]:
            found, expected = _pattern(name).search(text), _pattern(name).search(want)
            if not found:
                failures.append(f"{document.name}: section {name!r} is missing")
            elif found.group(2) != expected.group(2):
                failures.append(f"{document.name}: table {name!r} differs from its records (model_card.py --write)")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    manifest = json.loads(MANIFEST.read_text())
    if args.write:
        write(manifest)
        return 0
    failures = check(manifest)
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
