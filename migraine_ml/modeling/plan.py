"""Planning the training: the config, a task per target, and tuning one task's models.

Used by the train stage and, on small data, by evaluation's outer folds, which
rerun the same procedure (`tune_task`) on their own training rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from migraine_ml.data.schema import Schema
from migraine_ml.modeling.builder import FeatureConfig
from migraine_ml.modeling.tasks import TaskData, default_scoring, task_data
from migraine_ml.modeling.tuning import Candidate, train_zoo
from migraine_ml.modeling.zoo import Budget

BUDGET_KEYS = frozenset(Budget.__dataclass_fields__) - {"rows", "n_classes"}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: params.yaml's `train` block and the few other params it uses."""

    cv_folds: int
    scoring: dict[str, str]
    class_weight: str | None
    max_rows: dict[str, int]
    experiment: str
    classifiers: dict[str, dict[str, Any]]
    regressors: dict[str, dict[str, Any]]
    seed: int
    min_class_share: float
    feature_search: dict[str, list[Any]] = field(default_factory=dict)
    budget: dict[str, int] = field(default_factory=dict)  # zoo.Budget's limits

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        """From params.yaml: the `train` block, the seed, the imbalance threshold
        (`validate.min_class_share`) and the selection choices of `features`."""
        train = params["train"]
        return cls(
            cv_folds=train["cv_folds"],
            scoring=dict(train["scoring"]),
            class_weight=train["class_weight"],
            max_rows=dict(train["max_rows"]),
            experiment=train["experiment"],
            classifiers=train["classifiers"],
            regressors=train["regressors"],
            seed=params["seed"],
            min_class_share=params["validate"]["min_class_share"],
            feature_search=FeatureConfig.from_params(params.get("features", {})).search(),
            budget=_budget(train.get("budget") or {}),
        )


def _budget(block: dict[str, int]) -> dict[str, int]:
    unknown = sorted(set(block) - BUDGET_KEYS)
    if unknown:
        raise ValueError(f"train.budget: {unknown} are not among {sorted(BUDGET_KEYS)}")
    return dict(block)


@dataclass(frozen=True)
class Task:
    """A target of the schema set up for tuning: its data, scoring and models."""

    data: TaskData
    scoring: str
    models: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        return self.data.name


def plan_tasks(schema: Schema, train: pd.DataFrame, config: TrainConfig) -> list[Task]:
    """A task per target in the schema; scoring "auto" is ROC-AUC for two classes and
    macro F1 for more. Class weights are decided where the task is tuned, on the
    rows it is tuned on (`tune_task`)."""
    tasks = []
    for data in task_data(schema, train):
        scoring = config.scoring[data.name]
        if data.classes is not None and scoring == "auto":
            scoring = default_scoring("classification", len(data.classes))
        models = config.classifiers if data.classes is not None else config.regressors
        tasks.append(Task(data, scoring, models))
    return tasks


def class_weight_for(y: pd.Series, config: TrainConfig) -> str | None:
    """`balanced` when `class_weight` is "auto" and the rarest class of `y` is below
    `min_class_share`; the configured weight otherwise."""
    if config.class_weight != "auto":
        return config.class_weight
    rare = y.value_counts(normalize=True).min() < config.min_class_share
    return "balanced" if rare else None


def tune_task(
    task: Task,
    *,
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None,
    preprocessor: Any,
    builder: Any,
    config: TrainConfig,
    on_done: Callable[[Candidate, int, int], None] | None = None,
) -> list[Candidate]:
    """Tune every model of the task (and the reference) on these rows, the same way
    wherever it runs: the train stage on the train split, or an outer fold."""
    weight = class_weight_for(y, config) if task.data.classes is not None else None
    return train_zoo(
        task.name,
        X=X,
        y=y,
        groups=groups,
        preprocessor=preprocessor,
        builder=builder,
        models=task.models,
        seed=config.seed,
        folds=config.cv_folds,
        scoring=task.scoring,
        class_weight=weight,
        max_rows=config.max_rows,
        feature_search=config.feature_search,
        budget=config.budget,
        on_done=on_done,
    )
