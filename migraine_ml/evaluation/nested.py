"""Small-data evaluation: repeated cross-validation over all rows, tuning inside each fold.

Below `evaluate.cv_below` rows, a held-out fifth of the data is a few dozen
rows: its interval is too wide to tell models apart and the gate's verdict
would rest on a handful of patients. So every row is used for testing once per
repeat: each outer fold reruns the whole training procedure on its training
rows (every model's search, the reference model, picking the champion by inner
cross-validation) and scores what it picked on rows it never saw, so model
selection does not flatter the estimate. Folds are stratified, and group-aware
where the schema has a group.

Intervals use the corrected resampled t (Nadeau & Bengio, 2003): the folds
share training rows, so the plain variance of the fold scores understates the
uncertainty; the correction scales it by (1/J + n_test/n_train).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from migraine_ml.evaluation.metrics import (
    PairedDifference,
    baseline,
    rounded,
    task_metrics,
)
from migraine_ml.modeling.plan import Task, TrainConfig, tune_task
from migraine_ml.modeling.tuning import cv_splitter, rank
from migraine_ml.pipeline import CHAMPION, REFERENCE

logger = logging.getLogger(__name__)

SCORED = (CHAMPION, REFERENCE, "dummy")


@dataclass(frozen=True)
class CvEstimate:
    """The procedure's scores over the outer folds, in the shape the evaluation reads."""

    test: dict[str, dict[str, float]]  # rank -> mean metrics with <name>_ci_low/_ci_high
    train: dict[str, dict[str, float]]  # rank -> mean metrics on the outer training rows
    champion_vs_reference: PairedDifference
    outputs: dict[str, np.ndarray]  # rank -> out-of-fold outputs of the first repeat
    y: np.ndarray  # the labels those outputs are for
    champions: dict[str, int]  # model name -> outer folds where the procedure picked it
    folds: int
    repeats: int

    def describe(self) -> str:
        picked = ", ".join(f"{name} {n}×" for name, n in self.champions.items())
        return (
            f"{self.repeats} × {self.folds}-fold cross-validation over all {len(self.y)} rows, "
            f"the whole tuning inside each fold (champion picked per fold: {picked})"
        )


def corrected_interval(
    values: np.ndarray, *, test_share: float, confidence: float
) -> tuple[float, float]:
    """Mean ± t·sd with the resampled-CV variance correction (1/J + n_test/n_train)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean
    variance = (1 / len(values) + test_share / (1 - test_share)) * np.var(values, ddof=1)
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * np.sqrt(variance)
    return mean - half, mean + half


def _aligned(model: Any, X: Any, n_classes: int) -> np.ndarray:
    """Class probabilities in columns 0..k-1 even when a fold's training rows lack a class."""
    proba = model.predict_proba(X)
    out = np.zeros((len(proba), n_classes))
    out[:, np.asarray(model.classes_, dtype=int)] = proba
    return out


class TooFewRows(ValueError):
    """A class has too few rows (or patients) for the outer and inner folds."""


def check_class_sizes(
    y: pd.Series,
    groups: pd.Series | None,
    classes: list[Any],
    splits: list[tuple[np.ndarray, np.ndarray]],
    *,
    inner_folds: int,
) -> None:
    """Every outer fold's training rows must hold every class often enough for the inner
    folds to keep it in each of their training parts (`inner_folds` rows, or 2 patients
    with groups). Otherwise a fold's model never sees the class and fails cryptically
    (XGBoost: "Invalid classes inferred"); this says which class, before any fitting."""
    unit, needed = ("patients", 2) if groups is not None else ("rows", inner_folds)
    for inside, _ in splits:
        rows = y.iloc[inside]
        members = (  # patients with a row of the class, or rows
            groups.iloc[inside].groupby(rows).nunique()
            if groups is not None
            else rows.value_counts()
        )
        for code, name in enumerate(classes):
            count = int(members.get(code, 0))
            if count < needed:
                total = groups[y == code].nunique() if groups is not None else (y == code).sum()
                raise TooFewRows(
                    f"class '{name}' has {int(total)} {unit}; an outer fold's "
                    f"training part keeps {count}, fewer than the {needed} the "
                    f"{inner_folds} inner folds need: lower evaluate.cv_folds, or set "
                    "evaluate.cv_below: 0 to use the held-out split"
                )


def repeated_cv_estimate(
    task: Task,
    *,
    features: list[str],
    preprocessor: Any,
    builder: Any,
    config: TrainConfig,
    folds: int,
    repeats: int,
    confidence: float,
    primary: str,
) -> CvEstimate:
    """Score the whole training procedure of `task` by repeated outer cross-validation."""
    data = task.data
    X, y = data.rows[features].reset_index(drop=True), data.y.reset_index(drop=True)
    groups = None if data.groups is None else data.groups.reset_index(drop=True)
    classification = data.classes is not None
    n_classes = len(data.classes or ())
    splits = [
        (inside, outside)
        for repeat in range(repeats)
        for inside, outside in cv_splitter(
            task.name, folds=folds, seed=config.seed + repeat, grouped=groups is not None
        ).split(X, y, groups)
    ]
    if classification:
        check_class_sizes(y, groups, data.classes, splits, inner_folds=config.cv_folds)

    def outputs(model: Any, rows: Any) -> np.ndarray:
        if classification:
            return _aligned(model, rows, n_classes)
        return np.asarray(model.predict(rows), dtype=float)  # XGBoost's float32 too

    def metrics_of(truth: np.ndarray, out: np.ndarray) -> dict[str, float]:
        return task_metrics(truth, out, classification=classification)

    test: dict[str, list[dict[str, float]]] = {r: [] for r in SCORED}
    train: dict[str, list[dict[str, float]]] = {r: [] for r in SCORED}
    first_repeat: dict[str, np.ndarray] = {}
    picked: Counter[str] = Counter()
    test_share = 1 / folds
    for number, (inside, outside) in enumerate(splits):
        first = number < folds  # the first repeat's out-of-fold outputs feed the plots
        ranked = rank(
            tune_task(
                task,
                X=X.iloc[inside],
                y=y.iloc[inside],
                groups=None if groups is None else groups.iloc[inside],
                preprocessor=preprocessor,
                builder=builder,
                config=config,
            )
        )
        models = {
            "champion": ranked[0].pipeline,
            REFERENCE: next(c for c in ranked if c.name == REFERENCE).pipeline,
            "dummy": baseline(classification=classification).fit(X.iloc[inside], y.iloc[inside]),
        }
        picked[ranked[0].name] += 1
        for name, model in models.items():
            out = outputs(model, X.iloc[outside])
            test[name].append(metrics_of(y.to_numpy()[outside], out))
            train[name].append(metrics_of(y.to_numpy()[inside], outputs(model, X.iloc[inside])))
            if first:
                if name not in first_repeat:
                    shape = (len(y), n_classes) if classification else (len(y),)
                    first_repeat[name] = np.zeros(shape)
                first_repeat[name][outside] = out
        logger.info(
            "%s: outer fold %d/%d picked %s: %s=%.4f (reference %.4f)",
            task.name,
            number + 1,
            len(splits),
            ranked[0].name,
            primary,
            test["champion"][-1][primary],
            test[REFERENCE][-1][primary],
        )
    summary = {}
    for name, runs in test.items():
        flat = {}
        for metric in runs[0]:
            values = np.array([r[metric] for r in runs])
            low, high = corrected_interval(values, test_share=test_share, confidence=confidence)
            flat |= {
                metric: float(np.nanmean(values)),
                f"{metric}_ci_low": low,
                f"{metric}_ci_high": high,
            }
        summary[name] = rounded(flat)
    differences = np.array(
        [c[primary] - r[primary] for c, r in zip(test["champion"], test[REFERENCE], strict=True)]
    )
    low, high = corrected_interval(differences, test_share=test_share, confidence=confidence)
    comparison = PairedDifference(
        difference=float(np.nanmean(differences)),
        ci_low=low,
        ci_high=high,
        share_not_better=float(np.mean(differences <= 0)),
    ).rounded()
    means = {
        name: rounded({m: float(np.nanmean([r[m] for r in runs])) for m in runs[0]})
        for name, runs in train.items()
    }
    return CvEstimate(
        test=summary,
        train=means,
        champion_vs_reference=comparison,
        outputs=first_repeat,
        y=y.to_numpy(),
        champions=dict(picked.most_common()),
        folds=folds,
        repeats=repeats,
    )
