"""The service fixtures of tests/app (trained models in a verified deployment directory)."""

from tests.app.conftest import app, client, deployment, record  # noqa: F401 (fixtures)
