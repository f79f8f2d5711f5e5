"""The drift reference saved at training time: how the training inputs and predictions look.

It profiles the values the service can actually receive: a training value the
service's validator would reject (outside the schema column's range, a binary
other than 0/1, a whole-number column's fraction, a category the schema does
not list) is an entry error, so it is dropped, counted as missing, before
profiling (the preprocessor also sets such values to missing). Otherwise one
88 h night of sleep in the training rows would stretch the reference in a way
no live window can match.

Numeric inputs get quantile bin edges from the training rows; the bins have
open outer edges so a live value beyond anything seen in training still falls
in a bin. Binary and category inputs keep their value frequencies, keyed by
`category_key` ("1", never "1.0"). Every profile records `rows`, the non-missing
values it was built from, so that the monitor can weigh the reference's own
sampling noise; the reference records the training rows at its top level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from migraine_ml.data.schema import Column, Schema, plain_number

# Rounded so that last-bit BLAS noise between runs does not change the file's hash.
DIGITS = 9

# The keys of models/reference.json, a contract with the service (its OpenAPI
# examples) and the drift monitor:
#   {ROWS: n, INPUTS: {feature: profile}, PREDICTIONS: {task: {output: profile}}}
# A classifier's outputs are its classes (category_key spelling), each profiled as
# that class's predicted probability; a regressor's single output is VALUE.
ROWS = "rows"  # training rows (top level) or non-missing values profiled (per profile)
INPUTS = "inputs"
PREDICTIONS = "predictions"
VALUE = "value"  # the regression task's one output
KIND = "kind"  # NUMERIC or CATEGORICAL
NUMERIC = "numeric"
CATEGORICAL = "categorical"
EDGES = "edges"  # inner quantile bin edges (numeric)
SHARES = "shares"  # share per bin (numeric) or per value (categorical)
SAMPLE = "sample"  # evenly spaced sorted training values (numeric), for KS tests
MEAN = "mean"  # a prediction profile's mean score


def category_key(value: Any) -> str:
    """One spelling per category value: 1, 1.0, "1" and "1.0" are all "1".

    The training column's values as text depend on the dtype pandas gave the
    column ("0.0" once a missing cell made a binary column float); live values
    arrive as JSON numbers or strings. Both sides of a comparison use this.
    """
    try:
        return str(plain_number(float(value)))
    except (TypeError, ValueError, OverflowError):
        return str(value)


def _rounded(values) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def receivable(values: pd.Series, column: Column) -> pd.Series:
    """`values` with what the service's validator rejects for `column` set to missing."""
    if column.dtype == "category":
        if column.values is None:
            return values
        allowed = {category_key(v) for v in column.values}
        keep = values.map(lambda v: pd.isna(v) or category_key(v) in allowed).astype(bool)
        return values.where(keep)
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    keep = numbers.notna()
    if column.dtype == "binary":
        keep &= numbers.isin([0.0, 1.0])
    if column.dtype == "int":
        keep &= numbers == np.round(numbers)
    if column.range is not None:
        keep &= numbers.between(*column.range)
    return numbers.where(keep)


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


def value_counts(values: pd.Series) -> dict[str, int]:
    """Rows per present value, keyed by `category_key` (so 1 and 1.0 count together)."""
    counts: dict[str, int] = {}
    for value, count in values.value_counts(dropna=True).items():
        key = category_key(value)
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def value_shares(values: pd.Series) -> dict[str, float]:
    """Share of the present values per value, keyed by `category_key`, in key order."""
    counts = value_counts(values)
    total = sum(counts.values())
    return {key: counts[key] / total for key in sorted(counts)}


def input_profile(frame: pd.DataFrame, schema: Schema, *, bins: int = 10) -> dict[str, Any]:
    """Per raw feature: bin edges and shares (numeric) or value shares (binary/category).

    Only receivable values are profiled; `missing_share` counts the dropped ones
    as missing, and `rows` is the values profiled.
    """
    profile = {}
    for name in schema.features:
        column = schema.columns[name]
        values = receivable(frame[name], column)
        entry: dict[str, Any] = {
            "dtype": column.dtype,
            "missing_share": float(values.isna().mean()),
            ROWS: int(values.notna().sum()),
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
    """Distribution of one model output on the training rows (a probability or a value)."""
    present = pd.Series(np.asarray(scores, dtype=float)).dropna()
    edges = quantile_edges(present, bins=bins)
    return {
        ROWS: int(present.size),
        EDGES: edges,
        SHARES: bin_shares(present, edges),
        MEAN: round(float(present.mean()), DIGITS) if present.size else None,
        SAMPLE: _rounded(_sample(present)),
    }


def prediction_profiles(
    scores: Mapping[str, np.ndarray], *, bins: int = 10
) -> dict[str, dict[str, Any]]:
    """One task's {output: profile}, from `predicted_scores`."""
    return {output: prediction_profile(s, bins=bins) for output, s in scores.items()}


def predicted_scores(
    pipeline: Any, X: pd.DataFrame, classes: list[Any] | None
) -> dict[str, np.ndarray]:
    """What the drift reference profiles, per output: every class's probability
    (keyed by `category_key` of the class), or the regressor's VALUE."""
    if not classes:
        return {VALUE: np.asarray(pipeline.predict(X), dtype=float)}
    probabilities = np.asarray(pipeline.predict_proba(X), dtype=float)
    # the model is fit on codes 0..k-1 in `classes`' order (encode_labels): column i is
    # classes[i], as the service reads it
    return {category_key(c): probabilities[:, i] for i, c in enumerate(classes)}


def drift_reference(
    train: pd.DataFrame, schema: Schema, predictions: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, Any]:
    """models/reference.json: training rows, the inputs' profile, each task's output profiles."""
    return {ROWS: len(train), INPUTS: input_profile(train, schema), PREDICTIONS: predictions}
