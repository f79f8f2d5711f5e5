"""The drift reference saved at training time: how the training inputs and predictions look.

Numeric inputs get quantile bin edges from the training rows; the bins have
open outer edges so a live value beyond anything seen in training still falls
in a bin. Binary and category inputs keep their value frequencies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from migraine_ml.data.schema import Schema

# Rounded so that last-bit BLAS noise between runs does not change the file's hash.
DIGITS = 9

# The keys of models/reference.json, a contract with the service (its OpenAPI
# examples) and the drift monitor: {INPUTS: {feature: profile}, PREDICTIONS: {task: profile}}.
INPUTS = "inputs"
PREDICTIONS = "predictions"
KIND = "kind"  # NUMERIC or CATEGORICAL
NUMERIC = "numeric"
CATEGORICAL = "categorical"
EDGES = "edges"  # inner quantile bin edges (numeric)
SHARES = "shares"  # share per bin (numeric) or per value (categorical)
SAMPLE = "sample"  # evenly spaced sorted training values (numeric), for KS tests


def _rounded(values) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def quantile_edges(values: pd.Series | np.ndarray, *, bins: int = 10) -> list[float]:
    """Inner edges of `bins` quantile bins (duplicates merged for discrete data)."""
    observed = pd.Series(values, dtype=float).dropna()
    if observed.empty:
        return []
    inner = np.quantile(observed, np.linspace(0, 1, bins + 1)[1:-1])
    return _rounded(np.unique(inner))


def bin_shares(values: pd.Series | np.ndarray, edges: list[float]) -> list[float]:
    """Share of non-missing values in each bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
    observed = pd.Series(values, dtype=float).dropna().to_numpy()
    counts = np.bincount(np.searchsorted(edges, observed, side="left"), minlength=len(edges) + 1)
    total = counts.sum()
    return _rounded(c / total if total else 0.0 for c in counts)


def value_shares(values: pd.Series) -> dict[str, float]:
    observed = values.dropna().astype(str)
    shares = observed.value_counts(normalize=True).sort_index()
    return {str(k): float(v) for k, v in shares.items()}


def input_profile(frame: pd.DataFrame, schema: Schema, *, bins: int = 10) -> dict[str, Any]:
    """Per raw feature: bin edges and shares (numeric) or value shares (binary/category)."""
    profile = {}
    for name in schema.features:
        column = schema.columns[name]
        values = frame[name]
        entry: dict[str, Any] = {
            "dtype": column.dtype,
            "missing_share": float(values.isna().mean()),
        }
        if column.is_continuous:
            edges = quantile_edges(values, bins=bins)
            entry |= {KIND: NUMERIC, EDGES: edges, SHARES: bin_shares(values, edges)}
            entry[SAMPLE] = _rounded(_sample(values))
        else:
            entry |= {KIND: CATEGORICAL, SHARES: value_shares(values)}
        profile[name] = entry
    return profile


def _sample(values: pd.Series, size: int = 500) -> np.ndarray:
    """A fixed, evenly spaced sample of sorted values: enough for a KS test later."""
    observed = np.sort(values.dropna().to_numpy(dtype=float))
    if len(observed) <= size:
        return observed
    return observed[np.linspace(0, len(observed) - 1, size).round().astype(int)]


def prediction_profile(scores: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Distribution of a model output on the training rows (probability or severity)."""
    edges = quantile_edges(scores, bins=bins)
    return {
        EDGES: edges,
        SHARES: bin_shares(scores, edges),
        "mean": round(float(np.mean(scores)), DIGITS),
        SAMPLE: _rounded(_sample(pd.Series(scores))),
    }


def predicted_scores(pipeline: Any, X: pd.DataFrame, classes: list[Any] | None) -> np.ndarray:
    """What the drift reference profiles: the last class's probability, or the prediction."""
    if classes:
        return np.asarray(pipeline.predict_proba(X)[:, -1])
    return np.asarray(pipeline.predict(X))


def drift_reference(
    train: pd.DataFrame, schema: Schema, predictions: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """models/reference.json: the training inputs' profile and each task's prediction profile."""
    return {INPUTS: input_profile(train, schema), PREDICTIONS: predictions}
