"""Fitting the quality gate: thresholds by coordinate ascent, then only the rules that earn their place.

The evidence (``model_build/quality_data.py``'s rows) is pooled from two domains:

* FER2013 (the holdout faces): ordinary faces, each face's target its own mood being right (1) or wrong
  (0), so a rule is rewarded only for finding faces that are really wrong more often (pose, detection
  score...); and their degraded copies, each copy's target the accuracy of its condition (the metrics
  describe a condition, not how hard an expression is to read);
* jaffe_dev, clean and degraded (the turned-head proxies left out), each photo's target its condition's
  accuracy.

A target below its domain's ``tau`` (the clean accuracy less ``skill_loss`` of the model's skill, its excess
over always answering the commonest mood) is harmful. The thresholds maximise, over domains, the domain's
weight x the mean over its rows of [reliable] (target - tau), ties going to the most permissive, while at
least ``retention`` of each domain's clean faces stay reliable (the FER2013 ones are the ordinary faces).

Then each rule must earn its place (``select_rules``): within the fit data, out of fold (inner folds: one
jaffe_dev subject with one slice of the FER2013 groups), the faces a rule flags must be at least ``MIN_GAP``
less accurate than the faces the gate keeps, the 95 % interval of that gap above 0. The gap is compared
within each domain (a FER2013 web face is never compared with a posed portrait, which the model gets right
far more often) and averaged weighted by the flagged faces of each. Rules that fail are turned off one at
a time (the weakest first) and the rest refitted, until every remaining rule passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from meaa.labels import MOODS
from meaa.quality import QUALITY_RULES, QualityRule
from model_build.quality_data import FIT_DOMAIN, METRICS, POSED_DOMAIN, Measured, group_fraction

OFF = {"min": 0.0, "max": 1.0, "max_abs": 180.0}  # each bound's setting that never fails (a rule turned off)
CANDIDATES_PER_RULE = 120
MIN_GAP = 0.05  # the least accuracy a rule's flagged faces must lose against the kept ones
RULES = {rule.setting: rule for rule in QUALITY_RULES}
Z95 = 1.959963984540054


@dataclass(frozen=True)
class FitSettings:
    skill_loss: float = 0.5
    retention: float = 0.95
    fer_weight: float = 0.5
    min_gap: float = MIN_GAP
    draws: int = 2000
    seed: int = 0


# --- thresholds --------------------------------------------------------------------------------------


def _significant(value: float, digits: int = 3) -> float:
    return value if value == 0 or not math.isfinite(value) else float(f"{value:.{digits}g}")


def rule_values(rule: QualityRule, metrics: dict[str, np.ndarray]) -> np.ndarray:
    values = metrics[rule.metric]
    return np.abs(values) if rule.bound == "max_abs" else values


def candidate_thresholds(rule: QualityRule, values: np.ndarray) -> np.ndarray:
    """Off first, then midpoints between neighbouring observed values (thinned to quantiles), from the most
    permissive to the strictest, rounded to 3 significant digits."""
    finite = np.unique(values[np.isfinite(values)])
    if len(finite) > CANDIDATES_PER_RULE:
        finite = np.unique(np.quantile(finite, np.linspace(0, 1, CANDIDATES_PER_RULE)))
    middles = np.unique([_significant(v) for v in (finite[1:] + finite[:-1]) / 2.0])
    ordered = middles if rule.bound == "min" else middles[::-1]
    return np.concatenate([[OFF[rule.bound]], ordered])


def fails(rule: QualityRule, metrics: dict[str, np.ndarray], threshold: float) -> np.ndarray:
    """Rows ``rule`` rejects at ``threshold`` (``QualityRule.fails`` on arrays); a nan metric never fails."""
    values = rule_values(rule, metrics)
    known = np.isfinite(values)
    return known & rule.fails(np.where(known, values, 0.0), threshold)


def failures(metrics: dict[str, np.ndarray], thresholds: dict[str, float]) -> dict[str, np.ndarray]:
    """Per setting, the rows its rule rejects (the array form of ``meaa.quality.unreliable_reasons``)."""
    return {setting: fails(rule, metrics, thresholds[setting]) for setting, rule in RULES.items()}


def judge(metrics: dict[str, np.ndarray], thresholds: dict[str, float]) -> tuple[np.ndarray, list[list[str]]]:
    """(reliable, reasons) per row, reasons in ``meaa.quality.REASONS`` order, each once."""
    failed = failures(metrics, thresholds)
    count = len(next(iter(metrics.values())))
    reasons: list[list[str]] = [[] for _ in range(count)]
    for setting, rows in failed.items():
        for row in np.flatnonzero(rows):
            if RULES[setting].reason not in reasons[row]:
                reasons[row].append(RULES[setting].reason)
    return np.array([not why for why in reasons], bool), reasons


@dataclass(frozen=True)
class FitResult:
    thresholds: dict[str, float]
    retention: list[float]  # of each kept-reliable set, in the order given
    sweeps: int


def fit_thresholds(
    metrics: dict[str, np.ndarray],
    target: np.ndarray,
    keep: list[tuple[np.ndarray, float]],
    *,
    tau: float | np.ndarray,
    weight: np.ndarray | None = None,
    active: tuple[str, ...] | None = None,
    max_sweeps: int = 20,
) -> FitResult:
    """Coordinate ascent over the ``active`` rules' thresholds (default: all; the others stay off); rows are
    faces, ``target`` in [0, 1] (nan: no say).

    Maximises the sum over accepted rows of ``weight`` x (target - tau) (``tau`` and ``weight`` per row or one
    for all; weight 1 when not given) while, for each ``(rows, share)`` of ``keep``, at least ``share`` of those
    rows stay accepted; ties go to the most permissive threshold.
    """
    rules = [RULES[s] for s in (active if active is not None else RULES)]
    gain = np.nan_to_num(target - tau, nan=0.0)
    if weight is not None:
        gain = gain * weight
    candidates = [candidate_thresholds(rule, rule_values(rule, metrics)) for rule in rules]
    rejected = [
        np.stack([fails(rule, metrics, c) for c in options]) for rule, options in zip(rules, candidates, strict=True)
    ]
    chosen = [0] * len(rules)  # every rule off
    sweeps = 0
    for sweep in range(1, max_sweeps + 1):
        sweeps, changed = sweep, False
        for r in range(len(rules)):
            others = np.zeros(len(target), bool)
            for o in range(len(rules)):
                if o != r:
                    others |= rejected[o][chosen[o]]
            accepted = ~(rejected[r] | others)  # [candidates, rows]
            scores = np.round(accepted.astype(np.float64) @ gain, 9)
            for rows, share in keep:
                if rows.any():
                    scores[accepted[:, rows].mean(axis=1) < share] = -np.inf
            best = int(np.argmax(scores))  # the first of the best: the most permissive
            if best != chosen[r] and scores[best] >= scores[chosen[r]]:
                chosen[r], changed = best, True
        if not changed:
            break
    accepted = ~np.any([rejected[r][chosen[r]] for r in range(len(rules))] or [np.zeros(len(target), bool)], axis=0)
    thresholds = {setting: OFF[rule.bound] for setting, rule in RULES.items()}
    thresholds.update({rule.setting: float(candidates[r][chosen[r]]) for r, rule in enumerate(rules)})
    return FitResult(
        thresholds=thresholds,
        retention=[float(accepted[rows].mean()) if rows.any() else 1.0 for rows, _ in keep], sweeps=sweeps,
    )  # fmt: skip


# --- evidence ----------------------------------------------------------------------------------------


def eligible(rows: Measured) -> np.ndarray:
    """Rows that can be evidence: a face found, and not a turned-head proxy."""
    return rows.found & ~rows.proxy


def condition_accuracy(rows: Measured, mask: np.ndarray) -> np.ndarray:
    """Each row's condition's accuracy over ``mask`` (nan for a condition with no row there)."""
    conditions, right = rows.condition, rows.right
    accuracy = np.full(len(rows), math.nan)
    for condition in np.unique(conditions[mask]):
        members = conditions == condition
        accuracy[members] = right[mask & members].mean()
    return accuracy


def harm_line(rows: Measured, mask: np.ndarray, skill_loss: float) -> float:
    """tau: the accuracy at which ``skill_loss`` of the model's skill is gone, from ``mask``'s clean faces."""
    clean = mask & rows.clean
    accuracy = float(rows.right[clean].mean())
    majority = float(np.bincount(rows.label[clean], minlength=len(MOODS)).max() / clean.sum())
    return accuracy - skill_loss * (accuracy - majority)


@dataclass(frozen=True)
class Evidence:
    """One domain's rows for a fit: metrics, targets, tau, which rows are clean, the domain's weight."""

    domain: str
    metrics: dict[str, np.ndarray]
    target: np.ndarray
    tau: float
    clean: np.ndarray
    weight: float


def evidence(rows: Measured, fit: np.ndarray, settings: FitSettings) -> list[Evidence]:
    """The fit rows of each domain present in ``fit`` as evidence (see the module docstring for targets)."""
    parts = []
    for domain, weight in ((POSED_DOMAIN, 1.0 - settings.fer_weight), (FIT_DOMAIN, settings.fer_weight)):
        mask = fit & eligible(rows) & (rows.domain == domain)
        if not mask.any():
            continue
        target = condition_accuracy(rows, mask)
        if domain == FIT_DOMAIN:
            target = np.where(rows.clean, rows.right.astype(np.float64), target)
        parts.append(Evidence(
            domain, {k: v[mask] for k, v in rows.metrics.items()}, target[mask],
            harm_line(rows, mask, settings.skill_loss), rows.clean[mask], weight,
        ))  # fmt: skip
    total = sum(part.weight for part in parts)
    return [Evidence(p.domain, p.metrics, p.target, p.tau, p.clean, p.weight / total) for p in parts]


def fit_pooled(parts: list[Evidence], settings: FitSettings, active: tuple[str, ...]) -> FitResult:
    """The thresholds maximising the weighted sum of each domain's mean gain; a face's gain is divided by its
    domain's row count, so a domain's say is its weight, not its size."""
    sizes = [len(p.target) for p in parts]
    starts = np.cumsum([0, *sizes])
    keep = []
    for index, part in enumerate(parts):
        mask = np.zeros(starts[-1], bool)
        mask[starts[index] : starts[index + 1]] = part.clean
        keep.append((mask, settings.retention))
    return fit_thresholds(
        {k: np.concatenate([p.metrics[k] for p in parts]) for k in METRICS},
        np.concatenate([p.target for p in parts]), keep,
        tau=np.concatenate([np.full(n, p.tau) for p, n in zip(parts, sizes, strict=True)]),
        weight=np.concatenate([np.full(n, p.weight / max(n, 1)) for p, n in zip(parts, sizes, strict=True)]),
        active=active,
    )  # fmt: skip


# --- does a rule earn its place? ---------------------------------------------------------------------


def parts_of(rows: Measured) -> np.ndarray:
    """What the records show a rule's faces by: domain x ordinary (clean) or degraded."""
    return np.char.add(rows.domain.astype(str), np.where(rows.clean, " ordinary", " degraded"))


def wilson(successes: int, count: int) -> list[float] | None:
    """95 % Wilson score interval of a proportion."""
    if count == 0:
        return None
    p = successes / count
    denominator = 1 + Z95**2 / count
    centre = (p + Z95**2 / (2 * count)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / count + Z95**2 / (4 * count**2)) / denominator
    return [round(centre - half, 4), round(centre + half, 4)]


def _gap(sums: np.ndarray) -> np.ndarray:
    """Flagged-weighted mean over domains of (kept accuracy - flagged accuracy); ``sums`` [..., domains, 4]
    holds kept right, kept, flagged right, flagged."""
    kept_right, kept, flag_right, flagged = np.moveaxis(sums, -1, 0)
    usable = (kept > 0) & (flagged > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_domain = np.where(usable, kept_right / np.maximum(kept, 1) - flag_right / np.maximum(flagged, 1), 0.0)
    weight = np.where(usable, flagged, 0.0)
    total = weight.sum(axis=-1)
    return np.where(total > 0, (per_domain * weight).sum(axis=-1) / np.maximum(total, 1e-12), np.nan)


@dataclass
class Separation:
    """The faces a rule flags against the faces a gate keeps: the gap (kept accuracy - flagged accuracy within
    each domain, so a web face is never compared with a posed portrait, averaged weighted by the flagged faces
    of each) with a bootstrap interval over photos (a photo's copies together), and the counts by part."""

    gap: float | None
    ci95: list[float] | None
    flagged: int
    by_part: dict[str, dict] = field(default_factory=dict)

    def earns(self, min_gap: float) -> bool:
        return self.gap is not None and self.ci95 is not None and self.gap >= min_gap and self.ci95[0] > 0

    def to_dict(self) -> dict:
        return {"gap": self.gap, "ci95": self.ci95, "flagged": self.flagged, "by_part": self.by_part}


class Bootstrap:
    """Resampled photo counts over ``rows`` (multinomial, one draw per row of ``weights``), reused by every
    statistic of the same rows so their intervals share the draws."""

    def __init__(self, rows: Measured, draws: int, seed: int) -> None:
        self.units, self.unit_index = np.unique(rows.unit, return_inverse=True)
        self.domains, self.domain_index = np.unique(rows.domain.astype(str), return_inverse=True)
        self.parts, self.part_index = np.unique(parts_of(rows), return_inverse=True)
        rng = np.random.default_rng(seed)
        count = len(self.units)
        self.weights = rng.multinomial(count, np.full(count, 1.0 / count), size=draws).astype(np.float64)

    def separation(self, right: np.ndarray, kept: np.ndarray, flagged: np.ndarray) -> Separation:
        columns = np.stack([right & kept, kept, right & flagged, flagged], axis=1).astype(np.float64)
        by_part = np.zeros((len(self.parts), 4))
        np.add.at(by_part, self.part_index, columns)
        counts = {
            name: dict(zip(("kept_right", "kept", "flagged_right", "flagged"), values, strict=True))
            for name, values in zip(self.parts.tolist(), by_part.astype(int).tolist(), strict=True)
        }
        table = np.zeros((len(self.units), len(self.domains), 4))  # per photo and domain
        np.add.at(table, (self.unit_index, self.domain_index), columns)
        gap = float(_gap(table.sum(axis=0)))
        if not math.isfinite(gap):
            return Separation(None, None, int(flagged.sum()), counts)
        draws = _gap(np.einsum("du,usc->dsc", self.weights, table))
        low, high = np.nanquantile(draws, [0.025, 0.975])
        return Separation(round(gap, 4), [round(float(low), 4), round(float(high), 4)], int(flagged.sum()), counts)


# --- the gate: fit, then keep the rules that earn their place ----------------------------------------


def inner_folds(rows: Measured, fit: np.ndarray) -> list[np.ndarray]:
    """One fold per jaffe_dev subject in ``fit``, each with its slice of the FER2013 groups in ``fit``."""
    subjects = sorted(set(rows.group[fit & (rows.domain == POSED_DOMAIN)].tolist()))
    count = max(len(subjects), 2)
    part = np.floor(group_fraction(rows.group) * count).astype(int)
    folds = []
    for index in range(count):
        fold = fit & (rows.domain == FIT_DOMAIN) & (part == index)
        if index < len(subjects):
            fold |= fit & (rows.domain == POSED_DOMAIN) & (rows.group == subjects[index])
        folds.append(fold)
    return folds


@dataclass
class GateFit:
    """The shipped thresholds (a rule that did not earn its place is off), each rule's last fitted threshold
    (``candidates``: what it would have been), and the selection's evidence, step by step."""

    thresholds: dict[str, float]
    candidates: dict[str, float]
    ships: dict[str, bool]
    steps: list[dict]
    retention: dict[str, float]


def select_rules(rows: Measured, fit: np.ndarray, settings: FitSettings) -> GateFit:
    """Fit on ``fit`` rows; turn off, one at a time, the rule that separates least out of the inner folds
    until every rule left earns its place (see the module docstring)."""
    parts = evidence(rows, fit, settings)
    folds = inner_folds(rows, fit)
    held = np.any(folds, axis=0) & eligible(rows)
    bootstrap = Bootstrap(rows.take(held), settings.draws, settings.seed)
    fold_parts = [evidence(rows, fit & ~fold, settings) for fold in folds]
    active = tuple(RULES)
    candidates = {setting: OFF[rule.bound] for setting, rule in RULES.items()}
    steps: list[dict] = []
    while True:
        full = fit_pooled(parts, settings, active)
        candidates.update({s: full.thresholds[s] for s in active})
        turned_off = [s for s in active if full.thresholds[s] == OFF[RULES[s].bound]]
        active = tuple(s for s in active if s not in turned_off)
        out_of_fold = {s: np.zeros(len(rows), bool) for s in active}
        kept = np.zeros(len(rows), bool)
        for fold, fold_evidence in zip(folds, fold_parts, strict=True):
            fold_fit = fit_pooled(fold_evidence, settings, active)
            judged = failures({k: v[fold] for k, v in rows.metrics.items()}, fold_fit.thresholds)
            kept[fold] = ~np.any(list(judged.values()), axis=0)
            for s in active:
                out_of_fold[s][fold] = judged[s]
        right = rows.right[held]
        separations = {s: bootstrap.separation(right, kept[held], out_of_fold[s][held]) for s in active}
        failing = [s for s in active if not separations[s].earns(settings.min_gap)]
        drop = min(failing, key=lambda s: (separations[s].ci95 or [-math.inf])[0]) if failing else None
        steps.append({
            "active": list(active), "thresholds": {s: full.thresholds[s] for s in active},
            "fitted_off": turned_off, "separation": {s: sep.to_dict() for s, sep in separations.items()},
            "dropped": drop,
        })  # fmt: skip
        if drop is None:
            break
        active = tuple(s for s in active if s != drop)
    thresholds = {setting: OFF[rule.bound] for setting, rule in RULES.items()}
    thresholds.update({s: full.thresholds[s] for s in active})
    retention = {p.domain: round(r, 4) for p, r in zip(parts, full.retention, strict=True)}
    return GateFit(thresholds, candidates, {s: s in active for s in RULES}, steps, retention)
