import numpy as np
import pandas as pd
import pytest

from migraine_ml.modeling.features import (
    HealthIndices,
    Interactions,
    Powers,
    QuantileBins,
    SelectTop,
    applicable_config,
    make_feature_builder,
    selection_report,
)


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    a, b, noise = rng.normal(size=(3, 300))
    flag = rng.binomial(1, 0.4, 300)
    return pd.DataFrame({"a": a, "b": b, "noise": noise, "flag": flag.astype(float)})


@pytest.fixture
def target(frame):
    # y depends on a*b (an interaction) and on flag, not on noise
    return ((frame["a"] * frame["b"] + 0.8 * frame["flag"]) > 0.3).astype(int)


def test_health_indices_are_weighted_sums(frame):
    indices = HealthIndices({"load": {"a": 0.5, "b": 2.0}}).fit(frame)
    out = indices.transform(frame)
    np.testing.assert_allclose(out["load"], 0.5 * frame["a"] + 2.0 * frame["b"])
    assert list(out.columns) == list(indices.get_feature_names_out())


def test_interactions_pick_the_pair_that_matters(frame, target):
    interactions = Interactions(top_k=1).fit(frame, target)
    assert interactions.pairs_ == [("a", "b")]
    out = interactions.transform(frame)
    np.testing.assert_allclose(out["a*b"], frame["a"] * frame["b"])
    assert list(out.columns) == list(interactions.get_feature_names_out())


def test_configured_interactions_need_no_target(frame):
    out = Interactions([["a", "noise"]]).fit(frame).transform(frame)
    assert "a*noise" in out
    with pytest.raises(ValueError, match="needs y"):
        Interactions(top_k=2).fit(frame)


def test_powers_and_bins(frame):
    powers = Powers(["a"], degree=3).fit(frame)
    out = powers.transform(frame)
    np.testing.assert_allclose(out["a^3"], frame["a"] ** 3)
    assert list(powers.get_feature_names_out())[-2:] == ["a^2", "a^3"]
    bins = QuantileBins({"b": 4}).fit(frame)
    binned = bins.transform(frame)["b_bin"]
    assert sorted(binned.unique()) == [0.0, 1.0, 2.0, 3.0]
    assert binned.value_counts().min() >= 70  # quantile bins hold ~75 rows each


@pytest.mark.parametrize("score", ["f_test", "mutual_info", "model"])
def test_select_top_keeps_the_informative_columns(frame, target, score):
    enriched = frame.assign(**{"a*b": frame["a"] * frame["b"]})
    select = SelectTop(2, score=score, seed=0).fit(enriched, target)
    assert set(select.selected_) == {"a*b", "flag"}
    assert list(select.transform(enriched).columns) == select.selected_
    assert select.dropped_ and set(select.dropped_) | set(select.selected_) == set(enriched)


def test_fitted_state_comes_from_train_rows_only(frame, target):
    """Transforming other rows (the test split) never changes what was learned."""
    train, test = frame.iloc[:200], frame.iloc[200:]
    builder = make_feature_builder(
        interaction_top_k=1, bins={"b": 3}, n_features=3, selection_score="f_test"
    ).fit(train, target.iloc[:200])
    learned = selection_report(builder)
    builder.transform(test * 10)
    assert selection_report(builder) == learned
    refit = make_feature_builder(
        interaction_top_k=1, bins={"b": 3}, n_features=3, selection_score="f_test"
    ).fit(train, target.iloc[:200])
    assert selection_report(refit) == learned
    edges = np.quantile(train["b"], [1 / 3, 2 / 3])
    np.testing.assert_allclose(learned["bin_edges"]["b"], edges.round(6))


def test_builder_output_matches_feature_names(frame, target):
    builder = make_feature_builder(
        health_indices={"ab": {"a": 1, "b": 1}},
        interaction_pairs=[["a", "b"]],
        polynomial_columns=["a"],
        bins={"b": 2},
        n_features=4,
        selection_score="f_test",
    ).fit(frame, target)
    out = builder.transform(frame)
    assert list(out.columns) == list(builder.get_feature_names_out())
    assert out.shape == (300, 4)


@pytest.mark.parametrize(
    ("transformer", "message"),
    [
        (HealthIndices({"x": {"zzz": 1}}), r"health index 'x': columns \['zzz'\]"),
        (Interactions([["a", "zzz"]]), r"interaction 'a\*zzz'"),
        (Powers(["zzz"]), "polynomial terms"),
        (QuantileBins({"zzz": 3}), "binning"),
    ],
)
def test_unknown_columns_are_named(frame, transformer, message):
    with pytest.raises(KeyError, match=message):
        transformer.fit(frame)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"score": "chi2"}, "score: 'chi2' is not one of"), ({"n_features": 0}, "n_features: 0")],
)
def test_select_top_rejects_bad_options(frame, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SelectTop(**kwargs).fit(frame, target)


def test_transformers_want_data_frames(frame):
    with pytest.raises(TypeError, match="expects a DataFrame"):
        HealthIndices({}).fit(frame.to_numpy())
    with pytest.raises(ValueError, match="degree: 0"):
        Powers(["a"], degree=0).fit(frame)


def test_applicable_config_drops_what_the_data_lacks():
    config = {
        "health_indices": {"ok": {"a": 1}, "gone": {"a": 1, "z": 1}},
        "interaction_pairs": [["a", "b"], ["a", "z"]],
        "polynomial_columns": ["a", "z"],
        "interaction_candidates": None,
        "bins": {"b": 3, "z": 4},
        "n_features": 5,
    }
    usable, skipped = applicable_config(config, ["a", "b"])
    assert usable["health_indices"] == {"ok": {"a": 1}}
    assert usable["interaction_pairs"] == [["a", "b"]]
    assert usable["polynomial_columns"] == ["a"]
    assert usable["bins"] == {"b": 3}
    assert usable["n_features"] == 5
    assert len(skipped) == 4
    assert "health index 'gone': columns ['z'] not in the data, skipped" in skipped


@pytest.mark.parametrize("score", ["f_test", "mutual_info", "model"])
def test_constant_columns_score_zero_without_warnings(frame, target, score):
    """pytest turns warnings into errors: F-tests on a constant column would divide by 0."""
    with_constant = frame.assign(version=2.0)
    select = SelectTop(2, score=score, seed=0).fit(with_constant, target)
    assert select.scores_["version"] == 0.0
    assert "version" not in select.selected_


@pytest.mark.parametrize(
    "step",
    [
        HealthIndices({"load": {"a": 0.3, "b": 1.7, "noise": -0.1}, "pair": {"b": 0.5}}),
        Interactions([["a", "b"], ["flag", "noise"]]),
        Powers(["a", "noise"], degree=3),  # two degrees: computed per degree, reordered
        Powers(["b"], degree=2),
        QuantileBins({"a": 4, "noise": 3, "flag": 2}),
    ],
    ids=["indices", "interactions", "powers-3", "powers-2", "bins"],
)
def test_the_fast_path_replay_of_a_step_is_bit_identical_to_transform(frame, step):
    """One numpy call per step (fastpath.CompiledPipeline) must not change a single bit."""
    step.fit(frame)
    expected = step.transform(frame).iloc[:, frame.shape[1] :]
    names, replay = step.replay_block(list(frame.columns))
    got = replay(frame.to_numpy(dtype=float).T)
    assert names == list(expected.columns)
    np.testing.assert_array_equal(got.T, expected.to_numpy(dtype=float))
    # and one row at a time in plain floats, as the service replays a single record:
    # the block's bits exactly (the sign of a zero included, which == cannot see)
    row = step.replay_row(list(frame.columns))
    by_row = np.array([row(values) for values in frame.to_numpy(dtype=float).tolist()])
    np.testing.assert_array_equal(by_row, expected.to_numpy(dtype=float))
    np.testing.assert_array_equal(
        by_row.view(np.uint64), np.ascontiguousarray(got.T).view(np.uint64)
    )


def test_the_bins_replay_puts_a_missing_value_where_transform_does(frame):
    bins = QuantileBins({"a": 4}).fit(frame)
    rows = frame.head(3).copy()
    rows.loc[rows.index[1], "a"] = np.nan
    _, replay = bins.replay_block(list(rows.columns))
    got = replay(rows.to_numpy(dtype=float).T)[0]
    np.testing.assert_array_equal(got, bins.transform(rows)["a_bin"].to_numpy())
    assert got[1] == len(bins.edges_["a"])  # NaN sorts after every edge
    row = bins.replay_row(list(rows.columns))
    assert [row(values)[0] for values in rows.to_numpy(dtype=float).tolist()] == got.tolist()
