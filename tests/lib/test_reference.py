import numpy as np
import pandas as pd
import pytest

from migraine_ml.monitoring.reference import (
    bin_shares,
    input_profile,
    prediction_profile,
    quantile_edges,
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
