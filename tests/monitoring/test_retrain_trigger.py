"""A drift alert through a real Alertmanager to a real `retrain-webhook` server.

Alertmanager runs monitoring/alertmanager/alertmanager.yml's route tree with its `retrain`
receiver as committed (bearer token from a credentials file) but pointed at a webhook
server this test runs, the other receivers at a sink; alerts are posted to Alertmanager's
API, as Prometheus posts them. Skipped without Debian's prometheus-alertmanager, failing
in CI.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime

import pytest
import yaml

from migraine_ml.retraining.webhook import RetrainTrigger, Verdict, make_server, read_token
from tests.monitoring.test_alerting_e2e import (
    ALERTMANAGER_CONFIG,
    Webhook,
    alertmanager_config,
)
from tests.monitoring.tools import Process, free_port, require

pytestmark = pytest.mark.integration

RECORD_RUN = "import sys; open(sys.argv[1], 'a').write('retrain\\n')"


class RecordingTrigger(RetrainTrigger):
    """A RetrainTrigger that also hands every verdict to the test."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.verdicts: queue.Queue[Verdict] = queue.Queue()

    def consider(self, incidents):
        verdict = super().consider(incidents)
        self.verdicts.put(verdict)
        return verdict

    def next_verdict(self, timeout: float = 30) -> Verdict:
        try:
            return self.verdicts.get(timeout=timeout)
        except queue.Empty:
            message = f"Alertmanager sent nothing to the retrain webhook in {timeout} s"
            raise AssertionError(message) from None


def post_alerts(alertmanager: str, *alerts: dict) -> None:
    """Alerts as Prometheus sends them: firing since `startsAt`, with their labels."""
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts",
        data=json.dumps(list(alerts)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def alert(alertname: str, started: str, **labels: str) -> dict:
    return {
        "labels": {"alertname": alertname, "job": "migraine", "severity": "warning", **labels},
        "startsAt": started,
        "generatorURL": "http://prometheus:9090/graph",
    }


@pytest.fixture
def alertmanager(tmp_path):
    """(Alertmanager's URL, the trigger, the runs file) with the project's retrain route."""
    runs = tmp_path / "runs.txt"
    token = tmp_path / "retrain-webhook-token"
    token.write_text("9d1c0e7f\n")
    trigger = RecordingTrigger([sys.executable, "-c", RECORD_RUN, str(runs)], cooldown=3600)
    server = make_server(trigger, host="127.0.0.1", port=0, token=read_token(token))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    sink = Webhook()  # Slack and on-call
    config = alertmanager_config(sink.url)  # the route tree, every receiver the sink, short waits
    config["route"]["group_interval"] = "1s"  # a group's changes go out at once
    committed = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    (retrain,) = [r for r in committed["receivers"] if r["name"] == "retrain"]
    (webhook,) = retrain["webhook_configs"]
    webhook["url"] = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    webhook["http_config"]["authorization"]["credentials_file"] = str(token)
    config["receivers"] = [r for r in config["receivers"] if r["name"] != "retrain"] + [retrain]
    config_file = tmp_path / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        [
            require("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={tmp_path / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.process.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            time.sleep(0.1)
        yield url, trigger, runs
    finally:
        process.stop()
        server.shutdown()
        server.server_close()
        sink.close()
        trigger.wait(timeout=30)


def test_a_drift_alert_starts_one_retrain_through_alertmanager(alertmanager):
    url, trigger, runs = alertmanager
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    post_alerts(url, alert("MigraineFeatureDrift", now, feature="humidity"))
    verdict = trigger.next_verdict()  # the bearer token from the credentials file was accepted
    assert verdict.started, verdict.reason
    assert 'MigraineFeatureDrift{feature="humidity",job="migraine"' in verdict.reason
    assert trigger.wait(timeout=30)
    assert runs.read_text().splitlines() == ["retrain"]

    # Prometheus re-sends a firing alert on every evaluation: the same incident, nothing new;
    # a second drifted input joins the group (one per job): a new incident, within the cooldown
    post_alerts(
        url,
        alert("MigraineFeatureDrift", now, feature="humidity"),
        alert("MigraineFeatureDrift", now, feature="age"),
        alert("MigraineHighLatency", now),  # not a drift alert: never sent to the trigger
    )
    verdict = trigger.next_verdict()
    assert not verdict.started
    assert verdict.reason.startswith('MigraineFeatureDrift{feature="age",job="migraine"')
    assert "cooldown" in verdict.reason
    assert runs.read_text().splitlines() == ["retrain"]
