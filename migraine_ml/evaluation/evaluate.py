"""Evaluation on the held-out test split: metrics, baselines, intervals, fit diagnosis, gate.

A score means little alone: accuracy 0.80 on data that is 80 % one class is no
skill. So every metric stands next to a dummy baseline fitted on the same
train rows, the oracle ceiling when the data is the generated cohort, and a
bootstrap confidence interval.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    mean_absolute_error,
    r2_score,
)

from migraine_ml.persist import file_md5

OVERFITTING = "OVERFITTING"
UNDERFITTING = "UNDERFITTING"
GOOD_FIT = "GOOD FIT"

RECOMMENDATIONS = {
    OVERFITTING: [
        "reduce model complexity (shallower trees, fewer leaves, fewer estimators)",
        "regularise more (larger L2 / alpha, min_samples_leaf, subsampling)",
        "collect more data",
        "select fewer features (features.n_features)",
    ],
    UNDERFITTING: [
        "increase model complexity (deeper trees, more estimators, a kernel)",
        "add more or better features (interactions, health indices, domain knowledge)",
        "train longer / search wider (train.*.n_iter, larger search spaces)",
    ],
    GOOD_FIT: [],
}

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
# oracle.json key -> report metric, per task
CEILING_KEYS = {
    "classification": {
        "roc_auc": "roc_auc",
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced_accuracy",
        "log_loss": "log_loss",
        "brier": "brier",
    },
    "regression": {"severity_r2": "r2", "severity_rmse": "rmse"},
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


def paired_difference(
    first: Callable[[np.ndarray], float],
    second: Callable[[np.ndarray], float],
    n_rows: int,
    *,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Bootstrap of first - second on the same resampled rows (a paired comparison)."""
    rng = np.random.default_rng(seed)
    full = np.arange(n_rows)
    differences = []
    for _ in range(resamples):
        rows = rng.integers(0, n_rows, n_rows)
        differences.append(first(rows) - second(rows))
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(differences, [tail, 100 - tail])
    return {
        "difference": float(first(full) - second(full)),
        "ci_low": float(low),
        "ci_high": float(high),
        "share_not_better": float(np.mean(np.asarray(differences) <= 0)),
    }


def diagnose(
    *,
    train_score: float,
    test_score: float,
    dummy_score: float,
    higher_is_better: bool = True,
    overfit_gap: float = 0.10,
    underfit_floor: float = 0.70,
    margin: float = 0.0,
    ceiling: float | None = None,
    ceiling_tolerance: float = 0.05,
) -> dict[str, Any]:
    """OVERFITTING, UNDERFITTING or GOOD FIT from train vs test and the baseline.

    A score under the floor is not called underfitting when the known ceiling
    (the true model's score) is itself that low: the noise in the data, not the
    model, limits it then, and the reasons say so.
    """
    sign = 1 if higher_is_better else -1
    gap = sign * (train_score - test_score)
    lift = sign * (test_score - dummy_score)
    reasons = []
    if gap > overfit_gap:
        verdict = OVERFITTING
        reasons.append(
            f"train {train_score:.3f} vs test {test_score:.3f}: gap {gap:.3f} > {overfit_gap}"
        )
    else:
        verdict = GOOD_FIT
        near_ceiling = ceiling is not None and sign * (ceiling - test_score) <= ceiling_tolerance
        if lift <= margin:
            verdict = UNDERFITTING
            reasons.append(
                f"test {test_score:.3f} is not clearly above the dummy baseline "
                f"{dummy_score:.3f} (margin {margin})"
            )
        elif sign * (test_score - underfit_floor) < 0:
            if near_ceiling:
                reasons.append(
                    f"test {test_score:.3f} is under the floor {underfit_floor} but "
                    f"within {ceiling_tolerance} of the ceiling {ceiling:.3f}: the "
                    "data's noise, not the model, limits the score"
                )
            else:
                verdict = UNDERFITTING
                reasons.append(f"test {test_score:.3f} is under the floor {underfit_floor}")
    return {
        "verdict": verdict,
        "train": train_score,
        "test": test_score,
        "gap": gap,
        "lift_over_dummy": lift,
        "reasons": reasons,
        "recommendations": RECOMMENDATIONS[verdict],
    }


def quality_gate(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Pass only if every task's champion beats its baseline by the margin and is not
    flagged OVERFITTING."""
    failures = []
    for check in checks:
        if check["lift_over_dummy"] <= check["margin"]:
            failures.append(
                f"{check['task']} champion {check['model']}: {check['metric']} "
                f"{check['test']:.4f} does not beat the dummy baseline {check['dummy']:.4f} "
                f"by more than {check['margin']}"
            )
        if check["verdict"] == OVERFITTING:
            failures.append(f"{check['task']} champion {check['model']} is OVERFITTING")
    return {"passed": not failures, "failures": failures, "checks": checks}


def _rounded(values: dict[str, float], digits: int = 6) -> dict[str, float]:
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
    return _rounded(flat)


def evaluate_task(
    *,
    task: str,
    primary: str,
    models: dict[str, Any],
    dummy: Any,
    X_train: Any,
    y_train: np.ndarray,
    X_test: Any,
    y_test: np.ndarray,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Metrics with intervals for each model and the dummy, train scores, paired comparison.

    Args:
        models: rank ("champion", "runner_up") -> fitted pipeline.
        dummy: the baseline, already fitted on the train rows.
    """
    classification = task == "classification"

    def outputs(model, X):
        return model.predict_proba(X) if classification else model.predict(X)

    def metrics_of(y, out):
        return classification_metrics(y, out) if classification else regression_metrics(y, out)

    y_test = np.asarray(y_test)
    test_out = {rank: outputs(model, X_test) for rank, model in {**models, "dummy": dummy}.items()}
    scores = {
        rank: score_with_intervals(
            lambda rows, out=out: metrics_of(y_test[rows], out[rows]),
            len(y_test),
            resamples=resamples,
            seed=seed,
            confidence=confidence,
        )
        for rank, out in test_out.items()
    }
    train_scores = {
        rank: _rounded(metrics_of(np.asarray(y_train), outputs(model, X_train)))
        for rank, model in {**models, "dummy": dummy}.items()
    }
    comparison = None
    if "runner_up" in models:

        def primary_of(rank):
            return lambda rows: metrics_of(y_test[rows], test_out[rank][rows])[primary]

        comparison = _rounded(
            paired_difference(
                primary_of("champion"),
                primary_of("runner_up"),
                len(y_test),
                resamples=resamples,
                seed=seed,
                confidence=confidence,
            )
        )
    return {
        "test": scores,
        "train": train_scores,
        "champion_vs_runner_up": comparison,
        "outputs": test_out,
    }


def multiclass_note(classes: list[Any], y_test: np.ndarray) -> str:
    """How multi-class scores are averaged, and which classes the test rows lack."""
    counts = np.bincount(np.asarray(y_test, dtype=int), minlength=len(classes))
    absent = [str(c) for c, n in zip(classes, counts, strict=True) if n == 0]
    rarest = min((n, str(c)) for c, n in zip(classes, counts, strict=True) if n > 0)
    return (
        f"{len(classes)} classes: precision, recall and F1 are macro averages (each class "
        "counts equally), ROC-AUC the macro one-vs-rest average over the classes present "
        f"in the test rows; the rarest, '{rarest[1]}', has {rarest[0]} test rows"
        + (f"; absent from the test rows: {', '.join(absent)}" if absent else "")
        + "."
    )


def grouping_note(group: str, grouping: dict[str, Any]) -> str:
    """The report's sentence on patient-level splitting, with the counts that prove it."""
    split = grouping["split"]
    straddling = split["groups_on_both_sides"] + sum(
        facts["groups"]["groups_on_both_sides"]
        for facts in grouping["cv"].values()
        if "groups" in facts
    )
    folds = ", ".join(
        f"{task}: {facts['folds']} {facts['splitter']} folds"
        for task, facts in grouping["cv"].items()
    )
    verdict = (
        "no patient is scored on rows it was trained on"
        if straddling == 0
        else f"WARNING: {straddling} '{group}' values straddle a split, so scores are inflated"
    )
    return (
        f"Split by '{group}': every row of one '{group}' stays on one side of the train/test "
        f"split ({split['groups']['train']} in train, {split['groups']['test']} in test, "
        f"{split['groups_on_both_sides']} on both) and of every cross-validation fold ({folds}); "
        f"{verdict}. Row-level splits of repeated measures would leak a patient into the test "
        "rows and inflate every score."
    )


def matching_oracle(oracle_path: Path, data_path: str | Path) -> tuple[dict | None, str]:
    """The oracle, only if it describes this very data file, and a note saying which."""
    if not oracle_path.exists():
        return None, "No oracle: there is no known ceiling for this data."
    oracle = json.loads(oracle_path.read_text())
    if oracle.get("data_md5") != file_md5(data_path):
        return None, (
            "No known ceiling: this is not the generated cohort, so the best "
            "achievable score is unknown (the oracle is not compared)."
        )
    return oracle, (
        "Ceiling: the true generating model's scores on the whole generated "
        f"cohort ({oracle['rows']} rows; the test split is a sample of it, so "
        "expect a little sampling noise)."
    )


def ceiling_of(oracle: dict | None, task: str) -> dict | None:
    if oracle is None:
        return None
    return {metric: oracle[key] for key, metric in CEILING_KEYS[task].items() if key in oracle}


def judge_task(
    task: str,
    result: dict[str, Any],
    *,
    primary: str,
    champion_name: str,
    ceiling: dict | None,
    ceiling_note: str,
    overfit_gap: float,
    underfit_floor: float,
    margin: float,
) -> dict[str, Any]:
    """Fit diagnosis per model, the gate check, and the task's block of metrics.json.

    Args:
        result: what `evaluate_task` returned.
    """
    test, train = result["test"], result["train"]
    higher = primary not in LOWER_IS_BETTER
    diagnosis = {
        rank: diagnose(
            train_score=train[rank][primary],
            test_score=test[rank][primary],
            dummy_score=test["dummy"][primary],
            higher_is_better=higher,
            overfit_gap=overfit_gap,
            underfit_floor=underfit_floor,
            margin=margin,
            ceiling=(ceiling or {}).get(primary),
        )
        for rank in test
        if rank != "dummy"
    }
    champion = diagnosis["champion"]
    gate_check = {
        "task": task,
        "model": champion_name,
        "metric": primary,
        "test": champion["test"],
        "dummy": test["dummy"][primary],
        "lift_over_dummy": round(champion["lift_over_dummy"], 6),
        "margin": margin,
        "verdict": champion["verdict"],
    }
    metrics = dict(test)
    if ceiling:
        metrics["ceiling"] = ceiling
        gap = ceiling[primary] - test["champion"][primary]
        metrics["champion_gap_to_ceiling"] = {primary: round(gap, 6)}
        ceiling_note += (
            f" The champion's test {primary} {test['champion'][primary]:.4f} is {gap:.4f} "
            f"{'below' if gap >= 0 else 'above'} the ceiling {ceiling[primary]:.4f}."
        )
    if result["champion_vs_runner_up"]:
        metrics["champion_vs_runner_up"] = result["champion_vs_runner_up"]
    return {
        "diagnosis": diagnosis,
        "gate_check": gate_check,
        "metrics": metrics,
        "ceiling_note": ceiling_note,
    }


def permutation_scores(
    model: Any, X: Any, y: np.ndarray, *, scoring: str, repeats: int, seed: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and spread of the score drop when each raw column is shuffled, largest first."""
    result = permutation_importance(
        model, X, y, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1
    )
    order = np.argsort(-result.importances_mean)
    means = {X.columns[i]: float(result.importances_mean[i]) for i in order}
    errors = {X.columns[i]: float(result.importances_std[i]) for i in order}
    return means, errors
