"""MLflow aliases through promotion and rollback (migraine_ml.retraining.retrain.move_aliases),
on a real SQLite MLflow store."""

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from migraine_ml.retraining.retrain import CHALLENGER, CHAMPION, PREVIOUS, move_aliases

PROMOTE = {CHALLENGER: CHAMPION, CHAMPION: PREVIOUS}
ROLLBACK = {PREVIOUS: CHAMPION}


@pytest.fixture
def store(tmp_path, schema):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    for role in ("classifier", "regressor"):
        name = f"{schema.name}-{role}"
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, source=str(tmp_path / "model"))
    return client, {"MLFLOW_TRACKING_URI": uri}


def alias_version(client: MlflowClient, registered: str, alias: str) -> str | None:
    """The version `alias` points at in `registered`, or None (also used by test_retrain)."""
    try:
        return str(client.get_model_version_by_alias(registered, alias).version)
    except MlflowException:
        return None


def _alias(client, schema, alias):
    return alias_version(client, f"{schema.name}-classifier", alias)


def test_promotion_then_rollback(store, schema):
    client, env = store
    for role in ("classifier", "regressor"):
        client.set_registered_model_alias(f"{schema.name}-{role}", CHAMPION, "1")
        client.set_registered_model_alias(f"{schema.name}-{role}", CHALLENGER, "2")
    move_aliases(schema, PROMOTE, env=env)
    assert [_alias(client, schema, a) for a in (CHAMPION, PREVIOUS, CHALLENGER)] == [
        "2",
        "1",
        None,
    ]
    move_aliases(schema, ROLLBACK, env=env)
    assert [_alias(client, schema, a) for a in (CHAMPION, PREVIOUS)] == ["1", None]


def test_a_rollback_without_previous_removes_the_champion_alias(store, schema, caplog):
    """The store never held the old champion: `champion` must not stay on the reverted model."""
    client, env = store
    client.set_registered_model_alias(f"{schema.name}-classifier", CHAMPION, "2")
    with caplog.at_level("WARNING"):
        move_aliases(schema, ROLLBACK, env=env)
    assert _alias(client, schema, CHAMPION) is None
    assert "alias 'champion' removed from version 2: no 'previous'" in caplog.text
