"""Deployment settings: every one is MIGRAINE_<NAME>, with the documented unprefixed aliases."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from app import create_app

ROOT = Path(__file__).resolve().parents[2]
ALIASES = ("API_KEYS", "HOST", "PORT", "WEB_CONCURRENCY", "LOG_LEVEL", "PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture
def environment(monkeypatch):
    """The process environment, cleared of every setting the service reads."""
    prefixed = [n for n in os.environ if n.startswith(("MIGRAINE_", "GUNICORN_"))]
    for name in [*prefixed, *ALIASES]:
        # setenv first so that monkeypatch restores even a variable that gunicorn.conf.py
        # sets behind its back (PROMETHEUS_MULTIPROC_DIR)
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def app_from_env(environment, deployment):
    """`create_app()` as gunicorn calls it: configured by the environment alone."""
    environment.setenv("MIGRAINE_MODELS_DIR", str(deployment / "models"))
    environment.setenv("MIGRAINE_DVC_LOCK", str(deployment / "dvc.lock"))
    environment.setenv("MIGRAINE_PREDICTION_LOG", str(deployment / "predictions.db"))

    def make(**env: str):
        for name, value in env.items():
            environment.setenv(name, value)
        return create_app()

    return make


def _status(client, record, key: str) -> int:
    return client.post("/predict", json=record, headers={"X-API-Key": key}).status_code


def test_plain_api_keys_is_an_alias(app_from_env, record):
    client = app_from_env(API_KEYS="k1,k2").test_client()
    assert client.post("/predict", json=record).status_code == 401
    assert _status(client, record, "k2") == 200


def test_prefixed_api_keys_win_over_the_alias(app_from_env, record):
    client = app_from_env(API_KEYS="old", MIGRAINE_API_KEYS="new").test_client()
    assert _status(client, record, "old") == 401
    assert _status(client, record, "new") == 200


def test_api_keys_are_read_verbatim(app_from_env, record):
    # from_prefixed_env parses values as JSON: the key "1234" became the int 1234 and
    # every request with a key crashed in str.split
    client = app_from_env(MIGRAINE_API_KEYS="1234").test_client()
    assert _status(client, record, "1234") == 200
    assert _status(client, record, "123") == 401


def test_settings_can_come_from_secret_files(app_from_env, environment, record, tmp_path):
    files = {"API_KEYS": "s3cret\n", "PREDICTION_LOG": "off", "MAX_BATCH": "5"}
    for name, value in files.items():
        (tmp_path / name).write_text(value)  # secret files often end in a newline
        environment.setenv(f"MIGRAINE_{name}_FILE", str(tmp_path / name))
    app = app_from_env()
    client = app.test_client()
    assert _status(client, record, "s3cret") == 200
    assert (app.config["API_KEYS"], app.config["PREDICTION_LOG"]) == ("s3cret", "off")
    assert app.config["MAX_BATCH"] == 5  # parsed as JSON, like MIGRAINE_MAX_BATCH


def test_a_secret_file_wins_over_the_plain_setting(app_from_env, record, tmp_path):
    # the image sets MIGRAINE_PREDICTION_LOG to its volume; a deployment's secret overrides it
    keys = tmp_path / "api-keys"
    keys.write_text("from-file")
    app = app_from_env(MIGRAINE_API_KEYS="direct", MIGRAINE_API_KEYS_FILE=str(keys))
    client = app.test_client()
    assert _status(client, record, "from-file") == 200
    assert _status(client, record, "direct") == 401


def test_a_missing_secret_file_stops_the_start(app_from_env, tmp_path):
    with pytest.raises(FileNotFoundError, match="absent"):
        app_from_env(MIGRAINE_API_KEYS_FILE=str(tmp_path / "absent"))


def test_an_empty_secret_file_stops_the_start(app_from_env, tmp_path):
    # an empty API_KEYS would mean no authentication at all
    (tmp_path / "api-keys").write_text("\n")
    with pytest.raises(ValueError, match=r"MIGRAINE_API_KEYS_FILE: .*api-keys is empty"):
        app_from_env(MIGRAINE_API_KEYS_FILE=str(tmp_path / "api-keys"))


def test_prefixed_setting_reaches_the_app(app_from_env, record):
    client = app_from_env(MIGRAINE_MAX_BATCH="5").test_client()
    assert client.post("/predict", json={"records": [record] * 5}).status_code == 200
    response = client.post("/predict", json={"records": [record] * 6})
    assert response.status_code == 400
    assert response.get_json()["detail"][0]["problem"] == "batch of 6 records is larger than 5"
    batch = client.get("/openapi.json").get_json()["components"]["schemas"]["Batch"]
    assert batch["properties"]["records"]["maxItems"] == 5


def _gunicorn_settings(environment, tmp_path, **env: str) -> dict:
    environment.setenv("MIGRAINE_PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prometheus"))
    for name, value in env.items():
        environment.setenv(name, value)
    return runpy.run_path(str(ROOT / "app" / "gunicorn.conf.py"))


@pytest.mark.parametrize(
    ("env", "bind", "workers"),
    [
        ({"PORT": "9000", "WEB_CONCURRENCY": "3"}, "127.0.0.1:9000", 3),
        ({"MIGRAINE_PORT": "9001", "MIGRAINE_WEB_CONCURRENCY": "4"}, "127.0.0.1:9001", 4),
        (
            {
                "PORT": "9000",
                "MIGRAINE_PORT": "9001",
                "WEB_CONCURRENCY": "3",
                "MIGRAINE_WEB_CONCURRENCY": "4",
                "HOST": "127.0.0.2",
                "MIGRAINE_HOST": "0.0.0.0",
            },
            "0.0.0.0:9001",
            4,
        ),
    ],
)
def test_gunicorn_reads_prefixed_settings_and_conventional_aliases(
    environment, tmp_path, env, bind, workers
):
    settings = _gunicorn_settings(environment, tmp_path, **env)
    assert settings["bind"] == bind
    assert settings["workers"] == workers


def test_gunicorn_prefixed_settings_cover_every_knob(environment, tmp_path):
    settings = _gunicorn_settings(
        environment,
        tmp_path,
        MIGRAINE_GUNICORN_THREADS="4",
        MIGRAINE_GUNICORN_BACKLOG="64",
        MIGRAINE_GUNICORN_TIMEOUT="10",
        MIGRAINE_GUNICORN_MAX_REQUESTS="100",
        MIGRAINE_GUNICORN_ACCESSLOG="-",
        MIGRAINE_LOG_LEVEL="warning",
        GUNICORN_BACKLOG="999",  # the alias loses to the prefixed name
    )
    assert (settings["threads"], settings["worker_class"]) == (4, "gthread")
    assert (settings["backlog"], settings["timeout"], settings["max_requests"]) == (64, 10, 100)
    assert (settings["accesslog"], settings["loglevel"]) == ("-", "warning")
    # prometheus_client reads the unprefixed name in the workers
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "prometheus")
    assert (tmp_path / "prometheus").is_dir()
