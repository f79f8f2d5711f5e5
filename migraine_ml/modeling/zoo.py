"""The model zoo: eight classifiers, eight regressors, and their search spaces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier, XGBRegressor

from migraine_ml.pipeline import MODEL

N_JOBS = 2  # this machine's cores; the search itself runs sequentially


class Subsampled(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Fit the wrapped classifier on at most `max_rows` stratified rows.

    Kernel SVMs cost O(n^2..n^3) to fit and KNN O(n) per prediction, so their
    cost is bounded by subsampling the training rows; the manifest says so.
    """

    def __init__(self, estimator: Any = None, *, max_rows: int = 2000, seed: int = 0):
        self.estimator = estimator
        self.max_rows = max_rows
        self.seed = seed

    def fit(self, X: Any, y: Any) -> Subsampled:
        y = np.asarray(y)
        self.rows_seen_ = min(len(y), self.max_rows)
        if len(y) > self.max_rows:
            X, _, y, _ = train_test_split(
                X, y, train_size=self.max_rows, stratify=y, random_state=self.seed
            )
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)


def _classifiers(seed: int, class_weight: str | None, max_rows: dict[str, int]):
    return {
        "logistic_regression": LogisticRegression(max_iter=2000, class_weight=class_weight),
        "random_forest": RandomForestClassifier(
            n_estimators=200, class_weight=class_weight, random_state=seed, n_jobs=N_JOBS
        ),
        "gradient_boosting": GradientBoostingClassifier(random_state=seed),
        "xgboost": XGBClassifier(
            n_estimators=300, tree_method="hist", random_state=seed, n_jobs=N_JOBS, verbosity=0
        ),
        "lightgbm": LGBMClassifier(
            n_estimators=300,
            class_weight=class_weight,
            random_state=seed,
            n_jobs=N_JOBS,
            verbose=-1,
        ),
        "svm": Subsampled(
            # Platt scaling on held-out folds: SVC(probability=True) is deprecated.
            CalibratedClassifierCV(
                SVC(class_weight=class_weight, random_state=seed), ensemble=False, cv=3
            ),
            max_rows=max_rows.get("svm", 2000),
            seed=seed,
        ),
        "knn": Subsampled(KNeighborsClassifier(), max_rows=max_rows.get("knn", 5000), seed=seed),
        "naive_bayes": GaussianNB(),
    }


def _regressors(seed: int):
    return {
        "linear": LinearRegression(),
        "ridge": Ridge(random_state=seed),
        "lasso": Lasso(random_state=seed, max_iter=5000),
        "elastic_net": ElasticNet(random_state=seed, max_iter=5000),
        "random_forest": RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=N_JOBS),
        "gradient_boosting": GradientBoostingRegressor(random_state=seed),
        "xgboost": XGBRegressor(
            n_estimators=300, tree_method="hist", random_state=seed, n_jobs=N_JOBS, verbosity=0
        ),
        "lightgbm": LGBMRegressor(n_estimators=300, random_state=seed, n_jobs=N_JOBS, verbose=-1),
    }


def model_zoo(
    task: str,
    *,
    seed: int,
    class_weight: str | None = None,
    max_rows: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Unfitted estimators by name for "classification" or "regression"."""
    if task == "classification":
        return _classifiers(seed, class_weight, max_rows or {})
    if task == "regression":
        return _regressors(seed)
    raise ValueError(f"task: {task!r} is not 'classification' or 'regression'")


DISTRIBUTIONS: dict[str, Callable[..., Any]] = {
    "loguniform": stats.loguniform,
    "uniform": lambda low, high: stats.uniform(low, high - low),
    "randint": lambda low, high: stats.randint(low, high + 1),
}


def search_space(spec: dict[str, Any], *, prefix: str) -> dict[str, Any]:
    """Turn a params.yaml search space into scikit-learn's param_distributions.

    A list is a choice among its values; `{loguniform: [a, b]}`, `{uniform: [a, b]}`
    and `{randint: [a, b]}` (both ends included) are distributions.
    """
    space = {}
    for name, values in (spec or {}).items():
        if isinstance(values, list):
            if not values:
                raise ValueError(f"search space '{name}': empty list of choices")
            space[prefix + name] = values
        elif isinstance(values, dict) and len(values) == 1:
            ((kind, bounds),) = values.items()
            if kind not in DISTRIBUTIONS:
                raise ValueError(
                    f"search space '{name}': {kind!r} is not one of {sorted(DISTRIBUTIONS)}"
                )
            space[prefix + name] = DISTRIBUTIONS[kind](*bounds)
        else:
            raise ValueError(
                f"search space '{name}': expected a list of choices or "
                f"{{distribution: [low, high]}}, got {values!r}"
            )
    return space


def param_prefix(estimator: Any, step: str = MODEL) -> str:
    """Where the innermost estimator's own params live inside the pipeline."""
    prefix = f"{step}__"
    while isinstance(estimator, Subsampled | CalibratedClassifierCV):
        prefix += "estimator__"
        estimator = estimator.estimator
    return prefix
