"""Tuning the model zoo with cross-validation on the train split, and ranking it.

Every candidate is a whole Pipeline (preprocessor, feature builder, estimator)
so each CV fold refits preprocessing and feature selection on its own training
rows: the validation fold never leaks into imputation, scaling or selection.
The transformers' fits are cached per fold (joblib Memory), so the cost is paid
once per fold, not once per candidate.
"""

from __future__ import annotations

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
    ParameterGrid,
    ParameterSampler,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline

from migraine_ml.data.preprocess import group_separation
from migraine_ml.modeling.selection import ALL
from migraine_ml.modeling.zoo import (
    Budget,
    FitSize,
    Subsampled,
    model_zoo,
    param_prefix,
    reference_model,
    search_space,
)
from migraine_ml.pipeline import FEATURES, MODEL, REFERENCE, SELECT, served_pipeline

# The reference model sees the validated columns alone, every one of them.
REFERENCE_FEATURES = {"pool": "plain", "n_features": ALL}


@dataclass(frozen=True)
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
    features: dict[str, Any] = field(default_factory=dict)  # the selection it chose
    space: dict[str, Any] = field(default_factory=dict)  # data-sized ranges as resolved

    def progress(self) -> str:
        """One line for the training log."""
        return (
            f"{self.name:<20} cv {self.scoring}={self.cv_mean:.4f} ± {self.cv_std:.4f}"
            f"  ({self.fit_seconds:.1f} s)"
        )

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
            "features": self.features,
            "space": self.space,
            "notes": self.notes,
        }


def cv_splitter(task: str, *, folds: int, seed: int, grouped: bool):
    """Folds that stratify classes and, with a group column, keep each group in one fold."""
    if task == "classification":
        if grouped:
            return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if grouped:
        return GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


@dataclass(frozen=True)
class CvFacts:
    """The folds tuning uses, and (with groups) proof that no group straddles a fold."""

    splitter: str
    folds: int
    groups: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"splitter": self.splitter, "folds": self.folds}
        if self.groups is not None:
            facts["groups"] = self.groups
        return facts


def cv_facts(
    task: str, *, X: pd.DataFrame, y: pd.Series, groups: pd.Series | None, folds: int, seed: int
) -> CvFacts:
    cv = cv_splitter(task, folds=folds, seed=seed, grouped=groups is not None)
    separation = None
    if groups is not None:
        groups = groups.reset_index(drop=True)
        separation = group_separation(groups, cv.split(X, y, groups))
    return CvFacts(type(cv).__name__, folds, separation)


def _plain(value: Any) -> Any:
    """numpy scalars to Python, for JSON and MLflow."""
    return value.item() if isinstance(value, np.generic) else value


def fit_size(estimator: Any, y: pd.Series, *, task: str, folds: int) -> FitSize:
    """Rows (and the smallest class's rows) one fit of a `folds`-fold search sees."""
    seen = len(y) * (folds - 1) / folds
    rows = int(seen)
    if isinstance(estimator, Subsampled):
        rows = min(rows, estimator.max_rows)  # a stratified subsample keeps the shares
    if task != "classification":
        return FitSize(rows)
    return FitSize(rows, max(1, int(y.value_counts().min() * rows / len(y))))


def draws(
    model_space: dict[str, Any], feature_choices: dict[str, list[Any]], *, n_iter: int, seed: int
) -> list[dict[str, list[Any]]]:
    """The candidates a search tries, as one-point grids for GridSearchCV.

    `n_iter` random draws of the model's own space (a space of lists alone is
    tried without repeats), each paired with a combination of the selection's
    choices in turn, and at least one draw per combination: every feature pool
    and count is tried, so cross-validation, not the luck of the draw, decides
    whether engineering earns its place.
    """
    combinations = list(ParameterGrid(feature_choices)) if feature_choices else [{}]
    if model_space and all(isinstance(v, list) for v in model_space.values()):
        n_iter = min(n_iter, len(ParameterGrid(model_space)))
    count = max(n_iter, len(combinations)) if model_space else len(combinations)
    sampled = (
        list(ParameterSampler(model_space, n_iter=min(n_iter, count), random_state=seed))
        if model_space
        else [{}]
    )
    return [
        {
            k: [v]
            for k, v in (sampled[i % len(sampled)] | combinations[i % len(combinations)]).items()
        }
        for i in range(count)
    ]


def tune(
    name: str,
    estimator: Any,
    *,
    task: str,
    preprocessor: Any,
    builder: Any,
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None,
    space: dict[str, Any],
    n_iter: int,
    folds: int,
    scoring: str,
    seed: int,
    memory: Memory | None,
    feature_search: dict[str, list[Any]] | None = None,
    features: dict[str, Any] | None = None,
) -> Candidate:
    """Randomized search over `space` (and the selection's `feature_search`) for one
    estimator; refit the best on all rows.

    Args:
        feature_search: the selection step's choices (`FeatureConfig.search`).
        features: the selection step's settings fixed instead (the reference model's).
    """
    pipeline = served_pipeline(clone(preprocessor), clone(builder), estimator, memory=memory)
    # the shared feature builder is fitted for one target: select for this task's
    selection = f"{FEATURES}__{SELECT}__"
    pipeline.set_params(**{f"{selection}task": task})
    pipeline.set_params(**{selection + k: v for k, v in (features or {}).items()})
    distributions, resolved = search_space(
        space,
        prefix=param_prefix(estimator),
        size=fit_size(estimator, y, task=task, folds=folds),
    )
    choices = {selection + k: list(v) for k, v in (feature_search or {}).items()}
    started = time.perf_counter()
    cv = cv_splitter(task, folds=folds, seed=seed, grouped=groups is not None)
    grid = draws(distributions, choices, n_iter=n_iter, seed=seed)
    search = GridSearchCV(
        pipeline, grid, scoring=scoring, cv=cv, refit=True, n_jobs=1, error_score="raise"
    )
    search.fit(X, y, groups=groups)
    best = search.best_estimator_
    best.memory = None  # the saved pipeline must not point into a temp cache
    i = search.best_index_
    notes = []
    if isinstance(estimator, Subsampled):
        notes.append(
            f"fitted on a stratified subsample of at most {estimator.max_rows} rows "
            f"({best.named_steps[MODEL].rows_seen_} used) to bound its cost"
        )
    select = best.named_steps[FEATURES].named_steps[SELECT]
    return Candidate(
        task=task,
        name=name,
        scoring=scoring,
        cv_mean=float(search.cv_results_["mean_test_score"][i]),
        cv_std=float(search.cv_results_["std_test_score"][i]),
        params={
            k.split("__")[-1]: _plain(v)
            for k, v in search.best_params_.items()
            if not k.startswith(selection)  # the selection's choice is in `features`
        },
        fit_seconds=time.perf_counter() - started,
        n_iter=len(search.cv_results_["params"]),
        pipeline=best,
        notes=notes,
        features={"pool": select.pool, "n_features": len(select.selected_)},
        space=resolved,
    )


def with_plain_columns(builder: Any, preprocessor: Any, X: pd.DataFrame) -> Any:
    """The builder, told which of its input columns are the validated ones (the
    preprocessor's outputs), so that selection can keep to them (pool "plain")."""
    select = builder.named_steps[SELECT]
    if select.plain_columns is not None:
        return builder
    plain = clone(preprocessor).fit(X).get_feature_names_out()
    return clone(builder).set_params(**{f"{SELECT}__plain_columns": list(plain)})


def train_zoo(
    task: str,
    *,
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None,
    preprocessor: Any,
    builder: Any,
    models: dict[str, dict[str, Any]],
    seed: int,
    folds: int,
    scoring: str,
    class_weight: str | None = None,
    max_rows: dict[str, int] | None = None,
    feature_search: dict[str, list[Any]] | None = None,
    budget: dict[str, int] | None = None,
    on_done: Callable[[Candidate, int, int], None] | None = None,
) -> list[Candidate]:
    """Tune every model named in `models` (params.yaml's block for this task), then
    cross-validate the reference model (`zoo.reference_model`) on the same folds."""
    classes = y.nunique() if task == "classification" else 1
    budget = Budget(rows=len(y), n_classes=classes, **(budget or {}))
    zoo = model_zoo(task, seed=seed, class_weight=class_weight, max_rows=max_rows, budget=budget)
    unknown = sorted(set(models) - set(zoo))
    if unknown:
        raise ValueError(f"{task} models {unknown} are not in the zoo {sorted(zoo)}")
    builder = with_plain_columns(builder, preprocessor, X)
    plan = [
        (name, zoo[name], config.get("space", {}), config.get("n_iter", 10), feature_search, None)
        for name, config in models.items()
    ]
    plan.append((REFERENCE, reference_model(task), {}, 1, None, REFERENCE_FEATURES))
    candidates = []
    with tempfile.TemporaryDirectory(prefix="migraine-cv-cache-") as cache:
        memory = Memory(cache, verbose=0)
        for position, (name, estimator, space, n_iter, search, fixed) in enumerate(plan, 1):
            candidate = tune(
                name,
                estimator,
                task=task,
                preprocessor=preprocessor,
                builder=builder,
                X=X,
                y=y,
                groups=groups,
                space=space,
                n_iter=n_iter,
                folds=folds,
                scoring=scoring,
                seed=seed,
                memory=memory,
                feature_search=search,
                features=fixed,
            )
            candidates.append(candidate)
            if on_done is not None:
                on_done(candidate, position, len(plan))
    return candidates


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Best CV score first; ties broken by the smaller spread, then the name."""
    return sorted(candidates, key=lambda c: (-c.cv_mean, c.cv_std, c.name))
