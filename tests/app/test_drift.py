"""Drift through the service: /drift, drift_warning, gauges, events, one monitor per log."""

from __future__ import annotations

import json
import time

import pytest

from app import create_app
from migraine_ml.data.synthetic import generate_cohort
from migraine_ml.monitoring.prediction_log import open_log
from tests.app.conftest import config

pytestmark = pytest.mark.integration

TARGETS = ["migraine_occurrence", "migraine_severity"]
SMALL = {
    "DRIFT_CHECK_EVERY": 100,
    "DRIFT_INTERVAL": 3600,
    "DRIFT_WINDOW": 300,
    "DRIFT_MIN_WINDOW": 200,
}


def records(rows: int, seed: int, *, sleep_shift: float = 0.0) -> list[dict]:
    """Valid requests from the cohort generator (nothing injected), sleep_hours shifted."""
    data = generate_cohort(
        rows=max(rows, 10),  # the generator's least
        prevalence=0.35,
        seed=seed,
        missing_rate=0,
        duplicate_rate=0,
        entry_error_rate=0,
    ).data.drop(columns=TARGETS)[:rows]
    data["sleep_hours"] = (data["sleep_hours"] + sleep_shift).clip(4, 10).round(2)
    out = []
    for record in data.to_dict("records"):
        out.append({k: (float(v) if k in FLOATS else int(v)) for k, v in record.items() if v == v})
    return out


FLOATS = {"sleep_hours", "screen_time", "weather_pressure", "humidity", "temperature_change"}


def predict(client, batch: list[dict]) -> list[dict]:
    response = client.post("/predict", json={"records": batch})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["predictions"]


@pytest.fixture
def drift_app(deployment):
    """The app, its monitor thread kept a follower: the test holds the monitor lock and
    runs each check itself, so the checks (and their events) are the test's alone."""
    held = open_log(str(deployment / "predictions.db"))
    app = create_app(
        config(deployment, DRIFT_EVENTS=str(deployment / "drift-events.jsonl"), **SMALL)
    )
    assert held.acquire_monitor_lock()
    yield app
    app.extensions["drift_monitor"].stop()
    held.close()


def test_drifted_traffic_is_flagged_in_drift_and_in_each_prediction(drift_app, deployment):
    client = drift_app.test_client()
    monitor = drift_app.extensions["drift_monitor"]
    log = drift_app.extensions["prediction_log"]
    assert client.get("/drift").get_json()["checked_at"] is None

    predict(client, records(300, seed=1))
    log.flush()
    calm = monitor.check()
    assert calm["window"] == 300 and calm["drifted_features"] == []
    assert predict(client, records(1, seed=2))[0]["drift_warning"] is None

    predict(client, records(300, seed=3, sleep_shift=-1.5))
    log.flush()
    shifted = monitor.check()
    assert shifted["drifted_features"] == ["sleep_hours"]
    body = client.get("/drift").get_json()
    assert body["features"]["sleep_hours"]["drift"] is True
    assert body["features"]["sleep_hours"]["psi"] > 0.2
    assert body["features"]["age"]["drift"] is False
    assert body["settings"]["window"] == 300
    (prediction,) = predict(client, records(1, seed=4))
    assert prediction["drift_warning"] == ["sleep_hours"]
    # what the response said is what the log keeps
    log.flush()
    last = log.database.recent(1).iloc[0]
    assert last["drift_warning"] == ["sleep_hours"]

    events = [
        json.loads(line)
        for line in (deployment / "drift-events.jsonl").read_text().split("\n")
        if line
    ]
    assert [e["event"] for e in events].count("drift_check") == 2
    assert [e for e in events if e.get("kind") == "feature"] == [
        {
            "time": shifted["checked_at"],
            "event": "drift_started",
            "kind": "feature",
            "name": "sleep_hours",
        }
    ]

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'migraine_drift_feature_drift{feature="sleep_hours"} 1.0' in metrics
    assert 'migraine_drift_feature_drift{feature="age"} 0.0' in metrics
    assert "migraine_drift_window_rows 300.0" in metrics
    assert "migraine_drift_detected 1.0" in metrics


def test_one_monitor_checks_for_every_worker_sharing_the_log(deployment):
    """Two apps on one log stand for two gunicorn workers: one checks, both answer alike."""
    settings = config(deployment, DRIFT_EVENTS="", **SMALL | {"DRIFT_CHECK_EVERY": 50})
    first, second = create_app(settings), create_app(settings)
    monitors = [first.extensions["drift_monitor"], second.extensions["drift_monitor"]]
    for monitor in monitors:
        monitor.refresh = 0.2
    try:
        predict(first.test_client(), records(150, seed=5, sleep_shift=-1.5))
        predict(second.test_client(), records(150, seed=6, sleep_shift=-1.5))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(
            m.latest and m.latest["window"] == 300 for m in monitors
        ):
            time.sleep(0.1)
        assert sorted(m.leader for m in monitors) == [False, True]
        assert [m.drift_warning for m in monitors] == [["sleep_hours"], ["sleep_hours"]]
    finally:
        for monitor in monitors:
            monitor.stop()


def test_no_monitor_without_a_log(deployment):
    app = create_app(config(deployment, PREDICTION_LOG="off"))
    response = app.test_client().get("/drift")
    assert response.status_code == 503
    assert "prediction log is off" in response.get_json()["detail"]
    assert predict(app.test_client(), records(1, seed=7))[0]["drift_warning"] is None


def test_invalid_drift_settings_stop_the_start_with_the_reason(deployment):
    with pytest.raises(ValueError, match="window 100 is smaller than min_window 200"):
        create_app(config(deployment, DRIFT_WINDOW=100))


def test_a_worker_hands_the_checks_back_to_the_monitor_process(deployment):
    """Under gunicorn a worker checks only while the monitor process is away (a reload)."""
    app = create_app(config(deployment, DRIFT_EVENTS="", **SMALL))
    monitor = app.extensions["drift_monitor"]
    process_running = []
    monitor.monitor_process_alive = lambda: bool(process_running)
    monitor.lead_delay = monitor.lead_retry = 0.1
    process = open_log(str(deployment / "predictions.db"))  # stands for the process
    try:
        monitor.start()
        assert _eventually(lambda: monitor.leader), "the worker never took over"
        assert not process.acquire_monitor_lock()
        process_running.append(True)
        assert _eventually(lambda: not monitor.leader), "the worker kept the lock"
        assert process.acquire_monitor_lock()
    finally:
        monitor.stop()
        process.close()


def _eventually(condition, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_wrong_labels_through_feedback_flag_an_accuracy_drop(drift_app, deployment):
    """Labels arrive through POST /feedback; judged once DRIFT_MIN_LABELS of them exist."""
    client = drift_app.test_client()
    monitor = drift_app.extensions["drift_monitor"]
    monitor.test_value = 0.75  # the trained fixture's models are judged against this figure
    predictions = predict(client, records(250, seed=10))

    def label(batch):
        for p in batch:  # every label the other class: the window's accuracy is 0
            wrong = "0" if str(p["predicted_class"]) == "1" else "1"
            body = {"prediction_id": p["prediction_id"], "outcome": wrong}
            assert client.post("/feedback", json=body).status_code == 201

    label(predictions[:199])
    drift_app.extensions["prediction_log"].flush()
    before = monitor.check()["performance"]
    assert before["labels"] == 199 and before["value"] == 0.0
    assert before["evaluated"] is False and before["drift"] is False
    label(predictions[199:200])
    after = monitor.check()["performance"]
    assert after["labels"] == 200 and after["evaluated"] and after["drift"]
    assert after["drop"] == pytest.approx(0.75)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "migraine_drift_performance_drift 1.0" in metrics
    assert "migraine_drift_window_accuracy 0.0" in metrics
    assert "migraine_drift_window_labels 200.0" in metrics


def test_checks_follow_traffic_but_never_closer_than_min_seconds(deployment):
    app = create_app(config(deployment, DRIFT_EVENTS="", **SMALL | {"DRIFT_MIN_SECONDS": 5}))
    monitor = app.extensions["drift_monitor"]
    monitor._checked_seq, monitor._checked_time = 1000, time.monotonic()
    assert not monitor._due(1099)  # too few new rows
    assert not monitor._due(1100)  # enough rows, but the last check was just now
    monitor._checked_time -= 5
    assert monitor._due(1100)
    assert not monitor._due(1050)
    monitor._checked_time -= 3600  # DRIFT_INTERVAL: a check even without traffic
    assert monitor._due(1000)
