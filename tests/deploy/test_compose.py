"""The local stack of docker-compose.yml brought up on a real engine: PostgreSQL, the api
image built here, Prometheus with the project's configuration. No registry is reachable,
so PostgreSQL and Prometheus are stand-ins made from Debian's packages (docker.py); the
compose file, its secrets, healthchecks and dependencies are the ones users run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.app.servers import free_port, request
from tests.deploy.docker import ROOT, docker, standin_image

pytestmark = pytest.mark.integration


def compose_default(variable: str) -> str:
    """The image docker-compose.yml names when `variable` is not set."""
    found = re.search(
        r"\$\{" + variable + r":-([^}]+)\}", (ROOT / "docker-compose.yml").read_text()
    )
    return found.group(1)


def require_compose() -> list[str]:
    """Compose v2 (the docker plugin, as on GitHub's runners) or v1 (Debian's)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    path = shutil.which("docker-compose")
    if path:
        return [path]
    if os.environ.get("CI"):
        pytest.fail("docker-compose missing: CI must install Debian's docker-compose (.ci/run)")
    pytest.skip("docker-compose not installed (apt-get install docker-compose)")


@pytest.fixture
def stack(image, tmp_path):
    compose = require_compose()
    project = tmp_path / "stack"
    project.mkdir()
    shutil.copy(ROOT / "docker-compose.yml", project)
    shutil.copytree(ROOT / "monitoring", project / "monitoring")
    for part in ("compose", "mlflow"):  # compose reads every service's build path
        shutil.copytree(ROOT / "deploy" / part, project / "deploy" / part)
    subprocess.run(
        [sys.executable, ROOT / "deploy" / "compose_secrets.py", "--dir", project / "secrets"],
        check=True, capture_output=True,
    )  # fmt: skip
    env = os.environ | {
        "COMPOSE_PROJECT_NAME": f"migrainetest{uuid.uuid4().hex[:8]}",
        "API_IMAGE": image,
        "POSTGRES_IMAGE": standin_image(
            "migraine-standin-postgres:15", tmp_path, official=compose_default("POSTGRES_IMAGE")
        ),
        "PROMETHEUS_IMAGE": standin_image(
            "migraine-standin-prometheus:debian",
            tmp_path,
            official=compose_default("PROMETHEUS_IMAGE"),
        ),
        "API_PORT": str(free_port()),
        "PROMETHEUS_PORT": str(free_port()),
    }

    def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*compose, *argv], cwd=project, env=env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    up = run("up", "-d", "--no-build", "postgres", "api", "prometheus")
    try:
        assert up.returncode == 0, up.stderr
        yield run, env, project
    finally:
        logs = run("logs", "--no-color", "--tail=40").stdout
        down = run("down", "--volumes", "--remove-orphans")
        print(logs)
        if down.returncode != 0:  # never leave a stack running: remove it by its label
            project_label = f"com.docker.compose.project={env['COMPOSE_PROJECT_NAME']}"
            removals = (("container", ("rm", "--force", "--volumes")), ("volume", ("rm",)),
                        ("network", ("rm",)))  # fmt: skip
            for kind, remove in removals:
                left = docker(kind, "ls", "-aq" if kind == "container" else "-q",
                              "--filter", f"label={project_label}", check=False)  # fmt: skip
                if left.stdout.split():
                    docker(kind, *remove, *left.stdout.split(), check=False)
        assert down.returncode == 0, down.stderr


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"{what} within {seconds} s")


def answers(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def test_the_stack_serves_logs_to_postgres_and_is_scraped(stack):
    run, env, project = stack
    api = f"http://127.0.0.1:{env['API_PORT']}"
    wait_until(lambda: answers(api + "/ready"), 180, "the api was not ready")
    # the prediction log is the PostgreSQL of the stack, reached with the secret's URL
    health = answers(api + "/health")
    assert health["prediction_log"]["status"] == "ok", health
    key = (project / "secrets" / "api-keys").read_text().strip()
    status, spec, _ = request(api + "/openapi.json")
    assert status == 401  # the api-keys secret is in force
    spec = urllib.request.urlopen(
        urllib.request.Request(api + "/openapi.json", headers={"X-API-Key": key}), timeout=5
    ).read()
    operation = json.loads(spec)["paths"]["/predict"]["post"]
    record = operation["requestBody"]["content"]["application/json"]["example"]
    sent = urllib.request.Request(
        api + "/predict", data=json.dumps(record).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
    )  # fmt: skip
    with urllib.request.urlopen(sent, timeout=10) as response:
        prediction_id = json.loads(response.read())["predictions"][0]["prediction_id"]

    def logged():
        query = f"SELECT count(*) FROM predictions WHERE prediction_id = '{prediction_id}'"
        result = run("exec", "-T", "postgres", "psql", "-U", "migraine", "-tAc", query)
        return result.stdout.strip() == "1"

    wait_until(logged, 30, "the prediction was not in PostgreSQL")

    # Prometheus, configured by monitoring/prometheus, scrapes the api as job "migraine"
    query = urllib.parse.quote('up{job="migraine"}')
    prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}/api/v1/query?query={query}"

    def scraped():
        result = (answers(prometheus) or {}).get("data", {}).get("result", [])
        return result and result[0]["value"][1] == "1"

    wait_until(scraped, 90, "Prometheus did not scrape the api")
    rules = answers(f"http://127.0.0.1:{env['PROMETHEUS_PORT']}/api/v1/rules")
    names = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
    assert "MigraineNotReady" in names and "MigraineFeatureDrift" in names
    assert (
        Path(project / "secrets" / "prediction-log-url")
        .read_text()
        .startswith("postgresql://migraine:")
    )
