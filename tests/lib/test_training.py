import numpy as np
import pandas as pd
import pytest

from migraine_ml.data.preprocess import drop_unusable_rows, make_preprocessor
from migraine_ml.data.validation import coerce_types
from migraine_ml.modeling.features import make_feature_builder
from migraine_ml.modeling.plan import TrainConfig, class_weight_for, plan_tasks
from migraine_ml.modeling.tasks import class_labels, default_scoring, regression_rows
from migraine_ml.modeling.tuning import cv_facts, cv_splitter, rank, train_zoo

CHEAP = {
    "logistic_regression": {"n_iter": 2, "space": {"C": {"loguniform": [0.01, 1]}}},
    "naive_bayes": {},
    "knn": {"n_iter": 1, "space": {"n_neighbors": [15]}},
}


@pytest.fixture
def rows(cohort, schema):
    usable, _ = drop_unusable_rows(coerce_types(cohort, schema), schema)
    return usable


@pytest.fixture
def steps(schema):
    """The transformers every candidate's pipeline starts with."""
    return {
        "preprocessor": make_preprocessor(schema),
        "builder": make_feature_builder(n_features=8, selection_score="f_test"),
    }


def test_zoo_candidates_are_ranked_full_pipelines(rows, schema, steps):
    seen = []
    candidates = train_zoo(
        "classification",
        X=rows[schema.features],
        y=rows["migraine_occurrence"].astype(int),
        groups=None,
        **steps,
        models=CHEAP,
        seed=0,
        folds=3,
        scoring="roc_auc",
        max_rows={"knn": 100},
        on_done=lambda c, i, n: seen.append((c.name, i, n)),
    )
    assert seen == [
        ("logistic_regression", 1, 4),
        ("naive_bayes", 2, 4),
        ("knn", 3, 4),
        ("reference", 4, 4),  # the obvious model, always cross-validated on the same folds
    ]
    ranked = rank(candidates)
    assert [c.cv_mean for c in ranked] == sorted((c.cv_mean for c in candidates), reverse=True)
    best = ranked[0]
    assert 0.5 < best.cv_mean <= 1
    # a whole pipeline: raw schema columns in, probabilities out, no cache attached
    assert best.pipeline.memory is None
    proba = best.pipeline.predict_proba(rows[schema.features].head(5))
    assert proba.shape == (5, 2)
    knn = next(c for c in candidates if c.name == "knn")
    assert "at most 100 rows" in knn.notes[0]
    assert knn.summary()["notes"] == knn.notes
    assert candidates[1].n_iter == 1  # nothing to tune: cross-validated once
    reference = candidates[-1]
    assert reference.n_iter == 1 and reference.params == {}
    # the validated columns alone (every one of them), a default logistic regression
    select = reference.pipeline.named_steps["features"].named_steps["select"]
    assert select.pool == "plain" and select.n_features == "all"
    assert reference.features == {"pool": "plain", "n_features": len(select.plain_columns)}
    assert type(reference.pipeline.named_steps["model"]).__name__ == "LogisticRegression"


def test_the_search_chooses_the_feature_pool_and_count(rows, schema, steps):
    """Engineering is a choice cross-validation makes, not a step imposed on every model."""
    (candidate, _reference) = train_zoo(
        "classification",
        X=rows[schema.features],
        y=rows["migraine_occurrence"].astype(int),
        groups=None,
        **steps,
        models={"logistic_regression": {"n_iter": 6}},
        seed=0,
        folds=3,
        scoring="roc_auc",
        feature_search={"pool": ["plain", "engineered"], "n_features": [3, "all"]},
    )
    assert candidate.n_iter == 4  # a grid of four choices, each tried once (no repeats)
    assert candidate.params == {}  # the model's own; the selection's choice is in features
    assert candidate.summary()["features"] == candidate.features
    select = candidate.pipeline.named_steps["features"].named_steps["select"]
    assert select.pool == candidate.features["pool"]
    assert candidate.features["n_features"] == len(select.selected_)


def test_regression_zoo_on_the_conditional_rows(rows, schema, steps):
    mask = regression_rows(rows, schema)
    assert (rows.loc[mask, "migraine_occurrence"] == 1).all()
    assert mask.sum() == (rows["migraine_occurrence"] == 1).sum()
    candidates = train_zoo(
        "regression",
        X=rows.loc[mask, schema.features],
        y=rows.loc[mask, "migraine_severity"],
        groups=None,
        **steps,
        models={"ridge": {"n_iter": 2, "space": {"alpha": [0.1, 10.0]}}, "linear": {}},
        seed=0,
        folds=3,
        scoring="r2",
    )
    assert {c.name for c in candidates} == {"ridge", "linear", "reference"}
    assert all(c.scoring == "r2" for c in candidates)
    # features are selected for severity, not with the classification score ...
    selected = [c.pipeline.named_steps["features"].named_steps["select"] for c in candidates]
    assert {s.task for s in selected} == {"regression"}
    # ... and the caller's steps are left as they were
    assert steps["builder"].named_steps["select"].task == "classification"


def test_unknown_model_names_are_rejected(rows, schema, steps):
    with pytest.raises(ValueError, match=r"models \['catboost'\] are not in the zoo"):
        train_zoo(
            "classification",
            X=rows[schema.features],
            y=rows["migraine_occurrence"],
            groups=None,
            **steps,
            models={"catboost": {}},
            seed=0,
            folds=3,
            scoring="roc_auc",
        )


def test_group_folds_keep_a_group_together():
    groups = np.repeat(np.arange(30), 4)
    y = np.tile([0, 1], 60)
    X = np.zeros((120, 1))
    for task in ("classification", "regression"):
        splitter = cv_splitter(task, folds=3, seed=0, grouped=True)
        for train_idx, test_idx in splitter.split(X, y, groups=groups):
            assert set(groups[train_idx]).isdisjoint(groups[test_idx])


@pytest.mark.parametrize(
    ("task", "n_classes", "expected"),
    [("classification", 2, "roc_auc"), ("classification", 7, "f1_macro"), ("regression", 0, "r2")],
)
def test_default_scoring(task, n_classes, expected):
    assert default_scoring(task, n_classes) == expected


def test_class_labels():
    assert class_labels(pd.Series([1.0, 0.0, 1.0, None])) == [0, 1]
    assert class_labels(pd.Series(["yes", "no", "no"])) == ["no", "yes"]


def test_class_order_follows_the_schema():
    # a binary target's positive class is the last listed value, whatever the alphabet says
    labels = pd.Series(["migraine", "none", "none"])
    assert class_labels(labels, ("none", "migraine")) == ["none", "migraine"]
    # listed values absent from the data are left out; unlisted ones go last, sorted
    assert class_labels(pd.Series(["b", "c", "a"]), ("c", "x", "a")) == ["c", "a", "b"]


def test_cv_facts_count_groups_straddling_folds():
    groups = pd.Series(np.repeat(np.arange(30), 4), name="patient")
    y = pd.Series(np.tile([0, 1], 60))
    X = pd.DataFrame({"x": np.zeros(120)})
    facts = cv_facts("classification", X=X, y=y, groups=groups, folds=3, seed=0)
    assert facts.splitter == "StratifiedGroupKFold"
    assert facts.groups == {
        "column": "patient",
        "groups": 30,
        "splits": 3,
        "groups_on_both_sides": 0,
    }
    plain = cv_facts("regression", X=X, y=y, groups=None, folds=3, seed=0)
    assert plain.groups is None and "groups" not in plain.to_dict()


def _config(**overrides):
    block = {
        "cv_folds": 3,
        "class_weight": "auto",
        "scoring": {"classification": "auto", "regression": "r2"},
        "max_rows": {},
        "experiment": "test",
        "classifiers": CHEAP,
        "regressors": {"ridge": {}},
    }
    params = {"train": block | overrides, "seed": 0, "validate": {"min_class_share": 0.10}}
    return TrainConfig.from_params(params)


def test_plan_tasks_follows_the_schema(rows, schema):
    classification, regression = plan_tasks(schema, rows, _config())
    assert classification.name == "classification" and classification.data.classes == [0, 1]
    assert classification.scoring == "roc_auc"
    assert class_weight_for(classification.data.y, _config()) is None
    assert classification.data.groups is None and len(classification.data.rows) == len(rows)
    assert classification.models == CHEAP and regression.models == {"ridge": {}}
    # severity only where a migraine occurred
    assert len(regression.data.rows) == int((rows["migraine_occurrence"] == 1).sum())
    assert regression.data.y.dtype == float and regression.data.classes is None


def test_plan_tasks_weights_rare_classes_and_scores_many_classes_by_macro_f1():
    from migraine_ml.data.examples import headache_diary
    from migraine_ml.data.inference import infer_schema

    diary = headache_diary(seed=1).drop_duplicates()
    schema = infer_schema(diary, target="headache_type", group="patient_id").schema
    (task,) = plan_tasks(schema, diary, _config())
    assert task.scoring == "f1_macro"
    assert class_weight_for(task.data.y, _config()) == "balanced"
    assert len(task.data.classes) == 7 and task.data.groups.name == "patient_id"
    assert class_weight_for(task.data.y, _config(class_weight=None)) is None


def test_every_feature_choice_is_tried_whatever_the_model_budget():
    from scipy import stats

    from migraine_ml.modeling.tuning import draws

    grid = draws(
        {"C": stats.loguniform(0.01, 1)},
        {"pool": ["plain", "engineered"], "n_features": [10, "all"]},
        n_iter=3,
        seed=0,
    )
    assert len(grid) == 4  # more than n_iter: one per combination of the selection's choices
    chosen = {(g["pool"][0], g["n_features"][0]) for g in grid}
    assert chosen == {("plain", 10), ("plain", "all"), ("engineered", 10), ("engineered", "all")}
    assert len({g["C"][0] for g in grid}) == 3  # the model's own three draws, reused in turn
    # nothing to tune and nothing to choose: cross-validate once
    assert draws({}, {}, n_iter=10, seed=0) == [{}]
    # a small grid of lists is tried without repeats
    assert len(draws({"alpha": [0.1, 1.0]}, {}, n_iter=6, seed=0)) == 2


def test_a_mistyped_budget_key_is_named():
    params = {
        "seed": 0,
        "validate": {"min_class_share": 0.1},
        "train": {
            "cv_folds": 3,
            "scoring": {},
            "class_weight": None,
            "max_rows": {},
            "experiment": "t",
            "classifiers": {},
            "regressors": {},
            "budget": {"max_tree": 10},
        },
    }
    with pytest.raises(ValueError, match=r"train.budget: \['max_tree'\] are not among"):
        TrainConfig.from_params(params)
