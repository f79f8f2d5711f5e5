"""The model zoo: eight classifiers, eight regressors, and their search spaces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightgbm import LGBMClassifier, LGBMRegressor
from scipy import stats
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from xgboost import XGBClassifier, XGBRegressor

from migraine_ml.modeling.subsampled import Subsampled
from migraine_ml.pipeline import MODEL

N_JOBS = 2  # this machine's cores; the search itself runs sequentially


@dataclass(frozen=True)
class Budget:
    """What bounds the zoo's cost on this data.

    Boosting fits one tree per class and round on more than two classes, so the
    rounds shrink with the classes to keep the trees per fit at `max_trees`
    (and at most `rounds`; gradient boosting too, and it stops early); below
    `threads_from_rows` rows a second thread costs
    more than it saves (thread start-up per tree).
    """

    rows: int = 0
    n_classes: int = 2
    max_trees: int = 600
    rounds: int = 300
    threads_from_rows: int = 5000

    @property
    def n_estimators(self) -> int:
        per_round = self.n_classes if self.n_classes > 2 else 1
        return max(1, min(self.rounds, self.max_trees // per_round))

    @property
    def n_jobs(self) -> int:
        return N_JOBS if self.rows >= self.threads_from_rows else 1


def _classifiers(seed: int, class_weight: str | None, max_rows: dict[str, int], budget: Budget):
    n_jobs, n_estimators = budget.n_jobs, budget.n_estimators
    return {
        "logistic_regression": LogisticRegression(max_iter=2000, class_weight=class_weight),
        "random_forest": RandomForestClassifier(
            n_estimators=200, class_weight=class_weight, random_state=seed, n_jobs=n_jobs
        ),
        # at most the budget's rounds; stops when 10 in a row do not improve on a 10 %
        # validation share
        "gradient_boosting": GradientBoostingClassifier(
            n_estimators=n_estimators, n_iter_no_change=10, random_state=seed
        ),
        "xgboost": XGBClassifier(
            n_estimators=n_estimators,
            tree_method="hist",
            random_state=seed,
            n_jobs=n_jobs,
            verbosity=0,
        ),
        "lightgbm": LGBMClassifier(
            n_estimators=n_estimators,
            class_weight=class_weight,
            random_state=seed,
            n_jobs=n_jobs,
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


def _regressors(seed: int, budget: Budget):
    n_jobs, n_estimators = budget.n_jobs, budget.n_estimators
    return {
        "linear": LinearRegression(),
        "ridge": Ridge(random_state=seed),
        "lasso": Lasso(random_state=seed, max_iter=5000),
        "elastic_net": ElasticNet(random_state=seed, max_iter=5000),
        "random_forest": RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=n_jobs),
        "gradient_boosting": GradientBoostingRegressor(
            n_estimators=n_estimators, n_iter_no_change=10, random_state=seed
        ),
        "xgboost": XGBRegressor(
            n_estimators=n_estimators,
            tree_method="hist",
            random_state=seed,
            n_jobs=n_jobs,
            verbosity=0,
        ),
        "lightgbm": LGBMRegressor(
            n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs, verbose=-1
        ),
    }


def reference_model(task: str) -> Any:
    """What a researcher fits first: a default logistic (or linear) regression. Trained on
    the validated columns alone (imputed, scaled, encoded), it sits in every leaderboard
    and evaluation as the model the zoo has to beat."""
    if task == "classification":
        return LogisticRegression(max_iter=2000)
    return LinearRegression()


def model_zoo(
    task: str,
    *,
    seed: int,
    class_weight: str | None = None,
    max_rows: dict[str, int] | None = None,
    budget: Budget | None = None,
) -> dict[str, Any]:
    """Unfitted estimators by name for "classification" or "regression"."""
    budget = budget or Budget()
    if task == "classification":
        return _classifiers(seed, class_weight, max_rows or {}, budget)
    if task == "regression":
        return _regressors(seed, budget)
    raise ValueError(f"task: {task!r} is not 'classification' or 'regression'")


DISTRIBUTIONS: dict[str, Callable[..., Any]] = {
    "loguniform": stats.loguniform,
    "uniform": lambda low, high: stats.uniform(low, high - low),
    "randint": lambda low, high: stats.randint(low, high + 1),
}


@dataclass(frozen=True)
class FitSize:
    """How many rows one fit of a search sees, for spaces sized by the data."""

    rows: int
    smallest_class: int | None = None  # None for regression

    def scaled(self, low: float, high: float) -> tuple[int, int]:
        """Whole numbers from fractions of the rows; never above the smallest class
        (a neighbourhood or leaf bigger than a class cannot learn it)."""
        cap = self.smallest_class or self.rows
        first = max(1, round(low * self.rows))
        return min(first, cap), max(min(first, cap), min(round(high * self.rows), cap))


def search_space(
    spec: dict[str, Any], *, prefix: str, size: FitSize | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Turn a params.yaml search space into scikit-learn's param_distributions.

    A list is a choice among its values; `{loguniform: [a, b]}`, `{uniform: [a, b]}`
    and `{randint: [a, b]}` (both ends included) are distributions;
    `{randint_rows: [f, g]}` is `randint` between the fractions f and g of the
    rows a fit sees, capped by the smallest class (`FitSize.scaled`).

    Returns the distributions and, for the manifest, each data-sized range as
    resolved.
    """
    space, resolved = {}, {}
    for name, values in (spec or {}).items():
        if isinstance(values, dict) and set(values) == {"randint_rows"}:
            if size is None:
                raise ValueError(f"search space '{name}': randint_rows needs the fit size")
            fractions = values["randint_rows"]
            if not (len(fractions) == 2 and 0 < fractions[0] <= fractions[1] <= 1):
                raise ValueError(
                    f"search space '{name}': randint_rows takes two fractions of the rows, "
                    f"0 < low <= high <= 1, got {fractions!r}"
                )
            low, high = size.scaled(*fractions)
            space[prefix + name] = stats.randint(low, high + 1)
            resolved[name] = [low, high]
            continue
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
    return space, resolved


def param_prefix(estimator: Any, step: str = MODEL) -> str:
    """Where the innermost estimator's own params live inside the pipeline."""
    prefix = f"{step}__"
    while isinstance(estimator, Subsampled | CalibratedClassifierCV):
        prefix += "estimator__"
        estimator = estimator.estimator
    return prefix
