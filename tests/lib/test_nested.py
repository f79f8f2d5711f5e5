import numpy as np
import pytest
from scipy import stats

from migraine_ml.data.preprocess import drop_unusable_rows, make_preprocessor
from migraine_ml.data.validation import coerce_types
from migraine_ml.evaluation.nested import corrected_interval, repeated_cv_estimate
from migraine_ml.modeling.features import make_feature_builder
from migraine_ml.modeling.plan import TrainConfig, plan_tasks


def test_the_corrected_interval_is_wider_than_the_naive_one():
    values = np.array([0.80, 0.84, 0.78, 0.86, 0.82])
    low, high = corrected_interval(values, test_share=0.2, confidence=0.95)
    assert low < values.mean() < high
    # by hand: t(4, .975) * sqrt((1/5 + 0.2/0.8) * s^2)
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 0.25) * values.var(ddof=1))
    assert (low, high) == pytest.approx((values.mean() - half, values.mean() + half))
    naive = stats.t.ppf(0.975, 4) * values.std(ddof=1) / np.sqrt(5)
    assert high - low > 2 * naive


def test_one_fold_has_no_spread():
    assert corrected_interval(np.array([0.7]), test_share=0.2, confidence=0.95) == (0.7, 0.7)


@pytest.fixture
def config():
    block = {
        "cv_folds": 2,
        "class_weight": None,
        "scoring": {"classification": "auto", "regression": "r2"},
        "max_rows": {},
        "experiment": "test",
        "classifiers": {"naive_bayes": {}, "logistic_regression": {"n_iter": 1}},
        "regressors": {"ridge": {"n_iter": 1, "space": {"alpha": [1.0]}}},
    }
    return TrainConfig.from_params(
        {"train": block, "seed": 0, "validate": {"min_class_share": 0.1}}
    )


def test_the_whole_procedure_is_scored_on_rows_it_never_saw(cohort, schema, config):
    rows, _ = drop_unusable_rows(coerce_types(cohort, schema), schema)
    classification, regression = plan_tasks(schema, rows, config)
    estimate = repeated_cv_estimate(
        classification,
        features=schema.features,
        preprocessor=make_preprocessor(schema),
        builder=make_feature_builder(n_features=8, selection_score="f_test"),
        config=config,
        folds=3,
        repeats=2,
        confidence=0.95,
        primary="roc_auc",
    )
    assert sum(estimate.champions.values()) == 6  # 2 repeats x 3 outer folds
    assert set(estimate.champions) <= {"naive_bayes", "logistic_regression", "reference"}
    champion = estimate.test["champion"]
    assert champion["roc_auc_ci_low"] <= champion["roc_auc"] <= champion["roc_auc_ci_high"]
    assert estimate.test["dummy"]["roc_auc"] == 0.5
    assert champion["roc_auc"] > 0.6
    # every row has an out-of-fold probability from the first repeat
    assert estimate.outputs["champion"].shape == (len(rows), 2)
    assert np.allclose(estimate.outputs["champion"].sum(axis=1), 1)
    assert len(estimate.y) == len(rows)
    difference = estimate.champion_vs_reference
    assert difference.ci_low <= difference.difference <= difference.ci_high
    assert estimate.describe().startswith(f"2 × 3-fold cross-validation over all {len(rows)} rows")

    severity = repeated_cv_estimate(
        regression,
        features=schema.features,
        preprocessor=make_preprocessor(schema),
        builder=make_feature_builder(n_features=8, selection_score="f_test"),
        config=config,
        folds=3,
        repeats=1,
        confidence=0.95,
        primary="r2",
    )
    assert len(severity.y) == len(regression.data.rows)
    assert severity.test["champion"]["r2"] > severity.test["dummy"]["r2"]


def test_a_class_too_small_for_the_folds_is_named():
    import pandas as pd

    from migraine_ml.evaluation.nested import TooFewRows, check_class_sizes
    from migraine_ml.modeling.tuning import cv_splitter

    y = pd.Series([0] * 40 + [1] * 4)
    splits = list(cv_splitter("classification", folds=3, seed=0, grouped=False).split(y, y))
    # 4 rare rows: an outer training part keeps 2 or 3, fewer than 3 inner folds need
    with pytest.raises(TooFewRows, match=r"class 'rare' has 4 rows; an outer fold's training"):
        check_class_sizes(y, None, ["common", "rare"], splits, inner_folds=3)
    check_class_sizes(y, None, ["common", "rare"], splits, inner_folds=2)
    # with patients, two in every outer training part are enough; a patient counts for
    # every class it has a row of (pins a bug: only its first row's class was counted)
    groups = pd.Series([*range(40), 100, 100, 101, 102])
    grouped = list(cv_splitter("classification", folds=3, seed=0, grouped=True).split(y, y, groups))
    check_class_sizes(y, groups, ["common", "rare"], grouped, inner_folds=3)
    mixed = pd.Series([*range(40), 0, 1, 2, 3])  # the rare rows belong to common patients
    check_class_sizes(y, mixed, ["common", "rare"], grouped, inner_folds=3)
