"""Feature selection: keep the top columns by a univariate or a model-based score.

The last step of the feature builder (`features.make_feature_builder`); it
learns its choice in fit() from the training rows alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import (
    f_classif,
    f_regression,
    mutual_info_classif,
    mutual_info_regression,
)
from sklearn.utils.validation import check_is_fitted

SELECTION_SCORES = ("f_test", "mutual_info", "model")


def _selection_scores(X: pd.DataFrame, y: np.ndarray, *, score: str, task: str, seed: int):
    """Scores per column; a constant column scores 0 (the scorers would warn or divide by 0)."""
    varying = (X.nunique() > 1).to_numpy()
    scores = np.zeros(X.shape[1])
    if varying.any():
        scores[varying] = _scores(X.loc[:, varying], y, score=score, task=task, seed=seed)
    return scores


def _scores(X: pd.DataFrame, y: np.ndarray, *, score: str, task: str, seed: int):
    classification = task == "classification"
    if score == "f_test":
        values, _ = (f_classif if classification else f_regression)(X, y)
        return np.nan_to_num(values)
    if score == "mutual_info":
        scorer = mutual_info_classif if classification else mutual_info_regression
        # The k-NN estimator is meant for continuous columns; on a 0/1 column it
        # returns noise around zero, so count those as discrete.
        discrete = np.array([X[c].isin([0, 1]).all() for c in X.columns])
        return scorer(X, y, discrete_features=discrete, random_state=seed)
    forest = (ExtraTreesClassifier if classification else ExtraTreesRegressor)(
        n_estimators=200, min_samples_leaf=5, random_state=seed, n_jobs=1
    )
    return forest.fit(X, y).feature_importances_


class SelectTop(TransformerMixin, BaseEstimator):
    """Keep the `n_features` best columns by a score computed on the training rows.

    Args:
        n_features: how many to keep (all if there are fewer).
        score: "f_test" (ANOVA F / linear F), "mutual_info", or "model"
            (impurity importance of an extra-trees forest).
        task: "classification" or "regression", which picks the score's variant.
    """

    def __init__(
        self,
        n_features: int = 20,
        *,
        score: str = "mutual_info",
        task: str = "classification",
        seed: int = 0,
    ):
        self.n_features = n_features
        self.score = score
        self.task = task
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any) -> SelectTop:
        if self.score not in SELECTION_SCORES:
            raise ValueError(f"score: {self.score!r} is not one of {SELECTION_SCORES}")
        if self.n_features < 1:
            raise ValueError(f"n_features: {self.n_features} must be at least 1")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        scores = _selection_scores(
            X, np.asarray(y), score=self.score, task=self.task, seed=self.seed
        )
        self.scores_ = dict(zip(X.columns, map(float, scores), strict=True))
        ranked = sorted(X.columns, key=lambda c: (-self.scores_[c], c))
        self.selected_ = ranked[: self.n_features]
        self.dropped_ = ranked[self.n_features :]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "selected_")
        return X[self.selected_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "selected_")
        return np.asarray(self.selected_, dtype=object)

    def replay_selection(self, names: list[str]) -> list[int]:
        """Positions of the kept columns among `names` (the fast path's last step)."""
        return [names.index(c) for c in self.selected_]
