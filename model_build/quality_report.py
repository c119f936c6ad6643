"""The quality gate's figures and tables: what a fitted gate does to rows it was not fitted on.

The figures go into ``model_build/runs/quality_gate.json`` (``quality_gate.py``); the tables of README's
"Face quality" and MODEL_CARD's "Face quality gate" are rendered from that record here (``model_card.py``
places them and ``make verify-metrics`` checks them), so no figure in them is typed by hand.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from model_build.quality_data import Measured, degradations
from model_build.quality_fit import OFF, RULES, wilson

ANGLE_BINS = (0.0, 10.0, 20.0, 30.0, 45.0, 180.0)


@dataclass
class Row:
    """Accuracy of reliable, unreliable and all faces in one slice of the rows."""

    name: str
    levels: list[str]
    photos: int
    faces: int
    reliable: int
    correct_reliable: int
    correct_unreliable: int
    reliable_share_by_level: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        def share(k: int, n: int) -> float | None:
            return round(k / n, 4) if n else None

        unreliable, correct = self.faces - self.reliable, self.correct_reliable + self.correct_unreliable
        return {
            "name": self.name, "levels": self.levels, "photos": self.photos, "faces": self.faces,
            "reliable": self.reliable, "unreliable": unreliable,
            "accuracy_reliable": share(self.correct_reliable, self.reliable),
            "accuracy_reliable_ci95": wilson(self.correct_reliable, self.reliable),
            "accuracy_unreliable": share(self.correct_unreliable, unreliable),
            "accuracy_unreliable_ci95": wilson(self.correct_unreliable, unreliable),
            "accuracy_all": share(correct, self.faces), "reliable_share": share(self.reliable, self.faces),
            "reliable_share_ci95": wilson(self.reliable, self.faces),
            "reliable_share_by_level": self.reliable_share_by_level, "reasons": self.reasons,
        }  # fmt: skip


def summarise(name: str, rows: Measured, reliable: np.ndarray, reasons: list[list[str]]) -> Row:
    found, right = rows.found, rows.right
    # Within one family a level's name says it; across families the condition (family | level) does.
    levels = rows.level if len(set(rows.family.tolist())) == 1 else rows.condition
    by_level: dict[str, float | None] = {}
    for level in dict.fromkeys(levels.tolist()):
        mask = found & (levels == level)
        by_level[level] = round(float(reliable[mask].mean()), 3) if mask.any() else None
    counts: dict[str, int] = {}
    for row in np.flatnonzero(found):
        for reason in reasons[row]:
            counts[reason] = counts.get(reason, 0) + 1
    return Row(
        name=name, levels=list(by_level), photos=len(found), faces=int(found.sum()),
        reliable=int((found & reliable).sum()), correct_reliable=int((found & reliable & right).sum()),
        correct_unreliable=int((found & ~reliable & right).sum()), reliable_share_by_level=by_level,
        reasons=dict(sorted(counts.items(), key=lambda item: -item[1])),
    )  # fmt: skip


def family_rows(rows: Measured, reliable: np.ndarray, reasons: list[list[str]]) -> list[dict]:
    """One row per family, then all degraded rows without the proxies, then with them (issue 11's mix);
    families and levels in ``degradations()``' order."""
    position = {d.name: index for index, d in enumerate(degradations())}
    order = np.argsort([position.get(name, len(position)) for name in rows.condition.tolist()], kind="stable")
    rows, reliable, reasons = rows.take(order), reliable[order], [reasons[i] for i in order]
    families = list(dict.fromkeys(rows.family.tolist()))
    slices = [(family, rows.family == family) for family in families]
    degraded = ~rows.clean
    if rows.proxy.any():
        slices.append(("all degraded but the turned-head proxies", degraded & ~rows.proxy))
    slices.append(("all degraded", degraded))
    return [
        summarise(name, rows.take(mask), reliable[mask], [reasons[i] for i in np.flatnonzero(mask)]).to_dict()
        for name, mask in slices
    ]


def bootstrap_gain(rows: Measured, reliable: np.ndarray, mask: np.ndarray, draws: int = 2000, seed: int = 0) -> dict:
    """Accuracy of reliable minus accuracy of all found faces over ``mask``, with a 95 % interval from
    resampling photos (a photo's degraded copies together: they are not independent)."""
    mask = mask & rows.found
    right = rows.right[mask].astype(np.float64)
    kept = reliable[mask].astype(np.float64)
    _, photos = np.unique(rows.unit[mask], return_inverse=True)
    per_photo = np.zeros((int(photos.max()) + 1, 4))
    np.add.at(per_photo, photos, np.stack([right * kept, kept, right, np.ones_like(right)], axis=1))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(per_photo), np.full(len(per_photo), 1.0 / len(per_photo)), size=draws)
    sums = weights @ per_photo
    estimates = sums[:, 0] / sums[:, 1] - sums[:, 2] / sums[:, 3]
    whole = per_photo.sum(axis=0)
    interval = [round(float(v), 4) for v in np.quantile(estimates, [0.025, 0.975])]
    return {"gain": round(float(whole[0] / whole[1] - whole[2] / whole[3]), 4), "ci95": interval}


def ordinary_share(rows: Measured, flagged: np.ndarray) -> dict:
    """How many ordinary (clean, found) faces are flagged, with the Wilson interval of the share."""
    ordinary = rows.found & rows.clean
    count, hit = int(ordinary.sum()), int((ordinary & flagged).sum())
    return {"faces": count, "flagged": hit, "share": round(hit / count, 4), "ci95": wilson(hit, count)}


def angle_bins(rows: Measured) -> dict:
    """Accuracy on ordinary faces by |yaw|, |pitch| and |roll| (the issue's check that pose says nothing)."""
    ordinary = rows.found & rows.clean
    right = rows.right
    result = {}
    for angle in ("yaw", "pitch", "roll"):
        values = np.abs(rows.metrics[angle])
        bins = []
        for low, high in itertools.pairwise(ANGLE_BINS):
            mask = ordinary & (values >= low) & (values < high)
            count, hit = int(mask.sum()), int((mask & right).sum())
            accuracy = round(hit / count, 4) if count else None
            bins.append({"from": low, "to": high, "faces": count, "accuracy": accuracy, "ci95": wilson(hit, count)})
        result[angle] = bins
    return result


def pose_checks(rows: Measured) -> dict:
    """What the landmark pose says on jaffe_dev's clean frontal photos and under the rotations and proxies."""
    found = rows.found
    clean = found & rows.clean
    result: dict = {"clean_frontal_abs_median_p95_max": {}}
    for angle in ("yaw", "pitch", "roll"):
        values = np.abs(rows.metrics[angle][clean])
        result["clean_frontal_abs_median_p95_max"][angle] = [
            round(float(v), 1) for v in (np.median(values), np.quantile(values, 0.95), values.max())
        ]
    clean_roll = dict(zip(rows.photo[clean].tolist(), rows.metrics["roll"][clean].tolist(), strict=True))
    errors = {}
    rotated = rows.family == "rotated in plane"
    for level in dict.fromkeys(rows.level[rotated].tolist()):
        mask = found & rotated & (rows.level == level) & np.isin(rows.photo, list(clean_roll))
        # cv2 turns counter-clockwise for a positive angle (odd photos), roll counts clockwise.
        signs = np.where(rows.photo[mask] % 2 == 1, 1.0, -1.0)
        expected = np.array([clean_roll[p] for p in rows.photo[mask]]) - signs * float(level.split()[0])
        errors[level] = (
            round(float(np.median(np.abs(rows.metrics["roll"][mask] - expected))), 2) if mask.any() else None
        )
    result["roll_error_median_by_rotation"] = errors
    for family in dict.fromkeys(rows.family[rows.proxy].tolist()):
        by_level = {}
        for level in dict.fromkeys(rows.level[rows.family == family].tolist()):
            mask = found & (rows.family == family) & (rows.level == level)
            if mask.any():
                by_level[level] = {
                    a: round(float(np.median(np.abs(rows.metrics[a][mask]))), 1) for a in ("yaw", "pitch")
                }
        result[f"median_abs_pose: {family}"] = by_level
    return result


# --- tables (rendered from the record) ----------------------------------------------------------------


COUNTS = ("kept", "kept_right", "flagged", "flagged_right")


def _acc(right: int, count: int) -> str:
    """An accuracy with its Wilson interval and count."""
    if not count:
        return "- (0)"
    low, high = wilson(right, count)
    return f"{right / count:.3f} ({low:.2f}-{high:.2f}, n {count:,})"


def _threshold(rule: dict) -> str:
    """The shipped threshold, or why the rule is off and what it was tested at."""
    spec = RULES[rule["setting"]]
    sign = {"min": "<", "max": ">", "max_abs": "|x| >"}[spec.bound]
    text = f"`{spec.metric}` {sign} {rule['tested_at']:.3g}"
    if rule["ships"]:
        return text
    if rule["tested_at"] == OFF[spec.bound]:
        return "off (no threshold pays on the fit data; issue 11 had it off too)"
    if rule["fitted"] == OFF[spec.bound]:
        return f"off (no threshold pays on the fit data; tested at issue 11's {text})"
    return f"off (fitted {text}, did not earn its place)"


def evidence_table(record: dict) -> str:
    """Per rule: its threshold, its share of ordinary fer2013_val faces, and kept vs flagged accuracy on the
    rows it was never fitted on (fer2013_val ordinary and degraded; jaffe_dev out of fold), with the
    flagged-weighted gap and its interval; then the whole gate."""
    lines = [
        "| rule (reason) | threshold | ordinary fer2013_val faces flagged | ordinary: accuracy kept / flagged "
        "| degraded fer2013_val: kept / flagged | jaffe_dev out of fold: kept / flagged "
        "| gap kept - flagged (95 % CI) | ships (why, on the fit data) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def cells(separation: dict) -> list[str]:
        out = []
        for stratum in ("fer2013_val ordinary", "fer2013_val degraded", "jaffe_dev"):
            found = [v for k, v in separation["by_part"].items() if k.startswith(stratum)]
            kept, k_right, flagged, f_right = (sum(v[k] for v in found) for k in COUNTS)
            if not found or not flagged:
                out.append(f"none flagged ({kept:,} kept)" if found else "-")
                continue
            out.append(f"{_acc(k_right, kept)} / {_acc(f_right, flagged)}")
        return out

    for rule in record["rules"]:
        test, share = rule["test"], rule["ordinary_flagged"]
        gap = "-" if test["gap"] is None else f"{test['gap']:+.3f} ({test['ci95'][0]:+.3f} to {test['ci95'][1]:+.3f})"
        selection = rule["selection"]
        if selection is None:
            chosen = "no threshold pays on the fit data"
        elif selection["gap"] is None:
            chosen = "flags nothing out of fold"
        else:
            chosen = (
                f"fit-data gap {selection['gap']:+.3f} ({selection['ci95'][0]:+.3f} to {selection['ci95'][1]:+.3f})"
            )
        lines.append(
            f"| `{rule['setting']}` ({rule['reason']}) | {_threshold(rule)} | {share['flagged']:,} of "
            f"{share['faces']:,} ({share['share']:.1%}) | " + " | ".join(cells(test)) + f" | {gap} | "
            f"{'yes' if rule['ships'] else 'no'} ({chosen}) |"
        )
    gate = record["gate"]
    ordinary, separation = gate["ordinary"], gate["test"]
    gap = "-" if separation["gap"] is None else (
        f"{separation['gap']:+.3f} ({separation['ci95'][0]:+.3f} to {separation['ci95'][1]:+.3f})"
    )  # fmt: skip
    lines.append(
        f"| **the gate** (any shipped rule) | | **{ordinary['flagged']:,} of {ordinary['faces']:,} "
        f"({ordinary['share']:.1%}, {ordinary['ci95'][0]:.1%}-{ordinary['ci95'][1]:.1%})** | "
        + " | ".join(cells(separation))
        + f" | **{gap}** | |"
    )
    return "\n".join(lines)


def family_table(rows: list[dict]) -> str:
    """The per-degradation table of one data set (each level's reliable share in brackets)."""
    lines = [
        "| degradation | levels (reliable share) | faces found / photos | reliable | acc. reliable | acc. flagged "
        "| acc. all |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row["name"].startswith("all degraded"):
            levels = f"{len(row['levels'])} levels"
        else:
            levels = ", ".join(
                f"{k} ({'-' if v is None else f'{v:.0%}'})" for k, v in row["reliable_share_by_level"].items()
            )
        accuracy = [row[k] for k in ("accuracy_reliable", "accuracy_unreliable", "accuracy_all")]
        shown = ["-" if a is None else f"{a:.2f}" for a in accuracy]
        share = "-" if row["reliable_share"] is None else f"{row['reliable_share']:.2f}"
        lines.append(
            f"| {row['name']} | {levels} | {row['faces']} / {row['photos']} | {row['reliable']} ({share}) | "
            f"{shown[0]} ({row['reliable']}) | {shown[1]} ({row['unreliable']}) | {shown[2]} ({row['faces']}) |"
        )
    return "\n".join(lines)


def angle_table(record: dict) -> str:
    """Accuracy of ordinary faces by the landmark pose's |angle|, on the fit faces (FER2013 holdout) and the
    test faces (fer2013_val); each cell: accuracy (95 % CI, faces)."""
    sets = {"FER2013 holdout (fit)": record["fer2013_holdout"]["ordinary_accuracy_by_abs_angle"],
            "fer2013_val (test)": record["fer2013_val"]["ordinary_accuracy_by_abs_angle"]}  # fmt: skip
    first = next(iter(sets.values()))["yaw"]
    spans = [f"{b['from']:g}-{b['to']:g} deg" if b["to"] < 180 else f"{b['from']:g} deg and more" for b in first]
    lines = ["| angle, faces | " + " | ".join(spans) + " |", "| --- |" + " --- |" * len(spans)]
    for angle in ("yaw", "pitch", "roll"):
        for name, bins in sets.items():
            cells = [
                f"- (n {cell['faces']})" if cell["accuracy"] is None
                else f"{cell['accuracy']:.3f} ({cell['ci95'][0]:.2f}-{cell['ci95'][1]:.2f}, n {cell['faces']:,})"
                for cell in bins[angle]
            ]  # fmt: skip
            lines.append(f"| abs({angle}), {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def selection_table(record: dict) -> str:
    """The rule selection on the fit data, step by step: each active rule's out-of-fold gap, and the one
    turned off."""
    lines = ["| step | rules fitted on (their thresholds) | out-of-fold gap of each (95 % CI) | turned off |",
             "| --- | --- | --- | --- |"]  # fmt: skip
    for number, step in enumerate(record["selection_steps"], 1):
        fitted = ", ".join(f"`{s}` {v:.3g}" for s, v in step["thresholds"].items() if s in step["active"])
        gaps = ", ".join(
            f"`{s}` " + ("-" if g["gap"] is None else f"{g['gap']:+.3f} ({g['ci95'][0]:+.3f} to {g['ci95'][1]:+.3f})")
            for s, g in step["separation"].items()
        )
        off = [f"`{s}` (fitted off)" for s in step["fitted_off"]] + (
            [f"`{step['dropped']}`"] if step["dropped"] else []
        )
        verdict = ", ".join(off) or "none: every rule earns its place"
        lines.append(f"| {number} | {fitted or 'none'} | {gaps or '-'} | {verdict} |")
    return "\n".join(lines)


def _gain(gain: dict) -> str:
    return f"{gain['gain']:+.3f} (95 % CI {gain['ci95'][0]:+.3f} to {gain['ci95'][1]:+.3f})"


def evidence_section(record: dict) -> str:
    """README's table and the sentences around it whose numbers come from the record."""
    data, before = record["data"], record["issue_11_gate_on_fer2013_val"]
    val, holdout, posed = data["fer2013_val"], data["fer2013_holdout"], data["jaffe_dev"]
    jaffe = record["jaffe_dev"]
    shipped = [f"`{r['setting']}`" for r in record["rules"] if r["ships"]]
    off = [f"`{r['setting']}`" for r in record["rules"] if not r["ships"]]
    return "\n".join([
        evidence_table(record),
        "",
        f"Shipped: {', '.join(shipped)}; off: {', '.join(off)}. The faces: FER2013's holdout {holdout['photos']:,} "
        f"(a face found in {holdout['clean_faces_found']:,}) for the fit, fer2013_val {val['photos']:,} (a face found "
        f"in {val['clean_faces_found']:,}: the ordinary faces above) for the test, each also served once degraded; "
        f"jaffe_dev {posed['photos']} portraits x {posed['rows'] // posed['photos']} conditions. "
        "On the same ordinary fer2013_val faces issue 11's gate flagged "
        f"{before['ordinary']['flagged']:,} ({before['ordinary']['share']:.1%}; accuracy kept "
        f"{before['ordinary_accuracy_kept_flagged']['kept']:.3f}, flagged "
        f"{before['ordinary_accuracy_kept_flagged']['flagged']:.3f}). On jaffe_dev's degraded mix (out of fold) "
        f"reliable faces beat all faces by {_gain(jaffe['degraded_gain_without_proxies'])} without the turned-head "
        f"proxies, {_gain(jaffe['degraded_gain_reliable_minus_all'])} with them (issue 11's mix).",
    ])  # fmt: skip


def pose_section(record: dict) -> str:
    """The head-pose checks on jaffe_dev (MODEL_CARD), numbers from the record."""
    pose = record["jaffe_dev"]["pose"]
    frontal, roll = pose["clean_frontal_abs_median_p95_max"], pose["roll_error_median_by_rotation"]
    perspective = pose["median_abs_pose: turned (yaw proxy: perspective)"]
    squeeze = pose["median_abs_pose: turned (yaw proxy: squeeze)"]
    return (
        f"On jaffe_dev's frontal portraits |yaw| has median {frontal['yaw'][0]} deg (95th percentile "
        f"{frontal['yaw'][1]}, max {frontal['yaw'][2]}), |pitch| {frontal['pitch'][0]} ({frontal['pitch'][1]}, "
        f"{frontal['pitch'][2]}), |roll| {frontal['roll'][0]} ({frontal['roll'][1]}, {frontal['roll'][2]}). Roll "
        "follows in-plane rotations of real photos within a median "
        + " / ".join(f"{v} deg (at {k})" for k, v in roll.items())
        + ". A flat photo turned in perspective moves the landmarks' yaw by a median "
        + " / ".join(f"{v['yaw']} deg (at {k})" for k, v in perspective.items())
        + ", squeezed by "
        + " / ".join(f"{v['yaw']} deg (at {k})" for k, v in squeeze.items())
        + ": a photo of a face has no depth, which is why those proxies are reported, never fitted on."
    )
