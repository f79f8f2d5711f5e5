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

import copy
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from migraine_ml.data.schema import Schema
from migraine_ml.modeling.estimators import Unsupported, compile_estimator
from migraine_ml.modeling.features import RowReplay
from migraine_ml.pipeline import COLUMNS, ENTRY_ERRORS, FEATURES, MODEL, OUTLIERS, PREPROCESS

PARITY_TOLERANCE = 1e-4
SINGLE_PARITY_ROWS = 2000  # rows parity also checks one at a time (~0.1 ms each)
# From this many rows on, the estimator's own (compiled) predict beats the numpy
# tree traversal: its fixed per-call cost is spread over the batch.
NATIVE_BATCH_ROWS = 16


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
        guard = preprocess.named_steps[ENTRY_ERRORS]
        limiter = preprocess.named_steps[OUTLIERS]
        columns = preprocess.named_steps[COLUMNS]
        if list(guard.feature_names_in_) != list(raw_features):
            raise Unsupported("preprocessor columns differ from the raw features")
        position = {name: i for i, name in enumerate(raw_features)}
        self.guard_low, self.guard_high = guard.replay_bounds(raw_features)
        self.limit_low, self.limit_high = limiter.replay_bounds(raw_features)
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
        # the same parameters as Python floats, for `row`
        self._bounds = list(
            zip(
                *(a.tolist() for a in (self.guard_low, self.guard_high)),
                *(a.tolist() for a in (self.limit_low, self.limit_high)),
                strict=True,
            )
        )
        self._dense = list(
            zip(
                self.order.tolist(),
                self.fill.tolist(),
                self.mean.tolist(),
                self.scale.tolist(),
                strict=True,
            )
        )

    def row(self, x: list[float]) -> list[float]:
        """`__call__` on one row in plain floats: the same operations, the same bits."""
        clean = []  # the raw values after the guard and the limiter; NaN where unusable
        for v, (guard_low, guard_high, limit_low, limit_high) in zip(x, self._bounds, strict=True):
            if v != v or guard_low > v or guard_high < v:
                v = math.nan
            elif self.clip:  # np.minimum(np.maximum(...)) one value at a time
                if limit_low > v:
                    v = limit_low
                if limit_high < v:
                    v = limit_high
            elif limit_low > v or limit_high < v:
                v = math.nan
            clean.append(v)
        dense = []
        for column, fill, mean, scale in self._dense:
            v = clean[column]
            dense.append(((fill if v != v else v) - mean) / scale)
        if not self.onehot:
            return dense
        out = []
        for kind, first, last in self.segments:
            if kind == "dense":
                out += dense[first:last]
            else:
                column, fill_code, width = self.onehot[first]
                code = fill_code if clean[column] != clean[column] else clean[column]
                out += [1.0 if code == k else 0.0 for k in range(width)]
        return out

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.where((self.guard_low > X) | (self.guard_high < X), np.nan, X)
        if self.clip:
            # np.clip's arithmetic without its Python wrapper; NaN stays NaN
            X = np.minimum(np.maximum(X, self.limit_low), self.limit_high)
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


def _feature_blocks(
    builder: Pipeline, names: list[str]
) -> tuple[list[tuple], list[RowReplay] | None, list[int]]:
    """(first row, rows, function) of each step replaying the feature builder, each
    step's replay of a single row (None if a step has none), and the selection.

    Each step supplies its own replay (`replay_block`, and `replay_selection` for
    the final selection): a function from the matrix of the columns so far (a
    later step may use an earlier one's column, e.g. an interaction with a health
    index) to the block of the step's new columns.
    """
    names = list(names)
    blocks: list[tuple] = []
    rows: list[RowReplay] | None = []
    for _, step in builder.steps:
        if hasattr(step, "replay_selection"):
            return blocks, rows, step.replay_selection(names)
        if not hasattr(step, "replay_block"):
            raise Unsupported(f"feature step {type(step).__name__}")
        new, replay = step.replay_block(names)
        if new:
            blocks.append((len(names), len(new), replay))
            if rows is not None:
                rows = [*rows, step.replay_row(names)] if hasattr(step, "replay_row") else None
            names += new
    raise Unsupported("feature builder without a final selection")


class CompiledPipeline:
    """The fitted pipeline replayed in numpy on rows of raw features (NaN = missing),
    category values given as codes (`encode_categories`)."""

    def __init__(self, pipeline: Pipeline, schema: Schema):
        pipeline = copy.deepcopy(pipeline)  # boosters are edited (feature names dropped)
        self.raw_features = list(schema.features)
        self._preprocess = _Preprocessor(
            pipeline.named_steps[PREPROCESS], self.raw_features, category_values(schema)
        )
        self._blocks, self._rows, selected = _feature_blocks(
            pipeline.named_steps[FEATURES], self._preprocess.names
        )
        self._selected = np.asarray(selected, dtype=np.intp)
        self._selected_list = list(selected)
        self._width = len(self._preprocess.names) + sum(rows for _, rows, _ in self._blocks)
        self._predict = compile_estimator(pipeline.named_steps[MODEL])
        self.is_classifier = hasattr(pipeline, "predict_proba")
        model = pipeline.named_steps[MODEL]
        self._native = model.predict_proba if self.is_classifier else model.predict

    def model_input(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if len(X) == 1 and self._rows is not None:  # one record: plain floats are cheaper
            return np.array([self.row_input(X[0].tolist())])
        base = self._preprocess(X)
        # one row per column: a step reads earlier columns as rows and writes its block
        columns = np.empty((self._width, len(base)))
        columns[: base.shape[1]] = base.T
        for first, rows, replay in self._blocks:
            columns[first : first + rows] = replay(columns[:first])
        return columns[self._selected].T

    def row_input(self, x: list[float]) -> list[float]:
        """`model_input` of one row, in plain floats (bit-identical: parity checks it)."""
        columns = self._preprocess.row(x)
        for replay in self._rows:
            columns += replay(columns)
        return [columns[i] for i in self._selected_list]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities for a classifier, the prediction for a regressor."""
        model_input = self.model_input(X)
        if len(model_input) < NATIVE_BATCH_ROWS:
            return self._predict(model_input)
        with warnings.catch_warnings():  # a plain array where names were fitted: expected
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(self._native(np.ascontiguousarray(model_input)))


def reference_output(pipeline: Pipeline, rows: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if hasattr(pipeline, "predict_proba"):
            return pipeline.predict_proba(rows)
        return pipeline.predict(rows)


@dataclass(frozen=True)
class ParityRecord:
    """Whether the fast path may serve a model: compiled, and equal to scikit-learn's answers."""

    supported: bool
    passed: bool
    max_abs_diff: float | None
    reason: str
    rows: int | None = None
    tolerance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if not self.supported:
            return {
                "supported": False,
                "passed": False,
                "max_abs_diff": None,
                "reason": self.reason,
            }
        return {
            "supported": True,
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "rows": self.rows,
            "tolerance": self.tolerance,
            "reason": self.reason,
        }


def parity(pipeline: Pipeline, rows: pd.DataFrame, schema: Schema) -> ParityRecord:
    """Compile and compare with the scikit-learn pipeline on `rows`."""
    try:
        compiled = CompiledPipeline(pipeline, schema)
    except Unsupported as err:
        return ParityRecord(supported=False, passed=False, max_abs_diff=None, reason=str(err))
    expected = np.asarray(reference_output(pipeline, rows[schema.features]), dtype=float)
    coded = encode_categories(rows, schema)
    got = compiled.predict(coded)
    # one record at a time too, as the service predicts (its own path, `row_input`): on
    # the first SINGLE_PARITY_ROWS rows, so that a million-row test split stays cheap
    n = min(len(coded), SINGLE_PARITY_ROWS)
    single = np.concatenate([compiled.predict(coded[i : i + 1]) for i in range(n)])
    diff = max(np.max(np.abs(expected - got)), np.max(np.abs(expected[:n] - single)))
    # rounded: float noise in the last bits must not change the file (and its DVC hash)
    diff = round(float(diff), 10)
    passed = diff <= PARITY_TOLERANCE
    return ParityRecord(
        supported=True,
        passed=passed,
        max_abs_diff=diff,
        reason="" if passed else f"max |difference| {diff:.3g} > {PARITY_TOLERANCE}",
        rows=len(rows),
        tolerance=PARITY_TOLERANCE,
    )
