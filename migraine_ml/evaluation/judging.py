"""Scoring and judging one task's models: metrics with intervals, paired comparisons,
fit diagnosis, the gate check, and the plain sentence on the reference model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from migraine_ml.evaluation.diagnosis import Diagnosis, GateCheck, diagnose
from migraine_ml.evaluation.metrics import (
    LOWER_IS_BETTER,
    PairedDifference,
    paired_difference,
    rounded,
    score_with_intervals,
    task_metrics,
)
from migraine_ml.pipeline import REFERENCE


@dataclass(frozen=True)
class TaskScores:
    """Each model's (and the dummy's) metrics: test ones with intervals, train ones plain."""

    test: dict[str, dict[str, float]]  # rank -> flat metrics with <name>_ci_low/_ci_high
    train: dict[str, dict[str, float]]
    champion_vs_runner_up: PairedDifference | None
    outputs: dict[str, np.ndarray]  # rank -> test probabilities or predictions
    champion_vs_reference: PairedDifference | None = None


def evaluate_task(
    *,
    task: str,
    primary: str,
    models: dict[str, Any],
    dummy: Any,
    X_train: Any,
    y_train: np.ndarray,
    X_test: Any,
    y_test: np.ndarray,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> TaskScores:
    """Metrics with intervals for each model and the dummy, train scores, paired comparison.

    Args:
        models: rank ("champion", "runner_up") -> fitted pipeline.
        dummy: the baseline, already fitted on the train rows.
    """
    classification = task == "classification"

    def outputs(model, X):
        # float64: XGBoost answers in float32, which JSON writers (dvclive's plots) refuse
        out = model.predict_proba(X) if classification else model.predict(X)
        return np.asarray(out, dtype=float)

    def metrics_of(y, out):
        return task_metrics(y, out, classification=classification)

    y_test = np.asarray(y_test)
    test_out = {rank: outputs(model, X_test) for rank, model in {**models, "dummy": dummy}.items()}
    scores = {
        rank: score_with_intervals(
            lambda rows, out=out: metrics_of(y_test[rows], out[rows]),
            len(y_test),
            resamples=resamples,
            seed=seed,
            confidence=confidence,
        )
        for rank, out in test_out.items()
    }
    train_scores = {
        rank: rounded(metrics_of(np.asarray(y_train), outputs(model, X_train)))
        for rank, model in {**models, "dummy": dummy}.items()
    }

    def versus(other: str) -> PairedDifference | None:
        if other not in models:
            return None

        def primary_of(rank):
            return lambda rows: metrics_of(y_test[rows], test_out[rank][rows])[primary]

        return paired_difference(
            primary_of("champion"),
            primary_of(other),
            len(y_test),
            resamples=resamples,
            seed=seed,
            confidence=confidence,
        ).rounded()

    return TaskScores(scores, train_scores, versus("runner_up"), test_out, versus(REFERENCE))


@dataclass(frozen=True)
class Judgement:
    """A task's verdicts: fit diagnosis per model, the gate check, its metrics.json block."""

    diagnosis: dict[str, Diagnosis]
    gate_check: GateCheck
    metrics: dict[str, Any]
    ceiling_note: str


def judge_task(
    task: str,
    scores: TaskScores,
    *,
    primary: str,
    champion_name: str,
    ceiling: dict | None,
    ceiling_note: str,
    overfit_gap: float,
    underfit_floor: float,
    margin: float,
) -> Judgement:
    """Fit diagnosis per model, the gate check, and the task's block of metrics.json."""
    test, train = scores.test, scores.train
    higher = primary not in LOWER_IS_BETTER
    diagnosis = {
        rank: diagnose(
            train_score=train[rank][primary],
            test_score=test[rank][primary],
            dummy_score=test["dummy"][primary],
            higher_is_better=higher,
            overfit_gap=overfit_gap,
            underfit_floor=underfit_floor,
            margin=margin,
            ceiling=(ceiling or {}).get(primary),
        )
        for rank in test
        if rank != "dummy"
    }
    champion = diagnosis["champion"]
    gate_check = GateCheck(
        task=task,
        model=champion_name,
        metric=primary,
        test=champion.test,
        dummy=test["dummy"][primary],
        lift_over_dummy=round(champion.lift_over_dummy, 6),
        margin=margin,
        verdict=champion.verdict,
    )
    metrics = dict(test)
    if ceiling:
        metrics["ceiling"] = ceiling
        gap = ceiling[primary] - test["champion"][primary]
        metrics["champion_gap_to_ceiling"] = {primary: round(gap, 6)}
        ceiling_note += (
            f" The champion's test {primary} {test['champion'][primary]:.4f} is {gap:.4f} "
            f"{'below' if gap >= 0 else 'above'} the ceiling {ceiling[primary]:.4f}."
        )
    if scores.champion_vs_runner_up:
        metrics["champion_vs_runner_up"] = scores.champion_vs_runner_up.to_dict()
    if scores.champion_vs_reference:
        metrics["champion_vs_reference"] = scores.champion_vs_reference.to_dict()
    return Judgement(diagnosis, gate_check, metrics, ceiling_note)


def reference_sentence(
    champion: str, primary: str, difference: PairedDifference | None, *, confidence: float
) -> str:
    """What the report says plainly: does the zoo beat the model a researcher fits first?"""
    if champion == REFERENCE:
        return (
            "The reference model (a default logistic or linear regression on the validated "
            "columns) is the champion: no model of the zoo beat it in cross-validation."
        )
    if difference is None:
        return "No reference model was saved with these models."
    interval = (
        f"{difference.difference:+.4f} {primary}, {confidence:.0%} CI "
        f"[{difference.ci_low:+.4f}, {difference.ci_high:+.4f}]"
    )
    if difference.ci_low > 0:
        return f"The champion beats the reference model: {interval}."
    if difference.ci_high < 0:
        return f"The champion is WORSE than the reference model: {interval}. Serve the reference."
    return (
        f"The zoo does not beat the reference model: the champion's difference to it, "
        f"{interval}, includes zero."
    )
