"""The service image, built from the repository's Dockerfile and run on a real engine.

Built once per session (conftest.py) around the session's small trained models, on the offline
base (deploy/base-image.sh), with the read-only, no-capability options of
docs/deployment.md. Size and start-to-ready time are measured by bench/image.py.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
import uuid

import pytest

from app import create_app
from tests.app.conftest import config
from tests.app.servers import free_port, request
from tests.deploy.docker import HARDENED, Container, docker, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def serving(image):
    """The hardened container on a free loopback port, ready."""
    port = free_port()
    container = Container(
        image, *HARDENED, "--network", "host", "-e", f"PORT={port}",
        name=f"migraine-test-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/ready", container)
        yield container, f"http://127.0.0.1:{port}"
    finally:
        container.remove()


def example(url: str) -> dict:
    operation = json.loads(request(url + "/openapi.json")[1])["paths"]["/predict"]["post"]
    return operation["requestBody"]["content"]["application/json"]["example"]


def test_the_image_serves_read_only_and_non_root(serving, deployment):
    container, url = serving
    record = example(url)
    status, body, _ = request(url + "/predict", record)
    assert status == 200, body
    served = json.loads(body)["predictions"][0]
    # the same models in this process (with the pipeline's full install) answer the same
    local = create_app(config(deployment, PREDICTION_LOG="off")).test_client()
    expected = local.post("/predict", json=record).get_json()["predictions"][0]
    for key in ("probabilities", "predicted_class", "expected_migraine_severity", "models"):
        assert served[key] == expected[key]
    assert set(container.uids()) == {10001}  # gunicorn, its workers, the drift monitor
    # the SQLite log is on the image's volume, not the read-only root
    assert "prediction log /var/lib/migraine/predictions.db" in container.logs()
    write = ["exec", container.name, "python", "-c", "open('/srv/migraine/models/x', 'w')"]
    refused = docker(*write, check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr


def test_the_healthcheck_passes_with_no_network(image):
    container = Container(
        image, *HARDENED, "--network", "none", name=f"migraine-test-{uuid.uuid4().hex[:8]}"
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and container.health() in ("starting", "none"):
            time.sleep(1)
        assert container.health() == "healthy", container.logs()[-3000:]
    finally:
        container.remove()


def test_a_tampered_model_file_keeps_the_service_unready(image, deployment, tmp_path):
    model = sorted((deployment / "models").glob("classifier-champion*"))[0]
    tampered = tmp_path / model.name
    tampered.write_bytes(model.read_bytes() + b"\0")
    assert hashlib.md5(tampered.read_bytes()).digest() != hashlib.md5(model.read_bytes()).digest()
    port = free_port()
    container = Container(
        image, *HARDENED, "--network", "host", "-e", f"PORT={port}",
        "-v", f"{tampered}:/srv/migraine/models/{model.name}:ro",
        name=f"migraine-test-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    try:
        body = wait_for(f"http://127.0.0.1:{port}/ready", container, status=503)
        assert "does not match dvc.lock" in body
        # unverified models answer nothing: no prediction from a file dvc.lock disowns
        assert request(f"http://127.0.0.1:{port}/predict", {"records": [{}]})[0] == 503
    finally:
        container.remove()


def test_docker_stop_finishes_the_requests_in_flight(serving):
    """SIGTERM to gunicorn (PID 1): requests already sent all answer; none is cut off.

    The clients play the load balancer: they send nothing new once the stop is under way
    (in Kubernetes the preStop sleep removes the pod from the Service first). Two
    clients against three workers, so no request waits unaccepted in the backlog.
    """
    container, url = serving
    body = json.dumps({"records": [example(url)] * 200}).encode()
    answered, failures, stopping = [], [], threading.Event()

    def drive():
        while not stopping.is_set():
            sent = urllib.request.Request(
                url + "/predict", data=body, headers={"Content-Type": "application/json"}
            )
            began = time.monotonic()
            try:
                with urllib.request.urlopen(sent, timeout=30) as response:
                    response.read()
                    answered.append((began, time.monotonic(), response.status))
            except Exception as err:  # every failure is the finding
                failures.append(repr(err))

    clients = [threading.Thread(target=drive) for _ in range(2)]
    for client in clients:
        client.start()
    time.sleep(2)
    stopping.set()
    stop_began = time.monotonic()
    docker("stop", "--time", "30", container.name)
    for client in clients:
        client.join()
    assert failures == []
    assert answered and all(status == 200 for _, _, status in answered)
    # the stop overlapped real work: some request was still running when it began
    assert any(began < stop_began < ended for began, ended, _ in answered)
    exit_code = json.loads(docker("inspect", container.name).stdout)[0]["State"]["ExitCode"]
    assert exit_code == 0 and "Handling signal: term" in container.logs()


def test_the_image_holds_the_serving_set_only(image):
    probe = (
        "import importlib.util, shutil; "
        "print([m for m in ('dvc', 'mlflow', 'matplotlib', 'pyarrow', 'pytest', 'pip') "
        "if importlib.util.find_spec(m)] "
        "+ [c for c in ('gcc', 'cc', 'apt-get') if shutil.which(c)])"
    )
    found = docker("run", "--rm", "--network", "none", image, "python", "-c", probe).stdout
    # apt-get stays with the base image; no compiler, pipeline or test tools
    assert json.loads(found.strip().replace("'", '"')) in ([], ["apt-get"])
