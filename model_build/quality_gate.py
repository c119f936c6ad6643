"""Fit the face quality gate on ordinary and degraded faces served through the pipeline; keep only the rules
that earn their place; record the evidence. One command for a mood model (about 17 minutes on this project's
2-core host the first time, measuring; about a minute from the cache):

    model_build/.venv/bin/python -m model_build.quality_gate --data ../shared/data \
        --mood-model mini_xception_w2_recipe --write

``--write`` records ``model_build/runs/quality_gate.json``, sets ``meaa.config.QualitySettings``' defaults
to the shipped thresholds, and regenerates README's settings table and the generated quality tables of
README and MODEL_CARD. ``--check`` (run by ``make verify-metrics``) measures everything afresh, without
the cache, and fails if the record, the defaults or the tables differ from what it gives.

Protocol (``quality_data.py``: the faces; ``quality_fit.py``: the fit and the selection of rules):

* Thresholds are fitted on the FER2013 holdout faces (ordinary, plus one degraded copy each), which the
  default mood model never trained on, pooled with jaffe_dev's degraded portraits, each subject scored by its
  fold model (a model trained without her).
* A rule ships only if, out of fold within the fit data, the faces it flags are at least 0.05 less accurate
  than the faces kept, the 95 % interval of the gap above 0; the others are turned off (their measurement
  stays in ``quality``; the setting turns them back on).
* The record reports every rule on rows never fitted on: fer2013_val (ordinary faces and degraded copies,
  judged by the gate fitted on all the fit data) and jaffe_dev leave-one-subject-out (each subject judged by
  a gate fitted, rules selected included, without her).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from meaa.config import QualitySettings, Settings
from model_build import model_card
from model_build.quality_data import (
    FIT_DOMAIN,
    POSED_DOMAIN,
    REPO_ROOT,
    TEST_DOMAIN,
    Measured,
    PhotoSet,
    fer_photos,
    jaffe_photos,
    manifest_fold_dir,
    measured,
    sha256_file,
)
from model_build.quality_fit import (
    OFF,
    RULES,
    Bootstrap,
    FitSettings,
    eligible,
    fails,
    judge,
    select_rules,
)
from model_build.quality_report import angle_bins, bootstrap_gain, family_rows, ordinary_share, pose_checks

RECORD = REPO_ROOT / "model_build" / "runs" / "quality_gate.json"
CONFIG = REPO_ROOT / "layers" / "meaa" / "config.py"
TOLERANCE = 0.002
# The gate of issue 11 (fitted on degraded photos and flat-photo pose proxies), judged on the same faces.
ISSUE_11_THRESHOLDS = {
    "min_sharpness": 0.0177, "min_brightness": 0.108, "max_clipped_fraction": 0.477, "min_contrast": 0.176,
    "min_face_px": 0.0, "max_outside_fraction": 0.514, "max_yaw": 15.6, "max_pitch": 180.0, "max_roll": 27.8,
    "min_detection_score": 0.978,
}  # fmt: skip


def photo_sets(data: Path, mood_model: str, fold_dir: str | None, copies: int) -> list[tuple[PhotoSet, Path]]:
    return [
        (jaffe_photos(data, mood_model, fold_dir), data / "jaffe_dev.npz"),
        (fer_photos(FIT_DOMAIN, data, mood_model, copies), data / "fer2013_train.npz"),
        (fer_photos(TEST_DOMAIN, data, mood_model, copies), data / "fer2013_val.npz"),
    ]


def _relative(path: str) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else path


def tested_at(setting: str, fitted: float | np.ndarray) -> float | np.ndarray:
    """The threshold a rule is tested at: its fitted one, or issue 11's where the fit turned it off (what the
    rule did before), or off where both are."""
    off = OFF[RULES[setting].bound]
    return np.where(np.asarray(fitted) == off, ISSUE_11_THRESHOLDS[setting], fitted)


def rule_evidence(rows: Measured, kept: np.ndarray, candidates: dict, bootstrap: Bootstrap, mask) -> dict:
    """Each rule at ``candidates`` (per setting, one value or one per row) against the faces the shipped gate
    keeps without it, on ``mask``'s rows."""
    result = {}
    for setting, rule in RULES.items():
        flagged = fails(rule, rows.metrics, candidates[setting])
        result[setting] = bootstrap.separation(rows.right[mask], (kept & ~flagged)[mask], flagged[mask]).to_dict()
    return result


def outer_folds(rows: Measured, settings: FitSettings) -> tuple[list[dict], np.ndarray, dict[str, np.ndarray]]:
    """jaffe_dev leave-one-subject-out: per subject, the whole fit (rule selection included) without her;
    her rows judged by it. Returns the folds' summaries, reliable per row and each rule's fitted threshold
    per row (nan outside jaffe_dev)."""
    reliable = np.zeros(len(rows), bool)
    per_row = {s: np.full(len(rows), np.nan) for s in RULES}
    folds = []
    fer_fit = rows.domain == FIT_DOMAIN
    for subject in sorted(set(rows.group[rows.domain == POSED_DOMAIN].tolist())):
        held = (rows.domain == POSED_DOMAIN) & (rows.group == subject)
        gate = select_rules(rows, fer_fit | ((rows.domain == POSED_DOMAIN) & ~held), settings)
        reliable[held], _ = judge({k: v[held] for k, v in rows.metrics.items()}, gate.thresholds)
        for s in RULES:
            per_row[s][held] = gate.candidates[s]
        folds.append({"held_out": subject, "thresholds": gate.thresholds, "ships": gate.ships,
                      "fit_clean_retention": gate.retention})  # fmt: skip
    return folds, reliable, per_row


def build_record(rows: Measured, settings: FitSettings, header: dict) -> dict:
    """Fit, select, and report everything on the rows never fitted on."""
    final = select_rules(rows, (rows.domain == FIT_DOMAIN) | (rows.domain == POSED_DOMAIN), settings)
    folds, jaffe_reliable, jaffe_candidates = outer_folds(rows, settings)
    val, jaffe = rows.domain == TEST_DOMAIN, rows.domain == POSED_DOMAIN
    reliable, reasons = judge(rows.metrics, final.thresholds)
    reliable = np.where(jaffe, jaffe_reliable, reliable)
    candidates = {s: tested_at(s, np.where(jaffe, jaffe_candidates[s], final.candidates[s])) for s in RULES}
    test = (val | jaffe) & eligible(rows)
    bootstrap = Bootstrap(rows.take(test), settings.draws, settings.seed)
    per_rule = rule_evidence(rows, reliable, candidates, bootstrap, test)
    gate_test = bootstrap.separation(rows.right[test], reliable[test], ~reliable[test]).to_dict()
    last_step = {s: step["separation"][s] for step in final.steps for s in step["separation"]}
    val_rows, jaffe_rows = rows.take(val), rows.take(jaffe)
    rules = []
    for setting, rule in RULES.items():
        fitted, tested = final.candidates[setting], float(tested_at(setting, final.candidates[setting]))
        flagged = fails(rule, val_rows.metrics, tested)
        rules.append({
            "setting": setting, "reason": rule.reason, "metric": rule.metric, "bound": rule.bound,
            "ships": final.ships[setting], "threshold": final.thresholds[setting], "fitted": fitted,
            "tested_at": tested,
            "ordinary_flagged": ordinary_share(val_rows, flagged), "selection": last_step.get(setting),
            "test": per_rule[setting], "earns_on_test": _earns(per_rule[setting], settings.min_gap),
        })  # fmt: skip
    val_reasons = [reasons[i] for i in np.flatnonzero(val)]
    jaffe_reasons = judged_reasons(rows, jaffe, folds)
    issue_11 = judge(val_rows.metrics, ISSUE_11_THRESHOLDS)[0]
    return {
        **header, "fit_settings": asdict(settings), "thresholds": final.thresholds, "rules": rules,
        "gate": {
            "ordinary": ordinary_share(val_rows, ~reliable[val]), "test": gate_test,
            "ordinary_reasons": _reason_counts(val_rows, val_reasons),
            "fit_clean_retention": final.retention,
        },
        "issue_11_gate_on_fer2013_val": {
            "thresholds": ISSUE_11_THRESHOLDS, "ordinary": ordinary_share(val_rows, ~issue_11),
            "ordinary_accuracy_kept_flagged": _kept_flagged(val_rows, issue_11),
        },
        "selection_steps": final.steps,
        "fer2013_val": {
            "families": family_rows(val_rows, reliable[val], val_reasons),
            "degraded_gain_reliable_minus_all": bootstrap_gain(val_rows, reliable[val], ~val_rows.clean),
            "ordinary_accuracy_by_abs_angle": angle_bins(val_rows),
        },
        "fer2013_holdout": {"ordinary_accuracy_by_abs_angle": angle_bins(rows.take(rows.domain == FIT_DOMAIN))},
        "jaffe_dev": {
            "folds": folds,
            "families": family_rows(jaffe_rows, reliable[jaffe], jaffe_reasons),
            "degraded_gain_reliable_minus_all": bootstrap_gain(jaffe_rows, reliable[jaffe], ~jaffe_rows.clean),
            "degraded_gain_without_proxies": bootstrap_gain(
                jaffe_rows, reliable[jaffe], ~jaffe_rows.clean & ~jaffe_rows.proxy
            ),
            "pose": pose_checks(jaffe_rows),
        },
    }  # fmt: skip


def _earns(separation: dict, min_gap: float) -> bool:
    return separation["gap"] is not None and separation["gap"] >= min_gap and separation["ci95"][0] > 0


def _kept_flagged(rows: Measured, reliable: np.ndarray) -> dict:
    ordinary = rows.found & rows.clean
    right = rows.right
    kept, flagged = ordinary & reliable, ordinary & ~reliable
    return {
        "kept": round(float(right[kept].mean()), 4) if kept.any() else None,
        "flagged": round(float(right[flagged].mean()), 4) if flagged.any() else None,
    }


def judged_reasons(rows: Measured, mask: np.ndarray, folds: list[dict]) -> list[list[str]]:
    """jaffe_dev's reasons, each subject's by her fold's thresholds."""
    reasons: list[list[str]] = [[] for _ in range(int(mask.sum()))]
    indices = np.flatnonzero(mask)
    for fold in folds:
        held = rows.group[indices] == fold["held_out"]
        _, why = judge({k: v[indices[held]] for k, v in rows.metrics.items()}, fold["thresholds"])
        for position, row_reasons in zip(np.flatnonzero(held), why, strict=True):
            reasons[position] = row_reasons
    return reasons


def _reason_counts(rows: Measured, reasons: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in np.flatnonzero(rows.found & rows.clean):
        for reason in reasons[row]:
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


# --- writing and checking ----------------------------------------------------------------------------


def settings_source(text: str, thresholds: dict[str, float]) -> str:
    """``layers/meaa/config.py``'s text with each quality threshold's default set to ``thresholds``."""
    envs = {f.name: f.metadata["env"] for f in fields(QualitySettings)}
    for setting, value in thresholds.items():
        pattern = re.compile(rf'(setting\(\s*)[-+0-9.e]+(,\s*"{re.escape(envs[setting])}")')
        text, count = pattern.subn(lambda match, value=value: f"{match.group(1)}{value!r}{match.group(2)}", text)
        if count != 1:
            raise SystemExit(f"{envs[setting]}'s default not found once in {CONFIG}")
    return text


def differences(recorded, measured, path: str = "") -> list[str]:
    """Where two records differ: numbers by more than TOLERANCE, anything else at all."""
    if isinstance(recorded, dict) and isinstance(measured, dict):
        keys = [k for k in dict.fromkeys([*recorded, *measured]) if k not in UNCHECKED]
        return [d for k in keys for d in differences(recorded.get(k), measured.get(k), f"{path}.{k}".lstrip("."))]
    if isinstance(recorded, list) and isinstance(measured, list) and len(recorded) == len(measured):
        return [
            d
            for i, (a, b) in enumerate(zip(recorded, measured, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    numbers = (int, float)
    if isinstance(recorded, numbers) and isinstance(measured, numbers) and not isinstance(recorded, bool):
        return [] if abs(recorded - measured) <= TOLERANCE else [f"{path}: recorded {recorded}, measured {measured}"]
    return [] if recorded == measured else [f"{path}: recorded {recorded!r}, measured {measured!r}"]


UNCHECKED = ("command", "seconds")


def check(record: dict) -> list[str]:
    """What differs between a fresh record and the committed one, the shipped defaults and the tables."""
    problems = differences(json.loads(RECORD.read_text()), record)
    if settings_source(CONFIG.read_text(), record["thresholds"]) != CONFIG.read_text():
        problems.append("QualitySettings' defaults are not the fitted thresholds")
    return problems + model_card.check(json.loads(model_card.MANIFEST.read_text()))


def write(record: dict) -> None:
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    CONFIG.write_text(settings_source(CONFIG.read_text(), record["thresholds"]))
    # A fresh process: this one imported the old defaults.
    subprocess.run([sys.executable, "-m", "infra.readme_tables", "--write"], cwd=REPO_ROOT, check=True)
    model_card.write(json.loads(model_card.MANIFEST.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data"), help="folder with the npz files")
    parser.add_argument("--mood-model", default=Settings().mood_model, help="manifest key or .onnx path")
    parser.add_argument(
        "--jaffe-fold-models", default="auto",
        help="folder of fold_SUBJECT.onnx scoring each jaffe_dev subject; 'auto': the manifest's jaffe_fold_models "
        "of the model, if any; 'none': the model itself",
    )  # fmt: skip
    parser.add_argument("--degraded-copies", type=int, default=1, help="degraded copies of each FER2013 face")
    parser.add_argument("--fer-weight", type=float, default=FitSettings.fer_weight)
    parser.add_argument("--skill-loss", type=float, default=FitSettings.skill_loss)
    parser.add_argument("--min-clean-retention", type=float, default=FitSettings.retention)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="record the fit, set the defaults, regenerate the tables")
    mode.add_argument("--check", action="store_true", help="measure afresh and fail on any difference")
    parser.add_argument("--json", help="also write the record here")
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    started = time.perf_counter()
    data = Path(args.data)
    fold_dir = {"auto": manifest_fold_dir(args.mood_model), "none": None}.get(
        args.jaffe_fold_models, args.jaffe_fold_models
    )
    sets = photo_sets(data, args.mood_model, fold_dir, args.degraded_copies)
    rows = Measured.concatenate([measured(photos, file, use_cache=not args.check) for photos, file in sets])
    jaffe = sets[0][0]
    # The data's place differs between clones (``--data``); what it is, is recorded by its sha256.
    recorded = [a for i, a in enumerate(arguments) if a != "--data" and (i == 0 or arguments[i - 1] != "--data")]
    recorded = [a for a in recorded if not a.startswith(("--data=", "--json", "--check")) and a != args.json]
    header = {
        "command": "model_build/.venv/bin/python -m model_build.quality_gate " + " ".join(recorded),
        "mood_model": args.mood_model,
        "scored_by": {
            "fer2013": args.mood_model,
            "jaffe_dev": {s: _relative(f) for s, f in zip(jaffe.groups.tolist(), jaffe.scorers, strict=True)},
        },
        "data": {
            photos.domain: {
                "file": file.name, "sha256": sha256_file(file),
                "photos": len(photos.images), "rows": int((rows.domain == photos.domain).sum()),
                "clean_faces_found": int((rows.found & rows.clean & (rows.domain == photos.domain)).sum()),
            }
            for photos, file in sets
        },
    }  # fmt: skip
    settings = FitSettings(args.skill_loss, args.min_clean_retention, args.fer_weight)
    record = build_record(rows, settings, header)
    record["seconds"] = round(time.perf_counter() - started, 1)
    print(summary(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    if args.write:
        write(record)
        print(f"written: {_relative(str(RECORD))}, QualitySettings' defaults, README's and MODEL_CARD's tables")
    if args.check:
        problems = check(record)
        for problem in problems:
            print(f"FAIL {problem}")
        print("quality gate: " + ("every figure reproduces" if not problems else f"{len(problems)} difference(s)"))
        return 1 if problems else 0
    return 0


def summary(record: dict) -> str:
    """What a reader needs at the terminal: the thresholds, each rule's verdict, the gate's share and gap."""
    lines = ["rule | ships | threshold | ordinary fer2013_val flagged | gap on test rows (95 % CI)"]
    for rule in record["rules"]:
        test = rule["test"]
        gap = "-" if test["gap"] is None else f"{test['gap']:+.3f} {test['ci95']}"
        share = rule["ordinary_flagged"]
        lines.append(
            f"{rule['setting']} | {rule['ships']} | {rule['tested_at']} | {share['flagged']}/{share['faces']} | {gap}"
        )
    gate = record["gate"]
    lines.append(f"the gate flags {gate['ordinary']['flagged']}/{gate['ordinary']['faces']} ordinary fer2013_val faces "
                 f"({gate['ordinary']['share']:.1%}); gap {gate['test']['gap']} {gate['test']['ci95']}")  # fmt: skip
    jaffe = record["jaffe_dev"]
    lines.append(f"jaffe_dev degraded gain (issue 11's mix): {jaffe['degraded_gain_reliable_minus_all']}; "
                 f"without the proxies: {jaffe['degraded_gain_without_proxies']}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
