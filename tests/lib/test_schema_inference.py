import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from migraine_ml.data.examples import headache_diary, yes_no_cohort
from migraine_ml.data.inference import InferenceError, infer_schema, to_yaml
from migraine_ml.data.schema import load_schema
from tests.conftest import ROOT


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "patient": [f"P{i % 12:02d}" for i in range(n)],
            "grade": rng.integers(0, 4, n),  # integer-coded 0..3
            "hours": rng.uniform(0.5, 9.5, n).round(2),
            "flag": rng.integers(0, 2, n),
            "smoker": rng.choice([True, False], n),
            "sex": rng.choice(["male", "female"], n),
            "note": [f"free text {i}" for i in range(n)],
            "empty": [np.nan] * n,
            "answer": rng.choice(["yes", "no"], n),
            "pain": rng.integers(1, 11, n),
        }
    )


def test_types_ranges_and_values_come_from_the_data(frame):
    inferred = infer_schema(frame, target="answer", group="patient", name="mine")
    columns = inferred.schema.columns
    assert inferred.schema.name == "mine"
    assert columns["grade"].dtype == "int" and columns["grade"].range == (0, 3)
    assert columns["hours"].dtype == "float"
    assert columns["hours"].range == (frame["hours"].min(), frame["hours"].max())
    assert columns["flag"].dtype == "binary" and columns["smoker"].dtype == "binary"
    assert columns["sex"].dtype == "category" and columns["sex"].values == ("female", "male")
    # the negative word first: the last listed value of a two-class target is positive
    assert columns["answer"].values == ("no", "yes")
    assert columns["answer"].role == "classification_target"
    assert (columns["patient"].role, columns["patient"].values) == ("group", None)
    # free text is too varied to be a category: kept out of the features
    assert columns["note"].role == "id" and "note" not in inferred.schema.features
    assert "empty" not in columns and inferred.skipped == ["empty"]
    assert inferred.notes["grade"] == ["observed 0 to 3: widen to the plausible limits"]


def test_condition_is_found_when_the_amount_only_exists_for_one_class():
    cohort = yes_no_cohort(seed=1, rows=200)
    inferred = infer_schema(cohort, target="headache", regression_target="pain_score")
    pain = inferred.schema.columns["pain_score"]
    assert pain.condition == {"column": "headache", "equals": "yes"}
    assert pain.role == "regression_target"


def test_no_condition_when_the_amount_exists_for_both_classes(frame):
    inferred = infer_schema(frame, target="answer", regression_target="pain")
    assert inferred.schema.columns["pain"].condition is None


def test_numeric_class_labels_are_not_range_checked():
    diary = headache_diary(seed=0)
    diary["type_code"] = diary["headache_type"].astype("category").cat.codes
    inferred = infer_schema(diary.drop(columns="headache_type"), target="type_code")
    target = inferred.schema.columns["type_code"]
    assert (target.dtype, target.range) == ("int", None)


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({"target": "answr"}, "target column 'answr' is not in the CSV; its columns are: patient"),
        ({"target": "answer", "group": "answer"}, "must be different columns"),
        ({"target": None}, "name a target column"),
        ({"target": "hours"}, "'hours' has [0-9]+ distinct numbers: it looks continuous"),
        ({"target": "answer", "regression_target": "sex"}, "'sex' is not numeric"),
        ({"target": "note"}, "'note' has 60 distinct values: too many classes"),
        ({"target": "answer", "group": "empty"}, "group column 'empty' is empty in every row"),
    ],
)
def test_bad_roles_are_explained(frame, roles, message):
    with pytest.raises(InferenceError, match=message):
        infer_schema(frame, **roles)


def test_single_class_target_and_no_features_are_refused(frame):
    with pytest.raises(InferenceError, match="fewer than two classes"):
        infer_schema(frame.assign(answer="yes"), target="answer")
    with pytest.raises(InferenceError, match="no column is left to be a feature"):
        infer_schema(frame[["answer", "note"]], target="answer")


def test_yaml_loads_back_to_the_same_schema_with_review_notes(frame, tmp_path):
    inferred = infer_schema(frame, target="answer", group="patient", name="mine")
    text = to_yaml(inferred, source="mine.csv", rows=len(frame))
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    assert load_schema(path) == inferred.schema
    assert text.startswith("# Schema inferred from mine.csv (60 rows)")
    assert "  grade: {dtype: int, role: feature, range: [0, 3]}  # observed 0 to 3" in text
    assert "# left out: 'empty' is empty in every row" in text


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "migraine_ml.cli", "schema", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_command_writes_and_never_overwrites_a_reviewed_schema(frame, tmp_path):
    csv, out = tmp_path / "mine.csv", tmp_path / "schemas" / "mine.yaml"
    frame.to_csv(csv, index=False)
    first = _cli("--data", csv, "--target", "answer", "--group", "patient", "--out", out)
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stderr and "dvc exp run -S data.path=" in first.stderr
    out.write_text(out.read_text() + "# my review\n")
    again = _cli("--data", csv, "--target", "answer", "--out", out)
    assert again.returncode == 1
    assert "exists; pass --force" in again.stderr
    assert out.read_text().endswith("# my review\n")
    forced = _cli("--data", csv, "--target", "answer", "--out", out, "--force")
    assert forced.returncode == 0 and "# my review" not in out.read_text()


def test_command_reports_bad_input_in_one_line(tmp_path):
    missing = _cli("--data", tmp_path / "nope.csv", "--target", "y", "--out", tmp_path / "s.yaml")
    assert missing.returncode == 1 and "schema: cannot read" in missing.stderr
    csv = tmp_path / "d.csv"
    pd.DataFrame({"x": [1, 2], "y": [0, 1]}).to_csv(csv, index=False)
    wrong = _cli("--data", csv, "--target", "z", "--out", tmp_path / "s.yaml")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        "schema: target column 'z' is not in the CSV; its columns are: x, y"
    )
    assert not (tmp_path / "s.yaml").exists()
