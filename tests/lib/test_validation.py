import re

import numpy as np
import pandas as pd
import pytest

from migraine_ml.data.validation import (
    coerce_types,
    problem_lines,
    render_html,
    validate_file,
    validate_frame,
)


def _check(report, name):
    return next(c for c in report.checks if c.name == name)


def test_clean_cohort_passes_without_warnings(clean_cohort, schema):
    report = validate_frame(clean_cohort, schema)
    assert report.passed
    assert report.warnings == []
    assert report.summary["rows"] == len(clean_cohort)


def test_realistic_cohort_passes_with_warnings(cohort, schema):
    report = validate_frame(cohort, schema)
    assert report.passed
    warned = {c.name for c in report.warnings}
    assert {"duplicate_rows", "value_ranges"} <= warned
    assert report.summary["duplicate_rows"] == cohort.duplicated().sum()
    assert "outside [4, 10]" in _check(report, "value_ranges").detail


def test_missing_column_fails_naming_it(clean_cohort, schema):
    report = validate_frame(clean_cohort.drop(columns=["stress_level"]), schema)
    assert not report.passed
    assert problem_lines(report.failures) == [
        "columns_present: column 'stress_level': missing (role feature)"
    ]


def test_text_in_numeric_column_fails_naming_it(clean_cohort, schema):
    frame = clean_cohort.astype({"humidity": object})
    frame.loc[[3, 8], "humidity"] = ["high", "n/a?"]
    report = validate_frame(frame, schema)
    assert not report.passed
    detail = _check(report, "column_types").detail
    assert "column 'humidity': 2 non-numeric values" in detail
    assert "'high'" in detail


def test_too_many_missing_values_fail_naming_the_column(clean_cohort, schema):
    frame = clean_cohort.copy()
    frame.loc[frame.sample(frac=0.3, random_state=0).index, "sleep_hours"] = np.nan
    report = validate_frame(frame, schema, max_missing=0.10)
    assert not report.passed
    assert problem_lines(report.failures) == [
        "missing_share: column 'sleep_hours': 30.0% missing, above the limit 10%"
    ]


def test_rare_class_fails_and_imbalance_only_warns(clean_cohort, schema):
    frame = clean_cohort.copy()
    positives = frame.index[frame["migraine_occurrence"] == 1]
    frame.loc[positives[5:], "migraine_occurrence"] = 0
    report = validate_frame(frame, schema, min_class_rows=10)
    assert not report.passed
    assert "class '1' has 5 rows, expected at least 10" in _check(report, "min_class_rows").detail

    imbalanced = clean_cohort.copy()
    imbalanced.loc[positives[20:], "migraine_occurrence"] = 0
    report = validate_frame(imbalanced, schema, min_class_rows=10, min_class_share=0.10)
    assert report.passed
    assert "minority class '1' is 6.7% of rows" in _check(report, "class_balance").detail


def test_single_class_fails(clean_cohort, schema):
    frame = clean_cohort.assign(migraine_occurrence=0)
    report = validate_frame(frame, schema)
    assert "only one class" in _check(report, "min_class_rows").detail


def test_empty_target_and_too_few_rows_fail(clean_cohort, schema):
    frame = clean_cohort.head(20).assign(migraine_severity=np.nan)
    report = validate_frame(frame, schema, min_rows=50, max_missing=1.0)
    failed = {c.name for c in report.failures}
    assert {"min_rows", "target_present"} <= failed


def test_unknown_columns_are_a_warning(clean_cohort, schema):
    report = validate_frame(clean_cohort.assign(notes="x"), schema)
    assert report.passed
    assert "column 'notes': not in the schema" in _check(report, "unknown_columns").detail


def test_unreadable_file_is_a_failed_report(tmp_path, schema):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x00")
    report = validate_file(path, schema)
    assert not report.passed
    assert report.checks[0].name == "readable_csv"
    missing = validate_file(tmp_path / "absent.csv", schema)
    assert "absent.csv" in missing.failures[0].detail


def test_validate_file_round_trip(tmp_path, cohort, schema):
    path = tmp_path / "cohort.csv"
    cohort.to_csv(path, index=False)
    report = validate_file(path, schema)
    assert report.passed
    as_dict = report.to_dict()
    assert as_dict["passed"] is True
    assert {"name", "passed", "severity", "detail", "problems"} == set(as_dict["checks"][0])
    page = render_html(report, title="Validation")
    assert "<h1>Validation: PASSED</h1>" in page and "WARN" in page


def test_coerce_types_makes_numbers_and_text(schema):
    import pandas as pd

    frame = pd.DataFrame({"age": ["31", "x", None], "gender": [1, 0, 1]})
    coerced = coerce_types(frame, schema)
    assert coerced["age"].tolist()[0] == 31.0
    assert coerced["age"].isna().tolist() == [False, True, True]


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_missing_share_threshold_is_honoured(clean_cohort, schema, threshold):
    frame = clean_cohort.copy()
    frame.loc[0, "age"] = np.nan
    report = validate_frame(frame, schema, max_missing=threshold)
    assert report.passed is (threshold > 0)


def test_category_columns_check_values_not_dtype():
    """Pins a bug: pandas 3 reads text as `str`, which a dtype check reported as a
    bogus range warning ("0 values outside ... e.g. 'str'")."""
    import pandas as pd

    from migraine_ml.data.schema import schema_from_dict

    schema = schema_from_dict(
        {
            "columns": {
                "sex": {"dtype": "category", "values": ["female", "male"]},
                "y": {
                    "dtype": "category",
                    "role": "classification_target",
                    "values": ["no", "yes"],
                },
            }
        }
    )
    frame = pd.DataFrame({"sex": ["female", "male", "other"] * 20, "y": ["no", "yes", "no"] * 20})
    report = validate_frame(frame, schema, min_rows=10)
    ranges = _check(report, "value_ranges")
    assert ranges.problems == [
        "column 'sex': 20 values outside {female, male} (e.g. 'other'); preprocessing treats "
        "them as missing"
    ]


def test_constant_and_nearly_constant_features_are_reported(clean_cohort, schema):
    frame = clean_cohort.copy()
    frame["exercise"] = 3
    frame["neck_pain"] = 0
    frame.loc[5, "neck_pain"] = 1
    report = validate_frame(frame, schema)
    assert report.passed
    assert _check(report, "informative_columns").problems == [
        "column 'exercise': constant (3 in every row); it cannot help",
        "column 'neck_pain': only 1 row differs from 0; too few to learn from",
    ]


def test_rare_category_values_are_reported():
    from migraine_ml.data.examples import yes_no_cohort
    from migraine_ml.data.schema import schema_from_dict

    cohort = yes_no_cohort(seed=42)
    schema = schema_from_dict(
        {
            "columns": {
                "region": {
                    "dtype": "category",
                    "values": ["east", "islands", "north", "south", "west"],
                },
                "headache": {
                    "dtype": "category",
                    "role": "classification_target",
                    "values": ["no", "yes"],
                },
            }
        }
    )
    islands = int((cohort["region"] == "islands").sum())
    report = validate_frame(cohort[["region", "headache"]], schema)
    assert report.passed
    assert _check(report, "rare_categories").problems == [
        f"column 'region': rare values 'islands' ({islands} rows); too few to learn from"
    ]


def _dosing_frame(far_rows: int) -> tuple:
    """300 patients: a bell-shaped dose with `far_rows` far doses, and a 0-4 grade that is 0
    in most rows (its other values are far from Q1 = Q3 = 0, but it gets no fences)."""
    from migraine_ml.data.schema import schema_from_dict

    schema = schema_from_dict(
        {
            "columns": {
                "dose": {"dtype": "float", "range": [0, 1000]},
                "grade": {"dtype": "int", "range": [0, 4]},
                "y": {"dtype": "category", "role": "classification_target", "values": ["a", "b"]},
            }
        }
    )
    rng = np.random.default_rng(0)
    dose = rng.normal(10, 1, 300)
    dose[:far_rows] = 100.0
    frame = pd.DataFrame(
        {
            "dose": dose,
            "grade": rng.choice(5, p=[0.8, 0.1, 0.05, 0.03, 0.02], size=300),
            "y": rng.choice(["a", "b"], size=300),
        }
    )
    return frame, schema


@pytest.mark.parametrize("far_rows", [0, 3])  # 3 of 300 is 1 %, not more
def test_outlier_fences_stay_quiet_when_they_limit_at_most_one_percent(far_rows):
    frame, schema = _dosing_frame(far_rows)
    check = _check(validate_frame(frame, schema), "outlier_fences")
    assert check.passed and check.severity == "warning"
    assert check.detail == "the outlier fences limit at most 1% of any column's values"


def test_outlier_fences_warn_naming_the_column_count_and_share():
    frame, schema = _dosing_frame(12)
    report = validate_frame(frame, schema, outlier_iqr_factor=3.0, outlier_min_distinct=10)
    assert report.passed
    (problem,) = _check(report, "outlier_fences").problems
    assert re.fullmatch(
        r"column 'dose': 12 of 300 values \(4\.0%\) lie beyond the outlier fences "
        r"\[[0-9.]+, [0-9.]+\] \(IQR factor 3\); preprocessing limits them",
        problem,
    )
    # the preprocessor's rule: the grade's fences would collapse onto 0 (a fifth of its
    # values beyond them), so it gets none, as a discrete column or by its zero spread
    for min_distinct in (10, 0):
        loose = validate_frame(frame, schema, outlier_min_distinct=min_distinct)
        assert [p.split(":")[0] for p in _check(loose, "outlier_fences").problems] == [
            "column 'dose'"
        ]
