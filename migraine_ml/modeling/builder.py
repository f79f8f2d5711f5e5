"""The features stage's work: fit the feature builder on the preprocessed train rows.

Kept apart from `features` (the transformers), which the service imports to
load models: fitting needs the task's target rows, which serving never does.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from migraine_ml.data.schema import Schema
from migraine_ml.modeling.features import applicable_config, make_feature_builder, selection_report
from migraine_ml.modeling.tasks import task_data

logger = logging.getLogger(__name__)


def fit_feature_builder(
    train: pd.DataFrame, schema: Schema, config: dict[str, Any], *, seed: int
) -> tuple[Pipeline, dict[str, Any]]:
    """Fit the feature builder on the preprocessed train rows; also its selection report.

    Selection scores need one target: the schema's first task's (the class label
    when there is one), on the rows where it is defined (`tasks.task_data`).

    Args:
        train: preprocessed train rows (engineered column names, plus the targets).
        config: params.yaml's `features` block; parts naming absent columns are
            skipped with a warning (listed in the report as `skipped_config`).
    """
    features = [c for c in train.columns if c not in schema.columns or c in schema.features]
    usable, skipped = applicable_config(config, features)
    for message in skipped:
        logger.warning("%s", message)
    first = task_data(schema, train)[0]
    builder = make_feature_builder(**usable, task=first.name, seed=seed)
    builder.fit(first.rows[features], first.y)
    target = schema.classification_target or schema.regression_target
    report = selection_report(builder) | {"skipped_config": skipped, "target": target}
    logger.info("kept %d features: %s", report["n_features"], ", ".join(report["selected"]))
    return builder, report
