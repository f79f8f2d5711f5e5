"""Drift statistics: a window of live inputs and predictions against the training reference.

The reference is `models/reference.json` (built by `migraine_ml.monitoring.reference`,
whose key constants this module reads). `check_drift` compares one window of
logged rows with it and returns a `DriftReport`.

The rule, with every threshold a keyword argument of `check_drift`:

- Below `min_window` rows (default 200) nothing is computed and nothing is
  flagged: the report says "window too small". With 50 undrifted rows, PSI on
  ten bins exceeds 0.2 about half the time.
- Per feature, on its present (non-missing) values in a window of at least
  `min_window` rows (a change in the missing share itself is not compared); a
  feature with fewer than `MIN_PRESENT` (90 %) of `min_window` present values
  is not judged (its statistics are None): a few missing cells are normal, but
  6 values of an input most clients leave out would give a PSI of 4. The same
  holds for each model output (e.g. the first rows a newly served model
  answered).
  - PSI over the reference's bins (numeric: its quantile bins with open outer
    edges; categorical: its values, plus one bin per value never seen in
    training), empty bins floored at `floor` (1e-4).
  - A test: numeric features get a two-sample KS test of the live values
    against the reference `sample`; categorical features a two-sample
    chi-square test of the live counts against the reference counts (its
    shares times its `rows`: the training frequencies are an estimate too, and
    treating them as exact made ~4.4 % of undrifted 500-row windows flag).
    Values with fewer than 5 expected rows on either side are pooled, rarest
    first, with the next rarest, so the chi-square approximation holds. The
    test is significant when
    p < `alpha` / m (Bonferroni), m being the number of features tested in this
    check, numeric and categorical together: `alpha` (0.05) then bounds the
    chance that an undrifted window flags any feature at all.
  - An effect size, because with enough rows any test rejects: numeric, the
    Wasserstein distance between live and reference values divided by the
    reference std, both on values limited to the reference's Tukey fences
    (k = 3, as the preprocessor limits them). The reference holds no entry
    errors (it profiles only values the service accepts), and on the default
    schema every fence lies beyond the column's range, so there the limit
    changes nothing; it stays for columns the schema gives no range (own
    data), where one genuine far outlier in the 500-value sample would add its
    distance to every check and inflate the std, and for windows of rows that
    never passed the validator. Categorical, Cohen's w of the live shares
    against the pooled ones, sqrt(chi2 * N / (n * n_reference)) over the
    test's bins (N = n + n_reference; sqrt(chi2 / n) of a goodness-of-fit test
    as the reference grows). (Train's
    500-value sample caps the KS test's power near that of 500 rows whatever
    the window; the chi-square has no such cap, and the floor is what keeps a
    huge window, or a larger sample, from flagging trivia.)
  - **drift** when PSI > `psi_drift` (0.2), or when the test is significant
    **and** the effect is >= `effect_floor` (0.1: a tenth of a standard
    deviation, or Cohen's "small" w). **warning** when not drifted and PSI >
    `psi_warning` (0.1).
- Prediction drift, per task and output (a classifier's outputs are its
  classes' probabilities, a regressor's the predicted value): PSI of the live
  scores on the reference's bins for that output; drift above `psi_drift`,
  warning above `psi_warning`. The task drifts when any output does.
- Performance drift (`performance_drift`): the window's `metric` (accuracy
  unless told otherwise) on the rows that have a label, against the test
  figure; drift when it is more than `max_drop` (0.05) below, in absolute
  points, and only once `min_labels` labels (200) exist. Absolute, because
  "7 in 10 right instead of 3 in 4" is what a clinician reads and acts on, and a
  fixed number of points means the same thing on every model: a relative 5 %
  fires at 2.75 points on a 0.55 baseline, inside the noise of 200 labels (sd
  3.5 points), and waits for 4.75 points on a 0.95 baseline, where the error
  rate has nearly doubled. With 200 labels and a 0.75 test accuracy, a
  5-point drop is 1.6 sd of the window's accuracy: about 5 % false alarms.

A report's `drifted_features` are what each prediction's `drift_warning` names.

The drift rule, its statistics and their results read together; hence the
module's length (~600 lines).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import chdtrc
from scipy.stats import ks_2samp, wasserstein_distance

from migraine_ml.data.preprocess import Fences, tukey_fences
from migraine_ml.monitoring.reference import (
    EDGES,
    INPUTS,
    KIND,
    MEAN,
    NUMERIC,
    PREDICTIONS,
    ROWS,
    SAMPLE,
    SHARES,
    bin_shares,
    category_key,
    value_counts,
)

__all__ = [
    "WINDOW_TOO_SMALL",
    "DriftReference",
    "DriftReport",
    "FeatureDrift",
    "OutputDrift",
    "PerformanceDrift",
    "PredictionDrift",
    "category_key",  # owned by reference.py, re-exported for the monitor
    "check_drift",
    "performance_drift",
    "psi",
]

WINDOW_TOO_SMALL = "window too small"
# The preprocessor's outlier rule (OutlierLimiter's defaults): the effect size is
# measured on values limited the way the model sees them.
OUTLIER_IQR_FACTOR = 3.0
OUTLIER_MIN_DISTINCT = 10
# A feature or output is judged on at least this share of min_window present values.
MIN_PRESENT = 0.9
# Cochran's rule for the chi-square approximation: every expected count >= 5.
MIN_EXPECTED = 5.0


def _number(value: float | None) -> float | None:
    """A JSON-safe number: None for a missing or non-finite value."""
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class FeatureDrift:
    """One input feature in one window; None where a statistic does not apply."""

    name: str
    kind: str  # NUMERIC or CATEGORICAL
    rows: int  # present (non-missing) live values
    psi: float | None
    ks_p: float | None  # numeric, raw p-value (significant below DriftReport.test_alpha)
    chi2_p: float | None  # categorical, raw p-value
    effect: float | None  # Wasserstein / std (numeric) or Cohen's w (categorical)
    drift: bool
    warning: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "psi": _number(self.psi),
            "ks_p": _number(self.ks_p),
            "chi2_p": _number(self.chi2_p),
            "effect": _number(self.effect),
            "drift": self.drift,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class OutputDrift:
    """One model output's live scores (a class's probability or the value) in one window."""

    output: str
    rows: int  # present (non-missing) live scores
    psi: float | None
    mean: float | None
    reference_mean: float | None
    drift: bool
    warning: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": _number(self.psi),
            "mean": _number(self.mean),
            "reference_mean": _number(self.reference_mean),
            "drift": self.drift,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class PredictionDrift:
    """One task's outputs in one window: drifted when any output did."""

    task: str
    rows: int  # live rows with a score (the most of any output)
    outputs: tuple[OutputDrift, ...]
    drift: bool
    warning: bool  # not drifted, and some output warns

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "drift": self.drift,
            "warning": self.warning,
            "outputs": {o.output: o.to_dict() for o in self.outputs},
        }


@dataclass(frozen=True)
class PerformanceDrift:
    """The window's primary metric on its labelled rows against the test figure."""

    metric: str
    labels: int
    min_labels: int
    value: float | None  # shown from the first label, judged from min_labels on
    test_value: float | None
    drop: float | None  # test_value - value, in the metric's units (0.05 = 5 points)
    evaluated: bool
    drift: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "labels": self.labels,
            "min_labels": self.min_labels,
            "value": _number(self.value),
            "test_value": _number(self.test_value),
            "drop": _number(self.drop),
            "evaluated": self.evaluated,
            "drift": self.drift,
        }


@dataclass(frozen=True)
class DriftReport:
    """One drift check: the window, every feature, the predictions and the performance."""

    checked_at: datetime
    window: int  # rows in the window
    min_window: int
    features: tuple[FeatureDrift, ...]
    prediction: tuple[PredictionDrift, ...]
    performance: PerformanceDrift | None
    drifted: bool  # any feature, prediction or performance drift
    test_alpha: float | None = None  # the per-test level after Bonferroni
    note: str | None = None  # WINDOW_TOO_SMALL, with the counts, when nothing was checked

    @property
    def drifted_features(self) -> list[str]:
        """The features flagged in this window: a prediction's `drift_warning`."""
        return [feature.name for feature in self.features if feature.drift]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "window": self.window,
            "min_window": self.min_window,
            "note": self.note,
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "test_alpha": _number(self.test_alpha),
            "features": {feature.name: feature.to_dict() for feature in self.features},
            "prediction": {p.task: p.to_dict() for p in self.prediction},
            "performance": None if self.performance is None else self.performance.to_dict(),
        }


def psi(
    reference_shares: Sequence[float] | np.ndarray,
    current_shares: Sequence[float] | np.ndarray,
    *,
    floor: float = 1e-4,
) -> float:
    """Population stability index: sum of (current - reference) * ln(current / reference).

    Shares below `floor` (an empty bin) count as `floor`, so one empty bin gives
    a large but finite term instead of infinity.
    """
    reference = np.asarray(reference_shares, dtype=float)
    current = np.asarray(current_shares, dtype=float)
    if reference.shape != current.shape:
        raise ValueError(
            f"psi: {reference.size} reference shares but {current.size} current shares, "
            "expected one per bin on both sides"
        )
    reference = np.maximum(reference, floor)
    current = np.maximum(current, floor)
    return float(np.sum((current - reference) * np.log(current / reference)))


@dataclass(frozen=True, eq=False)
class _NumericInput:
    name: str
    edges: list[float]
    shares: list[float]
    sample: np.ndarray
    fences: Fences | None  # the reference's Tukey fences, None for a discrete column
    limited_sample: np.ndarray  # the sample limited to the fences
    scale: float  # std of limited_sample

    @classmethod
    def from_profile(cls, name: str, profile: Mapping[str, Any]) -> _NumericInput:
        sample = np.asarray(profile[SAMPLE], dtype=float)
        fences = None
        if sample.size:
            found = tukey_fences(
                pd.Series(sample), iqr_factor=OUTLIER_IQR_FACTOR, min_distinct=OUTLIER_MIN_DISTINCT
            )
            fences = found if isinstance(found, Fences) else None
        limited = sample if fences is None else np.clip(sample, fences.lower, fences.upper)
        scale = float(np.std(limited)) if sample.size else 0.0
        return cls(
            name, list(profile[EDGES]), list(profile[SHARES]), sample, fences, limited, scale
        )

    def effect(self, current: np.ndarray) -> float:
        """Wasserstein distance / reference std, on values limited to the reference's fences."""
        if self.fences is not None:
            current = np.clip(current, self.fences.lower, self.fences.upper)
        distance = float(wasserstein_distance(current, self.limited_sample))
        if self.scale == 0:
            return 0.0 if distance == 0 else math.inf
        return distance / self.scale


@dataclass(frozen=True)
class _CategoricalInput:
    name: str
    kind: str
    shares: dict[str, float]  # keyed by category_key
    rows: int  # the training values the shares were counted on

    @classmethod
    def from_profile(cls, name: str, profile: Mapping[str, Any]) -> _CategoricalInput:
        if ROWS not in profile:
            raise ValueError(
                f"reference: input '{name}' has no '{ROWS}', expected the training count "
                "the chi-square test needs; rerun the train stage"
            )
        shares: dict[str, float] = {}
        for value, share in profile[SHARES].items():
            key = category_key(value)  # older files spell binaries "0.0"/"1.0"
            shares[key] = shares.get(key, 0.0) + float(share)
        return cls(name, profile[KIND], shares, int(profile[ROWS]))


def _prediction_profiles(reference: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """reference[PREDICTIONS] as {task: {output: profile}}, output keys by category_key."""
    tasks = {}
    for task, outputs in reference.get(PREDICTIONS, {}).items():
        if not isinstance(outputs, Mapping) or EDGES in outputs:
            raise ValueError(
                f"reference: predictions['{task}'] is not {{output: profile}} (a file from "
                "before per-class profiles?), expected a profile per class or 'value'; "
                "rerun the train stage"
            )
        tasks[task] = {category_key(output): profile for output, profile in outputs.items()}
    return tasks


@dataclass(frozen=True)
class DriftReference:
    """models/reference.json made ready for repeated checks.

    Arrays, Tukey fences and scales are computed once here rather than in every
    check; the service builds one when it loads the models.
    """

    inputs: tuple[_NumericInput | _CategoricalInput, ...]
    predictions: Mapping[str, Mapping[str, Mapping[str, Any]]]  # {task: {output: profile}}

    @classmethod
    def from_dict(cls, reference: Mapping[str, Any]) -> DriftReference:
        inputs = tuple(
            _NumericInput.from_profile(name, profile)
            if profile[KIND] == NUMERIC
            else _CategoricalInput.from_profile(name, profile)
            for name, profile in reference[INPUTS].items()
        )
        return cls(inputs, _prediction_profiles(reference))


def _two_sample(
    counts: np.ndarray, reference_shares: np.ndarray, reference_rows: int
) -> tuple[float, float]:
    """Chi-square p-value and Cohen's w of live counts against the reference's, or NaNs.

    The 2 x k table (reference counts = shares * rows, live counts) is tested for
    homogeneity. Values whose smaller expected count is below MIN_EXPECTED are
    pooled, rarest first, with the next rarest.
    """
    rows = counts.sum()
    if rows == 0 or reference_rows == 0 or reference_shares.sum() == 0:
        return math.nan, math.nan
    # shares are count / rows unrounded, so rounding recovers the exact training counts
    reference = np.round(reference_shares / reference_shares.sum() * reference_rows)
    reference_total = reference.sum()
    total = rows + reference_total
    smaller = min(rows, reference_total)
    bins = sorted(
        zip((reference + counts).tolist(), reference.tolist(), counts.tolist(), strict=True)
    )
    while len(bins) > 1 and smaller * bins[0][0] / total < MIN_EXPECTED:
        (total_a, reference_a, live_a), (total_b, reference_b, live_b) = bins[0], bins[1]
        bins = sorted([(total_a + total_b, reference_a + reference_b, live_a + live_b), *bins[2:]])
    if len(bins) < 2:
        return math.nan, math.nan
    column, pooled_reference, pooled_live = (np.array(c) for c in zip(*bins, strict=True))
    observed = np.array([pooled_live, pooled_reference])
    expected = np.outer([rows, reference_total], column / total)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    # chdtrc is the chi-square survival function: scipy.stats.chi2_contingency gives the
    # same p-value but spends about a millisecond per call checking its arguments.
    p_value = float(chdtrc(len(bins) - 1, statistic))
    return p_value, math.sqrt(statistic * total / (rows * reference_total))


@dataclass(frozen=True)
class _Statistics:
    """A feature's statistics before the Bonferroni level is known."""

    name: str
    kind: str
    rows: int
    psi: float | None
    p_value: float | None
    effect: float | None


def _numeric_statistics(
    feature: _NumericInput, values: pd.Series, *, floor: float, min_window: int
) -> _Statistics:
    present = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = present[~np.isnan(present)]
    rows = int(present.size)
    if rows < MIN_PRESENT * min_window:  # a mostly-missing input: its few values are not judged
        return _Statistics(feature.name, NUMERIC, rows, None, None, None)
    value = psi(feature.shares, bin_shares(present, feature.edges), floor=floor)
    if feature.sample.size == 0:
        return _Statistics(feature.name, NUMERIC, rows, value, None, None)
    p_value = float(ks_2samp(present, feature.sample).pvalue)
    return _Statistics(feature.name, NUMERIC, rows, value, p_value, feature.effect(present))


def _categorical_statistics(
    feature: _CategoricalInput, values: pd.Series, *, floor: float, min_window: int
) -> _Statistics:
    # value_counts on the raw values: text conversion first costs a millisecond per column
    live = value_counts(values)
    rows = sum(live.values())
    if rows < MIN_PRESENT * min_window:  # a mostly-missing input: its few values are not judged
        return _Statistics(feature.name, feature.kind, rows, None, None, None)
    # every training value, then each value never seen in training as a bin of its own
    keys = [*feature.shares, *(key for key in live if key not in feature.shares)]
    reference_shares = np.array([feature.shares.get(key, 0.0) for key in keys])
    counts = np.array([live.get(key, 0) for key in keys], dtype=float)
    value = psi(reference_shares, counts / rows, floor=floor)
    p_value, effect = _two_sample(counts, reference_shares, feature.rows)
    if math.isnan(p_value):
        return _Statistics(feature.name, feature.kind, rows, value, None, None)
    return _Statistics(feature.name, feature.kind, rows, value, p_value, effect)


def _output_drift(
    output: str,
    profile: Mapping[str, Any],
    scores: Sequence[float] | np.ndarray,
    *,
    floor: float,
    psi_drift: float,
    psi_warning: float,
    min_window: int,
) -> OutputDrift:
    present = np.asarray(scores, dtype=float)
    present = present[~np.isnan(present)]
    reference_mean = profile.get(MEAN)
    if present.size < MIN_PRESENT * min_window:  # e.g. a newly served model's first rows
        mean = float(present.mean()) if present.size else None
        return OutputDrift(output, int(present.size), None, mean, reference_mean, False, False)
    value = psi(profile[SHARES], bin_shares(present, profile[EDGES]), floor=floor)
    drift = value > psi_drift
    warning = not drift and value > psi_warning
    return OutputDrift(
        output, int(present.size), value, float(present.mean()), reference_mean, drift, warning
    )


def _prediction_drift(
    task: str,
    profiles: Mapping[str, Mapping[str, Any]],
    outputs: Mapping[Any, Sequence[float] | np.ndarray],
    **thresholds: float,
) -> PredictionDrift:
    if not isinstance(outputs, Mapping):
        raise ValueError(
            f"predictions['{task}']: got {type(outputs).__name__}, expected {{output: scores}} "
            f"with outputs among {', '.join(map(repr, profiles))}"
        )
    keyed = {category_key(output): scores for output, scores in outputs.items()}
    unknown = [output for output in keyed if output not in profiles]
    if unknown:
        raise ValueError(
            f"predictions['{task}']: no reference for output {', '.join(map(repr, unknown))}, "
            f"expected one of {', '.join(map(repr, profiles))}"
        )
    results = tuple(
        _output_drift(output, profiles[output], scores, **thresholds)
        for output, scores in keyed.items()
    )
    drift = any(o.drift for o in results)
    warning = not drift and any(o.warning for o in results)
    return PredictionDrift(task, max((o.rows for o in results), default=0), results, drift, warning)


def _accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(truth == predicted))


def _balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in np.unique(truth)]))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
}


def performance_drift(
    outcomes: Sequence[Any] | np.ndarray | pd.Series,
    predicted: Sequence[Any] | np.ndarray | pd.Series,
    *,
    test_value: float | None,
    metric: str = "accuracy",
    max_drop: float = 0.05,
    min_labels: int = 200,
) -> PerformanceDrift:
    """The window's metric on its labelled rows against the test figure (see the module rule).

    Args:
        outcomes: the true class per row of the window, missing (None/NaN) where no
            label has arrived.
        predicted: the class the service predicted for the same rows.
        test_value: the champion's figure on the test split (reports/metrics.json).
    """
    if metric not in METRICS:
        raise ValueError(f"metric '{metric}': expected one of {', '.join(METRICS)}")
    truth = pd.Series(outcomes, dtype=object).reset_index(drop=True)
    guesses = pd.Series(predicted, dtype=object).reset_index(drop=True)
    if len(truth) != len(guesses):
        raise ValueError(
            f"outcomes: {len(truth)} rows but predicted: {len(guesses)}, expected one per row"
        )
    labelled = truth.notna().to_numpy()
    labels = int(labelled.sum())
    value = None
    if labels:
        value = METRICS[metric](
            np.array([category_key(v) for v in truth[labelled]]),
            np.array([category_key(v) for v in guesses[labelled]]),
        )
    evaluated = labels >= min_labels and test_value is not None
    drop = None if value is None or test_value is None else float(test_value) - value
    drift = evaluated and drop is not None and drop > max_drop
    return PerformanceDrift(metric, labels, min_labels, value, test_value, drop, evaluated, drift)


def check_drift(
    reference: Mapping[str, Any] | DriftReference,
    window: pd.DataFrame,
    *,
    predictions: Mapping[str, Mapping[Any, Sequence[float] | np.ndarray]] | None = None,
    outcomes: Sequence[Any] | np.ndarray | pd.Series | None = None,
    predicted: Sequence[Any] | np.ndarray | pd.Series | None = None,
    test_value: float | None = None,
    metric: str = "accuracy",
    checked_at: datetime | None = None,
    min_window: int = 200,
    min_labels: int = 200,
    psi_drift: float = 0.2,
    psi_warning: float = 0.1,
    alpha: float = 0.05,
    effect_floor: float = 0.1,
    max_drop: float = 0.05,
    floor: float = 1e-4,
) -> DriftReport:
    """Compare a window of live rows with the drift reference (the rule is the module's).

    Args:
        reference: models/reference.json as a dict ({INPUTS: ..., PREDICTIONS: ...}), or
            a `DriftReference` built from it once for many checks.
        window: the live raw inputs, one row per prediction, a column per reference input.
        predictions: per task in reference[PREDICTIONS], per output of it (a class, any
            spelling, or "value"), the score of each row: {task: {output: scores}}. Outputs
            left out are not checked.
        outcomes, predicted, test_value: see `performance_drift`; performance is left out
            (None) when `outcomes` is not given.
    """
    checked_at = checked_at or datetime.now(UTC)
    rows = len(window)
    if rows < min_window:
        note = f"{WINDOW_TOO_SMALL}: {rows} rows, at least {min_window} needed"
        return DriftReport(checked_at, rows, min_window, (), (), None, False, note=note)

    if not isinstance(reference, DriftReference):
        reference = DriftReference.from_dict(reference)
    missing = [f.name for f in reference.inputs if f.name not in window.columns]
    if missing:
        raise ValueError(
            f"window: no column {', '.join(map(repr, missing))}, expected every reference input"
        )
    statistics = [
        _numeric_statistics(feature, window[feature.name], floor=floor, min_window=min_window)
        if isinstance(feature, _NumericInput)
        else _categorical_statistics(
            feature, window[feature.name], floor=floor, min_window=min_window
        )
        for feature in reference.inputs
    ]

    tested = sum(s.p_value is not None for s in statistics)
    test_alpha = alpha / tested if tested else None
    features = tuple(
        _judge(
            s,
            test_alpha=test_alpha,
            psi_drift=psi_drift,
            psi_warning=psi_warning,
            effect_floor=effect_floor,
        )
        for s in statistics
    )

    prediction = ()
    if predictions:
        unknown = [task for task in predictions if task not in reference.predictions]
        if unknown:
            raise ValueError(
                f"predictions: no reference for task {', '.join(map(repr, unknown))}, "
                f"expected one of {', '.join(map(repr, reference.predictions))}"
            )
        prediction = tuple(
            _prediction_drift(
                task,
                reference.predictions[task],
                outputs,
                floor=floor,
                psi_drift=psi_drift,
                psi_warning=psi_warning,
                min_window=min_window,
            )
            for task, outputs in predictions.items()
        )

    performance = None
    if outcomes is not None:
        if predicted is None:
            raise ValueError("predicted: missing, expected the predicted class of each row")
        performance = performance_drift(
            outcomes,
            predicted,
            test_value=test_value,
            metric=metric,
            max_drop=max_drop,
            min_labels=min_labels,
        )

    drifted = (
        any(f.drift for f in features)
        or any(p.drift for p in prediction)
        or (performance is not None and performance.drift)
    )
    return DriftReport(
        checked_at, rows, min_window, features, prediction, performance, drifted, test_alpha
    )


def _judge(
    s: _Statistics,
    *,
    test_alpha: float | None,
    psi_drift: float,
    psi_warning: float,
    effect_floor: float,
) -> FeatureDrift:
    significant = (
        s.p_value is not None
        and test_alpha is not None
        and s.p_value < test_alpha
        and s.effect is not None
        and s.effect >= effect_floor
    )
    drift = s.psi is not None and (s.psi > psi_drift or significant)
    warning = s.psi is not None and not drift and s.psi > psi_warning
    numeric = s.kind == NUMERIC
    return FeatureDrift(
        name=s.name,
        kind=s.kind,
        rows=s.rows,
        psi=s.psi,
        ks_p=s.p_value if numeric else None,
        chi2_p=None if numeric else s.p_value,
        effect=s.effect,
        drift=drift,
        warning=warning,
    )
