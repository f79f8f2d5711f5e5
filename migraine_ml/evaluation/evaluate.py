"""The evaluate stage's work: every task's saved models scored, judged and reported.

A score means little alone: accuracy 0.80 on data that is 80 % one class is no
skill. So every metric stands next to a dummy baseline fitted on the same
train rows, the oracle ceiling when the data is the generated cohort, and a
bootstrap confidence interval. `evaluate_champions` is the evaluate stage's
work; it returns one `Evaluation` that the stage writes out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from migraine_ml import persist
from migraine_ml.data.preprocess import split_facts
from migraine_ml.data.schema import Schema
from migraine_ml.evaluation.diagnosis import (
    GateVerdict,
    quality_gate,
)
from migraine_ml.evaluation.judging import (
    Judgement,
    TaskScores,
    evaluate_task,
    judge_task,
    reference_sentence,
)
from migraine_ml.evaluation.metrics import (
    PRIMARY,
    baseline,
)
from migraine_ml.evaluation.nested import CvEstimate, repeated_cv_estimate
from migraine_ml.evaluation.notes import ceiling_of, grouping_note, matching_oracle, multiclass_note
from migraine_ml.modeling.plan import TrainConfig, plan_tasks
from migraine_ml.modeling.tasks import task_rows

logger = logging.getLogger(__name__)

HELD_OUT = "held-out test split"


@dataclass(frozen=True)
class EvaluateConfig:
    """params.yaml's `evaluate` block and the seed."""

    bootstrap_resamples: int
    confidence: float
    overfit_gap: float
    underfit_floor: float
    gate_margin: float
    permutation_repeats: int
    seed: int
    cv_below: int = 0  # fewer usable rows: repeated cross-validation, not the held-out split
    cv_folds: int = 3
    cv_repeats: int = 2

    @classmethod
    def from_params(cls, evaluate: dict[str, Any], *, seed: int) -> EvaluateConfig:
        return cls(**evaluate, seed=seed)


@dataclass(frozen=True)
class Procedure:
    """How the saved models were trained, to rerun it inside outer folds on small data."""

    preprocessor: Any
    builder: Any
    config: TrainConfig


@dataclass(frozen=True)
class TaskEvaluation:
    """Everything known about one task's saved models on the test rows."""

    task: str
    primary: str
    scoring: str  # the CV scoring name (permutation importance uses it)
    names: dict[str, str]  # rank -> model name, "dummy" -> "dummy baseline"
    classes: list[Any] | None
    y_test: np.ndarray
    scores: TaskScores
    judgement: Judgement
    ceiling: dict | None
    importance: dict[str, float]  # raw column -> mean score drop when shuffled
    importance_spread: dict[str, float]
    reference_note: str  # does the champion beat the reference model? (`reference_sentence`)
    method: str = HELD_OUT  # or the repeated cross-validation that scored it

    def to_dict(self) -> dict[str, Any]:
        comparison = self.scores.champion_vs_runner_up
        reference = self.scores.champion_vs_reference
        return {
            "primary": self.primary,
            "names": self.names,
            "test": self.scores.test,
            "train": self.scores.train,
            "diagnosis": {rank: d.to_dict() for rank, d in self.judgement.diagnosis.items()},
            "ceiling": self.ceiling,
            "ceiling_note": self.judgement.ceiling_note,
            "champion_vs_runner_up": comparison.to_dict() if comparison else None,
            "champion_vs_reference": reference.to_dict() if reference else None,
            "reference_note": self.reference_note,
            "permutation_importance": {k: round(v, 6) for k, v in self.importance.items()},
            "test_rows": len(self.y_test),
            "method": self.method,
        }


@dataclass(frozen=True)
class Evaluation:
    """The evaluate stage's result: per task, the gate, and what the report says."""

    title: str
    summary: list[str]
    tasks: dict[str, TaskEvaluation]
    gate: GateVerdict
    notes: list[str]
    grouping: dict[str, Any] | None
    leaderboard: list[dict[str, Any]]

    def metrics(self) -> dict[str, Any]:
        """reports/metrics.json: what `dvc metrics diff` compares."""
        by_task = {name: task.judgement.metrics for name, task in self.tasks.items()}
        return by_task | {"gate_passed": self.gate.passed}

    def to_dict(self) -> dict[str, Any]:
        """reports/evaluation.json: the whole evaluation."""
        by_task = {name: task.to_dict() for name, task in self.tasks.items()}
        return by_task | {
            "gate": self.gate.to_dict(),
            "notes": self.notes,
            "grouping": self.grouping,
        }


def evaluate_champions(
    *,
    schema: Schema,
    manifest: dict[str, Any],
    models_dir: Path,
    train: pd.DataFrame,
    test: pd.DataFrame,
    data_path: str,
    oracle_path: Path,
    config: EvaluateConfig,
    procedure: Procedure | None = None,
) -> Evaluation:
    """Score the saved champion, runner-up and reference model of each task against a
    dummy fitted on the train rows and the oracle's ceiling, and judge them.

    On the held-out test split with bootstrap intervals; with fewer than
    `config.cv_below` rows (and the `procedure`), by repeated cross-validation of
    the whole training procedure over all rows instead (`nested`).
    """
    tasks, notes = {}, []
    # read and hashed once: the data file can be large
    oracle, oracle_note = matching_oracle(oracle_path, data_path)
    every_row = pd.concat([train, test], ignore_index=True)
    small = procedure is not None and len(every_row) < config.cv_below
    planned = {t.name: t for t in plan_tasks(schema, every_row, procedure.config)} if small else {}
    method = (
        f"{config.confidence:.0%} bootstrap intervals from {config.bootstrap_resamples} "
        f"resamples of the test rows (seed {config.seed})."
    )
    if small:
        method = (
            f"Fewer than {config.cv_below} rows: each task is scored by repeated "
            "cross-validation of the whole training procedure over all rows (its section "
            f"says how), with {config.confidence:.0%} corrected resampled-t intervals; the "
            "scores rate the procedure that trained the served champion."
        )
    for task in ("classification", "regression"):
        entries = {m["rank"]: m for m in manifest["models"] if m["task"] == task}
        if not entries:
            continue
        estimate = None
        if task in planned:
            estimate = repeated_cv_estimate(
                planned[task],
                features=schema.features,
                preprocessor=procedure.preprocessor,
                builder=procedure.builder,
                config=procedure.config,
                folds=config.cv_folds,
                repeats=config.cv_repeats,
                confidence=config.confidence,
                primary=PRIMARY[entries["champion"]["cv"]["scoring"]],
            )
        evaluation = _evaluate_one(
            task,
            entries,
            schema=schema,
            models_dir=models_dir,
            train=train,
            test=test,
            oracle=oracle,
            oracle_note=oracle_note,
            config=config,
            estimate=estimate,
        )
        if evaluation.classes is not None and len(evaluation.classes) > 2:
            notes.append(multiclass_note(evaluation.classes, evaluation.y_test))
        tasks[task] = evaluation
    gate = quality_gate([t.judgement.gate_check for t in tasks.values()])
    grouping = None
    if schema.group:
        grouping = {
            "split": split_facts(train, test, group=schema.group),
            "cv": manifest.get("cv", {}),
        }
        notes.append(grouping_note(schema.group, grouping))
    notes += [
        f"{e['task']} {e['name']}: {n}" for e in manifest["leaderboard"] for n in e.get("notes", [])
    ]
    summary = [
        f"Data: {data_path} ({len(train)} train rows, {len(test)} test rows; schema "
        f"'{schema.name}')",
        method,
    ]
    logger.info(
        "quality gate %s%s",
        "PASSED" if gate.passed else "FAILED",
        "".join(f"\n  {f}" for f in gate.failures),
    )
    where = "repeated cross-validation" if small else "the held-out test split"
    return Evaluation(
        title=f"Models for '{schema.name}': evaluation by {where}",
        summary=summary,
        tasks=tasks,
        gate=gate,
        notes=notes,
        grouping=grouping,
        leaderboard=manifest["leaderboard"],
    )


def _evaluate_one(
    task: str,
    entries: dict[str, dict[str, Any]],
    *,
    schema: Schema,
    models_dir: Path,
    train: pd.DataFrame,
    test: pd.DataFrame,
    oracle: dict | None,
    oracle_note: str,
    config: EvaluateConfig,
    estimate: CvEstimate | None = None,
) -> TaskEvaluation:
    models = {rank: persist.load(models_dir / e["file"]) for rank, e in entries.items()}
    names = {rank: e["name"] for rank, e in entries.items()} | {"dummy": "dummy baseline"}
    classes = entries["champion"].get("classes")
    train_rows, y_train = task_rows(task, schema, train, classes)
    test_rows, y_test = task_rows(task, schema, test, classes)
    X_train, X_test = train_rows[schema.features], test_rows[schema.features]
    y_train, y_test = y_train.to_numpy(), y_test.to_numpy()
    dummy = baseline(classification=task == "classification").fit(X_train, y_train)
    scoring = entries["champion"]["cv"]["scoring"]
    primary = PRIMARY[scoring]
    y_scored = y_test
    if estimate is not None:
        scores = TaskScores(
            test=estimate.test,
            train=estimate.train,
            champion_vs_runner_up=None,
            outputs=estimate.outputs,
            champion_vs_reference=estimate.champion_vs_reference,
        )
        y_scored = estimate.y
    else:
        logger.info(
            "%s: %d test rows, %d bootstrap resamples",
            task,
            len(y_test),
            config.bootstrap_resamples,
        )
        scores = evaluate_task(
            task=task,
            primary=primary,
            models=models,
            dummy=dummy,
            X_train=X_train,
            y_train=y_train,
            X_test=X_test,
            y_test=y_test,
            resamples=config.bootstrap_resamples,
            seed=config.seed,
            confidence=config.confidence,
        )
    ceiling = ceiling_of(oracle, task)
    judgement = judge_task(
        task,
        scores,
        primary=primary,
        champion_name=names["champion"],
        ceiling=ceiling,
        ceiling_note=oracle_note,
        overfit_gap=config.overfit_gap,
        underfit_floor=config.underfit_floor,
        margin=config.gate_margin,
    )
    importance, spread = permutation_scores(
        models["champion"],
        X_test,
        y_test,
        scoring=scoring,
        repeats=config.permutation_repeats,
        seed=config.seed,
    )
    check = judgement.gate_check
    logger.info(
        "%s champion %s: test %s=%.4f (dummy %.4f) -> %s",
        task,
        check.model,
        primary,
        check.test,
        check.dummy,
        check.verdict,
    )
    note = reference_sentence(
        names["champion"], primary, scores.champion_vs_reference, confidence=config.confidence
    )
    logger.info("%s: %s", task, note)
    return TaskEvaluation(
        task=task,
        primary=primary,
        scoring=scoring,
        names=names,
        classes=classes,
        y_test=y_scored,
        scores=scores,
        judgement=judgement,
        ceiling=ceiling,
        importance=importance,
        importance_spread=spread,
        reference_note=note,
        method=estimate.describe() if estimate else HELD_OUT,
    )


def permutation_scores(
    model: Any, X: Any, y: np.ndarray, *, scoring: str, repeats: int, seed: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and spread of the score drop when each raw column is shuffled, largest first."""
    result = permutation_importance(
        model, X, y, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1
    )
    order = np.argsort(-result.importances_mean)
    means = {X.columns[i]: float(result.importances_mean[i]) for i in order}
    errors = {X.columns[i]: float(result.importances_std[i]) for i in order}
    return means, errors
