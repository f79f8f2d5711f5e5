"""The real gunicorn on a free loopback port (integration)."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.app.servers import Gunicorn, request

pytestmark = pytest.mark.integration


@pytest.fixture
def server(deployment, tmp_path):
    gunicorn = Gunicorn(deployment, tmp_path)
    gunicorn.wait_until_up()
    yield gunicorn
    gunicorn.stop()


def test_endpoints_errors_and_metrics_on_real_gunicorn(server, record):
    assert request(server.url + "/ready")[0] == 200
    for _ in range(6):  # spread over both workers
        status, body, headers = request(server.url + "/predict", record)
        assert status == 200
        assert "model;dur=" in headers["Server-Timing"]
    status, body, _ = request(server.url + "/predict", record | {"age": 999})
    assert status == 400
    assert json.loads(body)["detail"] == [{"field": "age", "problem": "999 is outside [18, 64]"}]
    status, body, _ = request(server.url + "/predict", {"records": []})
    assert status == 400
    status, metrics, _ = request(server.url + "/metrics")
    assert status == 200
    # multiprocess mode: the counts of both workers, summed
    predicted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("migraine_predictions_total{")
    )
    assert predicted == 6
    assert 'migraine_validation_errors_total{field="age"} 1.0' in metrics
    assert 'flask_http_request_duration_seconds_bucket{endpoint="predict.predict"' in metrics
    assert "migraine_models_ready 1.0" in metrics


def test_smoke_check_passes_on_a_healthy_deployment(server):
    """The post-deploy check CI runs before deciding on a rollback."""
    from migraine_ml.monitoring.smoke import check

    assert check(server.url, None) == []


def test_tampered_models_make_gunicorn_refuse_to_serve(deployment, tmp_path, record):
    manifest = deployment / "models" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"seed"', '"seed" '))
    server = Gunicorn(deployment, tmp_path)
    try:
        server.wait_until_up()
        status, body, _ = request(server.url + "/ready")
        assert status == 503
        assert "does not match dvc.lock" in body
        assert request(server.url + "/predict", record)[0] == 503
        from migraine_ml.monitoring.smoke import check

        assert check(server.url, None)[0].startswith("/ready answered 503")
    finally:
        server.stop()


def test_hup_reloads_workers_without_failing_a_request(deployment, tmp_path, record):
    server = Gunicorn(deployment, tmp_path)
    server.wait_until_up()
    failures, served, done = [], [], threading.Event()

    def drive():
        while not done.is_set():
            try:
                # New workers load the models before they accept, so a request waits
                # about 5 s here, and longer while other tests load the machine: a HUP
                # stalls, it does not fail (promotions swap models in place, test_reload).
                status, _, _ = request(server.url + "/predict", record, timeout=60)
            except OSError as err:
                failures.append(repr(err))
                continue
            if status == 200:
                served.append(time.monotonic())
            else:
                failures.append(status)

    threads = [threading.Thread(target=drive) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    hup = time.monotonic()
    server.process.send_signal(signal.SIGHUP)  # new workers load and verify the models again
    time.sleep(5)
    done.set()
    for thread in threads:
        thread.join()
    log = server.stop()
    assert failures == []
    assert any(t < hup for t in served) and any(t > hup + 3 for t in served)
    assert "Handling signal: hup" in log


def test_the_drift_monitor_is_a_process_of_its_own(deployment, tmp_path):
    """gunicorn's master starts it; it checks for the workers; it stops with the master."""
    server = Gunicorn(deployment, tmp_path, drain=True, MIGRAINE_DRIFT_INTERVAL="1")
    pid_file = Path(tempfile.gettempdir()) / f"migraine-drift-monitor-{server.process.pid}.pid"
    try:
        server.wait_until_up()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pid_file.exists():
            time.sleep(0.2)
        pid = int(pid_file.read_text())
        while time.monotonic() < deadline and f"process {pid} now" not in server.output():
            time.sleep(0.2)
        assert f"process {pid} now checks for every worker" in server.output()  # not a worker
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, body, _ = request(server.url + "/drift")
            if json.loads(body)["checked_at"] is not None:
                break
            time.sleep(0.2)
        assert status == 200 and json.loads(body)["note"].startswith("window too small")
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not pid_file.exists()


def test_smoke_refuses_a_url_that_is_not_http(monkeypatch, capsys):
    from migraine_ml import cli

    monkeypatch.setattr(sys, "argv", ["migraine", "smoke", "--url", "file:///etc/passwd"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2  # a usage error, not a failed verdict
    assert "--url must start with http:// or https://" in capsys.readouterr().err
