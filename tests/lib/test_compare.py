"""Champion against challenger: the paired bootstrap, per-class recall, the promotion rule.

No model is trained: the outputs are simulated with numpy (seeded), a challenger
better or no better than the champion by construction.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from migraine_ml.evaluation.metrics import (
    LOWER_IS_BETTER,
    PRIMARY,
    PairedDifference,
    paired_difference,
    task_metrics,
)
from migraine_ml.retraining import compare
from migraine_ml.retraining.compare import (
    CLASS_DROP,
    CLASSIFICATION_METRICS,
    INTERVAL,
    KEPT,
    MIN_GAIN,
    NOT_WORSE,
    PROMOTED,
    REGRESSION_METRICS,
    SKIPPED,
    PromotionRule,
    class_recall_changes,
    compare_task,
    decide,
    paired_bootstrap,
    write_promotion,
    write_skip,
)

RULE = PromotionRule(min_gain=0.01, max_class_drop=0.05, resamples=1000)


def binary_outputs(y: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Class probabilities from a logit that separates the classes, blurred by `noise`."""
    logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, noise, len(y))
    p = 1 / (1 + np.exp(-logit))
    return np.column_stack([1 - p, p])


def multiclass_outputs(
    y: np.ndarray, hit_rates: list[float], rng: np.random.Generator
) -> np.ndarray:
    """Probabilities whose argmax is the true class with each class's `hit_rates`,
    otherwise one of the other classes at random."""
    n_classes = len(hit_rates)
    hit = rng.random(len(y)) < np.asarray(hit_rates)[y]
    other = (y + rng.integers(1, n_classes, len(y))) % n_classes
    predicted = np.where(hit, y, other)
    proba = rng.dirichlet(np.ones(n_classes), len(y)) * 0.4
    proba[np.arange(len(y)), predicted] += 0.6
    return proba


def test_a_clearly_better_challenger_is_promoted():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.35).astype(int)
    champion, challenger = binary_outputs(y, 2.0, rng), binary_outputs(y, 1.0, rng)

    comparison = compare_task(
        "classification", y, champion, challenger, classification=True, rule=RULE, seed=0
    )
    decision = decide({"classification": comparison}, primary="classification", rule=RULE)

    assert comparison.metric == "roc_auc"
    assert (round(comparison.champion, 3), round(comparison.challenger, 3)) == (0.769, 0.925)
    assert comparison.difference.difference == pytest.approx(0.156, abs=0.001)
    assert comparison.difference.ci_low > 0.12  # the whole interval well above zero
    assert comparison.share_not_better == 0
    assert decision.promote
    assert all(check.passed for check in decision.checks)
    assert "lies above zero" in decision.reason
    assert [c.name for c in decision.checks] == [MIN_GAIN, INTERVAL, CLASS_DROP]


def test_the_same_model_with_tiny_noise_is_not_promoted():
    # undrifted feedback: the retrained model is the champion up to tiny noise
    rng = np.random.default_rng(2)
    y = (rng.random(2000) < 0.35).astype(int)
    champion = binary_outputs(y, 1.5, rng)
    logit = np.log(champion[:, 1] / champion[:, 0]) + rng.normal(0, 0.05, len(y))
    p = 1 / (1 + np.exp(-logit))
    challenger = np.column_stack([1 - p, p])

    comparison = compare_task(
        "classification", y, champion, challenger, classification=True, rule=RULE, seed=0
    )
    decision = decide({"classification": comparison}, primary="classification", rule=RULE)

    difference = comparison.difference
    assert abs(difference.difference) < 0.002
    assert difference.ci_low < 0 < difference.ci_high
    assert 0.1 < comparison.share_not_better < 0.9
    assert not decision.promote
    failed = {c.name for c in decision.checks if not c.passed}
    assert failed == {MIN_GAIN, INTERVAL}
    assert "is below min_gain 0.01" in decision.reason
    assert "95% interval [" in decision.reason
    assert decision.reason.endswith("includes zero")


def test_a_challenger_better_on_average_but_losing_one_class_is_refused():
    rng = np.random.default_rng(3)
    classes = ["none", "mild", "severe"]
    y = rng.choice(3, size=3000, p=[0.4, 0.35, 0.25])
    champion = multiclass_outputs(y, [0.70, 0.70, 0.80], rng)
    challenger = multiclass_outputs(y, [0.90, 0.90, 0.70], rng)

    comparison = compare_task(
        "classification",
        y,
        champion,
        challenger,
        classification=True,
        classes=classes,
        rule=RULE,
        seed=0,
    )
    decision = decide({"classification": comparison}, primary="classification", rule=RULE)

    assert comparison.metric == PRIMARY["f1_macro"] == "f1"
    changes = {c.label: c.change for c in comparison.class_recall}
    assert changes["none"] > 0.15 and changes["mild"] > 0.15
    assert -0.2 < changes["severe"] < -RULE.max_class_drop
    # the average improves, significantly: the gain and interval checks pass ...
    assert comparison.difference.ci_low > RULE.min_gain
    passed = {c.name: c.passed for c in decision.checks}
    assert passed == {MIN_GAIN: True, INTERVAL: True, CLASS_DROP: False}
    # ... and the lost class refuses the challenger, named with its numbers
    assert not decision.promote
    assert decision.reason.startswith("class 'severe' of classification loses 0.")
    assert "more than max_class_drop 0.05" in decision.reason
    assert "'none'" not in decision.reason and "'mild'" not in decision.reason


def test_a_binary_challenger_can_lose_its_positive_class():
    # better ranked (higher AUC) but its probabilities shrunk below 0.5: no positive
    # predicted any more
    rng = np.random.default_rng(4)
    y = (rng.random(2000) < 0.35).astype(int)
    champion = binary_outputs(y, 2.0, rng)
    shrunk = binary_outputs(y, 1.0, rng)[:, 1] * 0.45
    challenger = np.column_stack([1 - shrunk, shrunk])

    comparison = compare_task(
        "classification",
        y,
        champion,
        challenger,
        classification=True,
        classes=["no", "yes"],
        rule=RULE,
        seed=0,
    )
    decision = decide({"classification": comparison}, primary="classification", rule=RULE)

    assert comparison.difference.ci_low > 0
    yes = comparison.class_recall[1]
    assert (yes.label, yes.challenger) == ("yes", 0.0)
    assert yes.rows == int(y.sum())
    assert not decision.promote
    assert decision.reason.startswith("class 'yes' of classification loses 0.")


def test_a_cluster_bootstrap_is_wider_when_a_patients_rows_are_alike():
    # 100 patients with 20 nearly identical rows each: the rows carry the information of
    # 100 patients, not 2,000 independent rows
    rng = np.random.default_rng(5)
    patients, visits = 100, 20
    patient_y = (rng.random(patients) < 0.4).astype(float)
    champion_logit = 2 * patient_y - 1 + rng.normal(0, 1.0, patients)
    challenger_logit = 2 * patient_y - 1 + rng.normal(0, 1.0, patients)
    groups = np.repeat(np.arange(patients), visits)
    y = np.where(rng.random(patients * visits) < 0.05, 1 - patient_y[groups], patient_y[groups])
    y = y.astype(int)

    def outputs(logit):
        p = 1 / (1 + np.exp(-(logit[groups] + rng.normal(0, 0.1, len(groups)))))
        return np.column_stack([1 - p, p])

    champion, challenger = outputs(champion_logit), outputs(challenger_logit)
    rows = paired_bootstrap("roc_auc", y, champion, challenger, resamples=1000, seed=0)
    clustered = paired_bootstrap(
        "roc_auc", y, champion, challenger, groups=groups, resamples=1000, seed=0
    )

    assert clustered.difference == rows.difference
    assert (rows.clusters, clustered.clusters) == (None, patients)
    row_width = rows.ci_high - rows.ci_low
    cluster_width = clustered.ci_high - clustered.ci_low
    assert cluster_width > 3 * row_width  # about sqrt(20) = 4.5 in theory
    # rows taken as independent would call the challenger significantly worse
    assert rows.ci_high < 0 < clustered.ci_high


def test_groups_may_be_patient_ids_of_any_kind():
    rng = np.random.default_rng(6)
    y = (rng.random(200) < 0.5).astype(int)
    champion, challenger = binary_outputs(y, 2.0, rng), binary_outputs(y, 1.0, rng)
    codes = rng.integers(0, 40, 200)
    by_code = paired_bootstrap(
        "roc_auc", y, champion, challenger, groups=codes, resamples=200, seed=0
    )
    by_name = paired_bootstrap(
        "roc_auc",
        y,
        champion,
        challenger,
        groups=np.array([f"patient-{c}" for c in codes]),
        resamples=200,
        seed=0,
    )
    assert by_name == by_code
    with pytest.raises(ValueError, match="groups: 1 rows have no group id"):
        paired_bootstrap(
            "roc_auc",
            y,
            champion,
            challenger,
            groups=[None, *codes[1:]],
            resamples=10,
            seed=0,
        )


@pytest.mark.parametrize("metric", sorted(LOWER_IS_BETTER))
def test_lower_is_better_metrics_are_oriented_so_that_positive_means_better(metric):
    rng = np.random.default_rng(7)
    if metric in REGRESSION_METRICS:
        y = rng.normal(5, 2, 1000)
        sharp, blurred = y + rng.normal(0, 0.5, 1000), y + rng.normal(0, 1.5, 1000)
    else:
        y = (rng.random(1000) < 0.4).astype(int)
        sharp, blurred = binary_outputs(y, 0.5, rng), binary_outputs(y, 2.0, rng)
    classification = metric in CLASSIFICATION_METRICS

    better = compare_task(
        "task",
        y,
        blurred,
        sharp,
        classification=classification,
        metric=metric,
        rule=RULE,
        seed=0,
    )
    worse = compare_task(
        "task",
        y,
        sharp,
        blurred,
        classification=classification,
        metric=metric,
        rule=RULE,
        seed=0,
    )

    assert not better.higher_is_better
    assert better.challenger < better.champion  # a lower score ...
    assert better.difference.difference == pytest.approx(better.champion - better.challenger)
    assert better.difference.ci_low > 0  # ... is a positive gain
    assert worse.difference.ci_high < 0
    assert decide({"task": better}, primary="task", rule=RULE).promote
    assert "lower is better" in decide({"task": worse}, primary="task", rule=RULE).reason


def test_the_default_metric_is_the_train_stages_default_primary():
    rng = np.random.default_rng(8)
    y = rng.normal(0, 1, 300)
    regression = compare_task(
        "regression", y, y + 1, y + 0.5, classification=False, rule=RULE, seed=0
    )
    assert regression.metric == PRIMARY["r2"] == "r2"
    assert regression.higher_is_better
    assert regression.difference.difference > 0


def test_degenerate_resamples_are_skipped_and_counted():
    # one migraine in ten rows: about a third of the resamples hold no positive
    y = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    champion = np.column_stack([1 - np.linspace(0.1, 0.9, 10), np.linspace(0.1, 0.9, 10)])
    challenger = champion[::-1]

    difference = paired_bootstrap("roc_auc", y, champion, challenger, resamples=500, seed=0)

    assert 100 < difference.skipped < 250  # (9/10)^10 = 0.35 of 500 expected
    assert math.isfinite(difference.ci_low) and math.isfinite(difference.ci_high)


def test_a_cluster_bootstrap_skips_resamples_without_the_patient_with_migraines():
    y = np.array([0, 0, 0, 0, 1, 1])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    proba = np.column_stack([np.full(6, 0.5), np.full(6, 0.5)])
    difference = paired_bootstrap("f1", y, proba, proba, groups=groups, resamples=300, seed=0)
    assert 50 < difference.skipped < 150  # (2/3)^3 = 0.30 of 300 expected


def test_when_every_resample_is_degenerate_the_interval_is_undefined_and_refused(tmp_path):
    y = np.zeros(20, dtype=int)
    proba = np.column_stack([np.full(20, 0.7), np.full(20, 0.3)])

    comparison = compare_task(
        "classification", y, proba, proba, classification=True, rule=RULE, seed=0
    )
    decision = decide({"classification": comparison}, primary="classification", rule=RULE)

    assert comparison.difference.skipped == RULE.resamples
    assert math.isnan(comparison.difference.ci_low)
    assert not decision.promote
    assert "all 1000 resamples were degenerate" in decision.reason
    report = write_promotion(
        tmp_path / "promotion.json",
        decision=decision,
        comparisons={"classification": comparison},
        champion={},
        challenger={},
        data={},
    )
    written = json.loads((tmp_path / "promotion.json").read_text())  # no NaN in the JSON
    assert written == report
    assert written["tasks"]["classification"]["difference"]["ci_low"] is None


def test_another_task_significantly_worse_refuses_the_challenger():
    rng = np.random.default_rng(9)
    y = (rng.random(2000) < 0.35).astype(int)
    severity = rng.normal(5, 2, 800)
    comparisons = {
        "classification": compare_task(
            "classification",
            y,
            binary_outputs(y, 2.0, rng),
            binary_outputs(y, 1.0, rng),
            classification=True,
            rule=RULE,
            seed=0,
        ),
        "regression": compare_task(
            "regression",
            severity,
            severity + rng.normal(0, 1.0, 800),
            severity + rng.normal(0, 2.0, 800),
            classification=False,
            rule=RULE,
            seed=0,
        ),
    }

    decision = decide(comparisons, primary="classification", rule=RULE)

    assert not decision.promote
    assert [(c.name, c.task, c.passed) for c in decision.checks] == [
        (MIN_GAIN, "classification", True),
        (INTERVAL, "classification", True),
        (CLASS_DROP, "classification", True),
        (NOT_WORSE, "regression", False),
    ]
    assert decision.reason.startswith("regression is worse: r2 difference -0.")
    assert decision.reason.endswith("lies below zero")
    with pytest.raises(ValueError, match="primary task 'ranking' is not among"):
        decide(comparisons, primary="ranking", rule=RULE)


WEIGHTED_CASES = [
    *[("binary", m) for m in CLASSIFICATION_METRICS],
    *[("three classes", m) for m in CLASSIFICATION_METRICS],
    *[("regression", m) for m in REGRESSION_METRICS],
]


@pytest.mark.parametrize(("kind", "metric"), WEIGHTED_CASES)
def test_weighted_metrics_equal_task_metrics_of_the_repeated_rows(kind, metric):
    rng = np.random.default_rng(10)
    n = 300
    if kind == "regression":
        y = rng.normal(0, 1, n)
        out = np.round(y + rng.normal(0, 0.5, n), 1)
    else:
        n_classes = 2 if kind == "binary" else 3
        y = rng.integers(0, n_classes, n)
        # rounded: tied scores, and rows exactly at the 0.5 threshold
        out = np.round(rng.dirichlet(np.ones(n_classes), n), 1)
        out[:, -1] = 1 - out[:, :-1].sum(axis=1)
    draws = rng.integers(0, n, size=(5, n))
    weights = np.stack([np.bincount(d, minlength=n) for d in draws]).astype(float)

    weighted = compare._weighted_metric(metric, y, out, weights)

    expected = [
        task_metrics(y[d], out[d], classification=kind != "regression")[metric] for d in draws
    ]
    assert weighted == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_the_row_bootstrap_reproduces_the_evaluate_stages_paired_difference(monkeypatch):
    # same seed, same resamples: the numbers evaluate writes for champion vs runner-up;
    # small blocks to hold it across the block boundaries too
    monkeypatch.setattr(compare, "_BLOCK_CELLS", 7 * 500)
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, 500)
    champion = multiclass_outputs(y, [0.6, 0.6, 0.6], rng)
    challenger = multiclass_outputs(y, [0.65, 0.6, 0.6], rng)

    ours = paired_bootstrap("f1", y, champion, challenger, resamples=200, seed=3)

    def f1_of(out):
        return lambda rows: task_metrics(y[rows], out[rows], classification=True)["f1"]

    theirs = paired_difference(f1_of(challenger), f1_of(champion), 500, resamples=200, seed=3)
    assert isinstance(ours, PairedDifference)
    assert ours.difference == pytest.approx(theirs.difference, abs=1e-12)
    assert ours.ci_low == pytest.approx(theirs.ci_low, abs=1e-12)
    assert ours.ci_high == pytest.approx(theirs.ci_high, abs=1e-12)
    assert ours.share_not_better == theirs.share_not_better


def test_a_thousand_resamples_of_roc_auc_on_2000_rows_take_well_under_five_seconds():
    rng = np.random.default_rng(12)
    y = (rng.random(2000) < 0.35).astype(int)
    champion, challenger = binary_outputs(y, 2.0, rng), binary_outputs(y, 1.0, rng)
    started = time.perf_counter()
    paired_bootstrap("roc_auc", y, champion, challenger, resamples=1000, seed=0)
    assert time.perf_counter() - started < 5  # about 0.3 s here; a loop of task_metrics 1.5 s


def test_class_recall_changes_per_class():
    y = np.array([0, 0, 1, 1, 2, 2])
    champion = np.eye(3)[[0, 0, 1, 1, 2, 0]]  # class 2: one of two right
    challenger = np.eye(3)[[0, 1, 1, 1, 2, 2]]  # class 0: one of two right
    recalls = class_recall_changes(y, champion, challenger, classes=["a", "b", "c"])
    assert [(r.label, r.rows, r.champion, r.challenger, r.change) for r in recalls] == [
        ("a", 2, 1.0, 0.5, -0.5),
        ("b", 2, 1.0, 1.0, 0.0),
        ("c", 2, 0.5, 1.0, 0.5),
    ]
    with pytest.raises(ValueError, match=r"classes: 2 names \['a', 'b'\] for 3 probability"):
        class_recall_changes(y, champion, challenger, classes=["a", "b"])


def test_a_class_absent_from_the_rows_is_not_judged():
    y = np.array([0, 0, 1, 1])
    proba = np.eye(3)[[0, 0, 1, 1]]
    recalls = class_recall_changes(y, proba, proba)
    assert recalls[2].rows == 0 and math.isnan(recalls[2].change)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_class_drop": 0.05}, "retrain params: min_gain missing"),
        ({"min_gain": -0.1, "max_class_drop": 0.05}, "min_gain: -0.1 is negative"),
        ({"min_gain": 0.01, "max_class_drop": 1.5}, r"max_class_drop: 1.5 is outside \[0, 1\]"),
        ({"min_gain": 0.01, "max_class_drop": 0.05, "resamples": 0}, "resamples: 0 is below 1"),
        ({"min_gain": 0.01, "max_class_drop": 0.05, "confidence": 95}, "confidence: 95.0 is"),
    ],
)
def test_promotion_rule_refuses_bad_params(params, message):
    with pytest.raises(ValueError, match=message):
        PromotionRule.from_params(params)


def test_promotion_rule_reads_its_keys_of_the_retrain_block():
    block = {"min_gain": 0.01, "max_class_drop": 0.05, "label_delay": "7d", "min_new_labels": 200}
    assert PromotionRule.from_params(block) == PromotionRule(min_gain=0.01, max_class_drop=0.05)
    rule = PromotionRule.from_params({**block, "resamples": 2000, "confidence": 0.9})
    assert (rule.resamples, rule.confidence) == (2000, 0.9)


def test_mismatched_outputs_are_refused():
    y = np.array([0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    with pytest.raises(ValueError, match=r"champion outputs of shape \(3, 2\) and challenger"):
        paired_bootstrap("roc_auc", y, proba, proba[:2], resamples=10, seed=0)
    with pytest.raises(ValueError, match="metric 'rmse' is not a classification metric"):
        paired_bootstrap("rmse", y, proba, proba, resamples=10, seed=0)
    with pytest.raises(ValueError, match="task 'regression': outputs of shape"):
        compare_task("regression", y, proba, proba, classification=False, rule=RULE, seed=0)


def test_write_promotion_and_write_skip(tmp_path):
    rng = np.random.default_rng(13)
    y = (rng.random(500) < 0.4).astype(int)
    comparison = compare_task(
        "classification",
        y,
        binary_outputs(y, 2.0, rng),
        binary_outputs(y, 0.8, rng),
        classification=True,
        classes=[0, 1],
        rule=RULE,
        seed=0,
    )
    decision = decide({"classification": comparison}, primary="classification", rule=RULE)
    path = tmp_path / "reports" / "promotion.json"

    write_promotion(
        path,
        decision=decision,
        comparisons={"classification": comparison},
        champion={"classification": {"name": "xgboost", "md5": "aa"}},
        challenger={"classification": {"name": "lightgbm", "md5": "bb"}, "experiment": "exp-1"},
        data={"training_data": {"md5": "cc", "rows": 8000}, "new_labels": 612},
    )

    written = json.loads(path.read_text())
    assert written["status"] == PROMOTED and written["promote"] is True
    assert written["reason"] == decision.reason
    assert written["rule"] == {
        "min_gain": 0.01,
        "max_class_drop": 0.05,
        "resamples": 1000,
        "confidence": 0.95,
    }
    assert written["challenger"]["experiment"] == "exp-1"
    assert written["data"]["new_labels"] == 612
    task = written["tasks"]["classification"]
    assert task["metric"] == "roc_auc"
    assert set(task["difference"]) == {
        "difference",
        "ci_low",
        "ci_high",
        "share_not_better",
        "confidence",
        "resamples",
        "skipped",
        "rows",
        "clusters",
    }
    assert [c["label"] for c in task["class_recall"]] == [0, 1]
    assert [c["name"] for c in written["checks"]] == [MIN_GAIN, INTERVAL, CLASS_DROP]
    assert not list(path.parent.glob(".*"))  # no partial file left behind

    refused = decide(
        {"classification": comparison},
        primary="classification",
        rule=PromotionRule(min_gain=0.5, max_class_drop=0.05),
    )
    write_promotion(path, decision=refused, comparisons={}, champion={}, challenger={}, data={})
    assert json.loads(path.read_text())["status"] == KEPT

    write_skip(
        path,
        "37 new labels, fewer than retrain.min_new_labels 200",
        champion={"classification": {"name": "xgboost"}},
        data={"new_labels": 37},
    )
    assert json.loads(path.read_text()) == {
        "status": SKIPPED,
        "promote": False,
        "reason": "37 new labels, fewer than retrain.min_new_labels 200",
        "champion": {"classification": {"name": "xgboost"}},
        "challenger": None,
        "data": {"new_labels": 37},
    }
