import dataclasses
import math

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from migraine_ml.evaluation.diagnosis import (
    GOOD_FIT,
    OVERFITTING,
    UNDERFITTING,
    GateCheck,
    diagnose,
    quality_gate,
)
from migraine_ml.evaluation.judging import evaluate_task, reference_sentence
from migraine_ml.evaluation.metrics import (
    PairedDifference,
    bootstrap,
    brier_score,
    classification_metrics,
    paired_difference,
    regression_metrics,
)
from migraine_ml.evaluation.notes import grouping_note, multiclass_note

# Four people: truth and the model's probability of a migraine.
Y = np.array([0, 0, 1, 1])
P1 = np.array([0.1, 0.6, 0.4, 0.8])
PROBA = np.column_stack([1 - P1, P1])


def test_binary_metrics_match_hand_computation():
    m = classification_metrics(Y, PROBA)
    # predictions at 0.5: [0, 1, 0, 1] -> TP=1, FP=1, TN=1, FN=1
    assert m["accuracy"] == 0.5
    assert m["balanced_accuracy"] == 0.5
    assert m["precision"] == 0.5
    assert m["recall"] == 0.5
    assert m["f1"] == 0.5
    # positive/negative pairs ranked right: (0.4>0.1), (0.8>0.1), (0.8>0.6); wrong: (0.4<0.6)
    assert m["roc_auc"] == 0.75
    expected_log_loss = -np.mean(np.log([0.9, 0.4, 0.4, 0.8]))
    assert m["log_loss"] == pytest.approx(expected_log_loss)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.04) / 4)


def test_multiclass_metrics_are_macro_and_one_vs_rest():
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.2, 0.2]])
    m = classification_metrics(y, proba)
    # predictions [0, 1, 2, 0]: class 0 P=1/2 R=1, class 1 P=1 R=1, class 2 P=1 R=1/2
    assert m["precision"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert m["brier"] == pytest.approx(
        np.mean([0.04 + 0.01 + 0.01, 0.04 + 0.09 + 0.01, 0.01 + 0.04 + 0.09, 0.36 + 0.04 + 0.64])
    )
    assert 0 <= m["roc_auc"] <= 1


def test_regression_metrics_match_hand_computation():
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 2.0])
    # residuals 0, 0, -1, 2: SSE 5, SST 5
    assert m["r2"] == pytest.approx(0.0)
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 4))
    assert m["mae"] == pytest.approx(0.75)


def test_brier_binary_convention():
    assert brier_score(np.array([1]), np.array([[0.3, 0.7]])) == pytest.approx(0.09)


def test_one_class_resample_gives_nan_auc_not_a_crash():
    m = classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.4, 0.6]]))
    assert math.isnan(m["roc_auc"])


def test_bootstrap_interval_contains_the_point_and_narrows_with_rows():
    rng = np.random.default_rng(0)
    values = rng.normal(size=2000)

    def mean_of(rows):
        return {"mean": float(values[rows].mean())}

    wide = bootstrap(lambda r: mean_of(r[:100]), 100, resamples=300, seed=1)["mean"]
    narrow = bootstrap(mean_of, 2000, resamples=300, seed=1)["mean"]
    assert narrow.low < values.mean() < narrow.high
    assert (narrow.high - narrow.low) < (wide.high - wide.low)
    # standard error of a mean of 2000 N(0,1) draws: 95 % half-width ~ 1.96/sqrt(2000)
    assert (narrow.high - narrow.low) / 2 == pytest.approx(1.96 / math.sqrt(2000), rel=0.2)


def test_paired_difference_sees_a_consistent_winner():
    y = np.tile([0, 1], 200)
    good = np.where(y == 1, 0.8, 0.2) + np.random.default_rng(0).normal(0, 0.1, 400)
    noise = np.random.default_rng(1).uniform(size=400)
    auc = classification_metrics

    def score(p):
        return lambda rows: auc(y[rows], np.column_stack([1 - p[rows], p[rows]]))["roc_auc"]

    result = paired_difference(score(np.clip(good, 0, 1)), score(noise), 400, resamples=200, seed=0)
    assert result.difference > 0.3
    assert result.ci_low > 0
    assert result.share_not_better == 0


@pytest.mark.parametrize(
    ("train", "test", "dummy", "ceiling", "verdict"),
    [
        (0.99, 0.80, 0.5, None, OVERFITTING),  # gap 0.19 > 0.10
        (0.89, 0.80, 0.5, None, GOOD_FIT),  # gap 0.09, above floor
        (0.70, 0.65, 0.5, None, UNDERFITTING),  # under the 0.70 floor
        (0.53, 0.52, 0.5, None, UNDERFITTING),  # not clearly above the dummy
        (0.36, 0.33, 0.0, 0.35, GOOD_FIT),  # under the floor but at the known ceiling
        (0.36, 0.20, 0.0, 0.35, OVERFITTING),
        (0.30, 0.25, 0.0, 0.35, UNDERFITTING),  # 0.10 short of the ceiling
    ],
)
def test_diagnosis_thresholds(train, test, dummy, ceiling, verdict):
    result = diagnose(
        train_score=train,
        test_score=test,
        dummy_score=dummy,
        ceiling=ceiling,
        overfit_gap=0.10,
        underfit_floor=0.70,
        margin=0.05,
    )
    assert result.verdict == verdict
    assert bool(result.recommendations) is (verdict != GOOD_FIT)


def test_diagnosis_for_lower_is_better_metrics():
    result = diagnose(
        train_score=0.2, test_score=0.5, dummy_score=0.7, higher_is_better=False, underfit_floor=0.6
    )
    assert result.verdict == OVERFITTING
    assert result.gap == pytest.approx(0.3)


def _judge_roc_auc(models, X_train, y_train, X_test, y_test, resamples):
    """evaluate_task for a binary task judged by ROC AUC, against a prior-fitted dummy."""
    return evaluate_task(
        task="classification",
        primary="roc_auc",
        models=models,
        dummy=DummyClassifier(strategy="prior").fit(X_train, y_train),
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        resamples=resamples,
        seed=0,
    )


def test_majority_class_model_fails_the_gate_despite_high_accuracy():
    """80 % of rows are positive: always saying 'migraine' scores 0.80 accuracy, no skill."""
    rng = np.random.default_rng(0)
    y_train = (rng.uniform(size=500) < 0.8).astype(int)
    y_test = (rng.uniform(size=500) < 0.8).astype(int)
    X_train, X_test = np.zeros((500, 1)), np.zeros((500, 1))
    majority = DummyClassifier(strategy="most_frequent").fit(X_train, y_train)
    result = _judge_roc_auc({"champion": majority}, X_train, y_train, X_test, y_test, 50)
    assert result.test["champion"]["accuracy"] > 0.78
    diagnosis = diagnose(
        train_score=result.train["champion"]["roc_auc"],
        test_score=result.test["champion"]["roc_auc"],
        dummy_score=result.test["dummy"]["roc_auc"],
        margin=0.05,
    )
    assert diagnosis.verdict == UNDERFITTING
    gate = quality_gate(
        [
            GateCheck(
                task="classification",
                model="majority",
                metric="roc_auc",
                test=result.test["champion"]["roc_auc"],
                dummy=result.test["dummy"]["roc_auc"],
                lift_over_dummy=diagnosis.lift_over_dummy,
                margin=0.05,
                verdict=diagnosis.verdict,
            )
        ]
    )
    assert gate.passed is False
    assert "does not beat the dummy baseline" in gate.failures[0]
    assert gate.to_dict()["checks"][0]["model"] == "majority"


def test_gate_passes_a_skilled_model_and_fails_an_overfitted_one():
    check = GateCheck(
        task="classification",
        model="m",
        metric="roc_auc",
        test=0.8,
        dummy=0.5,
        lift_over_dummy=0.3,
        margin=0.05,
        verdict=GOOD_FIT,
    )
    assert quality_gate([check]).passed is True
    failed = quality_gate([dataclasses.replace(check, verdict=OVERFITTING)])
    assert failed.failures == ("classification champion m is OVERFITTING",)


def test_evaluate_task_reports_intervals_and_paired_comparison():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] + rng.normal(0, 0.5, 400) > 0).astype(int)
    from sklearn.linear_model import LogisticRegression

    strong = LogisticRegression().fit(X[:200], y[:200])
    weak = LogisticRegression().fit(X[:200, 1:], y[:200])

    class SecondColumnOnly:
        def predict_proba(self, X):
            return weak.predict_proba(X[:, 1:])

    models = {"champion": strong, "runner_up": SecondColumnOnly()}
    result = _judge_roc_auc(models, X[:200], y[:200], X[200:], y[200:], 100)
    champion = result.test["champion"]
    assert champion["roc_auc_ci_low"] <= champion["roc_auc"] <= champion["roc_auc_ci_high"]
    assert result.test["dummy"]["roc_auc"] == 0.5
    assert result.champion_vs_runner_up.ci_low > 0


def test_float32_outputs_become_float64_that_plots_can_write(tmp_path):
    """XGBoost answers in float32; as the champion at 100,000 rows it broke the evaluate
    stage, whose dvclive plots cannot write float32 thresholds to JSON."""
    from dvclive import Live

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + rng.normal(0, 0.5, 300) > 0).astype(int)
    fitted = LogisticRegression().fit(X[:150], y[:150])

    class Float32Model:
        def predict_proba(self, X):
            return fitted.predict_proba(X).astype(np.float32)

    result = _judge_roc_auc({"champion": Float32Model()}, X[:150], y[:150], X[150:], y[150:], 20)
    champion = result.outputs["champion"]
    assert champion.dtype == np.float64
    live = Live(str(tmp_path), dvcyaml=None, save_dvc_exp=False, report=None)
    live.log_sklearn_plot("precision_recall", y[150:], champion[:, 1], name="pr.json")
    live.end()
    assert (tmp_path / "plots" / "sklearn" / "pr.json").exists()
    with pytest.raises(TypeError, match="float32"):  # what the stage did before
        live.log_sklearn_plot("precision_recall", y[150:], champion[:, 1].astype(np.float32))


@pytest.mark.parametrize("seed", range(5))
def test_fast_binary_metrics_equal_scikit_learn(seed):
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.uniform(size=300), 2)  # rounding makes ties, as real scores have
    p[:3] = 0.5
    fast = classification_metrics(y, np.column_stack([1 - p, p]))
    predicted = (p > 0.5).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted, zero_division=0),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "roc_auc": skm.roc_auc_score(y, p),
        "log_loss": skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)),
        "brier": skm.brier_score_loss(y, p),
    }
    for name, value in expected.items():
        assert fast[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("seed", range(5))
def test_fast_multiclass_metrics_equal_scikit_learn(seed):
    """Macro scores over the classes in truth or predictions, as scikit-learn's defaults;
    ROC-AUC over the classes present (class 6 never occurs in the truth here)."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, 80)
    proba = rng.dirichlet(np.ones(7), 80)
    fast = classification_metrics(y, proba)
    predicted = proba.argmax(axis=1)
    macro = {"average": "macro", "zero_division": 0}
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        balanced = skm.balanced_accuracy_score(y, predicted)
    expected = {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": balanced,
        "precision": skm.precision_score(y, predicted, **macro),
        "recall": skm.recall_score(y, predicted, **macro),
        "f1": skm.f1_score(y, predicted, **macro),
        "roc_auc": np.mean([skm.roc_auc_score(y == k, proba[:, k]) for k in range(6)]),
        "log_loss": skm.log_loss(y, proba, labels=np.arange(7)),
    }
    for name, value in expected.items():
        assert fast[name] == pytest.approx(value, abs=1e-12), name


def test_multiclass_note_names_the_rarest_and_absent_classes():
    note = multiclass_note(["cluster", "sinus", "tension"], np.array([2, 2, 2, 1]))
    assert "3 classes: precision, recall and F1 are macro averages" in note
    assert "the rarest, 'sinus', has 1 test rows; absent from the test rows: cluster." in note


def _grouping(split_both: int, fold_both: int) -> dict:
    fold = {"column": "patient", "groups": 40, "splits": 3, "groups_on_both_sides": fold_both}
    return {
        "split": {"groups": {"train": 40, "test": 10}, "groups_on_both_sides": split_both},
        "cv": {"classification": {"splitter": "StratifiedGroupKFold", "folds": 3, "groups": fold}},
    }


def test_grouping_note_states_the_separation_and_flags_a_leak():
    clean = grouping_note("patient", _grouping(0, 0))
    assert "(40 in train, 10 in test, 0 on both)" in clean
    assert "3 StratifiedGroupKFold folds); no patient is scored on rows it was trained on" in clean
    leaky = grouping_note("patient", _grouping(0, 2))
    assert "WARNING: 2 'patient' values straddle a split" in leaky


@pytest.mark.parametrize(
    ("champion", "difference", "says"),
    [
        ("reference", None, "is the champion: no model of the zoo beat it"),
        ("lightgbm", PairedDifference(0.03, 0.01, 0.05, 0.0), "The champion beats the reference"),
        ("lightgbm", PairedDifference(-0.05, -0.08, -0.02, 1.0), "WORSE than the reference"),
        ("lightgbm", PairedDifference(0.01, -0.02, 0.04, 0.3), "does not beat the reference"),
    ],
)
def test_the_report_says_plainly_whether_the_zoo_beats_the_obvious_model(
    champion, difference, says
):
    assert says in reference_sentence(champion, "f1", difference, confidence=0.95)


def test_the_champion_is_compared_with_the_reference_on_the_same_rows():
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=400) < 0.4).astype(int)
    X = np.column_stack([y + rng.normal(scale=0.8, size=400), rng.normal(size=400)])
    good = LogisticRegression().fit(X, y)
    blind = LogisticRegression().fit(X[:, 1:], y)  # sees the noise column only

    class Blind:
        def predict_proba(self, rows):
            return blind.predict_proba(rows[:, 1:])

    result = _judge_roc_auc({"champion": good, "reference": Blind()}, X, y, X, y, 100)
    assert "reference" in result.test
    assert result.champion_vs_reference.ci_low > 0.2
    assert result.champion_vs_runner_up is None
