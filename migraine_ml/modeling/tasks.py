"""The learning problems a schema poses: which rows, which target, which classes.

The choice of a task's rows (all rows for the class label; only the rows where
the regression target is defined for the regression target) is made here once
and read by the features, train and evaluate stages alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from migraine_ml.data.schema import Schema, condition_holds


def default_scoring(task: str, n_classes: int = 2) -> str:
    """ROC-AUC for binary, macro-F1 for multi-class, R² for regression."""
    if task == "regression":
        return "r2"
    return "roc_auc" if n_classes == 2 else "f1_macro"


def class_labels(labels: pd.Series, order: tuple[Any, ...] | None = None) -> list[Any]:
    """The classes present in `labels`; whole-number labels as int (1, not 1.0).

    Text classes follow `order` (the schema's listed values) where given, so the
    last listed value of a two-class target is the positive class ("no", "yes");
    otherwise, and for labels the order does not list, they are sorted.
    """
    values = sorted(labels.dropna().unique().tolist())
    if all(isinstance(v, int | float) and float(v).is_integer() for v in values):
        return [int(v) for v in values]
    present = [str(v) for v in values]
    listed = [str(v) for v in order or () if str(v) in present]
    return listed + [v for v in present if v not in listed]


def encode_labels(labels: pd.Series, classes: list[Any]) -> pd.Series:
    """Class labels as codes 0..k-1 in the order of `classes` (1.0 matches class 1)."""
    codes = labels.map({c: i for i, c in enumerate(classes)})
    if codes.isna().any():
        unknown = sorted(map(str, labels[codes.isna()].unique()))
        raise ValueError(f"labels {unknown} are not among the classes {classes}")
    return codes.astype(int)


def regression_rows(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    """Rows where the regression target is defined (its schema condition holds)."""
    target = schema.regression_target
    mask = frame[target].notna()
    condition = schema.columns[target].condition
    if condition:
        mask &= condition_holds(frame, condition)
    return mask


def task_rows(
    task: str, schema: Schema, frame: pd.DataFrame, classes: list[Any] | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """The rows a task learns from and its target: class codes 0..k-1 in the order of
    `classes`, or the regression target as float on the rows where it is defined."""
    if task == "classification":
        return frame, encode_labels(frame[schema.classification_target], classes or [])
    rows = frame[regression_rows(frame, schema)]
    return rows, rows[schema.regression_target].astype(float)


@dataclass(frozen=True)
class TaskData:
    """One target of the schema on one frame: the rows it is defined on and its values."""

    name: str  # "classification" or "regression"
    rows: pd.DataFrame
    y: pd.Series  # class codes 0..k-1, or the regression target as float
    groups: pd.Series | None
    classes: list[Any] | None  # None for regression


def task_data(schema: Schema, frame: pd.DataFrame) -> list[TaskData]:
    """Each target the schema names, classification first, with the classes seen in `frame`."""
    tasks = []
    if schema.classification_target:
        target = schema.classification_target
        classes = class_labels(frame[target], schema.columns[target].values)
        rows, y = task_rows("classification", schema, frame, classes)
        tasks.append(TaskData("classification", rows, y, _groups(rows, schema), classes))
    if schema.regression_target:
        rows, y = task_rows("regression", schema, frame)
        tasks.append(TaskData("regression", rows, y, _groups(rows, schema), None))
    return tasks


def _groups(rows: pd.DataFrame, schema: Schema) -> pd.Series | None:
    return rows[schema.group] if schema.group else None
