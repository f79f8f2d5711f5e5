import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from migraine_ml.data.examples import (
    CLINICAL_CLASSES,
    DIARY_CLASSES,
    GRADES,
    SYMPTOM_SHARES,
    clinical_table,
    headache_diary,
    yes_no_cohort,
)
from migraine_ml.data.inference import infer_schema
from migraine_ml.data.preprocess import drop_unusable_rows, make_preprocessor
from migraine_ml.data.validation import coerce_types


@pytest.fixture(scope="module")
def diary():
    return headache_diary(seed=42)


def test_diary_has_the_shapes_it_promises(diary):
    unique = diary.drop_duplicates()
    assert len(diary) - len(unique) == 8
    counts = unique["headache_type"].value_counts()
    assert counts.to_dict() == DIARY_CLASSES | counts.to_dict()  # same classes
    assert (counts.min(), counts.max()) == (15, 250)
    assert diary["questionnaire_version"].nunique() == 1
    assert unique["visual_snow"].sum() == 1
    assert set(diary["painkillers"]) == {"none", "reduced", "continuing"}
    # every type is seen with several patients, and patients have many entries
    assert unique.groupby("headache_type")["patient_id"].nunique().min() >= 3
    assert unique["patient_id"].value_counts().median() >= 8


def test_a_row_level_split_of_the_diary_inflates_the_score(diary):
    """Why the group column matters: the same model scores higher when a patient's
    entries sit on both sides of the split, because it learns the patient."""
    rows = diary.drop_duplicates()
    X = pd.get_dummies(rows.drop(columns=["headache_type", "patient_id"]), dtype=float).fillna(0)
    y = rows["headache_type"]
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1)

    def cv_f1(cv, **groups):
        return cross_val_score(forest, X, y, cv=cv, scoring="f1_macro", **groups).mean()

    by_row = cv_f1(StratifiedKFold(5, shuffle=True, random_state=0))
    by_patient = cv_f1(
        StratifiedGroupKFold(5, shuffle=True, random_state=0), groups=rows["patient_id"]
    )
    assert by_row > by_patient + 0.04


def test_yes_no_cohort_scores_pain_only_when_yes():
    cohort = yes_no_cohort(seed=3, rows=400)
    assert set(cohort["headache"]) == {"no", "yes"}
    assert (cohort.loc[cohort["headache"] == "no", "pain_score"] == 0).all()
    assert cohort.loc[cohort["headache"] == "yes", "pain_score"].between(1, 10).all()
    assert 0 < (cohort["region"] == "islands").sum() < 20


@pytest.fixture(scope="module")
def clinic():
    return clinical_table(seed=42)


def test_clinical_table_has_the_shapes_it_promises(clinic):
    unique = clinic.drop_duplicates()
    assert (len(clinic), len(unique)) == (404, 400)
    assert unique["patient_id"].is_unique
    shares = unique["diagnosis"].value_counts(normalize=True)
    assert unique["diagnosis"].value_counts().to_dict() == CLINICAL_CLASSES
    assert shares.iloc[0] == pytest.approx(0.55) and shares.index[0] == "migraine_without_aura"
    assert shares["vestibular"] == pytest.approx(0.03)
    assert clinic["form_version"].nunique() == 1
    assert len(SYMPTOM_SHARES) == 12
    assert set(clinic[list(SYMPTOM_SHARES)].stack()) == {0, 1}
    assert {"age_years", "attacks_per_month"} <= set(clinic.columns)


@pytest.mark.parametrize("grade", list(GRADES))
def test_clinical_grades_are_skewed_codes(clinic, grade):
    values = clinic[grade]
    assert set(values) == set(range(GRADES[grade][0] + 1))  # every code 0..top is used
    counts = values.value_counts(normalize=True)
    assert counts.index[0] == 0 and counts.iloc[0] >= 0.7


def test_a_plain_logistic_regression_learns_the_clinical_table(clinic):
    """The symptoms add up linearly: the obvious model is a good one."""
    rows = clinic.drop_duplicates()
    schema = infer_schema(rows, target="diagnosis").schema
    model = make_pipeline(make_preprocessor(schema), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    X = coerce_types(rows, schema)[schema.features]
    scores = cross_val_score(model, X, rows["diagnosis"], cv=cv, scoring="f1_macro")
    assert scores.mean() > 0.75


EXAMPLES = {  # dataset -> the roles `migraine schema` would be told
    "headache_diary": (headache_diary, {"target": "headache_type", "group": "patient_id"}),
    "yes_no_cohort": (yes_no_cohort, {"target": "headache", "regression_target": "pain_score"}),
    "clinical_table": (clinical_table, {"target": "diagnosis"}),
}


def _input_column(rows: pd.DataFrame, schema, output: str) -> pd.Series:
    """The input an output column of the preprocessor encodes: itself, or a one-hot indicator."""
    if output in rows:
        return rows[output]
    name, value = next(
        (c, output.removeprefix(f"{c}_"))
        for c in schema.categorical_features
        if output.startswith(f"{c}_")
    )
    return (rows[name] == value).astype(float)


# Pins the collapsed outlier fences: Q1 = Q3 put both fences on one value, and a
# symptom grade that was 0 in three rows of four came out constant.
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_preprocessing_turns_no_example_column_constant(name):
    make, roles = EXAMPLES[name]
    raw = make(seed=42)
    schema = infer_schema(raw, **roles).schema
    rows, _ = drop_unusable_rows(coerce_types(raw, schema), schema)
    out = make_preprocessor(schema).fit_transform(rows[schema.features])
    varying = [c for c in out.columns if _input_column(rows, schema, c).nunique() > 1]
    assert len(varying) >= len(out.columns) - 1  # at most the constant column
    assert [c for c in varying if out[c].nunique() < 2] == []
