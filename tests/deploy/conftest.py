"""The service image, built once per session around the session's small trained models."""

from __future__ import annotations

import shutil
import uuid

import pytest

from tests.app.conftest import write_lock
from tests.deploy.docker import (
    base_image,
    build,
    build_context,
    docker,
    fill_wheelhouse,
    require_engine,
)


@pytest.fixture(scope="session")
def deployment(trained, tmp_path_factory):
    """models/ and a dvc.lock naming their hash, as `dvc repro` leaves them."""
    target = tmp_path_factory.mktemp("image-deployment")
    shutil.copytree(trained / "models", target / "models")
    write_lock(target / "dvc.lock", target / "models")
    return target


@pytest.fixture(scope="session")
def image(deployment, tmp_path_factory):
    """The repository's Dockerfile built on the offline base; removed at the end."""
    require_engine()
    base = base_image()
    fill_wheelhouse()
    tag = f"migraine-mlops-test:{uuid.uuid4().hex[:8]}"
    build(build_context(tmp_path_factory.mktemp("context"), deployment), tag, base)
    yield tag
    docker("rmi", "-f", tag, check=False)
