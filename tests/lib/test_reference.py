import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from migraine_ml.monitoring.reference import (
    INPUTS,
    PREDICTIONS,
    ROWS,
    bin_shares,
    category_key,
    drift_reference,
    input_profile,
    predicted_scores,
    prediction_profile,
    prediction_profiles,
    quantile_edges,
    receivable,
)


def test_quantile_edges_and_open_outer_bins():
    values = np.arange(1, 101, dtype=float)
    edges = quantile_edges(values, bins=4)
    assert edges == pytest.approx([25.75, 50.5, 75.25])
    shares = bin_shares(values, edges)
    assert shares == [0.25, 0.25, 0.25, 0.25]
    # values far beyond the training range still land in the outer bins
    assert bin_shares([-1e9, 1e9], edges) == [0.5, 0.0, 0.0, 0.5]


def test_discrete_values_merge_duplicate_edges():
    edges = quantile_edges(pd.Series([1, 1, 1, 1, 2, 2, 3, np.nan]), bins=10)
    assert edges == sorted(set(edges))
    assert quantile_edges(pd.Series([np.nan, np.nan])) == []
    assert bin_shares([np.nan], []) == [0.0]


def test_input_profile_follows_the_schema(cohort, schema):
    profile = input_profile(cohort, schema, bins=5)
    assert set(profile) == set(schema.features)
    sleep = profile["sleep_hours"]
    assert sleep["kind"] == "numeric" and len(sleep["shares"]) == len(sleep["edges"]) + 1
    assert sum(sleep["shares"]) == pytest.approx(1)
    assert profile["gender"]["kind"] == "categorical"
    assert set(profile["gender"]["shares"]) == {"0", "1"}


def test_prediction_profile_keeps_a_sample():
    scores = np.linspace(0, 1, 2000)
    profile = prediction_profile(scores)
    assert len(profile["sample"]) == 500
    assert profile["mean"] == pytest.approx(0.5)
    assert profile[ROWS] == 2000


def test_out_of_range_training_values_are_not_profiled(cohort, schema):
    # what the service's validator rejects: 88 h of sleep, a binary 2, a fractional age
    cohort = cohort.iloc[:100].copy()
    cohort["sleep_hours"] = [88.0, -1.0, *np.linspace(5, 9, 98)]
    cohort["gender"] = [2.0, *([0.0, 1.0] * 49), np.nan]
    cohort["age"] = [30.5, 17, *([40] * 98)]

    profile = input_profile(cohort, schema)

    sleep = profile["sleep_hours"]
    assert max(sleep["sample"]) == 9 and min(sleep["sample"]) == 5
    assert sleep[ROWS] == 98 and sleep["missing_share"] == pytest.approx(0.02)
    assert profile["gender"]["shares"] == {"0": 0.5, "1": 0.5}
    assert profile["gender"][ROWS] == 98
    assert profile["age"][ROWS] == 98 and profile["age"]["sample"] == [40.0] * 98


def test_receivable_categories_are_the_schema_values(category_schema):
    values = pd.Series(["north", "mars", None, "islands"])
    kept = receivable(values, category_schema.columns["region"])
    assert kept.tolist()[::3] == ["north", "islands"] and kept.isna().sum() == 2


def test_binary_keys_are_0_and_1_whatever_the_dtype(cohort, schema):
    cohort["gender"] = cohort["gender"].astype(float)
    cohort.loc[cohort.index[0], "gender"] = np.nan  # as a missing cell makes it in a CSV
    assert cohort["gender"].dtype == float

    shares = input_profile(cohort, schema)["gender"]["shares"]

    assert list(shares) == ["0", "1"]
    assert category_key(1.0) == category_key("1.0") == "1" and category_key("aura") == "aura"


def three_classes(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=rows), "z": rng.normal(size=rows)})
    labels = np.where(X["x"] > 0.5, "aura", np.where(X["z"] > 0, "tension", "none"))
    return X, labels


def test_every_class_of_a_classifier_is_profiled():
    X, labels = three_classes(600, seed=0)
    classes = ["none", "aura", "tension"]  # the schema's order: the model is fit on codes
    codes = pd.Series(labels).map({c: i for i, c in enumerate(classes)})
    model = LogisticRegression().fit(X, codes)

    scores = predicted_scores(model, X, classes)
    profiles = prediction_profiles(scores)

    assert list(profiles) == classes
    np.testing.assert_allclose(sum(scores.values()), 1.0)
    # column i is classes[i]: 'aura' rows (x > 0.5) get the highest 'aura' probability
    assert scores["aura"][labels == "aura"].mean() > 0.6
    assert profiles["aura"]["mean"] == pytest.approx(np.mean(labels == "aura"), abs=0.02)
    assert all(
        p[ROWS] == 600 and len(p["shares"]) == len(p["edges"]) + 1 for p in profiles.values()
    )
    binary = predicted_scores(LogisticRegression().fit(X, codes > 0), X, [0.0, 1.0])
    assert list(binary) == ["0", "1"]
    regression = predicted_scores(LinearRegression().fit(X, X["x"]), X, None)
    assert list(regression) == ["value"]


def test_the_reference_records_its_row_counts(cohort, schema):
    outputs = {"1": np.linspace(0, 1, 50), "0": np.linspace(1, 0, 50)}
    reference = drift_reference(cohort, schema, {"classification": prediction_profiles(outputs)})

    assert reference[ROWS] == len(cohort)
    sleep = cohort["sleep_hours"]
    in_range = sleep.between(*schema.columns["sleep_hours"].range).sum()
    assert reference[INPUTS]["sleep_hours"][ROWS] == in_range < len(cohort)
    assert reference[PREDICTIONS]["classification"]["0"][ROWS] == 50
