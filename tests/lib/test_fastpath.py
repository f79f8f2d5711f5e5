import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from migraine_ml.fastpath import CompiledPipeline, Unsupported, parity
from migraine_ml.features import make_feature_builder
from migraine_ml.models import model_zoo
from migraine_ml.preprocess import drop_unusable_rows, make_preprocessor
from migraine_ml.schema import schema_from_dict
from migraine_ml.validation import coerce_types


def _pipeline(schema, model, rows, y):
    return Pipeline(
        [
            ("preprocess", make_preprocessor(schema)),
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
    result = parity(pipeline, rows, schema.features)
    assert result["passed"], result
    single = CompiledPipeline(pipeline, schema.features).predict(
        rows[schema.features].head(1).to_numpy(dtype=float)
    )
    assert np.asarray(single).shape[0] == 1


def test_text_categories_fall_back_to_scikit_learn():
    """Pins a bug: a text imputer statistic crashed compilation instead of falling back."""
    schema = schema_from_dict(
        {
            "columns": {
                "sex": {"dtype": "category", "values": ["female", "male"]},
                "age": {"dtype": "int", "range": [0, 100]},
                "y": {"dtype": "binary", "role": "classification_target"},
            }
        }
    )
    rows = pd.DataFrame({"sex": ["female", "male"] * 20, "age": range(40)})
    pipeline = Pipeline(
        [
            ("preprocess", make_preprocessor(schema)),
            ("features", make_feature_builder(n_features=2)),
            ("model", model_zoo("classification", seed=0)["naive_bayes"]),
        ]
    )
    pipeline.fit(rows, [0, 1] * 20)
    with pytest.raises(Unsupported, match="text"):
        CompiledPipeline(pipeline, ["sex", "age"])
    assert parity(pipeline, rows, ["sex", "age"]) == {
        "supported": False,
        "passed": False,
        "max_abs_diff": None,
        "reason": "text (category) columns",
    }
