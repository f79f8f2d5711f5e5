"""The features stage's work: fit the feature builder on the preprocessed train rows.

Kept apart from `features` (the transformers), which the service imports to
load models: fitting needs the task's target rows, which serving never does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from migraine_ml.data.schema import Schema
from migraine_ml.modeling.features import applicable_config, make_feature_builder, selection_report
from migraine_ml.modeling.selection import ALL, POOLS
from migraine_ml.modeling.tasks import task_data

AUTO = "auto"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureConfig:
    """params.yaml's `features` block: what to engineer, and which choices CV makes.

    `n_features: auto` lets cross-validation pick how many columns to keep from
    `n_features_grid` (which may include "all"); `pool: auto` lets it pick,
    per model, between the validated columns alone and the engineered set.
    """

    engineering: dict[str, Any]  # make_feature_builder's keyword arguments
    n_features: int | str
    n_features_grid: tuple[int | str, ...]
    pool: str  # auto | plain | engineered

    @classmethod
    def from_params(cls, features: dict[str, Any]) -> FeatureConfig:
        search_keys = ("n_features", "n_features_grid", "pool")
        engineering = {k: v for k, v in features.items() if k not in search_keys}
        return cls(
            engineering=engineering,
            # without the keys: a fixed top 20 of the engineered set, as before they existed
            n_features=features.get("n_features", 20),
            n_features_grid=tuple(features.get("n_features_grid") or (ALL,)),
            pool=features.get("pool", "engineered"),
        )

    def search(self) -> dict[str, list[Any]]:
        """The selection step's hyperparameters tuning chooses among (SelectTop's names)."""
        space: dict[str, list[Any]] = {}
        if self.n_features == AUTO:
            space["n_features"] = list(self.n_features_grid)
        if self.pool == AUTO:
            space["pool"] = list(POOLS)
        return space


def fit_feature_builder(
    train: pd.DataFrame, schema: Schema, config: FeatureConfig, *, seed: int
) -> tuple[Pipeline, dict[str, Any]]:
    """Fit the feature builder on the preprocessed train rows; also its selection report.

    Selection scores need one target: the schema's first task's (the class label
    when there is one), on the rows where it is defined (`tasks.task_data`).
    Where CV chooses the count or the pool, this builder keeps every engineered
    column, so the report scores them all; training's search sets the choices.

    Args:
        train: preprocessed train rows (engineered column names, plus the targets).
        config: parts naming absent columns are skipped with a warning (listed
            in the report as `skipped_config`).
    """
    features = [c for c in train.columns if c not in schema.columns or c in schema.features]
    usable, skipped = applicable_config(config.engineering, features)
    for message in skipped:
        logger.warning("%s", message)
    first = task_data(schema, train)[0]
    builder = make_feature_builder(
        **usable,
        n_features=ALL if config.n_features == AUTO else config.n_features,
        pool="engineered" if config.pool == AUTO else config.pool,
        plain_columns=features,
        task=first.name,
        seed=seed,
    )
    builder.fit(first.rows[features], first.y)
    target = schema.classification_target or schema.regression_target
    report = selection_report(builder) | {"skipped_config": skipped, "target": target}
    logger.info("kept %d features: %s", report["n_features"], ", ".join(report["selected"]))
    return builder, report
