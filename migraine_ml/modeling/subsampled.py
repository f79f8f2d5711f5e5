"""An estimator wrapper the saved pipelines may contain: fit on a bounded subsample.

Kept apart from the zoo: the service loads pipelines holding it, and must not
import the zoo (training code) to do so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted


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
