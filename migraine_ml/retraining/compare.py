"""Champion against challenger on the same rows: the statistics that decide a promotion.

Both models score the same evaluation rows (the new test split). `paired_bootstrap`
resamples those rows, or whole patients where the rows carry a group, and scores
both models on every resample; `compare_task` adds each class's recall; `decide`
applies the `PromotionRule`; `write_promotion` and `write_skip` write
reports/promotion.json.

The point scores are `task_metrics` of migraine_ml/evaluation/metrics.py, the
numbers the evaluate stage reports. The bootstrap draws each resample as a weight
per row (how often the row was drawn) and computes the metric of many resamples
at once from those weights; a weighted metric at whole-number weights is the
metric of the rows repeated that often, and tests hold each equal to
`task_metrics` of the repeated rows. A loop calling `task_metrics` per resample
would take seconds per comparison (about 2 ms a call for three classes).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migraine_ml.evaluation.metrics import (
    LOWER_IS_BETTER,
    PRIMARY,
    PairedDifference,
    task_metrics,
)
from migraine_ml.modeling.tasks import default_scoring

# reports/promotion.json: `status` is one of these
PROMOTED, KEPT, SKIPPED = "promoted", "kept", "skipped"

# the checks of a decision (`Check.name`)
MIN_GAIN = "min_gain"  # the primary task's gain exceeds the rule's minimum
INTERVAL = "interval_excludes_zero"  # ... and its interval lies above zero
CLASS_DROP = "max_class_drop"  # no class of a classification task loses more recall
NOT_WORSE = "not_worse"  # no other task's interval lies below zero

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "brier",
)
REGRESSION_METRICS = ("r2", "rmse", "mae")

# weights of at most this many (resample, row) cells at a time: 16 MB of float64
_BLOCK_CELLS = 2**21
_CLIP = 1e-15  # probabilities clipped as the metrics module clips them for log loss


@dataclass(frozen=True)
class PromotionRule:
    """When a challenger replaces the champion: the `retrain` params of the comparison."""

    min_gain: float
    max_class_drop: float
    resamples: int = 1000
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not self.min_gain >= 0:
            raise ValueError(f"min_gain: {self.min_gain} is negative; expected >= 0")
        if not 0 <= self.max_class_drop <= 1:
            raise ValueError(f"max_class_drop: {self.max_class_drop} is outside [0, 1]")
        if isinstance(self.resamples, bool) or not isinstance(self.resamples, int | np.integer):
            raise ValueError(f"resamples: {self.resamples!r} is not a whole number")
        if self.resamples < 1:
            raise ValueError(f"resamples: {self.resamples} is below 1")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence: {self.confidence} is outside (0, 1)")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PromotionRule:
        """From the `retrain` params block; its other keys (label_delay, ...) are not read."""
        missing = [name for name in ("min_gain", "max_class_drop") if name not in params]
        if missing:
            raise ValueError(f"retrain params: {', '.join(missing)} missing")
        optional = {name: params[name] for name in ("resamples", "confidence") if name in params}
        if "confidence" in optional:
            optional["confidence"] = float(optional["confidence"])
        return cls(
            min_gain=float(params["min_gain"]),
            max_class_drop=float(params["max_class_drop"]),
            **optional,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedBootstrap(PairedDifference):
    """A `PairedDifference` of challenger against champion, and how it was drawn.

    `difference`, `ci_low` and `ci_high` are oriented so that positive means the
    challenger is better, for lower-is-better metrics too; `share_not_better` is
    the share of the counted resamples where it is not.
    """

    confidence: float
    resamples: int  # drawn
    skipped: int  # degenerate resamples, left out of the interval (see `paired_bootstrap`)
    rows: int
    clusters: int | None  # groups resampled whole; None when rows were resampled

    def rounded(self, digits: int = 6) -> PairedBootstrap:
        def near(value: float) -> float:
            return round(value, digits)

        return PairedBootstrap(
            difference=near(self.difference),
            ci_low=near(self.ci_low),
            ci_high=near(self.ci_high),
            share_not_better=near(self.share_not_better),
            confidence=self.confidence,
            resamples=self.resamples,
            skipped=self.skipped,
            rows=self.rows,
            clusters=self.clusters,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassRecall:
    """One class's recall (argmax of the probabilities) for both models on the same rows."""

    label: Any  # as the manifest's `classes` names it, else the class's code
    rows: int  # rows of the class among the compared rows
    champion: float  # NaN when the rows hold no row of the class
    challenger: float
    change: float  # challenger - champion

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskComparison:
    """One task's champion and challenger scored on the same rows."""

    task: str
    metric: str
    higher_is_better: bool
    champion: float
    challenger: float
    difference: PairedBootstrap  # positive: the challenger is better
    class_recall: tuple[ClassRecall, ...] = ()  # empty for regression

    @property
    def share_not_better(self) -> float:
        """Share of the resamples where the challenger is not better."""
        return self.difference.share_not_better

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "champion": self.champion,
            "challenger": self.challenger,
            "difference": self.difference.to_dict(),
            "class_recall": [c.to_dict() for c in self.class_recall],
        }


@dataclass(frozen=True)
class Check:
    """One condition of the promotion rule, judged for one task."""

    name: str  # MIN_GAIN, INTERVAL, CLASS_DROP or NOT_WORSE
    task: str
    passed: bool
    detail: str  # the numbers behind the verdict, in a sentence

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """Promote or keep the champion, why, and every check behind it."""

    promote: bool
    reason: str  # the failing checks' details; all checks' when promoted
    checks: tuple[Check, ...]
    primary: str  # the task whose gain decides
    rule: PromotionRule

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "primary": self.primary,
            "rule": self.rule.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
        }


def paired_bootstrap(
    metric: str,
    y: np.ndarray,
    champion_out: np.ndarray,
    challenger_out: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> PairedBootstrap:
    """Bootstrap of challenger - champion in `metric`, both scored on the same resamples.

    The difference is oriented so that positive means the challenger is better:
    challenger - champion for higher-is-better metrics, champion - challenger for
    those in `LOWER_IS_BETTER` (rmse, log loss, ...).

    With `groups` (a patient id per row) every resample draws whole groups with
    replacement, as many as there are: a patient's rows are not independent, and a
    row bootstrap would make the interval too narrow. Without, it draws rows.

    A resample whose truth holds a single class (or a single value) is degenerate:
    ROC AUC and R² are undefined on it, and it says nothing about telling classes
    apart. Such resamples, and any other on which the metric is undefined, are
    skipped and counted in `skipped`; when all are, the interval is NaN.

    Args:
        y: the truth, class codes 0..k-1 or values.
        champion_out, challenger_out: class probabilities (rows x classes), or
            predicted values (one per row), as `task_metrics` takes them.
    """
    y, champion_out, challenger_out = _checked(y, champion_out, challenger_out, groups)
    return _paired(
        metric,
        y,
        champion_out,
        challenger_out,
        groups=groups,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )[2]


def class_recall_changes(
    y: np.ndarray,
    champion_proba: np.ndarray,
    challenger_proba: np.ndarray,
    *,
    classes: list[Any] | None = None,
) -> tuple[ClassRecall, ...]:
    """Each class's recall for both models (the class of highest probability is the
    prediction, a tie going to the lower code, as in the metrics module)."""
    y = np.asarray(y, dtype=int)
    n_classes = champion_proba.shape[1]
    labels = list(classes) if classes is not None else list(range(n_classes))
    if len(labels) != n_classes:
        raise ValueError(
            f"classes: {len(labels)} names {labels} for {n_classes} probability columns"
        )
    champion_hits = champion_proba.argmax(axis=1) == y
    challenger_hits = challenger_proba.argmax(axis=1) == y
    recalls = []
    for code, label in enumerate(labels):
        of_class = y == code
        rows = int(of_class.sum())
        champion = float(champion_hits[of_class].mean()) if rows else math.nan
        challenger = float(challenger_hits[of_class].mean()) if rows else math.nan
        recalls.append(
            ClassRecall(_plain(label), rows, champion, challenger, challenger - champion)
        )
    return tuple(recalls)


def compare_task(
    task: str,
    y: np.ndarray,
    champion_out: np.ndarray,
    challenger_out: np.ndarray,
    *,
    classification: bool,
    classes: list[Any] | None = None,
    groups: np.ndarray | None = None,
    rule: PromotionRule,
    seed: int,
    metric: str | None = None,
) -> TaskComparison:
    """Champion and challenger of one task on the same rows: the paired bootstrap of
    `metric` (clustered by `groups` where given) and, for classification, each
    class's recall.

    Args:
        metric: the task's primary metric, `PRIMARY[scoring]` of the champion's
            manifest entry; by default the train stage's default scoring's
            (ROC AUC for two classes, macro F1 for more, R² for regression).
    """
    y, champion_out, challenger_out = _checked(y, champion_out, challenger_out, groups)
    if classification != (champion_out.ndim == 2):
        expected = "class probabilities (rows x classes)" if classification else "one value a row"
        raise ValueError(
            f"task '{task}': outputs of shape {champion_out.shape}; expected {expected}"
        )
    if metric is None:
        n_classes = champion_out.shape[1] if classification else 0
        kind = "classification" if classification else "regression"
        metric = PRIMARY[default_scoring(kind, n_classes)]
    champion, challenger, difference = _paired(
        metric,
        y,
        champion_out,
        challenger_out,
        groups=groups,
        resamples=rule.resamples,
        seed=seed,
        confidence=rule.confidence,
    )
    recalls = ()
    if classification:
        recalls = class_recall_changes(y, champion_out, challenger_out, classes=classes)
    return TaskComparison(
        task=task,
        metric=metric,
        higher_is_better=metric not in LOWER_IS_BETTER,
        champion=champion,
        challenger=challenger,
        difference=difference,
        class_recall=recalls,
    )


def decide(
    comparisons: Mapping[str, TaskComparison], *, primary: str, rule: PromotionRule
) -> Decision:
    """Promote only when the primary task gains more than `rule.min_gain` with an
    interval above zero, no class of any classification task loses more than
    `rule.max_class_drop` recall, and no other task is significantly worse (its
    interval entirely below zero)."""
    if primary not in comparisons:
        raise ValueError(
            f"primary task '{primary}' is not among the compared tasks {sorted(comparisons)}"
        )
    main = comparisons[primary]
    checks = [_gain_check(main, rule), _interval_check(main)]
    for comparison in comparisons.values():
        if comparison.class_recall:
            checks.append(_class_check(comparison, rule))
    for name, comparison in comparisons.items():
        if name != primary:
            checks.append(_not_worse_check(comparison))
    promote = all(c.passed for c in checks)
    reasons = [c.detail for c in checks if promote or not c.passed]
    return Decision(promote, "; ".join(reasons), tuple(checks), primary, rule)


def write_promotion(
    path: str | Path,
    *,
    decision: Decision,
    comparisons: Mapping[str, TaskComparison],
    champion: dict[str, Any],
    challenger: dict[str, Any],
    data: dict[str, Any],
) -> dict[str, Any]:
    """Write reports/promotion.json for a comparison (promoted or kept); returns what it wrote.

    Args:
        champion, challenger: their identities as the caller knows them (model
            names, files and md5s, MLflow versions, the experiment's name).
        data: what the challenger was trained and both were scored on (hashes,
            row counts, the new labels).
    """
    report = {
        "status": PROMOTED if decision.promote else KEPT,
        **decision.to_dict(),
        "champion": champion,
        "challenger": challenger,
        "data": data,
        "tasks": {name: c.to_dict() for name, c in comparisons.items()},
    }
    return _write_json(path, report)


def write_skip(
    path: str | Path, reason: str, *, champion: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    """Write reports/promotion.json for a retrain that did not run (too few new labels, ...)."""
    report = {
        "status": SKIPPED,
        "promote": False,
        "reason": reason,
        "champion": champion,
        "challenger": None,
        "data": data,
    }
    return _write_json(path, report)


# --- the bootstrap -------------------------------------------------------------------


def _checked(
    y: np.ndarray, champion_out: np.ndarray, challenger_out: np.ndarray, groups: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    champion_out = np.asarray(champion_out, dtype=float)
    challenger_out = np.asarray(challenger_out, dtype=float)
    classification = champion_out.ndim == 2
    y = np.asarray(y, dtype=int if classification else float)
    if champion_out.shape != challenger_out.shape:
        raise ValueError(
            f"champion outputs of shape {champion_out.shape} and challenger outputs of "
            f"shape {challenger_out.shape}: expected the same rows and columns"
        )
    if y.ndim != 1 or len(y) != len(champion_out) or not len(y):
        raise ValueError(
            f"truth of shape {y.shape} for outputs of shape {champion_out.shape}: "
            "expected one value per output row"
        )
    if groups is not None and len(groups) != len(y):
        raise ValueError(f"groups: {len(groups)} ids for {len(y)} rows")
    if classification and (y.min() < 0 or y.max() >= champion_out.shape[1]):
        raise ValueError(
            f"class codes {sorted(set(y.tolist()))} for {champion_out.shape[1]} probability "
            "columns: expected codes 0..k-1"
        )
    return y, champion_out, challenger_out


def _paired(
    metric: str,
    y: np.ndarray,
    champion_out: np.ndarray,
    challenger_out: np.ndarray,
    *,
    groups: Any,
    resamples: int,
    seed: int,
    confidence: float,
) -> tuple[float, float, PairedBootstrap]:
    """The point scores of both models and the oriented paired bootstrap."""
    classification = champion_out.ndim == 2
    known = CLASSIFICATION_METRICS if classification else REGRESSION_METRICS
    if metric not in known:
        kind = "classification" if classification else "regression"
        raise ValueError(f"metric '{metric}' is not a {kind} metric; expected one of {known}")
    if resamples < 1:
        raise ValueError(f"resamples: {resamples} is below 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence} is outside (0, 1)")
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    champion = task_metrics(y, champion_out, classification=classification)[metric]
    challenger = task_metrics(y, challenger_out, classification=classification)[metric]

    codes, clusters = None, None
    if groups is not None:
        codes, uniques = pd.factorize(pd.Series(np.asarray(groups, dtype=object)))
        if (codes < 0).any():
            raise ValueError(f"groups: {int((codes < 0).sum())} rows have no group id")
        clusters = len(uniques)
    units = clusters if clusters is not None else len(y)

    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // max(units, len(y)))
    differences = []
    for start in range(0, resamples, block):
        weights = _draw_weights(rng, units, min(block, resamples - start))
        if codes is not None:
            weights = weights[:, codes]
        first = _weighted_metric(metric, y, champion_out, weights)
        second = _weighted_metric(metric, y, challenger_out, weights)
        counted = _varied(y, weights) & np.isfinite(first) & np.isfinite(second)
        differences.append(sign * (second - first)[counted])
    drawn = np.concatenate(differences)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(drawn, [tail, 100 - tail]) if drawn.size else (math.nan,) * 2
    difference = PairedBootstrap(
        difference=float(sign * (challenger - champion)),
        ci_low=float(low),
        ci_high=float(high),
        share_not_better=float(np.mean(drawn <= 0)) if drawn.size else math.nan,
        confidence=confidence,
        resamples=resamples,
        skipped=resamples - drawn.size,
        rows=len(y),
        clusters=clusters,
    )
    return float(champion), float(challenger), difference


def _draw_weights(rng: np.random.Generator, units: int, count: int) -> np.ndarray:
    """How often each of `units` rows (or groups) is drawn, in `count` resamples of
    `units` draws with replacement: a (count, units) matrix."""
    draws = rng.integers(0, units, size=(count, units))
    cells = (draws + (np.arange(count) * units)[:, None]).ravel()
    return np.bincount(cells, minlength=count * units).reshape(count, units).astype(float)


def _varied(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Whether each resample's truth holds more than one class (or value)."""
    drawn = weights > 0
    highest = np.where(drawn, y, -np.inf).max(axis=1)
    lowest = np.where(drawn, y, np.inf).min(axis=1)
    return highest > lowest


# --- weighted metrics: task_metrics of the rows repeated as often as they were drawn ----


def _weighted_metric(metric: str, y: np.ndarray, out: np.ndarray, weights: np.ndarray):
    """`metric` on every resample (a row of `weights`); NaN where it is undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if out.ndim == 1:
            return _regression(metric, y, out, weights)
        if out.shape[1] == 2:
            return _binary(metric, y, out[:, 1], weights)
        return _multiclass(metric, y, out, weights)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (as the metrics module)."""
    return np.divide(
        numerator, denominator, out=np.zeros(np.shape(numerator)), where=denominator > 0
    )


def _weighted_auc(positives: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC with ties counted half, NaN without both classes."""
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    tie_starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    drawn = weights[:, order]
    is_positive = positives[order]
    positive_weight = np.add.reduceat(drawn * is_positive, tie_starts, axis=1)
    negative_weight = np.add.reduceat(drawn * ~is_positive, tie_starts, axis=1)
    negatives_below = np.cumsum(negative_weight, axis=1) - negative_weight
    pairs_won = np.sum(positive_weight * (negatives_below + negative_weight / 2), axis=1)
    n_pos, n_neg = positive_weight.sum(axis=1), negative_weight.sum(axis=1)
    return np.where((n_pos > 0) & (n_neg > 0), pairs_won / (n_pos * n_neg), np.nan)


def _binary(metric: str, y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    positives = y == 1
    total = weights.sum(axis=1)
    if metric == "roc_auc":
        return _weighted_auc(positives, p, weights)
    if metric == "log_loss":
        clipped = np.clip(p, _CLIP, 1 - _CLIP)
        return weights @ -np.where(positives, np.log(clipped), np.log(1 - clipped)) / total
    if metric == "brier":
        return weights @ (p - y) ** 2 / total
    predicted = p > 0.5
    tp = weights @ (predicted & positives).astype(float)
    fp = weights @ (predicted & ~positives).astype(float)
    n_pos = weights @ positives.astype(float)
    n_neg = total - n_pos
    fn, tn = n_pos - tp, n_neg - fp
    recall, specificity = _ratio(tp, n_pos), _ratio(tn, n_neg)
    if metric == "accuracy":
        return (tp + tn) / total
    if metric == "balanced_accuracy":
        one_class = np.where(recall != 0, recall, specificity)
        return np.where((n_pos > 0) & (n_neg > 0), (recall + specificity) / 2, one_class)
    if metric == "precision":
        return _ratio(tp, tp + fp)
    if metric == "recall":
        return recall
    return _ratio(2 * tp, 2 * tp + fp + fn)  # f1


def _multiclass(metric: str, y: np.ndarray, proba: np.ndarray, weights: np.ndarray):
    n_rows, n_classes = proba.shape
    total = weights.sum(axis=1)
    if metric == "roc_auc":
        # one-vs-rest, macro over the classes with an AUC on the resample
        aucs = np.stack(
            [_weighted_auc(y == k, proba[:, k], weights) for k in range(n_classes)], axis=1
        )
        scored = np.isfinite(aucs)
        return np.where(scored, aucs, 0).sum(axis=1) / scored.sum(axis=1)  # 0/0: NaN
    if metric == "log_loss":
        truth = np.clip(proba[np.arange(n_rows), y], _CLIP, 1)
        return weights @ -np.log(truth) / total
    if metric == "brier":
        return weights @ np.sum((proba - np.eye(n_classes)[y]) ** 2, axis=1) / total
    cells = np.zeros((n_rows, n_classes * n_classes))
    cells[np.arange(n_rows), y * n_classes + proba.argmax(axis=1)] = 1
    confusion = (weights @ cells).reshape(-1, n_classes, n_classes)
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    actual, chosen = confusion.sum(axis=2), confusion.sum(axis=1)
    seen = (actual + chosen) > 0
    recall = _ratio(hits, actual)

    def mean_over(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.sum(values * mask, axis=1) / mask.sum(axis=1)

    if metric == "accuracy":
        return hits.sum(axis=1) / total
    if metric == "balanced_accuracy":
        return mean_over(recall, actual > 0)
    if metric == "precision":
        return mean_over(_ratio(hits, chosen), seen)
    if metric == "recall":
        return mean_over(recall, seen)
    return mean_over(_ratio(2 * hits, actual + chosen), seen)  # f1


def _regression(metric: str, y: np.ndarray, predicted: np.ndarray, weights: np.ndarray):
    total = weights.sum(axis=1)
    squared = weights @ (predicted - y) ** 2
    if metric == "rmse":
        return np.sqrt(squared / total)
    if metric == "mae":
        return weights @ np.abs(predicted - y) / total
    centred = y - y.mean()  # centred first: the weighted variance without cancellation
    spread = weights @ centred**2 - (weights @ centred) ** 2 / total
    return np.where(spread > 0, 1 - squared / spread, np.nan)  # r2


# --- the decision's sentences ---------------------------------------------------------


def _num(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.3g}"


def _interval(difference: PairedBootstrap) -> str:
    return (
        f"the {difference.confidence:.0%} interval "
        f"[{_num(difference.ci_low)}, {_num(difference.ci_high)}]"
    )


def _gain_check(main: TaskComparison, rule: PromotionRule) -> Check:
    gain = main.difference.difference
    passed = gain > rule.min_gain
    verdict = "exceeds" if passed else "is below" if gain < rule.min_gain else "does not exceed"
    lower = "" if main.higher_is_better else ", lower is better"
    return Check(
        MIN_GAIN,
        main.task,
        passed,
        f"gain {_num(gain)} in {main.metric} ({_num(main.champion)} -> "
        f"{_num(main.challenger)}{lower}) {verdict} min_gain {_num(rule.min_gain)}",
    )


def _interval_check(main: TaskComparison) -> Check:
    difference = main.difference
    passed = difference.ci_low > 0
    if math.isnan(difference.ci_low):
        detail = (
            f"the {difference.confidence:.0%} interval is undefined: all "
            f"{difference.resamples} resamples were degenerate (one class or value only)"
        )
    elif passed:
        detail = f"{_interval(difference)} lies above zero"
    elif difference.ci_high < 0:
        detail = f"{_interval(difference)} lies below zero"
    else:
        detail = f"{_interval(difference)} includes zero"
    return Check(INTERVAL, main.task, passed, detail)


def _class_check(comparison: TaskComparison, rule: PromotionRule) -> Check:
    judged = [c for c in comparison.class_recall if not math.isnan(c.change)]
    dropped = [c for c in judged if c.change < -rule.max_class_drop]
    if dropped:
        detail = "; ".join(
            f"class '{c.label}' of {comparison.task} loses {_num(-c.change)} recall "
            f"({_num(c.champion)} -> {_num(c.challenger)}, {c.rows} rows), more than "
            f"max_class_drop {_num(rule.max_class_drop)}"
            for c in dropped
        )
        return Check(CLASS_DROP, comparison.task, False, detail)
    worst = min(judged, key=lambda c: c.change, default=None)
    detail = f"no class of {comparison.task} loses more than {_num(rule.max_class_drop)} recall"
    if worst is not None:
        detail += f" (worst class '{worst.label}': {worst.change:+.3g})"
    return Check(CLASS_DROP, comparison.task, True, detail)


def _not_worse_check(comparison: TaskComparison) -> Check:
    difference = comparison.difference
    passed = not difference.ci_high < 0
    state = "is not significantly worse" if passed else "is worse"
    return Check(
        NOT_WORSE,
        comparison.task,
        passed,
        f"{comparison.task} {state}: {comparison.metric} difference "
        f"{_num(difference.difference)}, {_interval(difference)}"
        + ("" if passed else " lies below zero"),
    )


# --- JSON -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so that labels and scores serialise."""
    return value.item() if isinstance(value, np.generic) else value


def _json_ready(value: Any, digits: int = 6) -> Any:
    """Floats rounded, NaN and infinities as null (JSON has neither), numpy as Python."""
    value = _plain(value)
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v, digits) for v in value]
    return value


def _write_json(path: str | Path, report: dict[str, Any]) -> dict[str, Any]:
    """Written whole or not at all (a killed retrain leaves the previous report);
    returns what was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = _json_ready(report)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(written, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return written
