"""POST /feedback through the Flask test client, the log on a real SQLite file."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from app import create_app
from tests.app.conftest import config

pytestmark = pytest.mark.integration

TARGET = "expected_migraine_severity"


def _iso(seconds_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).isoformat()


@pytest.fixture
def predicted(client, record) -> str:
    response = client.post("/predict", json=record)
    return response.get_json()["predictions"][0]["prediction_id"]


def test_a_label_is_recorded_with_its_delay(client, app, predicted):
    time.sleep(0.05)
    body = {"prediction_id": predicted, "outcome": 1, TARGET: 6, "observed_at": _iso(-0.01)}
    response = client.post("/feedback", json=body)  # straight after: still in the buffer
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["prediction_id"] == predicted
    assert 0.05 <= answer["delay_seconds"] < 10
    (row,) = app.extensions["prediction_log"].database.recent(1).itertuples()
    assert (row.prediction_id, row.outcome, row.target_value) == (predicted, "1", 6.0)
    assert row.delay_seconds == pytest.approx(answer["delay_seconds"])
    assert row.predicted_class in ("0", "1")
    assert set(row.probabilities) == {"0", "1"}
    assert row.features["age"] is not None and row.classifier and row.regressor_version


@pytest.mark.parametrize("outcome", [0, "0", 1, "1"])
def test_a_class_may_be_spelled_as_number_or_text(client, predicted, outcome):
    response = client.post("/feedback", json={"prediction_id": predicted, "outcome": outcome})
    assert response.status_code == 201
    assert response.get_json()["delay_seconds"] >= 0


def test_a_label_after_an_intervention_is_kept_and_marked(client, app, predicted):
    body = {"prediction_id": predicted, "outcome": 0, "intervened": True}
    assert client.post("/feedback", json=body).status_code == 201
    (row,) = app.extensions["prediction_log"].database.recent(1).itertuples()
    assert (row.outcome, row.intervened) == ("0", 1)


def test_a_regression_label_alone(client, predicted):
    assert client.post("/feedback", json={"prediction_id": predicted, TARGET: 0}).status_code == 201


def test_an_unknown_prediction_is_404(client):
    response = client.post("/feedback", json={"prediction_id": "ab" * 16, "outcome": 1})
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "not found",
        "detail": f"no prediction {'ab' * 16} in the log",
    }


def test_a_second_label_is_409(client, predicted):
    assert client.post(
        "/feedback", json={"prediction_id": predicted, "outcome": 1}
    ).status_code == (201)
    response = client.post("/feedback", json={"prediction_id": predicted, "outcome": 0})
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"outcome": 2}, "outcome", "2 is not one of {0, 1}"),
        ({"outcome": "yes"}, "outcome", "'yes' is not one of {0, 1}"),
        ({"outcome": True}, "outcome", "True is not one of {0, 1}"),
        ({TARGET: 11}, TARGET, "11 is outside [0, 10]"),
        ({TARGET: "7"}, TARGET, "expected a number, got str"),
        (
            {"observed_at": "2025-05-01 08:30"},
            "observed_at",
            "expected an RFC 3339 date-time with a time zone, e.g. 2025-05-01T08:30:00Z",
        ),
        (
            {"observed_at": "2025-05-01T08:30:00"},  # no time zone
            "observed_at",
            "expected an RFC 3339 date-time with a time zone, e.g. 2025-05-01T08:30:00Z",
        ),
        (
            {"observed_at": "x"},
            "observed_at",
            "expected an RFC 3339 date-time with a time zone, e.g. 2025-05-01T08:30:00Z",
        ),
        ({"intervened": "yes"}, "intervened", "expected true or false"),
        ({"intervened": None}, "intervened", "expected true or false"),
        ({"colour": "blue"}, "colour", "unknown field"),
        (
            {"prediction_id": "not-an-id"},
            "prediction_id",
            "expected a prediction id (32 hex digits)",
        ),
    ],
)
def test_invalid_feedback_is_400_naming_the_field(client, predicted, change, field, problem):
    body = {"prediction_id": predicted, "outcome": 1} | change
    response = client.post("/feedback", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad request"
    assert {"field": field, "problem": problem} in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("seconds", "problem"),
    [
        (3600, "observed_at is in the future"),
        (-3600, "observed_at is before the prediction was made"),
    ],
)
def test_an_observation_time_contradicting_the_prediction_is_409(
    client, predicted, seconds, problem
):
    """Well-formed, so not a 400: it conflicts with the logged prediction or the clock."""
    body = {"prediction_id": predicted, "outcome": 1, "observed_at": _iso(seconds)}
    response = client.post("/feedback", json=body)
    assert response.status_code == 409
    assert response.get_json() == {
        "error": "conflict",
        "detail": [{"field": "observed_at", "problem": problem}],
    }
    assert client.post("/feedback", json=body | {"observed_at": _iso(0)}).status_code == 201


def test_neither_outcome_nor_target_is_400(client, predicted):
    response = client.post("/feedback", json={"prediction_id": predicted})
    assert response.status_code == 400
    assert response.get_json()["detail"] == [
        {"field": "outcome", "problem": f"missing: give outcome or {TARGET}"}
    ]


@pytest.mark.parametrize("body", [b"[1]", b'"x"', b"{nope"])
def test_a_body_that_is_not_an_object_is_400(client, body):
    response = client.post("/feedback", data=body, content_type="application/json")
    assert response.status_code == 400


def test_feedback_needs_the_api_key_when_keys_are_set(deployment, record):
    client = create_app(config(deployment, API_KEYS="k1")).test_client()
    headers = {"X-API-Key": "k1"}
    prediction_id = client.post("/predict", json=record, headers=headers).get_json()["predictions"][
        0
    ]["prediction_id"]
    body = {"prediction_id": prediction_id, "outcome": 1}
    response = client.post("/feedback", json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.post("/feedback", json=body, headers=headers).status_code == 201


def test_with_the_log_off_feedback_is_503_and_predictions_still_work(deployment, record):
    app = create_app(config(deployment, PREDICTION_LOG="off"))
    client = app.test_client()
    assert client.post("/predict", json=record).status_code == 200
    response = client.post("/feedback", json={"prediction_id": "ab" * 16, "outcome": 1})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    health = client.get("/health").get_json()
    assert health["status"] == "ok"
    assert health["prediction_log"]["status"] == "off"
    assert app.extensions["prediction_log"].database is None


def test_the_feedback_operation_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/feedback"]["post"]
    assert {"201", "400", "404", "409", "503"} <= set(operation["responses"])
    body = spec["components"]["schemas"]["Feedback"]
    assert body["properties"]["outcome"]["enum"] == [0, "0", 1, "1"]
    assert (body["properties"][TARGET]["minimum"], body["properties"][TARGET]["maximum"]) == (0, 10)
