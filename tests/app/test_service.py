"""The Flask app through its test client: endpoints, strict input, hash check."""

import json
import time

import numpy as np
import pytest

from app import create_app
from tests.app.conftest import config

pytestmark = pytest.mark.integration


def test_single_prediction(client, record, app):
    response = client.post("/predict", json=record)
    assert response.status_code == 200
    (prediction,) = response.get_json()["predictions"]
    assert 0 <= prediction["probability"] <= 1
    assert prediction["probabilities"]["1"] == prediction["probability"]
    assert prediction["predicted_class"] in (0, 1)
    assert 1 <= prediction["expected_migraine_severity"] <= 10
    assert prediction["models"]["classification"]["name"]
    assert len(prediction["models"]["classification"]["version"]) == 12
    assert prediction["drift_warning"] is None
    assert len(prediction["prediction_id"]) == 32
    log = app.extensions["prediction_log"]
    log.flush()
    assert log.count() == 1


def test_prediction_ids_are_unique_and_ordered_by_time(client, record):
    """Time first, as UUIDv7: the log's index on the id grows at one end (app/predict.py)."""
    before = time.time_ns() // 1_000_000
    ids = []
    for _ in range(3):
        batch = client.post("/predict", json={"records": [record] * 50}).get_json()
        ids += [p["prediction_id"] for p in batch["predictions"]]
        time.sleep(0.002)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids) == 150
    millis = [int(i[:12], 16) for i in ids]
    assert before <= min(millis) and max(millis) <= after
    assert millis == sorted(millis) and millis[0] < millis[-1]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_fast_path_matches_the_sklearn_pipeline(deployment, record):
    fast = create_app(config(deployment)).test_client()
    slow = create_app(config(deployment, FAST_PATH=False)).test_client()
    records = [record, dict(record, age=None, sleep_hours=4.2), dict(record, stress_level=10)]
    a = fast.post("/predict", json={"records": records}).get_json()["predictions"]
    b = slow.post("/predict", json={"records": records}).get_json()["predictions"]
    for x, y in zip(a, b, strict=True):
        assert x["probability"] == pytest.approx(y["probability"], abs=1e-6)
        assert x["expected_migraine_severity"] == pytest.approx(
            y["expected_migraine_severity"], abs=1e-4
        )
    serving = {m["rank"]: m["serving"] for m in fast.get("/model").get_json()["models"]}
    assert serving["champion"].startswith("numpy fast path")


def test_batch_prediction(client, record):
    response = client.post("/predict", json={"records": [record] * 5})
    assert response.status_code == 200
    assert len(response.get_json()["predictions"]) == 5


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"age": 200}, "age", "200 is outside [18, 64]"),
        ({"age": "forty"}, "age", "expected a number (int), got str"),
        ({"age": 40.5}, "age", "40.5 is not a whole number"),
        ({"gender": 2}, "gender", "2 is not 0 or 1"),
        ({"gender": True}, "gender", "expected a number (binary), got bool"),
        ({"favourite_colour": "blue"}, "favourite_colour", "unknown field"),
    ],
)
def test_bad_fields_are_named(client, record, change, field, problem):
    response = client.post("/predict", json=record | change)
    assert response.status_code == 400
    assert {"field": field, "problem": problem} in response.get_json()["detail"]


def test_every_problem_is_reported(client, record):
    bad = {k: v for k, v in record.items() if k not in ("age", "humidity")} | {"stress_level": 11}
    detail = client.post("/predict", json=bad).get_json()["detail"]
    assert {d["field"] for d in detail} == {"age", "humidity", "stress_level"}


def test_null_means_unknown_and_is_imputed(client, record):
    response = client.post("/predict", json=record | {"sleep_hours": None})
    assert response.status_code == 200


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(client, record, token):
    body = json.dumps(record | {"age": "TOKEN"}).replace('"TOKEN"', token)
    response = client.post("/predict", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"records": []}, "empty batch"),
        ({"records": "all"}, "expected a list of records"),
        ({"records": [{}] * 1001}, "batch of 1001 records is larger than 1000"),
    ],
)
def test_bad_batches(client, body, problem):
    response = client.post("/predict", json=body)
    assert response.status_code == 400
    assert response.get_json()["detail"][0]["problem"] == problem


def test_transport_errors(client, record, app):
    assert client.post("/predict", data="{", content_type="application/json").status_code == 400
    assert client.post("/predict", data=json.dumps(record)).status_code == 415
    assert client.get("/predict").status_code == 405
    huge = json.dumps({"records": [record] * 20000})
    response = client.post("/predict", data=huge, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"] == "request entity too large"
    assert client.post("/predict", json=[1, 2]).status_code == 400


# The JSON error handler dropped the exception's headers: 405 without the Allow header
# RFC 9110 requires (found by schemathesis' unsupported_method check)
@pytest.mark.parametrize("method", ["TRACE", "DELETE", "PUT"])
@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/health", {"GET", "HEAD", "OPTIONS"}),
        ("/predict", {"POST", "OPTIONS"}),
        ("/model", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_undeclared_methods_get_405_with_allow(client, method, path, allowed):
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
    assert response.get_json()["error"] == "method not allowed"
    assert response.content_type == "application/json"


def test_health_ready_model_openapi(client):
    health = client.get("/health").get_json()
    assert (health["status"], health["prediction_log"]["status"]) == ("ok", "ok")
    assert client.get("/ready").status_code == 200
    model = client.get("/model").get_json()
    assert {m["rank"] for m in model["models"]} == {"champion", "runner_up"}
    assert model["manifest"]["leaderboard"]
    spec = client.get("/openapi.json").get_json()
    record = spec["components"]["schemas"]["Record"]
    assert len(record["required"]) == 23
    assert record["properties"]["age"] == {
        "type": "integer",
        "minimum": 18.0,
        "maximum": 64.0,
        "nullable": True,
        "description": "years",
    }
    # null (unknown) is valid for an enum field too: the document used to reject it (fuzzing)
    assert record["properties"]["gender"]["enum"] == [0, 1, None]


def test_metrics_count_predictions_and_rejections(client, record):
    client.post("/predict", json=record)
    client.post("/predict", json=record | {"age": 500})
    text = client.get("/metrics").get_data(as_text=True)
    assert "migraine_predictions_total{" in text
    assert 'migraine_validation_errors_total{field="age"} 1.0' in text
    assert 'flask_http_request_total{method="POST",status="200"}' in text
    assert 'endpoint="predict.predict"' in text
    assert "migraine_model_info{" in text


def test_tampered_model_is_never_served(deployment, record):
    path = deployment / "models" / "classifier-champion.skops"
    path.write_bytes(path.read_bytes() + b"\0")
    client = create_app(config(deployment)).test_client()
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert "does not match dvc.lock" in ready.get_json()["problems"][0]
    assert client.post("/predict", json=record).status_code == 503


def test_a_store_without_pipelines_verifies_every_file_but_loads_no_model(deployment):
    from app.model_store import ModelStore

    store = ModelStore(deployment / "models", deployment / "dvc.lock").load(pipelines=False)
    assert store.ready and store.reference and store.manifest
    assert all(m.pipeline is None and m.fast is None for m in store.models.values())
    path = deployment / "models" / "regressor-champion.skops"
    path.write_bytes(path.read_bytes() + b"\0")
    tampered = ModelStore(deployment / "models", deployment / "dvc.lock").load(pipelines=False)
    assert not tampered.ready and "does not match dvc.lock" in tampered.problems[0]


def test_missing_lock_or_models_is_not_ready(deployment, tmp_path):
    (deployment / "dvc.lock").unlink()
    assert create_app(config(deployment)).test_client().get("/ready").status_code == 503
    empty = create_app(config(deployment, MODELS_DIR=str(tmp_path / "none")))
    problems = empty.test_client().get("/ready").get_json()["problems"]
    assert "run `make repro` first" in problems[0]


def test_api_keys(deployment, record):
    client = create_app(config(deployment, API_KEYS="k1, k2")).test_client()
    denied = client.post("/predict", json=record)
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"] == "Bearer"
    assert (
        client.post("/predict", json=record, headers={"Authorization": "Bearer k2"}).status_code
        == 200
    )
    assert client.post("/predict", json=record, headers={"X-API-Key": "k1"}).status_code == 200
    assert client.post("/predict", json=record, headers={"X-API-Key": "nope"}).status_code == 401
    assert client.get("/health").status_code == 200  # probes need no key
    assert client.get("/metrics").status_code == 200


def test_rate_limit_answers_429_with_retry_after(deployment, record):
    client = create_app(
        config(deployment, RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="3 per minute")
    ).test_client()
    codes = [client.post("/predict", json=record).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.post("/predict", json=record)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.get_json()["error"] == "too many requests"
    assert client.get("/health").status_code == 200


def test_large_batches_match_the_sklearn_pipeline(deployment, record):
    """Batches take the estimator's own predict on the numpy features; still equal."""
    fast = create_app(config(deployment)).test_client()
    slow = create_app(config(deployment, FAST_PATH=False)).test_client()
    records = [dict(record, age=18 + i, stress_level=1 + i % 10) for i in range(40)]
    a = fast.post("/predict", json={"records": records}).get_json()["predictions"]
    b = slow.post("/predict", json={"records": records}).get_json()["predictions"]
    assert [x["probability"] for x in a] == pytest.approx([y["probability"] for y in b], abs=1e-6)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"age": 40.0},
        {"gender": 1.0},
        {"sleep_hours": None},
        {"humidity": 30},
        {"gender": True},
        {"age": 17},
        {"gender": 0.5},
        {"extra": 1},
    ],
)
def test_quick_and_careful_validation_agree(app, record, change):
    from app.validation import RecordValidator

    quick = RecordValidator(app.extensions["model_store"].schema)
    careful = RecordValidator(app.extensions["model_store"].schema)
    careful._fields = None  # force the field-by-field path
    candidate = record | change
    rows_q, problems_q = quick.validate([candidate])
    rows_c, problems_c = careful.validate([candidate])
    assert problems_q == problems_c
    if not problems_c:
        np.testing.assert_array_equal(quick.matrix(rows_q), careful.matrix(rows_c))


def test_load_beyond_the_shared_budget_is_shed_with_429(deployment, record):
    """Many clients at once: the excess gets a quick 429, never a 5xx or a hang."""
    app = create_app(config(deployment, RATELIMIT_ENABLED=True, SHED_LIMIT="10 per minute"))
    codes = []
    for i in range(15):  # fifteen different client addresses
        client = app.test_client()
        response = client.post("/predict", json=record, environ_base={"REMOTE_ADDR": f"10.0.0.{i}"})
        codes.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) > 0
    assert codes == [200] * 10 + [429] * 5
    assert app.test_client().get("/ready").status_code == 200  # probes are never shed


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"sex": None},
        {"pills": "continuing"},
        {"sex": "other"},
        {"sex": 1},
        {"pills": True},
        {"age": 17},
        {"extra": "x"},
    ],
)
def test_quick_and_careful_validation_agree_on_categories(category_schema, change):
    from app.validation import RecordValidator

    quick, careful = RecordValidator(category_schema), RecordValidator(category_schema)
    careful._fields = None  # force the field-by-field path
    candidate = {"sex": "male", "pills": "reduced", "region": "north", "age": 40} | change
    rows_q, problems_q = quick.validate([candidate])
    rows_c, problems_c = careful.validate([candidate])
    assert problems_q == problems_c
    if not problems_c:
        matrix = quick.matrix(rows_q)
        np.testing.assert_array_equal(matrix, careful.matrix(rows_c))
        # category values become their position in the schema's values
        sex = {"male": 1.0, None: np.nan}[candidate["sex"]]
        pills = {"reduced": 1.0, "continuing": 2.0}[candidate["pills"]]
        np.testing.assert_array_equal(matrix[0, :2], [sex, pills])
