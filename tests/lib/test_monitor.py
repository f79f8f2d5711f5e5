"""A drift check over logged rows: the log's frame turned into inputs, outputs and labels."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from migraine_ml.monitoring.drift import DriftReference
from migraine_ml.monitoring.drift_report import parse_since
from migraine_ml.monitoring.monitor import (
    DriftSettings,
    champion_figure,
    check_window,
    served_versions,
    window_inputs,
    window_predictions,
)
from tests.drift_rows import SERVED, logged, reference_dict


@pytest.fixture(scope="module")
def reference(schema):
    return DriftReference.from_dict(reference_dict(schema))


def test_window_inputs_are_the_logged_records_as_columns(reference):
    rows = pd.DataFrame({"features": [{"age": 30, "stress_level": 4}, {"sleep_hours": 7.5}]})
    inputs = window_inputs(rows, reference)
    assert list(inputs.columns) == [f.name for f in reference.inputs]
    assert inputs.loc[0, "age"] == 30 and pd.isna(inputs.loc[1, "age"])
    assert inputs.loc[1, "sleep_hours"] == 7.5


def test_predictions_of_another_model_version_are_left_out(reference):
    rows = pd.concat([logged(50, 1), logged(30, 2, version="older0000001")], ignore_index=True)
    scores = window_predictions(rows, reference, {"classification": SERVED, "regression": SERVED})
    assert set(scores) == {"classification", "regression"}
    assert set(scores["classification"]) == {"0", "1"}
    assert len(scores["classification"]["1"]) == 50
    assert len(scores["regression"]["value"]) == 50
    assert len(window_predictions(rows, reference)["classification"]["1"]) == 80


def test_an_undrifted_window_is_not_flagged_and_a_shifted_input_is(reference):
    settings = DriftSettings(window=500, min_window=200)
    calm = check_window(logged(500, 11), reference, settings, versions={})
    assert calm.window == 500 and calm.note is None
    assert calm.drifted_features == []
    # sleep_hours: sd about 1.2 h; a 1.2 h shift is 1 sd
    shifted = check_window(logged(500, 12, shift={"sleep_hours": 1.2}), reference, settings)
    assert shifted.drifted_features == ["sleep_hours"]


def test_nothing_is_judged_below_the_minimum_window(reference):
    report = check_window(
        logged(199, 13, shift={"sleep_hours": 5}), reference, DriftSettings(min_window=200)
    )
    assert report.window == 199 and report.note.startswith("window too small")
    assert not report.drifted and report.features == ()


def test_accuracy_is_judged_on_labelled_rows_against_the_test_figure(reference):
    rows = logged(400, 14)
    # every label the opposite of the prediction: accuracy 0 on 250 labels
    truth = np.where(rows["predicted_class"] == "1", "0", "1").astype(object)
    truth[250:] = None
    rows["outcome"] = truth
    report = check_window(
        rows, reference, DriftSettings(min_labels=250), test_value=0.75, versions={}
    )
    assert report.performance.labels == 250
    assert report.performance.value == 0.0 and report.performance.drift
    fewer = check_window(
        rows, reference, DriftSettings(min_labels=251), test_value=0.75, versions={}
    )
    assert not fewer.performance.evaluated and not fewer.performance.drift


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"window": 100, "min_window": 200}, "window 100 is smaller than min_window 200"),
        ({"check_every": 0}, "check_every 0 must be positive"),
        ({"interval": -1}, "interval -1 must be positive"),
    ],
)
def test_settings_refuse_what_could_never_check(change, problem):
    with pytest.raises(ValueError, match=problem):
        DriftSettings(**change)


def test_the_test_figure_is_the_champion_classifiers():
    metrics = {"classification": {"champion": {"accuracy": 0.75}, "runner_up": {"accuracy": 0.7}}}
    assert champion_figure(metrics) == 0.75
    assert champion_figure({"regression": {}}) is None


def test_served_versions_name_the_champions_like_the_service():
    manifest = {
        "models": [
            {"task": "classification", "rank": "champion", "md5": "a" * 32},
            {"task": "classification", "rank": "runner_up", "md5": "b" * 32},
            {"task": "regression", "rank": "champion", "md5": "c" * 32},
        ]
    }
    assert served_versions(manifest) == {"classification": "a" * 12, "regression": "c" * 12}


def test_since_takes_durations_and_dates():
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="expected a duration like 24h"):
        parse_since("last week", now)


def test_an_input_most_rows_leave_out_is_not_judged_on_its_few_values(reference):
    rows = logged(1000, 31, shift={"humidity": 30})
    rows["features"] = [
        {k: v for k, v in record.items() if k != "humidity" or i < 6}
        for i, record in enumerate(rows["features"])
    ]
    report = check_window(rows, reference, DriftSettings(), versions={})
    humidity = next(f for f in report.features if f.name == "humidity")
    assert humidity.rows == 6 and humidity.psi is None and not humidity.drift
    assert "humidity" not in report.drifted_features


def test_a_newly_served_model_is_not_judged_on_its_first_rows(reference):
    """After a deploy: 995 rows of the old version, 5 of the new one."""
    rows = pd.concat([logged(995, 32, version="older0000001"), logged(5, 33)], ignore_index=True)
    report = check_window(
        rows, reference, DriftSettings(), versions={"classification": SERVED, "regression": SERVED}
    )
    assert report.window == 1000
    for task in report.prediction:
        assert not task.drift
        assert all(o.rows == 5 and o.psi is None for o in task.outputs)
