"""A numpy fast path for one fitted pipeline: the same arithmetic, without per-step overhead.

A fitted scikit-learn pipeline spends milliseconds per single row in input
checks and DataFrame plumbing while its arithmetic takes microseconds. This
module reads the fitted parameters out of our pipeline (range guard, outlier
limits, imputation, scaling, feature builder, selection) and out of the
estimator (tree arrays, linear coefficients, or the booster's own predictor)
and replays them on a float array.

Category columns travel as codes: a value's position in the schema's list of
values (`encode_categories`), NaN when missing. One-hot and ordinal encoders
are replayed on those codes.

It is an optimisation, never the reference: `parity()` compares it with the
scikit-learn pipeline, training records the result, and the service uses the
fast path only where parity held. Anything it does not know how to compile
raises `Unsupported`, and the caller keeps the scikit-learn pipeline.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model._base import LinearModel
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from migraine_ml.data.schema import Schema
from migraine_ml.modeling.features import (
    HealthIndices,
    Interactions,
    Powers,
    QuantileBins,
    SelectTop,
)

PARITY_TOLERANCE = 1e-4
# From this many rows on, the estimator's own (compiled) predict beats the numpy
# tree traversal: its fixed per-call cost is spread over the batch.
NATIVE_BATCH_ROWS = 16


class Unsupported(ValueError):
    """The pipeline has a step the fast path cannot replay."""


def category_values(schema: Schema) -> dict[str, list[str]]:
    """Each category feature's values in schema order: code i means values[i]."""
    return {
        name: [str(v) for v in schema.columns[name].values or ()]
        for name in schema.features
        if schema.columns[name].dtype == "category"
    }


def category_codes(schema: Schema) -> dict[str, dict[str, float]]:
    """Each category feature's value -> code lookup (the inverse of `category_values`)."""
    return {
        name: {value: float(i) for i, value in enumerate(values)}
        for name, values in category_values(schema).items()
    }


def encode_categories(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Raw feature rows as floats, each category value replaced by its code (NaN if missing
    or not a listed value)."""
    out = frame[schema.features].copy()
    for name, codes in category_codes(schema).items():
        out[name] = out[name].map(lambda v, codes=codes: codes.get(v, np.nan))
    return out.to_numpy(dtype=float)


def decode_categories(matrix: np.ndarray, schema: Schema) -> pd.DataFrame:
    """The inverse of `encode_categories`: what the scikit-learn pipeline reads."""
    frame = pd.DataFrame(matrix, columns=schema.features)
    for name, values in category_values(schema).items():
        frame[name] = [None if c != c else values[int(c)] for c in frame[name]]
    return frame


def _steps(transformer: Any) -> list[Any]:
    return [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]


def _dense_block(steps: list[Any]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(fill values, mean, scale) of an imputer, optionally followed by a scaler."""
    fill = mean = scale = None
    for step in steps:
        if isinstance(step, SimpleImputer) and fill is None:
            try:
                fill = np.asarray(step.statistics_, dtype=float)
            except (TypeError, ValueError):
                raise Unsupported("text values in a block without an encoder") from None
        elif isinstance(step, StandardScaler) and mean is None:
            mean = step.mean_ if step.with_mean else np.zeros(step.n_features_in_)
            scale = step.scale_ if step.with_std else np.ones(step.n_features_in_)
        else:
            raise Unsupported(f"preprocessing step {type(step).__name__}")
    if fill is None:
        raise Unsupported("a column block without an imputer")
    return fill, mean, scale


def _encoder_values(encoder: Any, column: str, codes: dict[str, list[str]]) -> None:
    """Refuse an encoder whose categories are not the schema's values in schema order."""
    fitted = [str(v) for v in encoder.categories_[0]]
    if len(encoder.categories_) != 1 or fitted != codes.get(column):
        raise Unsupported(f"'{column}': encoder categories differ from the schema's values")


class _Preprocessor:
    """RangeGuard -> OutlierLimiter -> ColumnTransformer blocks, on coded rows.

    Numeric and ordinal blocks are imputed and scaled column-wise in one
    vectorised step; a one-hot block turns a code into indicator columns.
    """

    def __init__(self, preprocess: Pipeline, raw_features: list[str], codes: dict[str, list[str]]):
        guard = preprocess.named_steps["entry_errors"]
        limiter = preprocess.named_steps["outliers"]
        columns = preprocess.named_steps["columns"]
        if list(guard.feature_names_in_) != list(raw_features):
            raise Unsupported("preprocessor columns differ from the raw features")
        position = {name: i for i, name in enumerate(raw_features)}
        n = len(raw_features)
        self.guard_low = np.full(n, -np.inf)
        self.guard_high = np.full(n, np.inf)
        for name, (low, high) in (guard.limits or {}).items():
            self.guard_low[position[name]], self.guard_high[position[name]] = low, high
        self.limit_low = np.full(n, -np.inf)
        self.limit_high = np.full(n, np.inf)
        for name in limiter.lower_:
            self.limit_low[position[name]] = limiter.lower_[name]
            self.limit_high[position[name]] = limiter.upper_[name]
        self.clip = limiter.strategy == "clip"
        order, fill, mean, scale = [], [], [], []
        self.onehot: list[tuple[int, float, int]] = []  # (input column, fill code, width)
        # output in transformer order: ("dense", first, last) runs of the imputed and
        # scaled columns, ("onehot", block, None) for one encoded category
        self.segments: list[tuple[str, int, int | None]] = []
        for _name, transformer, names in columns.transformers_:
            if transformer == "drop" or len(names) == 0:
                continue
            if transformer == "passthrough":
                raise Unsupported("passthrough columns")
            steps = _steps(transformer)
            if isinstance(steps[-1], OneHotEncoder):
                (column,) = names
                imputer, encoder = steps if len(steps) == 2 else (None, None)
                if not isinstance(imputer, SimpleImputer) or encoder.handle_unknown != "ignore":
                    raise Unsupported("a one-hot block other than imputer + encoder")
                _encoder_values(encoder, column, codes)
                fill_code = codes[column].index(str(imputer.statistics_[0]))
                self.segments.append(("onehot", len(self.onehot), None))
                self.onehot.append((position[column], float(fill_code), len(codes[column])))
                continue
            if isinstance(steps[0], OrdinalEncoder):
                (column,) = names
                _encoder_values(steps[0], column, codes)
                steps = steps[1:]  # codes are the encoder's output already
            block_fill, block_mean, block_scale = _dense_block(steps)
            if self.segments and self.segments[-1][0] == "dense":
                self.segments[-1] = ("dense", self.segments[-1][1], len(order) + len(names))
            else:
                self.segments.append(("dense", len(order), len(order) + len(names)))
            order += [position[c] for c in names]
            fill.append(block_fill)
            mean.append(block_mean if block_mean is not None else np.zeros(len(names)))
            scale.append(block_scale if block_scale is not None else np.ones(len(names)))
        self.order = np.asarray(order, dtype=int)
        self.fill = np.concatenate(fill) if fill else np.zeros(0)
        self.mean = np.concatenate(mean) if mean else np.zeros(0)
        self.scale = np.concatenate(scale) if scale else np.ones(0)
        self.names = list(columns.get_feature_names_out())

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.where((self.guard_low > X) | (self.guard_high < X), np.nan, X)
        if self.clip:
            X = np.clip(X, self.limit_low, self.limit_high)  # NaN stays NaN
        else:
            X = np.where((self.limit_low > X) | (self.limit_high < X), np.nan, X)
        dense = X[:, self.order]
        dense = (np.where(np.isnan(dense), self.fill, dense) - self.mean) / self.scale
        if not self.onehot:
            return dense
        pieces = []
        for kind, first, last in self.segments:
            if kind == "dense":
                pieces.append(dense[:, first:last])
            else:
                column, fill_code, width = self.onehot[first]
                code = np.where(np.isnan(X[:, column]), fill_code, X[:, column])
                pieces.append((code[:, None] == np.arange(width)).astype(float))
        return np.hstack(pieces)


Columns = list[np.ndarray]


def _weighted_sum(cols: Columns, terms: list[tuple[int, float]]) -> np.ndarray:
    return sum(weight * cols[i] for i, weight in terms)


def _product(cols: Columns, i: int, j: int) -> np.ndarray:
    return cols[i] * cols[j]


def _power(cols: Columns, i: int, degree: int) -> np.ndarray:
    return cols[i] ** degree


def _bin(cols: Columns, i: int, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, cols[i], side="right").astype(float)


def _feature_ops(builder: Pipeline, names: list[str]) -> tuple[list[Callable], list[int]]:
    """Column-appending operations replaying the feature builder, and the selection.

    Each op reads the columns so far (a later step may use an earlier one's
    column, e.g. an interaction with a health index) and returns one more.
    """
    names = list(names)
    ops: list[Callable[[Columns], np.ndarray]] = []

    def add(op: Callable[[Columns], np.ndarray], name: str) -> None:
        ops.append(op)
        names.append(name)

    for _, step in builder.steps:
        if isinstance(step, HealthIndices):
            for name, weights in (step.indices or {}).items():
                terms = [(names.index(c), float(w)) for c, w in weights.items()]
                add(partial(_weighted_sum, terms=terms), name)
        elif isinstance(step, Interactions):
            for a, b in step.pairs_:
                add(partial(_product, i=names.index(a), j=names.index(b)), f"{a}*{b}")
        elif isinstance(step, Powers):
            for column in step.columns or []:
                for degree in range(2, step.degree + 1):
                    add(partial(_power, i=names.index(column), degree=degree), f"{column}^{degree}")
        elif isinstance(step, QuantileBins):
            for column, edges in step.edges_.items():
                add(partial(_bin, i=names.index(column), edges=np.asarray(edges)), f"{column}_bin")
        elif isinstance(step, SelectTop):
            return ops, [names.index(c) for c in step.selected_]
        else:
            raise Unsupported(f"feature step {type(step).__name__}")
    raise Unsupported("feature builder without a final selection")


class _TreeEnsemble:
    """Vectorised traversal of scikit-learn trees padded into equal-sized arrays."""

    def __init__(self, trees: list[Any], value_of: Callable[[Any], np.ndarray]):
        size = max(t.node_count for t in trees)
        n = len(trees)
        self.left = np.zeros((n, size), dtype=np.intp)
        self.right = np.zeros((n, size), dtype=np.intp)
        self.feature = np.zeros((n, size), dtype=np.intp)
        self.threshold = np.full((n, size), np.inf)
        first = value_of(trees[0])
        self.value = np.zeros((n, size, first.shape[1]))
        for i, tree in enumerate(trees):
            count = tree.node_count
            leaf = tree.children_left == -1
            nodes = np.arange(count)
            self.left[i, :count] = np.where(leaf, nodes, tree.children_left)
            self.right[i, :count] = np.where(leaf, nodes, tree.children_right)
            self.feature[i, :count] = np.where(leaf, 0, tree.feature)
            self.threshold[i, :count] = np.where(leaf, np.inf, tree.threshold)
            self.value[i, :count] = value_of(tree)
        self.depth = max(t.max_depth for t in trees)
        self.trees = np.arange(n)

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees, outputs) leaf values; X compared in float32 as sklearn does."""
        X = X.astype(np.float32).astype(np.float64)
        rows = np.arange(len(X))[:, None]
        node = np.zeros((len(X), len(self.trees)), dtype=np.intp)
        for _ in range(self.depth):
            go_left = X[rows, self.feature[self.trees, node]] <= self.threshold[self.trees, node]
            node = np.where(go_left, self.left[self.trees, node], self.right[self.trees, node])
        return self.value[self.trees, node]


def _gradient_boosting(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    if getattr(model, "init_", None) == "zero":
        raise Unsupported("gradient boosting with init='zero'")
    trees = [t.tree_ for t in model.estimators_.ravel()]
    per_stage = model.estimators_.shape[1]
    ensemble = _TreeEnsemble(trees, lambda t: t.value[:, 0, :])
    init = model._raw_predict_init(np.zeros((1, model.n_features_in_)))  # a constant
    rate = model.learning_rate
    classifier = isinstance(model, GradientBoostingClassifier)

    def predict(X: np.ndarray) -> np.ndarray:
        leaves = ensemble.leaf_values(X)[:, :, 0].reshape(len(X), -1, per_stage)
        raw = init + rate * leaves.sum(axis=1)
        if not classifier:
            return raw[:, 0]
        if per_stage == 1:
            positive = expit(raw[:, 0])
            return np.column_stack([1 - positive, positive])
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
                positive = expit(raw[:, 0])
                return np.column_stack([1 - positive, positive])
            return softmax(raw, axis=1)

        return predict
    return lambda X: (X @ coef.T + intercept)[:, 0]


def _booster(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """XGBoost / LightGBM: their own predictor on a plain array (no DataFrame)."""
    module = type(model).__module__.split(".")[0]
    classifier = hasattr(model, "predict_proba")
    if module == "xgboost":
        booster = model.get_booster()
        booster.feature_names = None  # a copy: the reference pipeline keeps its names
        booster.set_param({"nthread": 1})  # one row: thread start-up costs more than it saves

        def raw(X: np.ndarray) -> np.ndarray:
            return booster.inplace_predict(X, validate_features=False)
    elif module == "lightgbm":
        booster = model.booster_

        def raw(X: np.ndarray) -> np.ndarray:
            return booster.predict(X, validate_features=False, num_threads=1)
    else:
        raise Unsupported(f"estimator {type(model).__name__}")
    if not classifier:
        return raw

    def predict(X: np.ndarray) -> np.ndarray:
        out = raw(X)
        if out.ndim == 1:
            return np.column_stack([1 - out, out])
        return out

    return predict


def _estimator(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(model, GradientBoostingClassifier | GradientBoostingRegressor):
        return _gradient_boosting(model)
    if isinstance(model, RandomForestClassifier | RandomForestRegressor):
        return _random_forest(model)
    if isinstance(model, LogisticRegression | LinearModel) and hasattr(model, "coef_"):
        return _linear(model)
    return _booster(model)


class CompiledPipeline:
    """The fitted pipeline replayed in numpy on rows of raw features (NaN = missing),
    category values given as codes (`encode_categories`)."""

    def __init__(self, pipeline: Pipeline, schema: Schema):
        import copy

        pipeline = copy.deepcopy(pipeline)  # boosters are edited (feature names dropped)
        self.raw_features = list(schema.features)
        self._preprocess = _Preprocessor(
            pipeline.named_steps["preprocess"], self.raw_features, category_values(schema)
        )
        self._ops, self._selected = _feature_ops(
            pipeline.named_steps["features"], self._preprocess.names
        )
        self._predict = _estimator(pipeline.named_steps["model"])
        self.is_classifier = hasattr(pipeline, "predict_proba")
        model = pipeline.named_steps["model"]
        self._native = model.predict_proba if self.is_classifier else model.predict

    def model_input(self, X: np.ndarray) -> np.ndarray:
        base = self._preprocess(np.asarray(X, dtype=float))
        columns = list(base.T)
        for op in self._ops:
            columns.append(op(columns))
        return np.column_stack([columns[i] for i in self._selected])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities for a classifier, the prediction for a regressor."""
        model_input = self.model_input(X)
        if len(model_input) < NATIVE_BATCH_ROWS:
            return self._predict(model_input)
        with warnings.catch_warnings():  # a plain array where names were fitted: expected
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(self._native(model_input))


def reference_output(pipeline: Pipeline, rows: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if hasattr(pipeline, "predict_proba"):
            return pipeline.predict_proba(rows)
        return pipeline.predict(rows)


def parity(pipeline: Pipeline, rows: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """Compile and compare with the scikit-learn pipeline on `rows`.

    Returns {"supported", "max_abs_diff", "passed", "reason"}.
    """
    try:
        compiled = CompiledPipeline(pipeline, schema)
    except Unsupported as err:
        return {"supported": False, "passed": False, "max_abs_diff": None, "reason": str(err)}
    expected = reference_output(pipeline, rows[schema.features])
    got = compiled.predict(encode_categories(rows, schema))
    # rounded: float noise in the last bits must not change the file (and its DVC hash)
    diff = round(float(np.max(np.abs(np.asarray(expected, dtype=float) - got))), 10)
    passed = diff <= PARITY_TOLERANCE
    return {
        "supported": True,
        "passed": passed,
        "max_abs_diff": diff,
        "rows": len(rows),
        "tolerance": PARITY_TOLERANCE,
        "reason": "" if passed else f"max |difference| {diff:.3g} > {PARITY_TOLERANCE}",
    }
