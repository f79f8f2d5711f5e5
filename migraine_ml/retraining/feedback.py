"""Labelled predictions from the prediction log as rows of the training data.

A feedback row is the raw record the service received, with the label a client
sent to `POST /feedback` as the target, in the base data's columns, plus the
`prediction_id` it labels. Only labels older than the retraining's label delay
are exported: a label whose outcome window may still be open (a migraine
reported the next morning) is not a settled truth yet.

A label marked `intervened` (the patient acted on the prediction: took medication,
rested) is left out. Its outcome answers a different question from the one the
model was asked, and the model's own warnings would teach the next model that
warned patients stay well: a feedback loop. Such labels are counted, not learnt.

Rows keep their side of the train/test split from one retraining to the next
(`feedback_side` in migraine_ml.data.preprocess, a hash of the prediction id, or
of the patient where the schema has a group): a row that trained one challenger
can never become a test row that judges the next one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_ml.data.preprocess import FEEDBACK_ID
from migraine_ml.data.schema import Schema


def feedback_rows(labelled: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """`LogDatabase.labelled()` rows as training rows: the schema's columns (a column the
    record did not carry is missing) and FEEDBACK_ID, in log order."""
    records = pd.DataFrame.from_records(list(labelled["features"]), index=labelled.index)
    out = pd.DataFrame(index=labelled.index)
    for name in schema.required:
        out[name] = records.get(name, np.nan)
    if schema.classification_target:
        out[schema.classification_target] = labelled["outcome"].to_numpy()
    if schema.regression_target:
        out[schema.regression_target] = labelled["target_value"].to_numpy()
    out[FEEDBACK_ID] = labelled["prediction_id"].to_numpy()
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class Export:
    """What `export_feedback` wrote: the rows in the file, how many are new, and how many
    labels were left out because the patient intervened."""

    path: str
    rows: int
    new_rows: int
    labelled_before: float
    intervened: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def read_feedback(path: str | Path, schema: Schema) -> pd.DataFrame:
    """The feedback file, or no rows (with the right columns) where there is none yet."""
    path = Path(path)
    # ids as text: an all-digit id must not become a number (and lose its zeros)
    readable = path.exists() and path.stat().st_size
    rows = pd.read_csv(path, dtype={FEEDBACK_ID: str}) if readable else pd.DataFrame()
    if rows.empty:  # a header of another schema's columns is no rows either
        return pd.DataFrame(columns=[*schema.required, FEEDBACK_ID])
    return rows


def export_feedback(
    labelled: pd.DataFrame, schema: Schema, path: str | Path, *, labelled_before: float
) -> Export:
    """Write every labelled row to `path` (CSV), the rows already there first, in their
    order; returns how many rows are new. The file only grows: a row once exported
    keeps its place (and so its side of the split)."""
    path = Path(path)
    before = read_feedback(path, schema)
    known = set(before[FEEDBACK_ID].astype(str))
    intervened = labelled["intervened"].to_numpy() == 1
    rows = feedback_rows(labelled[~intervened], schema)
    new = rows[~rows[FEEDBACK_ID].astype(str).isin(known)]
    merged = pd.concat([before, new], ignore_index=True) if len(before) else new
    path.parent.mkdir(parents=True, exist_ok=True)
    merged[[*schema.required, FEEDBACK_ID]].to_csv(path, index=False)
    return Export(str(path), len(merged), len(new), labelled_before, int(intervened.sum()))


def _class_text(value) -> str:
    """A label as /feedback spells it: 1.0 is "1", text stays text."""
    if isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    return str(value)


def log_labelled_traffic(
    log, rows: pd.DataFrame, schema: Schema, *, created: float, labelled: float, prefix: str
) -> None:
    """Write `rows` (records with their true targets) to a prediction log as predictions
    made at `created` and labelled at `labelled`: simulated traffic for tests,
    benchmarks and the docs' sessions. Ids are `prefix` + the row number in hex."""
    from migraine_ml.monitoring.prediction_log import Feedback, LoggedPrediction

    log.migrate()
    ids = [f"{prefix}{i:0{32 - len(prefix)}x}" for i in range(len(rows))]
    features = rows[schema.features].astype(object).where(rows[schema.features].notna(), None)
    log.insert(
        [
            LoggedPrediction(pid, created, None, None, None, None, record, None, None, None, None)
            for pid, record in zip(ids, features.to_dict(orient="records"), strict=True)
        ]
    )
    classification, regression = schema.classification_target, schema.regression_target
    for pid, (_, row) in zip(ids, rows.iterrows(), strict=True):
        outcome = None if classification is None else _class_text(row[classification])
        value = None if regression is None or pd.isna(row[regression]) else float(row[regression])
        log.add_feedback(Feedback(pid, outcome, value, None), received_at=labelled)
