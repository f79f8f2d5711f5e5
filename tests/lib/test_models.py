import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression

from migraine_ml.modeling.zoo import FitSize, Subsampled, model_zoo, param_prefix, search_space


def test_zoo_has_eight_models_per_task():
    assert len(model_zoo("classification", seed=0)) == 8
    assert len(model_zoo("regression", seed=0)) == 8
    with pytest.raises(ValueError, match="task: 'ranking'"):
        model_zoo("ranking", seed=0)


def test_search_space_parses_choices_and_distributions():
    space, resolved = search_space(
        {
            "C": {"loguniform": [0.01, 10]},
            "depth": [2, 3],
            "leaf": {"randint": [1, 5]},
            "frac": {"uniform": [0.2, 0.6]},
        },
        prefix="model__",
    )
    assert resolved == {}
    assert space["model__depth"] == [2, 3]
    assert isinstance(space["model__C"], type(stats.loguniform(0.01, 10)))
    draws = space["model__leaf"].rvs(500, random_state=0)
    assert draws.min() == 1 and draws.max() == 5  # both ends included
    frac = space["model__frac"].rvs(500, random_state=0)
    assert frac.min() >= 0.2 and frac.max() <= 0.6


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"C": []}, "empty list"),
        ({"C": {"normal": [0, 1]}}, "'normal' is not one of"),
        ({"C": 3}, "expected a list of choices"),
    ],
)
def test_search_space_rejects_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        search_space(spec, prefix="")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (FitSize(5333), [21, 213]),  # the default cohort's folds: 0.004-0.04 of the rows
        (FitSize(267, smallest_class=8), [1, 8]),  # a small table: never above a class
        (FitSize(40, smallest_class=30), [1, 2]),
    ],
)
def test_data_sized_ranges_follow_the_rows_and_the_smallest_class(size, expected):
    space, resolved = search_space(
        {"n_neighbors": {"randint_rows": [0.004, 0.04]}}, prefix="model__", size=size
    )
    assert resolved == {"n_neighbors": expected}
    draws = space["model__n_neighbors"].rvs(2000, random_state=0)
    assert [draws.min(), draws.max()] == expected


def test_data_sized_ranges_need_the_fit_size():
    with pytest.raises(ValueError, match="randint_rows needs the fit size"):
        search_space({"k": {"randint_rows": [0.1, 0.2]}}, prefix="")


def test_param_prefix_reaches_the_wrapped_estimator():
    zoo = model_zoo("classification", seed=0)
    assert param_prefix(zoo["xgboost"]) == "model__"
    assert param_prefix(zoo["svm"]) == "model__estimator__estimator__"
    assert param_prefix(zoo["knn"]) == "model__estimator__"


def test_subsampled_bounds_the_training_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 3))
    y = (X[:, 0] > 0).astype(int)
    model = Subsampled(LogisticRegression(), max_rows=100, seed=0).fit(X, y)
    assert model.rows_seen_ == 100
    assert model.predict_proba(X).shape == (1000, 2)
    assert (model.predict(X) == y).mean() > 0.9
    small = Subsampled(LogisticRegression(), max_rows=5000).fit(X, y)
    assert small.rows_seen_ == 1000


@pytest.mark.parametrize("fractions", [[0.2, 0.1], [0, 0.1], [0.1, 2], [0.1]])
def test_data_sized_ranges_refuse_fractions_out_of_order_or_range(fractions):
    with pytest.raises(ValueError, match="randint_rows takes two fractions"):
        search_space({"k": {"randint_rows": fractions}}, prefix="", size=FitSize(100))


def test_the_boosting_budget_shrinks_rounds_with_classes():
    from migraine_ml.modeling.zoo import Budget

    assert Budget(n_classes=2).n_estimators == 300  # binary: one tree a round
    assert Budget(n_classes=7).n_estimators == 85  # 600 trees / 7 classes
    assert Budget(n_classes=7, max_trees=6).n_estimators == 1  # never more than max_trees
    assert Budget(rows=100).n_jobs == 1 and Budget(rows=10_000).n_jobs == 2
