"""Shared fixtures: the default schema and small synthetic cohorts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from migraine_ml.data.schema import Schema, load_schema, schema_from_dict
from migraine_ml.data.synthetic import generate_cohort

ROOT = Path(__file__).resolve().parents[1]

# The small trained pipeline (session-scoped) is shared by tests/stages and tests/app;
# headless Chromium by the tests of HTML reports.
pytest_plugins = ["tests.pipeline_fixtures", "tests.browser"]


# `make test` runs the files on two workers (pytest-xdist, --dist loadfile): the longest
# files start first, so that neither worker is left with one of them at the end.
SLOWEST_FIRST = (
    "tests/stages/test_pipeline.py",
    "tests/stages/test_sweep.py",
    "tests/stages/test_own_data.py",
    "tests/stages/test_retrain.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def schema() -> Schema:
    return load_schema(ROOT / "schemas" / "migraine.yaml")


@pytest.fixture(scope="session")
def category_schema() -> Schema:
    """Text categories, one of them ordered, and a yes/no target."""
    return schema_from_dict(
        {
            "columns": {
                "sex": {"dtype": "category", "values": ["female", "male"]},
                "pills": {
                    "dtype": "category",
                    "values": ["none", "reduced", "continuing"],
                    "ordered": True,
                },
                "region": {"dtype": "category", "values": ["north", "south", "islands"]},
                "age": {"dtype": "int", "range": [18, 90]},
                "y": {
                    "dtype": "category",
                    "role": "classification_target",
                    "values": ["no", "yes"],
                },
            }
        }
    )


@pytest.fixture(scope="session")
def _cohort_frame() -> pd.DataFrame:
    return generate_cohort(rows=400, prevalence=0.35, seed=7).data


@pytest.fixture
def cohort(_cohort_frame: pd.DataFrame) -> pd.DataFrame:
    """400 person-days with missing cells, duplicates and entry errors (a fresh copy)."""
    return _cohort_frame.copy()


@pytest.fixture
def clean_cohort() -> pd.DataFrame:
    """A cohort with nothing injected: every check passes on it."""
    return generate_cohort(
        rows=300, prevalence=0.35, seed=3, missing_rate=0, duplicate_rate=0, entry_error_rate=0
    ).data


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """One SQLite MLflow store for the whole session: creating one costs seconds."""
    import os

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (tests/postgres.py): `.url`, stop(), start()."""
    from tests.postgres import postgres_server

    yield from postgres_server()
