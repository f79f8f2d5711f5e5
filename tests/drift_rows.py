"""Logged predictions from the cohort generator, and the reference they are judged against."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from migraine_ml.data.schema import Schema
from migraine_ml.data.synthetic import generate_cohort
from migraine_ml.monitoring.prediction_log import LoggedPrediction
from migraine_ml.monitoring.reference import INPUTS, PREDICTIONS, input_profile, prediction_profile

SERVED = "served000001"  # the model version the rows say answered them
TARGETS = ["migraine_occurrence", "migraine_severity"]


@cache
def _training():
    return generate_cohort(rows=4000, prevalence=0.35, seed=0)


def reference_dict(schema: Schema) -> dict:
    """What train writes, from 4,000 rows; the true probability stands in for a model."""
    training = _training()
    p = np.asarray(training.true_probability)
    return {
        INPUTS: input_profile(training.data, schema),
        PREDICTIONS: {
            "classification": {"0": prediction_profile(1 - p), "1": prediction_profile(p)},
            "regression": {
                "value": prediction_profile(training.data["migraine_severity"].fillna(5))
            },
        },
    }


def logged(
    rows: int, seed: int, *, shift: dict[str, float] | None = None, version: str = SERVED
) -> pd.DataFrame:
    """What `LogDatabase.recent` returns for `rows` fresh predictions (no labels)."""
    cohort = generate_cohort(rows=max(rows, 10), prevalence=0.35, seed=seed)  # its least
    data = cohort.data.iloc[:rows]
    for name, amount in (shift or {}).items():
        data = data.assign(**{name: data[name] + amount})
    p = np.asarray(cohort.true_probability)[:rows]
    records = [
        {k: (None if pd.isna(v) else v) for k, v in record.items()}
        for record in data.drop(columns=TARGETS).to_dict("records")
    ]
    return pd.DataFrame(
        {
            "seq": np.arange(1, rows + 1),
            "prediction_id": [f"{seed}-{i}" for i in range(rows)],
            "created": 1.7e9 + np.arange(rows),
            "classifier_version": version,
            "regressor_version": version,
            "features": records,
            "probabilities": [{"0": 1 - float(x), "1": float(x)} for x in p],
            "predicted_class": np.where(p > 0.5, "1", "0"),
            "predicted_value": data["migraine_severity"].fillna(5).to_numpy(dtype=float),
            "outcome": None,
        }
    )


def log_rows(frame: pd.DataFrame, *, created: float) -> list[LoggedPrediction]:
    """`logged` rows as the service writes them, all at `created`."""
    return [
        LoggedPrediction(
            prediction_id=row.prediction_id,
            created=created,
            classifier="stand_in",
            classifier_version=row.classifier_version,
            regressor="stand_in",
            regressor_version=row.regressor_version,
            features=row.features,
            probabilities=row.probabilities,
            predicted_class=row.predicted_class,
            predicted_value=float(row.predicted_value),
            drift_warning=None,
        )
        for row in frame.itertuples()
    ]
