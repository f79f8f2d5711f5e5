"""Fit diagnosis (overfitting, underfitting, good fit) and the quality gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OVERFITTING = "OVERFITTING"
UNDERFITTING = "UNDERFITTING"
GOOD_FIT = "GOOD FIT"

RECOMMENDATIONS = {
    OVERFITTING: [
        "reduce model complexity (shallower trees, fewer leaves, fewer estimators)",
        "regularise more (larger L2 / alpha, min_samples_leaf, subsampling)",
        "collect more data",
        "select fewer features (features.n_features)",
    ],
    UNDERFITTING: [
        "increase model complexity (deeper trees, more estimators, a kernel)",
        "add more or better features (interactions, health indices, domain knowledge)",
        "train longer / search wider (train.*.n_iter, larger search spaces)",
    ],
    GOOD_FIT: [],
}


@dataclass(frozen=True)
class Diagnosis:
    """One model's fit verdict from its train and test scores and the baseline's."""

    verdict: str
    train: float
    test: float
    gap: float
    lift_over_dummy: float
    reasons: tuple[str, ...]
    recommendations: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "reasons": list(self.reasons),
            "recommendations": list(self.recommendations),
        }


def diagnose(
    *,
    train_score: float,
    test_score: float,
    dummy_score: float,
    higher_is_better: bool = True,
    overfit_gap: float = 0.10,
    underfit_floor: float = 0.70,
    margin: float = 0.0,
    ceiling: float | None = None,
    ceiling_tolerance: float = 0.05,
) -> Diagnosis:
    """OVERFITTING, UNDERFITTING or GOOD FIT from train vs test and the baseline.

    A score under the floor is not called underfitting when the known ceiling
    (the true model's score) is itself that low: the noise in the data, not the
    model, limits it then, and the reasons say so.
    """
    sign = 1 if higher_is_better else -1
    gap = sign * (train_score - test_score)
    lift = sign * (test_score - dummy_score)
    reasons = []
    if gap > overfit_gap:
        verdict = OVERFITTING
        reasons.append(
            f"train {train_score:.3f} vs test {test_score:.3f}: gap {gap:.3f} > {overfit_gap}"
        )
    else:
        verdict = GOOD_FIT
        near_ceiling = ceiling is not None and sign * (ceiling - test_score) <= ceiling_tolerance
        if lift <= margin:
            verdict = UNDERFITTING
            reasons.append(
                f"test {test_score:.3f} is not clearly above the dummy baseline "
                f"{dummy_score:.3f} (margin {margin})"
            )
        elif sign * (test_score - underfit_floor) < 0:
            if near_ceiling:
                reasons.append(
                    f"test {test_score:.3f} is under the floor {underfit_floor} but "
                    f"within {ceiling_tolerance} of the ceiling {ceiling:.3f}: the "
                    "data's noise, not the model, limits the score"
                )
            else:
                verdict = UNDERFITTING
                reasons.append(f"test {test_score:.3f} is under the floor {underfit_floor}")
    return Diagnosis(
        verdict=verdict,
        train=train_score,
        test=test_score,
        gap=gap,
        lift_over_dummy=lift,
        reasons=tuple(reasons),
        recommendations=tuple(RECOMMENDATIONS[verdict]),
    )


@dataclass(frozen=True)
class GateCheck:
    """What the gate asks of one task's champion."""

    task: str
    model: str
    metric: str
    test: float
    dummy: float
    lift_over_dummy: float
    margin: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    failures: tuple[str, ...]
    checks: tuple[GateCheck, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "checks": [check.to_dict() for check in self.checks],
        }


def quality_gate(checks: list[GateCheck]) -> GateVerdict:
    """Pass only if every task's champion beats its baseline by the margin and is not
    flagged OVERFITTING."""
    failures = []
    for check in checks:
        if check.lift_over_dummy <= check.margin:
            failures.append(
                f"{check.task} champion {check.model}: {check.metric} "
                f"{check.test:.4f} does not beat the dummy baseline {check.dummy:.4f} "
                f"by more than {check.margin}"
            )
        if check.verdict == OVERFITTING:
            failures.append(f"{check.task} champion {check.model} is OVERFITTING")
    return GateVerdict(passed=not failures, failures=tuple(failures), checks=tuple(checks))
