import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score

from migraine_ml.data.examples import DIARY_CLASSES, headache_diary, yes_no_cohort


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
