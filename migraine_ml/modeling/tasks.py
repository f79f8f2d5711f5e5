"""Tuning the model zoo with cross-validation on the train split, and picking the top two.

Every candidate is a whole Pipeline (preprocessor, feature builder, estimator)
so each CV fold refits preprocessing and feature selection on its own training
rows: the validation fold never leaks into imputation, scaling or selection.
The transformers' fits are cached per fold (joblib Memory), so the cost is paid
once per fold, not once per candidate.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Memory
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    RandomizedSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline

from migraine_ml.data.preprocess import group_separation
from migraine_ml.data.schema import Schema
from migraine_ml.modeling.zoo import Subsampled, model_zoo, param_prefix, search_space

logger = logging.getLogger(__name__)


@dataclass
class Candidate:
    """One tuned model: its CV score and the pipeline refitted on all train rows."""

    task: str
    name: str
    scoring: str
    cv_mean: float
    cv_std: float
    params: dict[str, Any]
    fit_seconds: float
    n_iter: int
    pipeline: Pipeline = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What the manifest keeps: no timings, so equal models give equal files."""
        return {
            "task": self.task,
            "name": self.name,
            "scoring": self.scoring,
            "cv_mean": round(self.cv_mean, 6),
            "cv_std": round(self.cv_std, 6),
            "n_iter": self.n_iter,
            "params": self.params,
            "notes": self.notes,
        }


@dataclass
class Task:
    """One learning problem the schema poses: its rows, target, folds and models to tune."""

    name: str  # "classification" or "regression"
    rows: pd.DataFrame
    y: pd.Series
    groups: pd.Series | None
    scoring: str
    class_weight: str | None
    classes: list[Any] | None
    models: dict[str, dict[str, Any]]


def plan_tasks(
    schema: Schema, train: pd.DataFrame, config: dict[str, Any], *, min_class_share: float
) -> list[Task]:
    """A task per target in the schema, set up from params.yaml's `train` block.

    Classes are weighted when `class_weight` is "auto" and the rarest class is
    below `min_class_share`; scoring "auto" is ROC-AUC for two classes and
    macro F1 for more.
    """
    tasks = []
    groups = train[schema.group] if schema.group else None
    target = schema.classification_target
    if target:
        classes = class_labels(train[target], schema.columns[target].values)
        rows, y = task_rows("classification", schema, train, classes)
        weight = config["class_weight"]
        if weight == "auto":
            rare = y.value_counts(normalize=True).min() < min_class_share
            weight = "balanced" if rare else None
        scoring = config["scoring"]["classification"]
        if scoring == "auto":
            scoring = default_scoring("classification", len(classes))
        tasks.append(
            Task("classification", rows, y, groups, scoring, weight, classes, config["classifiers"])
        )
    if schema.regression_target:
        rows, y = task_rows("regression", schema, train)
        task_groups = rows[schema.group] if schema.group else None
        scoring = config["scoring"]["regression"]
        tasks.append(
            Task("regression", rows, y, task_groups, scoring, None, None, config["regressors"])
        )
    return tasks


def default_scoring(task: str, n_classes: int = 2) -> str:
    """ROC-AUC for binary, macro-F1 for multi-class, R² for regression."""
    if task == "regression":
        return "r2"
    return "roc_auc" if n_classes == 2 else "f1_macro"


def class_labels(labels: pd.Series, order: tuple[Any, ...] | None = None) -> list[Any]:
    """The classes present in `labels`; whole-number labels as int (1, not 1.0).

    Text classes follow `order` (the schema's listed values) where given, so the
    last listed value of a two-class target is the positive class ("no", "yes");
    otherwise, and for labels the order does not list, they are sorted.
    """
    values = sorted(labels.dropna().unique().tolist())
    if all(isinstance(v, int | float) and float(v).is_integer() for v in values):
        return [int(v) for v in values]
    present = [str(v) for v in values]
    listed = [str(v) for v in order or () if str(v) in present]
    return listed + [v for v in present if v not in listed]


def encode_labels(labels: pd.Series, classes: list[Any]) -> pd.Series:
    """Class labels as codes 0..k-1 in the order of `classes` (1.0 matches class 1)."""
    codes = labels.map({c: i for i, c in enumerate(classes)})
    if codes.isna().any():
        unknown = sorted(map(str, labels[codes.isna()].unique()))
        raise ValueError(f"labels {unknown} are not among the classes {classes}")
    return codes.astype(int)


def regression_rows(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    """Rows where the regression target is defined (its schema condition holds)."""
    target = schema.regression_target
    mask = frame[target].notna()
    condition = schema.columns[target].condition
    if condition:
        column, wanted = frame[condition["column"]], condition["equals"]
        if isinstance(wanted, int | float) and not isinstance(wanted, bool):
            mask &= pd.to_numeric(column, errors="coerce") == float(wanted)
        else:
            mask &= column.astype(str) == str(wanted)
    return mask


def task_rows(
    task: str, schema: Schema, frame: pd.DataFrame, classes: list[Any] | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """The rows a task learns from and its target: class codes 0..k-1 in the order of
    `classes`, or the regression target as float on the rows where it is defined."""
    if task == "classification":
        return frame, encode_labels(frame[schema.classification_target], classes or [])
    rows = frame[regression_rows(frame, schema)]
    return rows, rows[schema.regression_target].astype(float)


def cv_splitter(task: str, *, folds: int, seed: int, grouped: bool):
    """Folds that stratify classes and, with a group column, keep each group in one fold."""
    if task == "classification":
        if grouped:
            return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if grouped:
        return GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def cv_facts(
    task: str, *, X: pd.DataFrame, y: pd.Series, groups: pd.Series | None, folds: int, seed: int
) -> dict[str, Any]:
    """The folds tuning uses, and (with groups) proof that no group straddles a fold."""
    cv = cv_splitter(task, folds=folds, seed=seed, grouped=groups is not None)
    facts: dict[str, Any] = {"splitter": type(cv).__name__, "folds": folds}
    if groups is not None:
        groups = groups.reset_index(drop=True)
        facts["groups"] = group_separation(groups, cv.split(X, y, groups))
    return facts


def _plain(value: Any) -> Any:
    """numpy scalars to Python, for JSON and MLflow."""
    return value.item() if isinstance(value, np.generic) else value


def tune(
    name: str,
    estimator: Any,
    *,
    task: str,
    steps: list[tuple[str, Any]],
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None,
    space: dict[str, Any],
    n_iter: int,
    folds: int,
    scoring: str,
    seed: int,
    memory: Memory | None,
) -> Candidate:
    """Randomized search over `space` for one estimator; refit the best on all rows."""
    pipeline = Pipeline([*[(n, clone(s)) for n, s in steps], ("model", estimator)], memory=memory)
    # the shared feature builder is fitted for one target: select for this task's
    pipeline.set_params(**{k: task for k in pipeline.get_params() if k.endswith("select__task")})
    distributions = search_space(space, prefix=param_prefix(estimator))
    started = time.perf_counter()
    cv = cv_splitter(task, folds=folds, seed=seed, grouped=groups is not None)
    common = {"scoring": scoring, "cv": cv, "refit": True, "n_jobs": 1, "error_score": "raise"}
    if distributions:
        search = RandomizedSearchCV(
            pipeline, distributions, n_iter=n_iter, random_state=seed, **common
        )
    else:  # nothing to tune (e.g. ordinary least squares): cross-validate once
        search = GridSearchCV(pipeline, {}, **common)
    search.fit(X, y, groups=groups)
    best = search.best_estimator_
    best.memory = None  # the saved pipeline must not point into a temp cache
    i = search.best_index_
    notes = []
    if isinstance(estimator, Subsampled):
        notes.append(
            f"fitted on a stratified subsample of at most {estimator.max_rows} rows "
            f"({best.named_steps['model'].rows_seen_} used) to bound its cost"
        )
    return Candidate(
        task=task,
        name=name,
        scoring=scoring,
        cv_mean=float(search.cv_results_["mean_test_score"][i]),
        cv_std=float(search.cv_results_["std_test_score"][i]),
        params={k.split("__")[-1]: _plain(v) for k, v in search.best_params_.items()},
        fit_seconds=time.perf_counter() - started,
        n_iter=len(search.cv_results_["params"]),
        pipeline=best,
        notes=notes,
    )


def train_zoo(
    task: str,
    *,
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None,
    steps: list[tuple[str, Any]],
    models: dict[str, dict[str, Any]],
    seed: int,
    folds: int,
    scoring: str,
    class_weight: str | None = None,
    max_rows: dict[str, int] | None = None,
    on_done: Callable[[Candidate, int, int], None] | None = None,
) -> list[Candidate]:
    """Tune every model named in `models` (params.yaml's block for this task)."""
    zoo = model_zoo(task, seed=seed, class_weight=class_weight, max_rows=max_rows)
    unknown = sorted(set(models) - set(zoo))
    if unknown:
        raise ValueError(f"{task} models {unknown} are not in the zoo {sorted(zoo)}")
    candidates = []
    with tempfile.TemporaryDirectory(prefix="migraine-cv-cache-") as cache:
        memory = Memory(cache, verbose=0)
        for position, (name, config) in enumerate(models.items(), start=1):
            candidate = tune(
                name,
                zoo[name],
                task=task,
                steps=steps,
                X=X,
                y=y,
                groups=groups,
                space=config.get("space", {}),
                n_iter=config.get("n_iter", 10),
                folds=folds,
                scoring=scoring,
                seed=seed,
                memory=memory,
            )
            candidates.append(candidate)
            if on_done is not None:
                on_done(candidate, position, len(models))
    return candidates


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Best CV score first; ties broken by the smaller spread, then the name."""
    return sorted(candidates, key=lambda c: (-c.cv_mean, c.cv_std, c.name))
