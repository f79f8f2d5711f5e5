"""Promoted models picked up by the running service: verified, swapped in, no request failed."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app import create_app
from app.reload import LOADED, REFUSED, UNCHANGED, UNSETTLED
from migraine_ml.monitoring.monitor import served_versions
from migraine_ml.monitoring.prediction_log import open_log
from tests.app.conftest import config, write_lock
from tests.app.servers import Gunicorn, request

pytestmark = pytest.mark.integration

SWAP = {"champion": "runner_up", "runner_up": "champion"}
TAMPERED = "classifier-runner_up.skops"  # the new champion's file in a promotion


def stage_promotion(deployment: Path, *, tamper: str | None = None) -> dict[str, str]:
    """A second model set in deployment/staged: champion and runner-up swap ranks.

    `tamper`: None (valid), "lock matches" (a model file changed, the lock records the
    changed directory: its md5 contradicts the manifest) or "lock differs" (the lock
    records the valid set, a file changed after). Returns the new champion versions.
    """
    staged = deployment / "staged"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(deployment / "models", staged / "models")
    manifest_path = staged / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["models"]:
        entry["rank"] = SWAP.get(entry["rank"], entry["rank"])
    manifest_path.write_text(json.dumps(manifest, indent=2))
    if tamper == "lock differs":
        write_lock(staged / "dvc.lock", staged / "models")
    if tamper is not None:
        with (staged / "models" / TAMPERED).open("ab") as model:
            model.write(b"\0")
    if tamper != "lock differs":
        write_lock(staged / "dvc.lock", staged / "models")
    return served_versions(manifest)


def install(deployment: Path, *, lock: bool = True) -> None:
    """Into place as a checkout does: file by file (each replaced at once), dvc.lock last."""
    staged = deployment / "staged"
    for path in sorted((staged / "models").iterdir()):
        os.replace(path, deployment / "models" / path.name)
    if lock:
        os.replace(staged / "dvc.lock", deployment / "dvc.lock")


def promote(deployment: Path, *, tamper: str | None = None) -> dict[str, str]:
    versions = stage_promotion(deployment, tamper=tamper)
    install(deployment)
    return versions


def champions(client, record) -> dict[str, str]:
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.get_json()
    return {
        task: m["version"] for task, m in response.get_json()["predictions"][0]["models"].items()
    }


def champions_of(model_url: str) -> dict[str, str]:
    """The champion versions a server's GET /model names."""
    model = json.loads(request(model_url)[1])
    return {m["task"]: m["version"] for m in model["models"] if m["rank"] == "champion"}


@pytest.fixture
def manual(deployment):
    """The app with no reload thread: the test checks when it wants (reloader.check)."""
    return create_app(config(deployment, MODEL_RELOAD_INTERVAL=0))


def _metric(client, line_start: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(line_start))


def test_a_promotion_is_verified_and_swapped_in(manual, deployment, record):
    client, reloader = manual.test_client(), manual.extensions["model_reloader"]
    before = champions(client, record)
    first_loaded = client.get("/model").get_json()["reload"]["loaded_at"]
    assert reloader.check().outcome == UNCHANGED
    served = manual.extensions["model_store"]
    old_champion = served.get("classification")
    old_info = (
        f'migraine_model_info{{model="{old_champion.name}",rank="champion",serving="'
        f'{"fast_path" if old_champion.fast else "sklearn"}",task="classification",'
        f'version="{old_champion.version}"}}'
    )
    assert _metric(client, old_info) == 1

    promoted = promote(deployment)
    assert promoted != before
    assert reloader.check().outcome == LOADED
    assert manual.extensions["model_store"] is not served
    assert champions(client, record) == promoted
    model = client.get("/model").get_json()
    assert {m["version"] for m in model["models"] if m["rank"] == "champion"} == set(
        promoted.values()
    )
    assert model["reload"]["loaded_at"] >= first_loaded and model["reload"]["last_refused"] is None
    assert client.get("/openapi.json").status_code == 200
    assert _metric(client, 'migraine_model_reloads_total{result="loaded"}') == 1
    assert _metric(client, old_info) == 0  # no longer announced as serving


def test_the_same_models_rewritten_are_not_reloaded(manual, deployment):
    """Same dvc.lock hash of models/: no load, even if every file was touched or rewritten."""
    reloader, served = manual.extensions["model_reloader"], manual.extensions["model_store"]
    lock = deployment / "dvc.lock"
    lock.write_text(lock.read_text())
    os.utime(deployment / "models" / "manifest.json")
    assert reloader.check().outcome == UNCHANGED
    assert manual.extensions["model_store"] is served


@pytest.mark.parametrize("tamper", ["lock matches", "lock differs"])
def test_a_tampered_promotion_is_refused_and_the_old_models_answer(
    manual, deployment, record, tamper
):
    client, reloader = manual.test_client(), manual.extensions["model_reloader"]
    before = champions(client, record)
    promote(deployment, tamper=tamper)
    result = reloader.check()
    assert result.outcome == REFUSED
    problem = "md5 .* != manifest" if tamper == "lock matches" else "does not match dvc.lock"
    assert re.search(problem, " ".join(result.problems))
    assert champions(client, record) == before
    assert client.get("/ready").status_code == 200
    refused = client.get("/model").get_json()["reload"]["last_refused"]
    assert refused["problems"] == list(result.problems) and refused["at"]
    assert _metric(client, 'migraine_model_reloads_total{result="refused"}') == 1
    assert reloader.check().outcome == UNCHANGED  # the same files are not tried again


def test_a_refused_set_is_tried_again_when_the_files_change(manual, deployment, record):
    """A checkout that writes dvc.lock first: refused until the models match it."""
    client, reloader = manual.test_client(), manual.extensions["model_reloader"]
    promoted = stage_promotion(deployment)
    os.replace(deployment / "staged" / "dvc.lock", deployment / "dvc.lock")
    assert reloader.check().outcome == REFUSED
    install(deployment, lock=False)
    assert reloader.check().outcome == LOADED
    assert champions(client, record) == promoted


def test_files_changing_while_verified_are_not_refused(manual, deployment, record):
    """Verification failed because the copy went on meanwhile: not a refusal, tried again."""
    client, reloader = manual.test_client(), manual.extensions["model_reloader"]
    promoted = stage_promotion(deployment)
    os.replace(deployment / "staged" / "dvc.lock", deployment / "dvc.lock")
    verify = reloader._load

    def copy_goes_on():
        store = verify()  # the new lock, the old models: not ready
        install(deployment, lock=False)
        return store

    reloader._load = copy_goes_on
    result = reloader.check()
    assert result.outcome == UNSETTLED and result.problems
    assert reloader.last_refused_at is None
    reloader._load = verify
    assert reloader.check().outcome == LOADED
    assert champions(client, record) == promoted


def test_admin_reload_needs_the_api_key_and_reloads(deployment, record):
    app = create_app(config(deployment, MODEL_RELOAD_INTERVAL=0, API_KEYS="k1"))
    client, key = app.test_client(), {"X-API-Key": "k1"}
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
    unchanged = client.post("/admin/reload", headers=key)
    assert unchanged.status_code == 200
    assert unchanged.get_json()["reloaded"] is False and unchanged.get_json()["problems"] == []
    promoted = promote(deployment)
    response = client.post("/admin/reload", headers=key)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["reloaded"] is True and body["problems"] == []
    assert {task: ranks["champion"] for task, ranks in body["versions"].items()} == promoted
    answer = client.post("/predict", json=record, headers=key).get_json()
    assert (
        answer["predictions"][0]["models"]["classification"]["version"]
        == promoted["classification"]
    )


def test_admin_reload_answers_409_for_a_bad_promotion(manual, deployment, record):
    client = manual.test_client()
    before = champions(client, record)
    promote(deployment, tamper="lock differs")
    response = client.post("/admin/reload")
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "conflict" and body["reloaded"] is False
    assert "does not match dvc.lock" in " ".join(body["problems"])
    assert {task: ranks["champion"] for task, ranks in body["versions"].items()} == before
    assert champions(client, record) == before


def test_the_reload_thread_picks_up_a_promotion(deployment, record):
    app = create_app(config(deployment, MODEL_RELOAD_INTERVAL=0.2))
    client = app.test_client()
    champions(client, record)  # the first request starts the thread
    promoted = promote(deployment)
    deadline = time.monotonic() + 10
    while champions(client, record) != promoted:
        assert time.monotonic() < deadline, "the promotion was not picked up"
        time.sleep(0.1)
    app.extensions["model_reloader"].stop()


def test_the_drift_monitor_judges_the_new_models_outputs(deployment, record):
    """The monitor process's app (no model loaded) follows a promotion like the workers:
    a check counts only the outputs of the versions now served."""
    held = open_log(str(deployment / "predictions.db"))  # keeps both apps' threads following
    settings = {"MODEL_RELOAD_INTERVAL": 0, "DRIFT_EVENTS": "", "DRIFT_MIN_WINDOW": 10}
    serving = create_app(config(deployment, **settings))
    monitoring = create_app(config(deployment, **settings, LOAD_PIPELINES=False))
    assert held.acquire_monitor_lock()
    monitor = monitoring.extensions["drift_monitor"]
    client = serving.test_client()
    try:
        assert client.post("/predict", json={"records": [record] * 30}).status_code == 200
        serving.extensions["prediction_log"].flush()
        assert monitor.check()["prediction"]["classification"]["rows"] == 30
        old_reference = monitor.reference

        promoted = promote(deployment)
        for app in (serving, monitoring):
            assert app.extensions["model_reloader"].check().outcome == LOADED
        assert monitor.versions == promoted and monitor.reference is not old_reference
        assert client.post("/predict", json={"records": [record] * 20}).status_code == 200
        serving.extensions["prediction_log"].flush()
        assert monitor.check()["prediction"]["classification"]["rows"] == 20
    finally:
        for app in (serving, monitoring):
            app.extensions["drift_monitor"].stop()
        held.close()


def test_gunicorn_serves_a_promotion_under_load_without_a_failed_request(
    deployment, tmp_path, record
):
    """2 workers under continuous load: a promotion, then a bad one. Every request answers
    200 within 1 s; every worker and the drift monitor process take the new models, and
    keep them when the next ones fail verification."""
    server = Gunicorn(deployment, tmp_path, drain=True)
    pid_file = Path(tempfile.gettempdir()) / f"migraine-drift-monitor-{server.process.pid}.pid"
    answers: list[tuple[float, float, str]] = []  # (sent, seconds, classifier version)
    failures: list[str] = []
    done = threading.Event()

    def drive() -> None:
        while not done.is_set():
            sent = time.monotonic()
            try:
                status, body, _ = request(server.url + "/predict", record, timeout=10)
            except OSError as err:
                failures.append(repr(err))
                continue
            if status != 200:
                failures.append(f"{status}: {body}")
                continue
            version = json.loads(body)["predictions"][0]["models"]["classification"]["version"]
            answers.append((sent, time.monotonic() - sent, version))

    def everywhere(result: str, condition, timeout: float = 10) -> bool:
        """Both workers and the monitor process reloaded (`result`: loaded or refused), and
        `condition` holds on /model for 10 answers in a row (any worker may answer each)."""
        deadline, in_a_row = time.monotonic() + timeout, 0
        line = f'migraine_model_reloads_total{{result="{result}"}} 3.0'
        while time.monotonic() < deadline and line not in request(server.url + "/metrics")[1]:
            time.sleep(0.05)
        while time.monotonic() < deadline and in_a_row < 10:
            model = json.loads(request(server.url + "/model")[1])
            in_a_row = in_a_row + 1 if condition(model) else 0
            time.sleep(0.05)
        return in_a_row >= 10

    def champion_versions(model: dict) -> set[str]:
        return {m["version"] for m in model["models"] if m["rank"] == "champion"}

    try:
        server.wait_until_up()
        old = champions_of(server.url + "/model")
        # one client per worker: a request's time is the service's, not a queue of this
        # test's own clients (on this shared 2-core machine 4 clients alone reach 0.8 s)
        with ThreadPoolExecutor(2) as pool:
            drivers = [pool.submit(drive) for _ in range(2)]
            time.sleep(1.5)
            promoted_at = time.monotonic()
            promoted = promote(deployment)
            assert everywhere("loaded", lambda m: champion_versions(m) == set(promoted.values()))
            seen_everywhere = time.monotonic() - promoted_at
            time.sleep(1)

            refused_at = time.monotonic()
            promote(deployment, tamper="lock differs")
            assert everywhere("refused", lambda m: m["reload"]["last_refused"] is not None)
            time.sleep(1)
            done.set()
            for driver in drivers:
                driver.result()
        model = json.loads(request(server.url + "/model")[1])
        metrics = request(server.url + "/metrics")[1]
        monitor_pid = int(pid_file.read_text())
    finally:
        done.set()
        log = server.stop()

    assert failures == []
    slowest = max(seconds for _, seconds, _ in answers)
    assert slowest < 1.0, f"slowest request {slowest:.3f} s"
    assert champion_versions(model) == set(promoted.values())  # the bad set never served
    assert "does not match dvc.lock" in " ".join(model["reload"]["last_refused"]["problems"])
    late = [v for sent, _, v in answers if sent > promoted_at + seen_everywhere]
    assert late and set(late) == {promoted["classification"]}
    assert {v for sent, _, v in answers if sent < promoted_at} == {old["classification"]}
    assert any(sent > refused_at for sent, _, _ in answers)
    # both workers and the drift monitor process loaded the promotion and refused the next
    assert 'migraine_model_reloads_total{result="loaded"} 3.0' in metrics
    assert 'migraine_model_reloads_total{result="refused"} 3.0' in metrics
    assert re.search(rf"\[{monitor_pid}\] new models serving: .*champion=", log)
    assert re.search(rf"\[{monitor_pid}\] new models refused", log)
    before = max(seconds for sent, seconds, _ in answers if sent < promoted_at)
    print(
        f"\n{len(answers)} requests, slowest {slowest * 1000:.0f} ms ({before * 1000:.0f} ms "
        f"before the promotion); the promotion seen by every worker after {seen_everywhere:.1f} s"
    )
