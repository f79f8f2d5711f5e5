"""Feature engineering: fitted scikit-learn transformers, DataFrame in, DataFrame out.

Each transformer adds columns to the preprocessed frame (imputed, scaled), so
they chain in one Pipeline ending with a selection of the top features. All of
them learn only in fit(), which sees the training rows alone.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from migraine_ml.modeling.selection import SelectTop
from migraine_ml.pipeline import BINS, INDICES, INTERACTIONS, POWERS, SELECT

logger = logging.getLogger(__name__)


# The fast path (migraine_ml.modeling.fastpath) replays each step in numpy on a
# matrix of the columns so far, one row per column: every step names its new
# columns and returns one function computing all of them at once
# (`replay_block`), so a new step brings its own replay. One numpy call per
# step rather than per column is what keeps a single record cheap; each replay
# does the same floating-point operations, in the same order, as `transform`.
Columns = np.ndarray  # (columns so far, rows)
BlockReplay = tuple[list[str], Callable[[Columns], np.ndarray]]
# A single record is cheaper still in plain floats (`replay_row`): a numpy call costs
# microseconds of overhead whatever its size, a float operation tens of nanoseconds.
# The same operations in the same order, so the bits equal the block's.
RowReplay = Callable[[list[float]], list[float]]  # one row's columns so far -> new values


def _weighted_sums(cols: Columns, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    # term by term, as `sum(w * X[c] ...)` adds them (accumulate is sequential, a
    # matmul or sum() may reorder): bit-identical; a padded term is 0.0 * a
    # finite column (the preprocessor leaves no NaN)
    return np.add.accumulate(weight[:, :, None] * cols[index], axis=1)[:, -1]


def _products(cols: Columns, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return cols[left] * cols[right]


def _powers(cols: Columns, by_degree: list[tuple[int, np.ndarray]], order: np.ndarray | None):
    # a Python int exponent, as `X[c] ** d` uses (2 is an exact square)
    if order is None:  # one degree: already in name order
        ((degree, index),) = by_degree
        return cols[index] ** degree
    return np.concatenate([cols[index] ** degree for degree, index in by_degree])[order]


def _bins(cols: Columns, index: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    out = np.empty((len(edges), cols.shape[1]))
    for row, (column, column_edges) in enumerate(zip(index, edges, strict=True)):
        out[row] = column_edges.searchsorted(cols[column], side="right")  # no np. wrapper
    return out


class _AddColumns(TransformerMixin, BaseEstimator):
    """Base: remember the input columns, append the ones `_new_columns` makes."""

    def _check_input(self, X: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} expects a DataFrame, got {type(X).__name__}")
        return X

    def _remember(self, X: pd.DataFrame) -> None:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]

    def _new_columns(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: Any = None) -> _AddColumns:
        self._remember(self._check_input(X))
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_in_")
        X = self._check_input(X)
        new = self._new_columns(X)
        return pd.concat([X, pd.DataFrame(new, index=X.index)], axis=1) if new else X

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_in_")
        return np.asarray([*self.feature_names_in_, *self._names()], dtype=object)

    def _names(self) -> list[str]:
        raise NotImplementedError


def _require(X: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise KeyError(f"{what}: columns {missing} are not in the data")


class HealthIndices(_AddColumns):
    """Named weighted composites of columns, e.g. a sleep index or a trigger count.

    Args:
        indices: index name -> {column: weight}.
    """

    def __init__(self, indices: dict[str, dict[str, float]] | None = None):
        self.indices = indices

    def fit(self, X: pd.DataFrame, y: Any = None) -> HealthIndices:
        for name, weights in (self.indices or {}).items():
            _require(self._check_input(X), list(weights), f"health index '{name}'")
        return super().fit(X, y)

    def _names(self) -> list[str]:
        return list(self.indices or {})

    def _new_columns(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        return {
            name: sum(float(w) * X[c] for c, w in weights.items())
            for name, weights in (self.indices or {}).items()
        }

    def _terms(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Column positions and weights, one row per index, padded with 0.0 * column 0."""
        indices = self.indices or {}
        width = max((len(w) for w in indices.values()), default=0)
        index = np.zeros((len(indices), width), dtype=np.intp)
        weight = np.zeros((len(indices), width))
        for row, weights in enumerate(indices.values()):
            for term, (column, w) in enumerate(weights.items()):
                index[row, term], weight[row, term] = names.index(column), float(w)
        return index, weight

    def replay_block(self, names: list[str]) -> BlockReplay:
        index, weight = self._terms(names)
        return list(self.indices or {}), partial(_weighted_sums, index=index, weight=weight)

    def replay_row(self, names: list[str]) -> RowReplay:
        index, weight = self._terms(names)
        # the block's terms, padding included, in the block's order: the same bits, the
        # sign of a zero too (a sum from 0.0, as transform's, would turn -0.0 into 0.0)
        terms = [
            list(zip(i, w, strict=True))
            for i, w in zip(index.tolist(), weight.tolist(), strict=True)
        ]

        def row(cols: list[float]) -> list[float]:
            out = []
            for (first, first_weight), *rest in terms:
                total = first_weight * cols[first]
                for column, term_weight in rest:
                    total += term_weight * cols[column]
                out.append(total)
            return out

        return row


class Interactions(_AddColumns):
    """Products of column pairs: the configured ones plus the `top_k` best on train.

    A candidate pair is scored by how much better its product correlates with the
    target than either column alone (|r(a*b, y)| - max(|r(a, y)|, |r(b, y)|)), so
    a pair is only picked for what the product adds.

    Args:
        pairs: pairs always included.
        top_k: how many more pairs to pick among `candidates` (all columns if None).
        candidates: columns whose pairs are scored.
    """

    def __init__(
        self,
        pairs: list[list[str]] | None = None,
        *,
        top_k: int = 0,
        candidates: list[str] | None = None,
    ):
        self.pairs = pairs
        self.top_k = top_k
        self.candidates = candidates

    def fit(self, X: pd.DataFrame, y: Any = None) -> Interactions:
        X = self._check_input(X)
        chosen = [tuple(p) for p in (self.pairs or [])]
        for a, b in chosen:
            _require(X, [a, b], f"interaction '{a}*{b}'")
        self.pair_scores_: dict[str, float] = {}
        if self.top_k > 0:
            if y is None:
                raise ValueError("Interactions with top_k > 0 needs y to score pairs")
            columns = [c for c in (self.candidates or X.columns) if c in X.columns]
            target = pd.Series(np.asarray(y, dtype=float), index=X.index)
            alone = X[columns].corrwith(target).abs().fillna(0)
            scores = {}
            for a, b in itertools.combinations(columns, 2):
                if (a, b) in chosen or (b, a) in chosen:
                    continue
                product = X[a] * X[b]
                r = 0.0 if product.std() == 0 else abs(np.corrcoef(product, target)[0, 1])
                scores[(a, b)] = r - max(alone[a], alone[b])
            best = sorted(scores, key=lambda pair: (-scores[pair], pair))[: self.top_k]
            chosen += best
            self.pair_scores_ = {f"{a}*{b}": round(float(scores[(a, b)]), 6) for a, b in best}
        self.pairs_ = chosen
        self._remember(X)
        return self

    def _names(self) -> list[str]:
        return [f"{a}*{b}" for a, b in self.pairs_]

    def _new_columns(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        return {f"{a}*{b}": X[a] * X[b] for a, b in self.pairs_}

    def replay_block(self, names: list[str]) -> BlockReplay:
        left = np.asarray([names.index(a) for a, _ in self.pairs_], dtype=np.intp)
        right = np.asarray([names.index(b) for _, b in self.pairs_], dtype=np.intp)
        return self._names(), partial(_products, left=left, right=right)

    def replay_row(self, names: list[str]) -> RowReplay:
        pairs = [(names.index(a), names.index(b)) for a, b in self.pairs_]
        return lambda cols: [cols[a] * cols[b] for a, b in pairs]


class Powers(_AddColumns):
    """Polynomial terms x^2 .. x^degree of chosen columns (for U-shaped effects)."""

    def __init__(self, columns: list[str] | None = None, *, degree: int = 2):
        self.columns = columns
        self.degree = degree

    def fit(self, X: pd.DataFrame, y: Any = None) -> Powers:
        if self.degree < 1:
            raise ValueError(f"degree: {self.degree} must be at least 1")
        _require(self._check_input(X), list(self.columns or []), "polynomial terms")
        return super().fit(X, y)

    def _names(self) -> list[str]:
        return [f"{c}^{d}" for c in self.columns or [] for d in range(2, self.degree + 1)]

    def _new_columns(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        return {
            f"{c}^{d}": X[c] ** d for c in self.columns or [] for d in range(2, self.degree + 1)
        }

    def replay_block(self, names: list[str]) -> BlockReplay:
        terms = [(c, d) for c in self.columns or [] for d in range(2, self.degree + 1)]
        by_degree, computed = [], []  # one numpy call per degree, then back in name order
        for degree in range(2, self.degree + 1):
            of_degree = [c for c, d in terms if d == degree]
            by_degree.append((degree, np.asarray([names.index(c) for c in of_degree], np.intp)))
            computed += [(c, degree) for c in of_degree]
        order = np.asarray([computed.index(t) for t in terms], dtype=np.intp)
        if len(by_degree) == 1:
            order = None
        return self._names(), partial(_powers, by_degree=by_degree, order=order)

    def replay_row(self, names: list[str]) -> RowReplay:
        if self.degree > 2:
            # np.power may take vector maths (SVML on AVX-512) that differ from C's pow()
            # in the last bit, and overflows to inf where float ** raises: the block's own
            _, block = self.replay_block(names)
            return lambda cols: block(np.array(cols)[:, None])[:, 0].tolist()
        index = [names.index(c) for c in self.columns or []]
        return lambda cols: [cols[i] * cols[i] for i in index]  # numpy's ** 2 is x * x


class QuantileBins(_AddColumns):
    """Ordinal bins (0 .. n_bins-1) with quantile edges learned on train, e.g. age groups."""

    def __init__(self, bins: dict[str, int] | None = None):
        self.bins = bins

    def fit(self, X: pd.DataFrame, y: Any = None) -> QuantileBins:
        X = self._check_input(X)
        _require(X, list(self.bins or {}), "binning")
        self.edges_ = {}
        for column, n_bins in (self.bins or {}).items():
            inner = np.quantile(X[column], np.linspace(0, 1, n_bins + 1)[1:-1])
            self.edges_[column] = np.unique(inner).tolist()
        self._remember(X)
        return self

    def _names(self) -> list[str]:
        return [f"{c}_bin" for c in self.edges_]

    def _new_columns(self, X: pd.DataFrame) -> dict[str, pd.Series]:
        return {
            f"{c}_bin": pd.Series(
                np.searchsorted(edges, X[c].to_numpy(), side="right").astype(float), index=X.index
            )
            for c, edges in self.edges_.items()
        }

    def replay_block(self, names: list[str]) -> BlockReplay:
        index = [names.index(c) for c in self.edges_]
        edges = [np.asarray(e, dtype=float) for e in self.edges_.values()]
        return self._names(), partial(_bins, index=index, edges=edges)

    def replay_row(self, names: list[str]) -> RowReplay:
        spec = [(names.index(c), [float(e) for e in edges]) for c, edges in self.edges_.items()]
        # bisect_right is searchsorted(side="right"); a NaN, like numpy's, lands after every edge
        return lambda cols: [float(bisect.bisect_right(edges, cols[i])) for i, edges in spec]


def make_feature_builder(
    *,
    health_indices: dict[str, dict[str, float]] | None = None,
    interaction_pairs: list[list[str]] | None = None,
    interaction_top_k: int = 0,
    interaction_candidates: list[str] | None = None,
    polynomial_columns: list[str] | None = None,
    polynomial_degree: int = 2,
    bins: dict[str, int] | None = None,
    n_features: int | str = 20,
    selection_score: str = "mutual_info",
    task: str = "classification",
    seed: int = 0,
    pool: str = "engineered",
    plain_columns: list[str] | None = None,
) -> Pipeline:
    """Indices, interactions, powers and bins added, then the top `n_features` kept from
    `pool` (see `SelectTop`)."""
    return Pipeline(
        [
            (INDICES, HealthIndices(health_indices)),
            (
                INTERACTIONS,
                Interactions(
                    interaction_pairs, top_k=interaction_top_k, candidates=interaction_candidates
                ),
            ),
            (POWERS, Powers(polynomial_columns, degree=polynomial_degree)),
            (BINS, QuantileBins(bins)),
            (
                SELECT,
                SelectTop(
                    n_features,
                    score=selection_score,
                    task=task,
                    seed=seed,
                    pool=pool,
                    plain_columns=plain_columns,
                ),
            ),
        ]
    )


def applicable_config(config: dict[str, Any], columns: list[str]) -> tuple[dict, list[str]]:
    """Drop the parts of a feature config that name columns the data does not have.

    Feature params are written for one schema; pointing the pipeline at another
    dataset should not crash on them. Returns the usable config and one
    message per dropped part.
    """
    available = set(columns)
    usable = dict(config)
    skipped = []
    indices = {}
    for name, weights in (config.get("health_indices") or {}).items():
        missing = sorted(set(weights) - available)
        if missing:
            skipped.append(f"health index '{name}': columns {missing} not in the data, skipped")
        else:
            indices[name] = weights
    usable["health_indices"] = indices
    pairs = []
    for a, b in config.get("interaction_pairs") or []:
        if {a, b} <= available:
            pairs.append([a, b])
        else:
            skipped.append(f"interaction '{a}*{b}': not in the data, skipped")
    usable["interaction_pairs"] = pairs
    for key in ("polynomial_columns", "interaction_candidates"):
        if config.get(key) is None:
            continue
        kept = [c for c in config[key] if c in available]
        if len(kept) < len(config[key]):
            skipped.append(f"{key}: {sorted(set(config[key]) - available)} not in the data")
        usable[key] = kept
    bins = {c: n for c, n in (config.get("bins") or {}).items() if c in available}
    if len(bins) < len(config.get("bins") or {}):
        skipped.append(f"bins: {sorted(set(config['bins']) - available)} not in the data")
    usable["bins"] = bins
    return usable, skipped


def selection_report(builder: Pipeline) -> dict[str, Any]:
    """Selected features with their scores, the dropped ones, the chosen interactions."""
    select: SelectTop = builder.named_steps[SELECT]
    interactions: Interactions = builder.named_steps[INTERACTIONS]
    return {
        "score": select.score,
        "pool": select.pool,
        "n_features": len(select.selected_),
        "selected": {c: round(select.scores_[c], 6) for c in select.selected_},
        "dropped": {c: round(select.scores_[c], 6) for c in select.dropped_},
        "interactions": [f"{a}*{b}" for a, b in interactions.pairs_],
        "interaction_gain": interactions.pair_scores_,
        "bin_edges": {
            c: [round(e, 6) for e in edges] for c, edges in builder.named_steps[BINS].edges_.items()
        },
    }


__all__ = [
    "HealthIndices",
    "Interactions",
    "Powers",
    "QuantileBins",
    "SelectTop",
    "applicable_config",
    "make_feature_builder",
    "selection_report",
]
