"""One drift check over logged traffic: the window the prediction log holds, judged by `drift`.

The service's monitor (app/monitor.py) and `migraine drift-report` both come
here: they read rows from the prediction log (`prediction_log.LogDatabase.recent`
or `.since`), and `check_window` turns those rows into the inputs, predictions
and labels `check_drift` compares with the training reference.

Prediction and performance drift are judged on the rows the served models
answered (their versions), because the reference profiles those models'
outputs: rows a previous model predicted would mix two distributions. Input
drift uses every row of the window, whichever model answered it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from migraine_ml.monitoring.drift import DriftReference, DriftReport, check_drift
from migraine_ml.monitoring.reference import category_key
from migraine_ml.pipeline import CHAMPION

CLASSIFICATION = "classification"
REGRESSION = "regression"
VALUE = "value"  # the regression task's one output in the reference


@dataclass(frozen=True)
class DriftSettings:
    """When a check runs and what it judges (the service's MIGRAINE_DRIFT_* settings).

    A check runs every `check_every` logged predictions (but not within
    `min_seconds` of the last) or every `interval` seconds, whichever comes
    first, over the last `window` rows; nothing is
    judged on fewer than `min_window` rows, and performance not on fewer than
    `min_labels` labels.
    """

    check_every: int = 500
    interval: float = 60.0
    # never two checks closer than this: at 1,000 predictions/s check_every alone would
    # mean two checks a second, far more often than Prometheus scrapes their result
    min_seconds: float = 5.0
    window: int = 1000
    min_window: int = 200
    min_labels: int = 200
    metric: str = "accuracy"
    max_drop: float = 0.05

    def __post_init__(self) -> None:
        problems = [
            f"{name} {value!r} must be positive"
            for name, value in (
                ("check_every", self.check_every),
                ("interval", self.interval),
                ("window", self.window),
                ("min_window", self.min_window),
                ("min_labels", self.min_labels),
                ("min_seconds", self.min_seconds),
            )
            if not value > 0
        ]
        if self.window < self.min_window:
            problems.append(
                f"window {self.window} is smaller than min_window {self.min_window}: "
                "no check could ever judge anything"
            )
        if problems:
            raise ValueError("drift settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def champion_figure(metrics: Mapping[str, Any], metric: str = "accuracy") -> float | None:
    """The champion classifier's `metric` on the test rows (reports/metrics.json), if any."""
    value = metrics.get(CLASSIFICATION, {}).get("champion", {}).get(metric)
    return None if value is None else float(value)


def served_versions(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The champion's version per task, as the service names it (the file md5's first 12)."""
    return {
        entry["task"]: entry["md5"][:12]
        for entry in manifest["models"]
        if entry["rank"] == CHAMPION
    }


def window_inputs(rows: pd.DataFrame, reference: DriftReference) -> pd.DataFrame:
    """The logged raw records as columns, one per reference input (absent fields missing)."""
    names = [feature.name for feature in reference.inputs]
    records = rows["features"].tolist() if len(rows) else []
    frame = pd.DataFrame.from_records(records, columns=names)
    return frame.reindex(columns=names)


def _answered_by(rows: pd.DataFrame, column: str, version: str | None) -> pd.DataFrame:
    return rows if version is None else rows[rows[column] == version]


def window_predictions(
    rows: pd.DataFrame,
    reference: DriftReference,
    versions: Mapping[str, str | None] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Per task in the reference, per output, the served model's logged scores."""
    versions = versions or {}
    scores: dict[str, dict[str, np.ndarray]] = {}
    if CLASSIFICATION in reference.predictions:
        served = _answered_by(rows, "classifier_version", versions.get(CLASSIFICATION))
        probabilities = [p for p in served["probabilities"] if isinstance(p, Mapping)]
        table = pd.DataFrame.from_records(probabilities)
        # the reference spells classes with category_key ("1" for 1.0 or True)
        table.columns = [category_key(column) for column in table.columns]
        scores[CLASSIFICATION] = {
            str(output): table[output].to_numpy(dtype=float)
            if output in table.columns
            else np.array([], dtype=float)
            for output in reference.predictions[CLASSIFICATION]
        }
    if REGRESSION in reference.predictions:
        served = _answered_by(rows, "regressor_version", versions.get(REGRESSION))
        values = pd.to_numeric(served["predicted_value"], errors="coerce")
        scores[REGRESSION] = {VALUE: values.to_numpy(dtype=float, na_value=np.nan)}
    return scores


def check_window(
    rows: pd.DataFrame,
    reference: DriftReference,
    settings: DriftSettings,
    *,
    test_value: float | None = None,
    versions: Mapping[str, str | None] | None = None,
    checked_at: datetime | None = None,
) -> DriftReport:
    """Judge a window of logged predictions (a `LogDatabase.recent`/`since` frame).

    Args:
        versions: the served model version per task; prediction and performance
            drift use only the rows those versions answered (None: every row).
        test_value: the champion's test figure for `settings.metric`.
    """
    predictions = window_predictions(rows, reference, versions)
    outcomes = predicted = None
    if CLASSIFICATION in reference.predictions:
        served = _answered_by(rows, "classifier_version", (versions or {}).get(CLASSIFICATION))
        outcomes = served["outcome"].where(served["outcome"].notna(), None)
        predicted = served["predicted_class"]
    return check_drift(
        reference,
        window_inputs(rows, reference),
        predictions=predictions,
        outcomes=outcomes,
        predicted=predicted,
        test_value=test_value,
        metric=settings.metric,
        checked_at=checked_at,
        min_window=settings.min_window,
        min_labels=settings.min_labels,
        max_drop=settings.max_drop,
    )
