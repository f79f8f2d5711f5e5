"""What the report says around the numbers: the known ceiling, multi-class averaging,
patient-level splitting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from migraine_ml.persist import file_md5

# oracle.json key -> report metric, per task
CEILING_KEYS = {
    "classification": {
        "roc_auc": "roc_auc",
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced_accuracy",
        "log_loss": "log_loss",
        "brier": "brier",
    },
    "regression": {"severity_r2": "r2", "severity_rmse": "rmse"},
}


def multiclass_note(classes: list[Any], y_test: np.ndarray) -> str:
    """How multi-class scores are averaged, and which classes the test rows lack."""
    counts = np.bincount(np.asarray(y_test, dtype=int), minlength=len(classes))
    absent = [str(c) for c, n in zip(classes, counts, strict=True) if n == 0]
    rarest = min((n, str(c)) for c, n in zip(classes, counts, strict=True) if n > 0)
    return (
        f"{len(classes)} classes: precision, recall and F1 are macro averages (each class "
        "counts equally), ROC-AUC the macro one-vs-rest average over the classes present "
        f"in the test rows; the rarest, '{rarest[1]}', has {rarest[0]} test rows"
        + (f"; absent from the test rows: {', '.join(absent)}" if absent else "")
        + "."
    )


def grouping_note(group: str, grouping: dict[str, Any]) -> str:
    """The report's sentence on patient-level splitting, with the counts that prove it."""
    split = grouping["split"]
    straddling = split["groups_on_both_sides"] + sum(
        facts["groups"]["groups_on_both_sides"]
        for facts in grouping["cv"].values()
        if "groups" in facts
    )
    folds = ", ".join(
        f"{task}: {facts['folds']} {facts['splitter']} folds"
        for task, facts in grouping["cv"].items()
    )
    verdict = (
        "no patient is scored on rows it was trained on"
        if straddling == 0
        else f"WARNING: {straddling} '{group}' values straddle a split, so scores are inflated"
    )
    return (
        f"Split by '{group}': every row of one '{group}' stays on one side of the train/test "
        f"split ({split['groups']['train']} in train, {split['groups']['test']} in test, "
        f"{split['groups_on_both_sides']} on both) and of every cross-validation fold ({folds}); "
        f"{verdict}. Row-level splits of repeated measures would leak a patient into the test "
        "rows and inflate every score."
    )


def matching_oracle(oracle_path: Path, data_path: str | Path) -> tuple[dict | None, str]:
    """The oracle, only if it describes this very data file, and a note saying which."""
    if not oracle_path.exists():
        return None, "No oracle: there is no known ceiling for this data."
    oracle = json.loads(oracle_path.read_text())
    if oracle.get("data_md5") != file_md5(data_path):
        return None, (
            "No known ceiling: this is not the generated cohort, so the best "
            "achievable score is unknown (the oracle is not compared)."
        )
    return oracle, (
        "Ceiling: the true generating model's scores on the whole generated "
        f"cohort ({oracle['rows']} rows; the test split is a sample of it, so "
        "expect a little sampling noise)."
    )


def ceiling_of(oracle: dict | None, task: str) -> dict | None:
    if oracle is None:
        return None
    return {metric: oracle[key] for key, metric in CEILING_KEYS[task].items() if key in oracle}
