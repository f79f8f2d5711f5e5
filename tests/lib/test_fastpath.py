import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from migraine_ml.data.preprocess import drop_unusable_rows, make_preprocessor
from migraine_ml.data.schema import schema_from_dict
from migraine_ml.data.validation import coerce_types
from migraine_ml.modeling.fastpath import (
    CompiledPipeline,
    Unsupported,
    decode_categories,
    encode_categories,
    parity,
)
from migraine_ml.modeling.features import make_feature_builder
from migraine_ml.modeling.zoo import model_zoo


def _pipeline(schema, model, rows, y, **preprocessing):
    return Pipeline(
        [
            ("preprocess", make_preprocessor(schema, **preprocessing)),
            (
                "features",
                make_feature_builder(
                    health_indices={"load": {"stress_level": 0.5, "screen_time": 0.5}},
                    interaction_pairs=[["sleep_hours", "load"]],
                    polynomial_columns=["age"],
                    bins={"age": 4},
                    n_features=10,
                    selection_score="f_test",
                ),
            ),
            ("model", model),
        ]
    ).fit(rows, y)


@pytest.mark.parametrize(
    ("task", "name"),
    [
        ("classification", "gradient_boosting"),
        ("classification", "random_forest"),
        ("classification", "logistic_regression"),
        ("classification", "xgboost"),
        ("classification", "lightgbm"),
        ("regression", "ridge"),
        ("regression", "gradient_boosting"),
    ],
)
def test_fast_path_equals_the_pipeline(cohort, schema, task, name):
    rows, _ = drop_unusable_rows(coerce_types(cohort, schema), schema)
    y = rows["migraine_occurrence" if task == "classification" else "migraine_severity"]
    pipeline = _pipeline(schema, model_zoo(task, seed=0)[name], rows[schema.features], y)
    result = parity(pipeline, rows, schema)
    assert result.passed, result
    single = CompiledPipeline(pipeline, schema).predict(
        rows[schema.features].head(1).to_numpy(dtype=float)
    )
    assert np.asarray(single).shape[0] == 1


@pytest.mark.parametrize("strategy", ["clip", "missing"])
def test_one_record_in_plain_floats_equals_the_numpy_rows_bit_for_bit(cohort, schema, strategy):
    """The service's single-record path (`row_input`) against the batch replay, on rows
    with what the preprocessor must handle: missing values, values outside the
    schema's range (the guard makes them missing) and outliers (the limiter clips)."""
    rows, _ = drop_unusable_rows(coerce_types(cohort, schema), schema)
    y = rows["migraine_occurrence"]
    model = model_zoo("classification", seed=0)["logistic_regression"]
    # narrow fences (0.5 IQR), so that the limiter has work inside the schema's ranges
    pipeline = _pipeline(
        schema, model, rows[schema.features], y, outlier_iqr_factor=0.5, outlier_strategy=strategy
    )
    compiled = CompiledPipeline(pipeline, schema)
    assert compiled._rows is not None  # else one row would take the batch path: no test
    X = rows[schema.features].head(200).to_numpy(dtype=float, copy=True)
    rng = np.random.default_rng(0)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:20, schema.features.index("age")] = 500.0  # outside the schema's range
    # outliers inside the range, beyond the limiter's fitted fences: clipped or missing
    pre = compiled._preprocess
    assert pre.clip == (strategy == "clip")
    high = np.flatnonzero(np.isfinite(pre.limit_high) & (pre.limit_high < pre.guard_high))
    low = np.flatnonzero(np.isfinite(pre.limit_low) & (pre.limit_low > pre.guard_low))
    assert len(high) > 0 and len(low) > 0
    X[20:40, high] = (pre.limit_high[high] + pre.guard_high[high]) / 2
    X[40:60, low] = (pre.limit_low[low] + pre.guard_low[low]) / 2
    batch = compiled.model_input(X)
    single = np.concatenate([compiled.model_input(X[i : i + 1]) for i in range(len(X))])
    assert compiled.row_input(X[0].tolist()) == batch[0].tolist()
    np.testing.assert_array_equal(single.view(np.uint64), batch.view(np.uint64))


def _category_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], n),
            "pills": rng.choice(["none", "reduced", "continuing"], n),
            # "islands" is allowed by the schema but never seen in training
            "region": rng.choice(["north", "south"], n),
            "age": rng.integers(18, 80, n).astype(float),
        }
    )
    rows.loc[rows.sample(frac=0.1, random_state=seed).index, "sex"] = None
    rows.loc[rows.sample(frac=0.1, random_state=seed + 1).index, "pills"] = None
    return rows


@pytest.mark.parametrize("name", ["logistic_regression", "gradient_boosting", "lightgbm"])
def test_one_hot_and_ordinal_categories_compile_to_the_same_answers(category_schema, name):
    rows = _category_rows(300, seed=0)
    y = ((rows["sex"] == "female") ^ (rows["pills"] == "continuing")).astype(int)
    pipeline = Pipeline(
        [
            ("preprocess", make_preprocessor(category_schema)),
            ("features", make_feature_builder(interaction_top_k=2, n_features=6)),
            ("model", model_zoo("classification", seed=0)[name]),
        ]
    ).fit(rows, y)
    unseen = _category_rows(40, seed=1).assign(region="islands")
    result = parity(pipeline, pd.concat([rows, unseen], ignore_index=True), category_schema)
    assert result.passed, result
    coded = encode_categories(unseen.head(1), category_schema)
    assert coded[0, 2] == 2.0  # "islands": its position in the schema's values
    # one record at a time through the plain-float path (one-hot, ordinal, missing codes)
    compiled = CompiledPipeline(pipeline, category_schema)
    assert compiled._rows is not None
    every = encode_categories(pd.concat([rows, unseen], ignore_index=True), category_schema)
    batch = compiled.model_input(every)
    single = np.concatenate([compiled.model_input(every[i : i + 1]) for i in range(len(every))])
    np.testing.assert_array_equal(single.view(np.uint64), batch.view(np.uint64))
    np.testing.assert_allclose(
        CompiledPipeline(pipeline, category_schema).predict(coded),
        pipeline.predict_proba(unseen.head(1)),
        atol=1e-9,
    )


def test_codes_round_trip_to_the_rows_the_pipeline_reads(category_schema):
    rows = _category_rows(20, seed=2)
    coded = encode_categories(rows, category_schema)
    back = decode_categories(coded, category_schema)
    assert back.where(back.notna(), None).equals(rows.where(rows.notna(), None))


def test_encoders_that_disagree_with_the_schema_are_refused(category_schema):
    rows = _category_rows(60, seed=3)
    pipeline = Pipeline(
        [
            ("preprocess", make_preprocessor(category_schema)),
            ("features", make_feature_builder(n_features=4)),
            ("model", model_zoo("classification", seed=0)["naive_bayes"]),
        ]
    ).fit(rows, [0, 1] * 30)
    reordered = schema_from_dict(
        category_schema.to_dict()
        | {
            "columns": category_schema.to_dict()["columns"]
            | {"sex": {"dtype": "category", "values": ["male", "female"]}}
        }
    )
    with pytest.raises(Unsupported, match="'sex': encoder categories differ"):
        CompiledPipeline(pipeline, reordered)
    assert parity(pipeline, rows, reordered).supported is False


def test_text_in_a_block_without_an_encoder_is_refused_not_a_crash():
    """Pins a bug: a text imputer statistic raised ValueError where callers expect
    Unsupported (and keep the scikit-learn pipeline)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer

    from migraine_ml.data.preprocess import OutlierLimiter, RangeGuard
    from migraine_ml.modeling.fastpath import _Preprocessor

    rows = pd.DataFrame({"sex": ["female", "male", "male"], "age": [30.0, 40.0, None]})
    columns = ColumnTransformer([("sex", SimpleImputer(strategy="most_frequent"), ["sex"])])
    preprocess = Pipeline(
        [("entry_errors", RangeGuard({})), ("outliers", OutlierLimiter([])), ("columns", columns)]
    ).fit(rows)
    with pytest.raises(Unsupported, match="text values in a block without an encoder"):
        _Preprocessor(preprocess, ["sex", "age"], {"sex": ["female", "male"]})
