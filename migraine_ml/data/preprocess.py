"""Deduplication, the leakage-safe train/test split, and the fitted preprocessor.

Order matters: duplicates go first (a row and its copy on both sides of the
split would leak), then the split, and only then is anything fitted, on the
train side alone.

One module for one stage's concern: the split, the transformers it fits (with
their fast-path replays) and the stage's function read together; hence its
length (~450 lines).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedGroupKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from migraine_ml.data.schema import Schema, plain_number
from migraine_ml.pipeline import COLUMNS, ENTRY_ERRORS, OUTLIERS

OUTLIER_STRATEGIES = ("clip", "missing")

logger = logging.getLogger(__name__)


def drop_unusable_rows(frame: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop exact duplicate rows and rows without a classification target."""
    deduplicated = frame.drop_duplicates()
    dropped = {"duplicates": len(frame) - len(deduplicated)}
    target = schema.classification_target
    if target is not None:
        labelled = deduplicated[deduplicated[target].notna()]
        dropped["missing_target"] = len(deduplicated) - len(labelled)
        deduplicated = labelled
    return deduplicated.reset_index(drop=True), dropped


def split_train_test(
    frame: pd.DataFrame,
    *,
    target: str | None,
    group: str | None,
    test_size: float,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified split on `target`; with a `group` column no group is on both sides."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size: {test_size} is outside (0, 1)")
    stratify = frame[target].astype(str) if target is not None else None
    if group is None:
        train, test = train_test_split(
            frame, test_size=test_size, stratify=stratify, random_state=seed
        )
        return train.sort_index(), test.sort_index()
    n_splits = max(2, round(1 / test_size))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    labels = stratify if stratify is not None else pd.Series(0, index=frame.index)
    train_idx, test_idx = next(folds.split(frame, labels, groups=frame[group]))
    return frame.iloc[train_idx], frame.iloc[test_idx]


def group_separation(groups: pd.Series, splits: Any) -> dict[str, Any]:
    """How many groups have rows on both sides of any of the given (train, test) index splits.

    The count must be 0: a patient with rows on both sides is scored on rows
    like the ones it was trained on, which inflates every metric.
    """
    shared: set[Any] = set()
    n_splits = 0
    for train_idx, test_idx in splits:
        shared |= set(groups.iloc[train_idx]) & set(groups.iloc[test_idx])
        n_splits += 1
    return {
        "column": str(groups.name),
        "groups": int(groups.nunique()),
        "splits": n_splits,
        "groups_on_both_sides": len(shared),
    }


def split_facts(train: pd.DataFrame, test: pd.DataFrame, *, group: str | None) -> dict[str, Any]:
    """What the train/test split kept apart, for the reports."""
    if group is None:
        return {"method": "stratified row split"}
    return {
        "method": f"stratified group split: all rows of one '{group}' on one side",
        "groups": {"train": int(train[group].nunique()), "test": int(test[group].nunique())},
        "groups_on_both_sides": len(set(train[group]) & set(test[group])),
    }


class _ColumnwiseTransformer(TransformerMixin, BaseEstimator):
    """Shared plumbing: DataFrame in, DataFrame out, feature names kept."""

    def _frame(self, X: Any) -> pd.DataFrame:
        """A copy of X holding just the columns seen in fit, in that order."""
        fitted_columns = getattr(self, "feature_names_in_", None)
        if not isinstance(X, pd.DataFrame):
            return pd.DataFrame(X, columns=fitted_columns)
        if fitted_columns is None:
            return X.copy()
        missing = [c for c in fitted_columns if c not in X.columns]
        if missing:
            raise KeyError(f"missing columns {missing}")
        return X[list(fitted_columns)].copy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_in_")
        return np.asarray(self.feature_names_in_, dtype=object)


def _bounds(
    columns: list[str], lower: dict[str, float], upper: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    low = np.array([lower.get(c, -np.inf) for c in columns], dtype=float)
    high = np.array([upper.get(c, np.inf) for c in columns], dtype=float)
    return low, high


class RangeGuard(_ColumnwiseTransformer):
    """Values outside the schema's valid range are entry errors: set them to missing.

    Args:
        limits: column -> (min, max). Columns not listed pass through.
    """

    def __init__(self, limits: dict[str, tuple[float, float]] | None = None):
        self.limits = limits

    def fit(self, X: Any, y: Any = None) -> RangeGuard:
        frame = self._frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.entry_errors_ = self.count_entry_errors(frame)
        return self

    def count_entry_errors(self, frame: pd.DataFrame) -> dict[str, int]:
        """Values outside their column's range, per limited column."""
        counts = {}
        for column, (low, high) in (self.limits or {}).items():
            values = pd.to_numeric(frame[column], errors="coerce")
            counts[column] = int(((values < low) | (values > high)).sum())
        return counts

    def replay_bounds(self, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per column of `columns`, the valid range (infinite where unlimited), for the
        fast path: a value outside it becomes missing."""
        return _bounds(
            columns,
            {c: lo for c, (lo, _) in (self.limits or {}).items()},
            {c: hi for c, (_, hi) in (self.limits or {}).items()},
        )

    def transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_in_")
        frame = self._frame(X)
        for column, (low, high) in (self.limits or {}).items():
            values = frame[column].astype(float)
            frame[column] = values.where(values.isna() | values.between(low, high))
        return frame


@dataclass(frozen=True)
class Fences:
    """Tukey fences of one column: values below `lower` or above `upper` are outliers."""

    lower: float
    upper: float

    def outside(self, values: pd.Series) -> pd.Series:
        """True where a value lies beyond the fences (missing values are not)."""
        return (values < self.lower) | (values > self.upper)


def tukey_fences(values: pd.Series, *, iqr_factor: float, min_distinct: int) -> Fences | str:
    """Q1 - k * IQR and Q3 + k * IQR of the present values, or why the column gets none.

    A column with fewer than `min_distinct` distinct values is a code or a small
    count (a 0-4 symptom grade), where a rare value is information, not an
    outlier. With zero spread (Q1 = Q3) the fences would collapse onto one value
    and clip every other value to it, turning the column constant. The outlier
    limiter and the validation check both ask this function, so they agree.

    Returns:
        The fences, or the reason the column is not limited.
    """
    present = pd.to_numeric(values, errors="coerce").dropna()
    if present.empty:
        return "no values"
    distinct = int(present.nunique())
    if distinct < min_distinct:
        values_word = "value" if distinct == 1 else "values"
        return f"discrete: {distinct} distinct {values_word} (< {min_distinct})"
    q1, q3 = float(present.quantile(0.25)), float(present.quantile(0.75))
    if q1 == q3:
        return f"zero spread: Q1 = Q3 = {plain_number(q1)}"
    spread = iqr_factor * (q3 - q1)
    return Fences(lower=q1 - spread, upper=q3 + spread)


class OutlierLimiter(_ColumnwiseTransformer):
    """Tukey fences learned on the training data: clip beyond them, or set to missing.

    The fences are Q1 - k * IQR and Q3 + k * IQR of the training values; with
    k = 3 they only catch values far out of the bulk, so well-behaved columns
    pass untouched. Columns that `tukey_fences` gives no fences (discrete, or
    zero spread) pass unchanged; `skipped_` says why, per column.

    Args:
        columns: the continuous columns to limit.
        iqr_factor: k above.
        min_distinct: columns with fewer distinct training values are not limited.
        strategy: "clip" or "missing" (imputed afterwards).
    """

    def __init__(
        self,
        columns: list[str] | None = None,
        *,
        iqr_factor: float = 3.0,
        min_distinct: int = 10,
        strategy: str = "clip",
    ):
        self.columns = columns
        self.iqr_factor = iqr_factor
        self.min_distinct = min_distinct
        self.strategy = strategy

    def fit(self, X: Any, y: Any = None) -> OutlierLimiter:
        if self.strategy not in OUTLIER_STRATEGIES:
            raise ValueError(f"strategy: {self.strategy!r} is not one of {OUTLIER_STRATEGIES}")
        if not self.iqr_factor > 0:
            raise ValueError(f"iqr_factor: {self.iqr_factor} must be positive")
        frame = self._frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.lower_: dict[str, float] = {}
        self.upper_: dict[str, float] = {}
        self.skipped_: dict[str, str] = {}  # column -> why it is not limited
        for column in self.columns or []:
            fences = tukey_fences(
                frame[column].astype(float),
                iqr_factor=self.iqr_factor,
                min_distinct=self.min_distinct,
            )
            if isinstance(fences, Fences):
                self.lower_[column], self.upper_[column] = fences.lower, fences.upper
            else:
                self.skipped_[column] = fences
        self.limited_ = self.count_limited(frame)
        return self

    def replay_bounds(self, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per column of `columns`, the learned fences (infinite where none, skipped
        columns included), for the fast path: clipped to them or set missing, as
        `strategy` says."""
        return _bounds(columns, self.lower_, self.upper_)

    def count_limited(self, X: Any) -> dict[str, int]:
        """Values per limited column that transform() would clip or blank."""
        frame = self._frame(X)
        return {
            c: int(Fences(self.lower_[c], self.upper_[c]).outside(frame[c]).sum())
            for c in self.lower_
        }

    def transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "lower_")
        frame = self._frame(X)
        for column in self.lower_:
            values = frame[column].astype(float)
            low, high = self.lower_[column], self.upper_[column]
            if self.strategy == "clip":
                frame[column] = values.clip(low, high)
            else:
                frame[column] = values.where(values.isna() | values.between(low, high))
        return frame


def make_preprocessor(
    schema: Schema,
    *,
    outlier_iqr_factor: float = 3.0,
    outlier_min_distinct: int = 10,
    outlier_strategy: str = "clip",
    scale: bool = True,
) -> Pipeline:
    """Entry errors -> missing, outliers limited, impute, scale, encode categories.

    Outliers are limited only in continuous columns with at least
    `outlier_min_distinct` distinct training values and a non-zero IQR
    (`tukey_fences`).

    Categories are one-hot encoded over the schema's listed values, so a value
    the schema allows but training never saw still gets its own column (all
    zeros in training, so the model gives it no weight); a value outside the
    schema encodes as all zeros. With `ordered: true` a category becomes its
    position in the listed values.
    """
    limits = {
        name: schema.columns[name].range
        for name in schema.continuous_features
        if schema.columns[name].range is not None
    }
    limits.update({name: (0.0, 1.0) for name in schema.binary_features})
    continuous = schema.continuous_features
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    blocks: list[tuple[str, Any, list[str]]] = []
    if continuous:
        blocks.append(("continuous", Pipeline(numeric_steps), continuous))
    if schema.binary_features:
        blocks.append(("binary", SimpleImputer(strategy="most_frequent"), schema.binary_features))
    for name in schema.categorical_features:
        categories = [list(map(str, schema.columns[name].values or ()))]
        blocks.append(
            (
                name,
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        (
                            "onehot",
                            OneHotEncoder(
                                categories=categories,
                                handle_unknown="ignore",
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                [name],
            )
        )
    for name in schema.ordinal_features:
        categories = [list(map(str, schema.columns[name].values or ()))]
        encoder = OrdinalEncoder(
            categories=categories, handle_unknown="use_encoded_value", unknown_value=np.nan
        )
        steps = [("ordinal", encoder), ("impute", SimpleImputer(strategy="median"))]
        if scale:
            steps.append(("scale", StandardScaler()))
        blocks.append((name, Pipeline(steps), [name]))
    columns = ColumnTransformer(blocks, remainder="drop", verbose_feature_names_out=False)
    pipeline = Pipeline(
        [
            (ENTRY_ERRORS, RangeGuard(limits)),
            (
                OUTLIERS,
                OutlierLimiter(
                    continuous,
                    iqr_factor=outlier_iqr_factor,
                    min_distinct=outlier_min_distinct,
                    strategy=outlier_strategy,
                ),
            ),
            (COLUMNS, columns),
        ]
    )
    return pipeline.set_output(transform="pandas")


def preprocess_summary(
    preprocessor: Pipeline,
    *,
    train: pd.DataFrame,
    test: pd.DataFrame,
    dropped: dict[str, int],
    group: str | None = None,
) -> dict[str, Any]:
    """What preprocessing did, per column: entry errors blanked, outliers limited or why not."""
    guard: RangeGuard = preprocessor.named_steps[ENTRY_ERRORS]
    limiter: OutlierLimiter = preprocessor.named_steps[OUTLIERS]
    guarded_test = guard.transform(test)
    per_column: dict[str, dict[str, Any]] = {}
    for column in guard.feature_names_in_:
        entry = {
            "missing_train": int(train[column].isna().sum()),
            "missing_test": int(test[column].isna().sum()),
            "entry_errors_train": guard.entry_errors_.get(column, 0),
            "entry_errors_test": guard.count_entry_errors(test).get(column, 0),
        }
        if column in limiter.lower_:
            entry.update(
                limits=[round(limiter.lower_[column], 6), round(limiter.upper_[column], 6)],
                limited_train=limiter.limited_[column],
                limited_test=limiter.count_limited(guarded_test)[column],
            )
        elif column in limiter.skipped_:
            entry["not_limited"] = limiter.skipped_[column]
        per_column[str(column)] = entry
    return {
        "rows_dropped": dropped,
        "rows": {"train": len(train), "test": len(test)},
        "split": split_facts(train, test, group=group),
        "outlier_strategy": limiter.strategy,
        "columns": per_column,
    }


@dataclass(frozen=True)
class Preprocessed:
    """The preprocess stage's result: raw split rows, the preprocessor fitted on train."""

    train: pd.DataFrame
    test: pd.DataFrame
    preprocessor: Pipeline
    summary: dict[str, Any]
    keep: list[str]  # columns carried through unchanged (targets, group, ids)

    def transformed(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Preprocessed features beside the kept columns, for inspection and the features stage."""
        features = self.preprocessor.transform(rows)
        return pd.concat([features, rows[self.keep]], axis=1).reset_index(drop=True)


FEEDBACK_ID = "prediction_id"  # the feedback file's column beyond the schema's


def feedback_side(
    rows: pd.DataFrame, *, group: str | None, test_size: float, seed: int
) -> pd.Series:
    """True for the feedback rows that belong to the test split: a stable hash of the
    row's patient (`group`, where the row has one) or else of its prediction id, so a
    row's side never changes between retrainings."""
    keys = rows[FEEDBACK_ID].astype(str)
    if group is not None and group in rows:
        keys = rows[group].astype(str).where(rows[group].notna(), keys)

    def fraction(key: str) -> float:
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return keys.map(fraction) < test_size


def _with_feedback(
    train: pd.DataFrame,
    test: pd.DataFrame,
    feedback: pd.DataFrame,
    schema: Schema,
    *,
    test_size: float,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Add labelled feedback rows to each side of the base split.

    A feedback row that repeats a base row (or an earlier feedback row) is dropped:
    the same record on both sides would be scored on what was learned. A patient
    already in the base data keeps that side; every other row takes the stable side
    `feedback_side` gives it, so it is on the same side in every retraining.
    """
    labelled, dropped = drop_unusable_rows(feedback[[*schema.required, FEEDBACK_ID]], schema)
    if schema.group is not None:
        # a record that did not carry its patient is a patient of its own (the service
        # takes features only, so logged records carry none)
        ids = "prediction:" + labelled[FEEDBACK_ID].astype(str)
        labelled[schema.group] = (
            labelled[schema.group].astype(object).where(labelled[schema.group].notna(), ids)
        )
    seen = set(pd.util.hash_pandas_object(pd.concat([train, test])[schema.required], index=False))
    row_hash = pd.util.hash_pandas_object(labelled[schema.required], index=False)
    repeats = row_hash.isin(seen) | row_hash.duplicated()
    labelled = labelled[~repeats.to_numpy()]
    in_test = feedback_side(labelled, group=schema.group, test_size=test_size, seed=seed)
    if schema.group is not None:
        base_side = pd.concat(
            [pd.Series(False, index=train[schema.group]), pd.Series(True, index=test[schema.group])]
        )
        base_side = base_side[~base_side.index.duplicated()]
        known = labelled[schema.group].isin(base_side.index)
        in_test = in_test.where(~known, labelled[schema.group].map(base_side))
    in_test = in_test.astype(bool)
    rows = labelled[schema.required]
    facts = {
        "rows": len(feedback),
        "unusable": dropped.get("missing_target", 0) + dropped["duplicates"],
        "repeating_data": int(repeats.sum()),
        "train": int((~in_test).sum()),
        "test": int(in_test.sum()),
    }
    return (
        pd.concat([train, rows[~in_test]], ignore_index=True),
        pd.concat([test, rows[in_test]], ignore_index=True),
        facts,
    )


def preprocess_data(
    raw: pd.DataFrame,
    schema: Schema,
    *,
    test_size: float,
    seed: int,
    outlier_iqr_factor: float,
    outlier_min_distinct: int,
    outlier_strategy: str,
    scale: bool,
    feedback: pd.DataFrame | None = None,
) -> Preprocessed:
    """Drop unusable rows, split FIRST, then fit the preprocessor on the train rows only.

    `feedback` (labelled predictions, `migraine_ml.retraining.feedback`) joins after
    the base rows are split, so the base split is the same with or without it.
    """
    usable, dropped = drop_unusable_rows(raw, schema)
    train, test = split_train_test(
        usable,
        target=schema.classification_target,
        group=schema.group,
        test_size=test_size,
        seed=seed,
    )
    feedback_facts = None
    if feedback is not None and len(feedback):
        train, test, feedback_facts = _with_feedback(
            train, test, feedback, schema, test_size=test_size, seed=seed
        )
    preprocessor = make_preprocessor(
        schema,
        outlier_iqr_factor=outlier_iqr_factor,
        outlier_min_distinct=outlier_min_distinct,
        outlier_strategy=outlier_strategy,
        scale=scale,
    ).fit(train[schema.features])
    summary = preprocess_summary(
        preprocessor, train=train, test=test, dropped=dropped, group=schema.group
    )
    if feedback_facts is not None:
        summary["feedback"] = feedback_facts
    logger.info("dropped %s; %s", dropped, summary["split"])
    keep = [c for c in schema.required if c not in schema.features]
    return Preprocessed(
        train.reset_index(drop=True), test.reset_index(drop=True), preprocessor, summary, keep
    )
