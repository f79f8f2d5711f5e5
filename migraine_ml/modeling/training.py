"""The train stage's work: plan a task per target, tune the zoo, save and describe the top two.

`train_models` returns everything the stage writes (manifest, drift reference,
fast-path parity records) as one `TrainingResult`; the stage only turns it
into files. Registry versions stay in MLflow (local state of one store); the
champion's version is tagged with its model file's md5.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from migraine_ml import persist
from migraine_ml.data.schema import Schema
from migraine_ml.modeling import tracking
from migraine_ml.modeling.fastpath import ParityRecord, parity
from migraine_ml.modeling.manifest import (
    leaderboard,
    library_versions,
    model_entry,
    model_file,
)
from migraine_ml.modeling.plan import Task, TrainConfig, plan_tasks, tune_task
from migraine_ml.modeling.tuning import Candidate, CvFacts, cv_facts, rank
from migraine_ml.monitoring.reference import drift_reference, predicted_scores, prediction_profiles
from migraine_ml.pipeline import RANKS, REFERENCE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskResult:
    """One task trained: the ranked candidates, the folds, what was saved."""

    name: str
    scoring: str
    ranked: list[Candidate]
    cv: CvFacts
    entries: list[dict[str, Any]]  # manifest entries of the saved models, champion first
    prediction_profile: dict[str, dict[str, Any]]  # {output: profile}

    @property
    def champion(self) -> Candidate:
        return self.ranked[0]


@dataclass(frozen=True)
class TrainingResult:
    """Everything the train stage writes."""

    manifest: dict[str, Any]
    reference: dict[str, Any]
    fast_path: dict[str, ParityRecord]
    tasks: list[TaskResult] = field(default_factory=list)


def train_task(
    task: Task,
    *,
    schema: Schema,
    preprocessor: Any,
    builder: Any,
    config: TrainConfig,
    models_dir: Path,
    parity_rows: pd.DataFrame,
    served_rows: pd.DataFrame,
    tags: dict[str, str],
    on_done: Callable[[Candidate, int, int], None] | None = None,
    alias: str = tracking.CHAMPION,
) -> tuple[TaskResult, dict[str, ParityRecord]]:
    """Tune the task's models, save the top two, register the champion in MLflow."""
    data = task.data
    X = data.rows[schema.features]
    logger.info(
        "%s: tuning %d models on %d rows (%s, %d-fold CV)",
        task.name,
        len(task.models),
        len(X),
        task.scoring,
        config.cv_folds,
    )
    cv = cv_facts(
        task.name, X=X, y=data.y, groups=data.groups, folds=config.cv_folds, seed=config.seed
    )
    logger.info("%s CV folds: %s", task.name, cv.to_dict())
    run_ids = {}

    def done(candidate: Candidate, position: int, total: int) -> None:
        run_ids[candidate.name] = tracking.log_candidate(candidate, tags=tags)
        if on_done is not None:
            on_done(candidate, position, total)

    ranked = rank(
        tune_task(
            task,
            X=X,
            y=data.y,
            groups=data.groups,
            preprocessor=preprocessor,
            builder=builder,
            config=config,
            on_done=done,
        )
    )
    entries, fast_path = [], {}
    # The service's numpy fast path is used only for models that match the
    # scikit-learn pipeline on the test split's inputs (no labels are read).
    reference = next(c for c in ranked if c.name == REFERENCE)
    # the reference is saved under its own rank even when it is also champion or
    # runner-up: evaluation always finds it by that name
    top_two = zip(RANKS, ranked[:2], strict=False)  # one model + the reference: one rank
    for rank_name, candidate in (*top_two, (REFERENCE, reference)):
        file = model_file(task.name, rank_name)
        md5 = persist.save(candidate.pipeline, models_dir / file)
        fast_path[file] = parity(candidate.pipeline, parity_rows, schema)
        entries.append(
            model_entry(
                candidate,
                rank=rank_name,
                file=file,
                md5=md5,
                raw_features=schema.features,
                classes=data.classes,
            )
        )
    champion, (saved,) = ranked[0], entries[:1]
    tracking.register_champion(
        champion,
        run_id=run_ids[champion.name],
        registered_name=f"{schema.name}-{'classifier' if data.classes else 'regressor'}",
        trusted_types=persist.trusted_types(models_dir / saved["file"]),
        input_example=tracking.input_example(X),
        model_md5=saved["md5"],
        alias=alias,
    )
    for entry in entries:
        logger.info(
            "saved %s %s (%s) -> %s", entry["rank"], entry["name"], task.name, entry["file"]
        )
    # Every output (each class's probability, or the predicted value) on every training
    # row, not only the task's: the service answers every task for every record (the
    # severity of a day without migraine too), and the drift monitor compares its outputs
    # with these.
    profile = prediction_profiles(predicted_scores(champion.pipeline, served_rows, data.classes))
    result = TaskResult(task.name, task.scoring, ranked, cv, entries, profile)
    return result, fast_path


def train_models(
    *,
    schema: Schema,
    train: pd.DataFrame,
    train_file: str,
    parity_rows: pd.DataFrame,
    preprocessor: Any,
    builder: Any,
    config: TrainConfig,
    params: dict[str, Any],
    models_dir: Path,
    tags: dict[str, str],
    on_done: Callable[[Candidate, int, int], None] | None = None,
    alias: str = tracking.CHAMPION,
) -> TrainingResult:
    """Train every task of the schema inside one MLflow parent run.

    Args:
        train_file: the train split's path, recorded with its md5 in the manifest.
        parity_rows: raw rows (the test split's inputs) the fast path is checked on.
        params: logged to the MLflow parent run as they are.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    results, fast_path = [], {}
    with tracking.parent_run(config.experiment, params=params, tags=tags):
        for task in plan_tasks(schema, train, config):
            result, parities = train_task(
                task,
                schema=schema,
                preprocessor=preprocessor,
                builder=builder,
                config=config,
                models_dir=models_dir,
                parity_rows=parity_rows,
                served_rows=train[schema.features],
                tags=tags,
                on_done=on_done,
                alias=alias,
            )
            results.append(result)
            fast_path |= parities
    manifest = {
        "schema": schema.to_dict(),
        "training_data": {
            "file": train_file,
            "md5": persist.file_md5(train_file),
            "rows": len(train),
        },
        "libraries": library_versions(),
        "seed": config.seed,
        "models": [entry for result in results for entry in result.entries],
        "leaderboard": [row for result in results for row in leaderboard(result.ranked)],
        "cv": {result.name: result.cv.to_dict() for result in results},
    }
    reference = drift_reference(
        train, schema, {result.name: result.prediction_profile for result in results}
    )
    return TrainingResult(manifest, reference, fast_path, results)
