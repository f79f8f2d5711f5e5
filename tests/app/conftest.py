"""The service on the session's small trained models, in a directory DVC-style verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from app import create_app
from app.model_store import dvc_dir_md5


def write_lock(lock: Path, models: Path) -> None:
    """A dvc.lock recording `models` the way `dvc repro` does (path + .dir md5)."""
    stages = {
        "train": {
            "cmd": "python -m stages.train",
            "outs": [{"path": "models", "hash": "md5", "md5": dvc_dir_md5(models)}],
        }
    }
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


@pytest.fixture
def deployment(trained, tmp_path) -> Path:
    """A copy of the trained models/ with its dvc.lock (tests may tamper with it)."""
    shutil.copytree(trained / "models", tmp_path / "models")
    write_lock(tmp_path / "dvc.lock", tmp_path / "models")
    return tmp_path


def config(deployment: Path, **overrides) -> dict:
    return {
        "TESTING": True,
        "MODELS_DIR": str(deployment / "models"),
        "DVC_LOCK": str(deployment / "dvc.lock"),
        "PREDICTION_LOG": str(deployment / "predictions.db"),
        "MODEL_RELOAD_INTERVAL": 0,  # no reload thread: a test reloads when it means to
    } | overrides


@pytest.fixture
def app(deployment):
    return create_app(config(deployment))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def record(client) -> dict:
    spec = client.get("/openapi.json").get_json()
    return dict(
        spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["example"]
    )
