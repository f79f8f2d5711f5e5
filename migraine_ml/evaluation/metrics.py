"""Metrics in plain numpy, bootstrap intervals and paired comparisons.

The bootstrap calls the metric functions thousands of times, where
scikit-learn's input checks would cost more than the arithmetic; tests hold
them equal to scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import mean_absolute_error, r2_score

# Higher is better for every metric except these.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})

# CV scoring name -> the metric of the same meaning in the report
PRIMARY = {
    "roc_auc": "roc_auc",
    "f1_macro": "f1",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "r2": "r2",
}


def brier_score(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean squared distance of the class-probability vector from the one-hot truth.

    For two classes this is twice sklearn's binary Brier score, so report the
    binary convention (the positive column only) there.
    """
    n_classes = proba.shape[1]
    if n_classes == 2:
        return float(np.mean((proba[:, 1] - y) ** 2))
    onehot = np.eye(n_classes)[y]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def _roc_auc(positives: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney U with tied ranks averaged; NaN when only one class is present
    (a rare class missing from a small test split or a bootstrap resample)."""
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if not (n_pos and n_neg):
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ovr_roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes present in `y`.

    A class absent from the rows has no AUC; scikit-learn would warn and
    return NaN for the whole average, here it is left out of the mean.
    """
    aucs = [_roc_auc(y == k, proba[:, k]) for k in np.unique(y)]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The binary metrics in plain numpy: the bootstrap calls this thousands of times
    and scikit-learn's input checks would cost more than the arithmetic. Tests hold
    it equal to scikit-learn's."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    predicted = p > 0.5  # argmax of [1 - p, p]: a tie goes to class 0
    positives = y == 1
    n_pos = int(positives.sum())
    n_neg = len(y) - n_pos
    tp = int(np.sum(predicted & positives))
    fp = int(np.sum(predicted & ~positives))
    fn = n_pos - tp
    tn = n_neg - fp
    recall = tp / n_pos if n_pos else 0.0
    specificity = tn / n_neg if n_neg else 0.0
    roc_auc = _roc_auc(positives, p)
    # with one class present, balanced accuracy is that class's recall
    balanced = (recall + specificity) / 2 if n_pos and n_neg else (recall or specificity)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    return {
        "accuracy": (tp + tn) / len(y),
        "balanced_accuracy": balanced,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": float(roc_auc),
        "log_loss": float(-np.mean(np.where(positives, np.log(clipped), np.log(1 - clipped)))),
        "brier": float(np.mean((p - y) ** 2)),
    }


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """All classification metrics from integer labels 0..k-1 and class probabilities.

    Multi-class scores are macro averages over the classes present in the truth
    or the predictions (scikit-learn's default), computed from the confusion
    matrix in numpy for the same reason as `binary_metrics`; tests hold them
    equal to scikit-learn's.
    """
    y = np.asarray(y, dtype=int)
    n_classes = proba.shape[1]
    if n_classes == 2:
        return binary_metrics(y, proba[:, 1])
    predicted = proba.argmax(axis=1)
    confusion = np.bincount(y * n_classes + predicted, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )
    hits = np.diag(confusion).astype(float)
    actual, chosen = confusion.sum(axis=1), confusion.sum(axis=0)
    seen = (actual + chosen) > 0

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        return np.divide(numerator, denominator, out=np.zeros(n_classes), where=denominator > 0)

    recall = ratio(hits, actual)
    return {
        "accuracy": float(hits.sum() / len(y)),
        "balanced_accuracy": float(recall[actual > 0].mean()),
        "precision": float(ratio(hits, chosen)[seen].mean()),
        "recall": float(recall[seen].mean()),
        "f1": float(ratio(2 * hits, actual + chosen)[seen].mean()),
        "roc_auc": ovr_roc_auc(y, proba),
        "log_loss": float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1)))),
        "brier": brier_score(y, proba),
    }


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    y, predicted = np.asarray(y, dtype=float), np.asarray(predicted, dtype=float)
    return {
        "r2": r2_score(y, predicted),
        "rmse": float(np.sqrt(np.mean((y - predicted) ** 2))),
        "mae": mean_absolute_error(y, predicted),
    }


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def bootstrap(
    metric_fn: Callable[[np.ndarray], dict[str, float]],
    n_rows: int,
    *,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Percentile intervals of every metric over row resamples (with replacement).

    `metric_fn(indices)` computes the metrics on the rows at `indices`.
    """
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        for name, value in metric_fn(rng.integers(0, n_rows, n_rows)).items():
            draws.setdefault(name, []).append(value)
    tail = (1 - confidence) / 2 * 100
    return {
        name: Interval(*np.nanpercentile(values, [tail, 100 - tail]).tolist())
        for name, values in draws.items()
    }


@dataclass(frozen=True)
class PairedDifference:
    """first - second on the same rows, with its bootstrap interval."""

    difference: float
    ci_low: float
    ci_high: float
    share_not_better: float  # share of bootstrap resamples (or CV folds) where first is not better

    def rounded(self, digits: int = 6) -> PairedDifference:
        return PairedDifference(*(round(v, digits) for v in astuple(self)))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def paired_difference(
    first: Callable[[np.ndarray], float],
    second: Callable[[np.ndarray], float],
    n_rows: int,
    *,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> PairedDifference:
    """Bootstrap of first - second on the same resampled rows (a paired comparison)."""
    rng = np.random.default_rng(seed)
    full = np.arange(n_rows)
    differences = []
    for _ in range(resamples):
        rows = rng.integers(0, n_rows, n_rows)
        differences.append(first(rows) - second(rows))
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(differences, [tail, 100 - tail])
    return PairedDifference(
        difference=float(first(full) - second(full)),
        ci_low=float(low),
        ci_high=float(high),
        share_not_better=float(np.mean(np.asarray(differences) <= 0)),
    )


def rounded(values: dict[str, float], digits: int = 6) -> dict[str, float]:
    return {k: round(float(v), digits) for k, v in values.items()}


def score_with_intervals(
    metric_fn: Callable[[np.ndarray], dict[str, float]],
    n_rows: int,
    *,
    resamples: int,
    seed: int,
    confidence: float,
) -> dict[str, float]:
    """Each metric with `<name>_ci_low` / `<name>_ci_high` beside it (flat, for dvc)."""
    point = metric_fn(np.arange(n_rows))
    intervals = bootstrap(metric_fn, n_rows, resamples=resamples, seed=seed, confidence=confidence)
    flat = {}
    for name, value in point.items():
        flat[name] = value
        flat[f"{name}_ci_low"] = intervals[name].low
        flat[f"{name}_ci_high"] = intervals[name].high
    return rounded(flat)


def task_metrics(y: np.ndarray, out: np.ndarray, *, classification: bool) -> dict[str, float]:
    """Every metric of the task: from class probabilities, or from predicted values."""
    return classification_metrics(y, out) if classification else regression_metrics(y, out)


def baseline(*, classification: bool) -> Any:
    """The dummy every model must beat: the class priors, or the mean (unfitted)."""
    if classification:
        return DummyClassifier(strategy="prior")
    return DummyRegressor(strategy="mean")
