"""numpy replays of the fitted estimators the fast path serves, keyed by type.

Each compiler reads a fitted estimator's public attributes (tree arrays,
coefficients, the booster's own predictor) and returns a function from the
model's input matrix to class probabilities (classifiers) or predictions
(regressors). `ESTIMATORS` lists them: adding an estimator is one entry.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor
from scipy.special import expit, softmax
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from xgboost import XGBClassifier, XGBRegressor


class Unsupported(ValueError):
    """The pipeline has a step the fast path cannot replay."""


class _TreeEnsemble:
    """Vectorised traversal of scikit-learn trees, all nodes in flat arrays.

    Node ids are global (tree offset + node), so each level of the descent is a
    few 1-d gathers: a node's feature, its threshold, then its child. A leaf is
    its own child, so every row takes exactly `depth` steps.
    """

    def __init__(self, trees: list[Any], value_of: Callable[[Any], np.ndarray]):
        offsets = np.cumsum([0] + [t.node_count for t in trees])
        self.roots = offsets[:-1].astype(np.intp)
        total = int(offsets[-1])
        self.feature = np.zeros(total, dtype=np.intp)
        self.threshold = np.full(total, np.inf)
        # children interleaved as (right, left): 2 * node + (x <= threshold) picks one,
        # and NaN (never <= anything) goes right, as in the array layout before
        self.child = np.zeros(2 * total, dtype=np.intp)
        self.value = np.zeros((total, value_of(trees[0]).shape[1]))
        for tree, start in zip(trees, self.roots, strict=True):
            nodes = slice(start, start + tree.node_count)
            leaf = tree.children_left == -1
            own = np.arange(start, start + tree.node_count)
            self.feature[nodes] = np.where(leaf, 0, tree.feature)
            self.threshold[nodes] = np.where(leaf, np.inf, tree.threshold)
            self.child[2 * start : 2 * (start + tree.node_count) : 2] = np.where(
                leaf, own, start + tree.children_right
            )
            self.child[2 * start + 1 : 2 * (start + tree.node_count) : 2] = np.where(
                leaf, own, start + tree.children_left
            )
            self.value[nodes] = value_of(tree)
        self.depth = max(t.max_depth for t in trees)

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees, outputs) leaf values; X compared in float32 as sklearn does."""
        X = X.astype(np.float32, order="C").astype(np.float64)
        row_start = (np.arange(len(X)) * X.shape[1])[:, None]
        flat = X.ravel()
        # the roots broadcast against the rows in the first step (np.broadcast_to is a
        # Python function, a measurable share of one record's descent)
        node = self.roots
        for _ in range(self.depth):
            go_left = flat[row_start + self.feature[node]] <= self.threshold[node]
            node = self.child[2 * node + go_left]
        if node.ndim == 1:  # stumps of depth 0: no step was taken
            node = np.broadcast_to(node, (len(X), len(node)))
        return self.value[node]


def _two_classes(positive: np.ndarray) -> np.ndarray:
    """P(negative), P(positive) as two columns, from P(positive)."""
    out = np.empty((len(positive), 2))
    out[:, 1] = positive
    np.subtract(1, positive, out=out[:, 0])
    return out


def _gradient_boosting(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    if getattr(model, "init_", None) == "zero":
        raise Unsupported("gradient boosting with init='zero'")
    trees = [t.tree_ for t in model.estimators_.ravel()]
    per_stage = model.estimators_.shape[1]
    ensemble = _TreeEnsemble(trees, lambda t: t.value[:, 0, :])
    rate = model.learning_rate
    classifier = isinstance(model, GradientBoostingClassifier)
    # The initial raw score is a constant; public API gives it as the whole raw score
    # of any row minus the trees' share (scikit-learn's own _raw_predict_init is private).
    row = np.zeros((1, model.n_features_in_))
    with warnings.catch_warnings():  # a plain array where names were fitted: expected
        warnings.simplefilter("ignore", UserWarning)
        whole = model.decision_function(row) if classifier else model.predict(row)
    trees_share = ensemble.leaf_values(row)[:, :, 0].reshape(1, -1, per_stage).sum(axis=1)
    init = np.asarray(whole, dtype=float).reshape(1, per_stage) - rate * trees_share

    def predict(X: np.ndarray) -> np.ndarray:
        leaves = ensemble.leaf_values(X)[:, :, 0].reshape(len(X), -1, per_stage)
        raw = init + rate * leaves.sum(axis=1)
        if not classifier:
            return raw[:, 0]
        if per_stage == 1:
            return _two_classes(expit(raw[:, 0]))
        return softmax(raw, axis=1)

    return predict


def _random_forest(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    classifier = isinstance(model, RandomForestClassifier)
    ensemble = _TreeEnsemble([t.tree_ for t in model.estimators_], lambda t: t.value[:, 0, :])

    def predict(X: np.ndarray) -> np.ndarray:
        mean = ensemble.leaf_values(X).mean(axis=1)
        return mean if classifier else mean[:, 0]

    return predict


def _linear(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    coef = np.atleast_2d(model.coef_)
    intercept = np.atleast_1d(model.intercept_)
    if isinstance(model, LogisticRegression):

        def predict(X: np.ndarray) -> np.ndarray:
            raw = X @ coef.T + intercept
            if raw.shape[1] == 1:
                return _two_classes(expit(raw[:, 0]))
            return softmax(raw, axis=1)

        return predict
    return lambda X: (X @ coef.T + intercept)[:, 0]


def _xgboost(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    booster = model.get_booster()
    booster.feature_names = None  # a copy: the reference pipeline keeps its names
    booster.set_param({"nthread": 1})  # one row: thread start-up costs more than it saves
    return _probabilities(model, lambda X: booster.inplace_predict(X, validate_features=False))


def _lightgbm(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    booster = model.booster_
    return _probabilities(
        model, lambda X: booster.predict(X, validate_features=False, num_threads=1)
    )


def _probabilities(
    model: Any, raw: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """A booster's own predictor on a plain array; a binary one's P(positive) as two columns."""
    if not hasattr(model, "predict_proba"):
        return raw

    def predict(X: np.ndarray) -> np.ndarray:
        out = raw(X)
        return _two_classes(out) if out.ndim == 1 else out

    return predict


# The estimators the fast path replays, by type: adding one is one entry here.
ESTIMATORS: tuple[tuple[tuple[type, ...], Callable[[Any], Callable]], ...] = (
    ((GradientBoostingClassifier, GradientBoostingRegressor), _gradient_boosting),
    ((RandomForestClassifier, RandomForestRegressor), _random_forest),
    ((LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet), _linear),
    ((XGBClassifier, XGBRegressor), _xgboost),
    ((LGBMClassifier, LGBMRegressor), _lightgbm),
)


def compile_estimator(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    for types, compile_estimator in ESTIMATORS:
        if type(model) in types:  # exact types: a subclass may predict differently
            return compile_estimator(model)
    raise Unsupported(f"estimator {type(model).__name__}")
