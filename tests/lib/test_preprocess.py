import os

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from migraine_ml import persist
from migraine_ml.data.preprocess import (
    Fences,
    OutlierLimiter,
    RangeGuard,
    drop_unusable_rows,
    group_separation,
    make_preprocessor,
    preprocess_summary,
    split_facts,
    split_train_test,
    tukey_fences,
)
from migraine_ml.data.schema import schema_from_dict
from migraine_ml.data.validation import coerce_types


@pytest.fixture
def usable(cohort, schema):
    rows, _ = drop_unusable_rows(coerce_types(cohort, schema), schema)
    return rows


def test_duplicates_and_unlabelled_rows_are_dropped(cohort, schema):
    frame = coerce_types(cohort, schema)
    frame.loc[0, "migraine_occurrence"] = np.nan
    rows, dropped = drop_unusable_rows(frame, schema)
    assert dropped["duplicates"] == frame.duplicated().sum()
    assert dropped["missing_target"] == 1
    assert not rows.duplicated().any()


def test_split_is_stratified_and_disjoint(usable, schema):
    train, test = split_train_test(
        usable, target=schema.classification_target, group=None, test_size=0.25, seed=0
    )
    assert len(test) == pytest.approx(len(usable) * 0.25, abs=1)
    assert set(train.index).isdisjoint(test.index)
    # no row (not even a copy of one) on both sides
    assert train.merge(test, how="inner").empty
    rate = usable["migraine_occurrence"].mean()
    assert test["migraine_occurrence"].mean() == pytest.approx(rate, abs=0.02)


def test_split_keeps_each_group_on_one_side(usable, schema):
    rows = usable.assign(patient=np.arange(len(usable)) // 4)
    train, test = split_train_test(
        rows, target=schema.classification_target, group="patient", test_size=0.2, seed=0
    )
    assert set(train["patient"]).isdisjoint(test["patient"])
    assert 0.1 < len(test) / len(rows) < 0.3


def test_split_is_deterministic(usable, schema):
    first = split_train_test(
        usable, target="migraine_occurrence", group=None, test_size=0.2, seed=3
    )
    second = split_train_test(
        usable, target="migraine_occurrence", group=None, test_size=0.2, seed=3
    )
    pd.testing.assert_frame_equal(first[1], second[1])


def test_bad_test_size_is_rejected(usable):
    with pytest.raises(ValueError, match=r"test_size: 1\.5 is outside"):
        split_train_test(usable, target=None, group=None, test_size=1.5, seed=0)


def test_range_guard_blanks_entry_errors():
    frame = pd.DataFrame({"sleep": [7.0, 70.0, np.nan, 4.0], "other": [1, 2, 3, 4]})
    guard = RangeGuard({"sleep": (4.0, 10.0)}).fit(frame)
    assert guard.entry_errors_ == {"sleep": 1}
    out = guard.transform(frame)
    assert out["sleep"].isna().tolist() == [False, True, True, False]
    assert out["other"].tolist() == [1, 2, 3, 4]
    assert list(guard.get_feature_names_out()) == ["sleep", "other"]


def test_guard_names_missing_columns_at_transform():
    guard = RangeGuard({"a": (0, 1)}).fit(pd.DataFrame({"a": [0.5], "b": [1]}))
    with pytest.raises(KeyError, match=r"missing columns \['b'\]"):
        guard.transform(pd.DataFrame({"a": [0.2]}))


@pytest.mark.parametrize(("strategy", "expected"), [("clip", 13.0), ("missing", None)])
def test_outlier_limiter_uses_training_fences(strategy, expected):
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})  # Q1=2, Q3=4, IQR=2
    limiter = OutlierLimiter(["x"], iqr_factor=3.0, min_distinct=5, strategy=strategy).fit(train)
    assert (limiter.lower_["x"], limiter.upper_["x"]) == (-4.0, 10.0)
    out = limiter.transform(pd.DataFrame({"x": [3.0, 500.0]}))
    assert out["x"].iloc[0] == 3.0
    if expected is None:
        assert np.isnan(out["x"].iloc[1])
    else:
        assert out["x"].iloc[1] == 10.0


# Pins the collapsed fences: where Q1 = Q3 both fences sat on that value and every
# other value was clipped to it, so a symptom grade with 3 in 4 rows at 0 became
# constant (reports/preprocess.json showed "limits": [0.0, 0.0]).
@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([0.0] * 60 + list(range(1, 13)), "zero spread: Q1 = Q3 = 0"),
        ([0.0] * 30 + [1, 2, 3, 4] * 3, "discrete: 5 distinct values (< 10)"),
        ([2.5] * 40 + [7.5], "discrete: 2 distinct values (< 10)"),
        ([np.nan] * 20, "no values"),
    ],
    ids=["IQR 0", "0-4 grade", "two values", "empty"],
)
@pytest.mark.parametrize("strategy", ["clip", "missing"])
def test_columns_without_fences_keep_every_value(values, reason, strategy):
    train = pd.DataFrame({"grade": values, "hours": np.linspace(1, 10, len(values))})
    limiter = OutlierLimiter(["grade", "hours"], strategy=strategy).fit(train)
    assert limiter.skipped_ == {"grade": reason}
    assert list(limiter.lower_) == ["hours"]
    pd.testing.assert_series_equal(limiter.transform(train)["grade"], train["grade"])
    low, high = limiter.replay_bounds(["grade", "hours"])
    assert (low[0], high[0]) == (-np.inf, np.inf)
    assert np.isfinite([low[1], high[1]]).all()


@pytest.mark.parametrize("strategy", ["clip", "missing"])
def test_a_far_outlier_in_a_continuous_column_is_still_limited(strategy):
    hours = pd.DataFrame({"hours": [*np.linspace(4.0, 10.0, 40), 500.0]})
    limiter = OutlierLimiter(["hours"], strategy=strategy).fit(hours)
    fences = tukey_fences(hours["hours"], iqr_factor=3.0, min_distinct=10)
    assert isinstance(fences, Fences) and fences.lower < 4.0 and 10.0 < fences.upper < 500.0
    assert (limiter.lower_["hours"], limiter.upper_["hours"]) == (fences.lower, fences.upper)
    assert limiter.limited_ == {"hours": 1} and limiter.skipped_ == {}
    out = limiter.transform(hours)["hours"]
    assert out.iloc[:40].tolist() == hours["hours"].iloc[:40].tolist()
    assert (out.iloc[40] == fences.upper) if strategy == "clip" else np.isnan(out.iloc[40])


def test_summary_says_which_columns_were_not_limited_and_why():
    schema = schema_from_dict(
        {
            "columns": {
                "neck_pain_grade": {"dtype": "int", "range": [0, 4]},
                "hours": {"dtype": "float", "range": [0, 1000]},
                "y": {"dtype": "binary", "role": "classification_target"},
            }
        }
    )
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        {
            "neck_pain_grade": rng.choice(
                [0, 1, 2, 3, 4], p=[0.8, 0.1, 0.05, 0.03, 0.02], size=200
            ),
            "hours": [*rng.normal(8, 1, 199), 900.0],
            "y": rng.integers(0, 2, 200),
        }
    )
    preprocessor = make_preprocessor(schema, outlier_min_distinct=10).fit(rows)
    summary = preprocess_summary(preprocessor, train=rows, test=rows, dropped={})
    grade, hours = summary["columns"]["neck_pain_grade"], summary["columns"]["hours"]
    assert grade["not_limited"] == "discrete: 5 distinct values (< 10)"
    assert "limits" not in grade
    assert hours["limited_train"] == hours["limited_test"] == 1
    assert "not_limited" not in hours
    assert preprocessor.transform(rows)["neck_pain_grade"].nunique() == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "drop"}, "strategy: 'drop' is not one of"),
        ({"iqr_factor": 0}, "iqr_factor: 0 must be positive"),
    ],
)
def test_outlier_limiter_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OutlierLimiter(["x"], **kwargs).fit(pd.DataFrame({"x": [1.0, 2.0]}))


def test_preprocessor_output_is_complete_and_named(usable, schema):
    preprocessor = make_preprocessor(schema).fit(usable[schema.features])
    out = preprocessor.transform(usable)
    assert list(out.columns) == schema.continuous_features + schema.binary_features
    assert not out.isna().any().any()
    assert out["sleep_hours"].mean() == pytest.approx(0, abs=1e-9)
    assert set(out["gender"].unique()) <= {0.0, 1.0}


def test_preprocessor_is_fitted_on_train_only(usable, schema):
    """Changing the test rows must not change anything fitted."""
    train, test = split_train_test(
        usable, target="migraine_occurrence", group=None, test_size=0.2, seed=0
    )
    fitted = make_preprocessor(schema).fit(train[schema.features])
    refitted = make_preprocessor(schema).fit(train[schema.features])
    shifted = test.assign(sleep_hours=test["sleep_hours"] + 3)
    pd.testing.assert_frame_equal(fitted.transform(train), refitted.transform(train))
    before = fitted.named_steps["columns"].named_transformers_["continuous"]
    assert before.named_steps["scale"].mean_.tolist() == (
        refitted.named_steps["columns"]
        .named_transformers_["continuous"]
        .named_steps["scale"]
        .mean_.tolist()
    )
    # the test side only ever goes through transform
    assert not fitted.transform(shifted).isna().any().any()


def test_categories_are_one_hot_and_unseen_values_do_not_crash():
    schema = schema_from_dict(
        {
            "columns": {
                "sex": {"dtype": "category", "values": ["female", "male"]},
                "dose": {"dtype": "float", "range": [0, 10]},
                "y": {"dtype": "binary", "role": "classification_target"},
            }
        }
    )
    train = pd.DataFrame({"sex": ["female", "male", None, "male"], "dose": [1.0, 2, 3, 4]})
    preprocessor = make_preprocessor(schema, scale=False).fit(train)
    out = preprocessor.transform(pd.DataFrame({"sex": ["other"], "dose": [2.0]}))
    assert list(out.columns) == ["dose", "sex_female", "sex_male"]
    assert out[["sex_female", "sex_male"]].to_numpy().tolist() == [[0.0, 0.0]]


def test_summary_counts_what_was_done(usable, schema):
    train, test = split_train_test(
        usable, target="migraine_occurrence", group=None, test_size=0.2, seed=0
    )
    preprocessor = make_preprocessor(schema).fit(train[schema.features])
    summary = preprocess_summary(preprocessor, train=train, test=test, dropped={"duplicates": 4})
    assert summary["rows"] == {"train": len(train), "test": len(test)}
    sleep = summary["columns"]["sleep_hours"]
    assert sleep["entry_errors_train"] == int((train["sleep_hours"] > 10).sum())
    assert sleep["missing_train"] == int(train["sleep_hours"].isna().sum())


def test_persist_round_trip_and_refusal(tmp_path, usable, schema):
    preprocessor = make_preprocessor(schema).fit(usable[schema.features])
    path = tmp_path / "pre.skops"
    digest = persist.save(preprocessor, path)
    assert digest == persist.file_md5(path)
    loaded = persist.load(path)
    pd.testing.assert_frame_equal(loaded.transform(usable), preprocessor.transform(usable))


@pytest.mark.parametrize("payload", [os.system, np.load])
def test_persist_refuses_functions_in_model_files(tmp_path, payload):
    sio.dump({"call": payload}, tmp_path / "evil.skops")
    with pytest.raises(persist.UntrustedModelError, match="untrusted types"):
        persist.load(tmp_path / "evil.skops")


def test_equal_models_give_byte_identical_files(tmp_path, usable, schema):
    """Pins the bug where skops' memory-address ids made every refit a new DVC hash."""
    first = make_preprocessor(schema).fit(usable[schema.features])
    second = make_preprocessor(schema).fit(usable[schema.features])
    assert persist.save(first, tmp_path / "a.skops") == persist.save(second, tmp_path / "b.skops")


@pytest.mark.parametrize("model", ["xgboost", "lightgbm", "svm"])
def test_boosters_and_wrappers_survive_the_canonical_archive(tmp_path, usable, schema, model):
    """Pins the bug where an XGBoost booster (a .bin member) was dropped from the file."""
    from migraine_ml.modeling.zoo import model_zoo

    X = make_preprocessor(schema).fit_transform(usable[schema.features])
    y = usable["migraine_occurrence"].astype(int)
    fitted = model_zoo("classification", seed=0)[model].fit(X, y)
    first = persist.save(fitted, tmp_path / "a.skops")
    loaded = persist.load(tmp_path / "a.skops")
    np.testing.assert_allclose(loaded.predict_proba(X), fitted.predict_proba(X))
    refitted = model_zoo("classification", seed=0)[model].fit(X, y)
    assert persist.save(refitted, tmp_path / "b.skops") == first


def test_ordered_categories_become_their_position():
    schema = schema_from_dict(
        {
            "columns": {
                "pills": {
                    "dtype": "category",
                    "values": ["none", "reduced", "continuing"],
                    "ordered": True,
                },
                "y": {"dtype": "binary", "role": "classification_target"},
            }
        }
    )
    train = pd.DataFrame({"pills": ["none", "continuing", "reduced", None, "none"]})
    preprocessor = make_preprocessor(schema, scale=False).fit(train)
    out = preprocessor.transform(pd.DataFrame({"pills": ["continuing", "none", "stopped", None]}))
    # unknown and missing values are imputed with the training median (position 0.5 -> 0.5)
    assert out["pills"].tolist() == [2.0, 0.0, 0.5, 0.5]


def test_group_separation_counts_straddling_groups():
    groups = pd.Series(["a", "a", "b", "b", "c"], name="patient")
    apart = group_separation(groups, [(np.array([0, 1, 4]), np.array([2, 3]))])
    assert apart == {"column": "patient", "groups": 3, "splits": 1, "groups_on_both_sides": 0}
    leaky = group_separation(groups, [(np.array([0, 2, 4]), np.array([1, 3]))])
    assert leaky["groups_on_both_sides"] == 2


def test_split_facts_for_a_grouped_split(usable, schema):
    rows = usable.assign(patient=np.arange(len(usable)) // 4)
    train, test = split_train_test(
        rows, target=schema.classification_target, group="patient", test_size=0.2, seed=0
    )
    facts = split_facts(train, test, group="patient")
    assert facts["groups_on_both_sides"] == 0
    assert facts["groups"] == {
        "train": train["patient"].nunique(),
        "test": test["patient"].nunique(),
    }
    assert split_facts(train, test, group=None) == {"method": "stratified row split"}


def _feedback(rows: pd.DataFrame, prefix: str) -> pd.DataFrame:
    out = rows.copy()
    out["prediction_id"] = [f"{prefix}{i:030x}" for i in range(len(out))]
    return out.reset_index(drop=True)


PREPROCESS = dict(
    test_size=0.2,
    seed=3,
    outlier_iqr_factor=3.0,
    outlier_min_distinct=10,
    outlier_strategy="clip",
    scale=True,
)


def test_feedback_joins_after_the_split_and_keeps_its_side(cohort, schema):
    from migraine_ml.data.preprocess import preprocess_data
    from migraine_ml.data.synthetic import generate_cohort

    base = coerce_types(cohort, schema)[schema.required]
    plain = preprocess_data(base, schema, **PREPROCESS)
    new = coerce_types(generate_cohort(rows=400, prevalence=0.35, seed=21).clean, schema)
    repeated = base.drop_duplicates().head(5)  # records the base data already has
    first = _feedback(pd.concat([new.head(200), repeated]), "a")
    with_first = preprocess_data(base, schema, feedback=first, **PREPROCESS)
    # the base rows are split exactly as without feedback
    pd.testing.assert_frame_equal(with_first.train.head(len(plain.train)), plain.train)
    pd.testing.assert_frame_equal(with_first.test.head(len(plain.test)), plain.test)
    facts = with_first.summary["feedback"]
    assert facts["repeating_data"] == 5 and facts["train"] + facts["test"] == 200
    assert 10 < facts["test"] < 70  # about test_size of the rows
    # a later retraining with more feedback: the first rows keep their sides
    more = pd.concat([first, _feedback(new.tail(200), "b")], ignore_index=True)
    with_more = preprocess_data(base, schema, feedback=more, **PREPROCESS)
    first_test = with_first.test.tail(facts["test"]).reset_index(drop=True)
    later_test = with_more.test.iloc[len(plain.test) :].head(facts["test"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(later_test, first_test)


def test_feedback_rows_without_a_label_are_not_used(cohort, schema):
    from migraine_ml.data.preprocess import preprocess_data
    from migraine_ml.data.synthetic import generate_cohort

    base = coerce_types(cohort, schema)[schema.required]
    new = coerce_types(generate_cohort(rows=100, prevalence=0.35, seed=22).clean, schema)
    new.loc[new.index[:30], "migraine_occurrence"] = np.nan
    result = preprocess_data(base, schema, feedback=_feedback(new, "c"), **PREPROCESS)
    facts = result.summary["feedback"]
    assert facts["unusable"] == 30 and facts["train"] + facts["test"] == 70


def test_feedback_keeps_each_patient_on_one_side(cohort, schema):
    from migraine_ml.data.preprocess import preprocess_data
    from migraine_ml.data.synthetic import generate_cohort

    grouped = schema_from_dict(
        {
            "name": "grouped",
            "columns": {
                **schema.to_dict()["columns"],
                "patient": {"dtype": "category", "role": "group"},
            },
        }
    )
    base = coerce_types(cohort, schema).assign(patient=lambda f: (f.index // 4).astype(str))
    base = base[grouped.required]
    new = coerce_types(generate_cohort(rows=300, prevalence=0.35, seed=23).clean, schema)
    # a third of the feedback comes from patients of the base data, the rest carries none
    new["patient"] = None
    new.loc[new.index[:100], "patient"] = base["patient"].iloc[:100].to_numpy()
    result = preprocess_data(base, grouped, feedback=_feedback(new, "g"), **PREPROCESS)
    assert set(result.train["patient"]).isdisjoint(result.test["patient"])
    assert result.train["patient"].notna().all() and result.test["patient"].notna().all()
    assert result.summary["feedback"]["train"] + result.summary["feedback"]["test"] == 300
