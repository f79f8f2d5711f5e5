"""Feature selection: keep the top columns by a univariate or a model-based score.

The last step of the feature builder (`features.make_feature_builder`); it
learns its choice in fit() from the training rows alone.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import joblib
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


# Scores of recent fits by a hash of their inputs: a search tries several counts and
# pools on the same fold, and scoring (mutual information) costs more than the rest
# of a selection. A pure function of its inputs, so a hit returns the same numbers.
_RECENT_SCORES: OrderedDict[str, np.ndarray] = OrderedDict()
_RECENT_LIMIT = 64


def _selection_scores(X: pd.DataFrame, y: np.ndarray, *, score: str, task: str, seed: int):
    """Scores per column; a constant column scores 0 (the scorers would warn or divide by 0)."""
    key = joblib.hash((X, y, score, task, seed))
    if key in _RECENT_SCORES:
        _RECENT_SCORES.move_to_end(key)
        return _RECENT_SCORES[key].copy()
    scores = _fresh_scores(X, y, score=score, task=task, seed=seed)
    _RECENT_SCORES[key] = scores
    if len(_RECENT_SCORES) > _RECENT_LIMIT:
        _RECENT_SCORES.popitem(last=False)
    return scores.copy()


def _fresh_scores(X: pd.DataFrame, y: np.ndarray, *, score: str, task: str, seed: int):
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


POOLS = ("engineered", "plain")
ALL = "all"


class SelectTop(TransformerMixin, BaseEstimator):
    """Keep the `n_features` best columns by a score computed on the training rows.

    Which columns compete is a hyperparameter too: `pool="plain"` keeps to the
    validated columns (`plain_columns`: imputed, scaled, encoded, nothing
    engineered), `"engineered"` lets the engineered ones in. Cross-validation
    chooses between them, so engineering is used only where it earns its place.

    Args:
        n_features: how many to keep (all if there are fewer), or "all".
        score: "f_test" (ANOVA F / linear F), "mutual_info", or "model"
            (impurity importance of an extra-trees forest).
        task: "classification" or "regression", which picks the score's variant.
        pool: "engineered" (every input column) or "plain" (`plain_columns` only).
        plain_columns: the builder's own input columns, before any engineering.
    """

    def __init__(
        self,
        n_features: int | str = 20,
        *,
        score: str = "mutual_info",
        task: str = "classification",
        seed: int = 0,
        pool: str = "engineered",
        plain_columns: list[str] | None = None,
    ):
        self.n_features = n_features
        self.score = score
        self.task = task
        self.seed = seed
        self.pool = pool
        self.plain_columns = plain_columns

    def _candidates(self, X: pd.DataFrame) -> list[str]:
        if self.pool not in POOLS:
            raise ValueError(f"pool: {self.pool!r} is not one of {POOLS}")
        if self.pool == "engineered":
            return list(X.columns)
        if self.plain_columns is None:
            raise ValueError("pool 'plain' needs plain_columns (the builder's input columns)")
        plain = set(self.plain_columns)
        return [c for c in X.columns if c in plain]

    def fit(self, X: pd.DataFrame, y: Any) -> SelectTop:
        if self.score not in SELECTION_SCORES:
            raise ValueError(f"score: {self.score!r} is not one of {SELECTION_SCORES}")
        if self.n_features != ALL and (isinstance(self.n_features, str) or self.n_features < 1):
            raise ValueError(f"n_features: {self.n_features!r} must be at least 1 or 'all'")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        candidates = self._candidates(X)
        scores = _selection_scores(
            X[candidates], np.asarray(y), score=self.score, task=self.task, seed=self.seed
        )
        self.scores_ = dict(zip(candidates, map(float, scores), strict=True))
        ranked = sorted(candidates, key=lambda c: (-self.scores_[c], c))
        keep = len(ranked) if self.n_features == ALL else self.n_features
        self.selected_ = ranked[:keep]
        self.dropped_ = ranked[keep:] + [c for c in X.columns if c not in self.scores_]
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
