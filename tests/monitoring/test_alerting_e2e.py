"""End to end: the real service, a real Prometheus with rules.yml, a real Alertmanager.

Prometheus (1 s scrape and evaluation) loads monitoring/prometheus/rules.yml unchanged and
scrapes gunicorn on loopback; Alertmanager keeps the project's route tree and inhibitions,
its receivers rewritten to a webhook this test runs, and its group_wait shortened. The test
asserts on the notification that arrives. The binaries come from Debian's prometheus and
prometheus-alertmanager: skipped where missing, failing in CI.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.monitoring.service import Service
from tests.monitoring.tools import Process, free_port, require

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = ROOT / "monitoring" / "prometheus" / "prometheus.yml"
RULES = ROOT / "monitoring" / "prometheus" / "rules.yml"
ALERTMANAGER_CONFIG = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"
JOB = "migraine"  # rules.yml names it

# the drift monitor's settings: check every second over the last 300 rows
DRIFT_ENV = {
    "MIGRAINE_DRIFT_CHECK_EVERY": "100",
    "MIGRAINE_DRIFT_INTERVAL": "1",
    "MIGRAINE_DRIFT_WINDOW": "300",
    "MIGRAINE_DRIFT_MIN_WINDOW": "200",
}
DRIFTED = "humidity"  # a continuous input, shifted by one standard deviation


class Webhook:
    """An Alertmanager webhook receiver on loopback: every payload into a queue."""

    def __init__(self) -> None:
        payloads: queue.Queue = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                payloads.put(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.payloads = payloads
        self.received: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(
        self, alertname: str, timeout: float, *, receiver: str | None = None, **labels: str
    ) -> tuple[dict, dict]:
        """The first payload (sent to `receiver`, when given) with a firing `alertname` alert
        carrying these labels; payloads already received count."""
        wanted = {"alertname": alertname, **labels}

        def match(payload: dict) -> dict | None:
            if receiver is not None and payload["receiver"] != receiver:
                return None
            for alert in payload["alerts"]:
                if alert["status"] == "firing" and wanted.items() <= alert["labels"].items():
                    return alert
            return None

        for payload in self.received:
            if (alert := match(payload)) is not None:
                return payload, alert
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                payload = self.payloads.get(timeout=left)
            except queue.Empty:
                break
            self.received.append(payload)
            if (alert := match(payload)) is not None:
                return payload, alert
        raise AssertionError(
            f"no {alertname} {labels} to {receiver or 'any receiver'} within {timeout:.0f} s: "
            f"{self.received}"
        )


class Alerting:
    """Prometheus and Alertmanager on free loopback ports, configured from monitoring/."""

    def __init__(self, tmp: Path, target: str, webhook: str):
        self.tmp = tmp
        self.processes: list[Process] = []
        am_port, prom_port = free_port(), free_port()
        self.alertmanager_url = f"http://127.0.0.1:{am_port}"
        self.prometheus_url = f"http://127.0.0.1:{prom_port}"

        am_config = tmp / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(alertmanager_config(webhook)))
        self._start(
            "alertmanager",
            [
                require("prometheus-alertmanager"),
                f"--config.file={am_config}",
                f"--storage.path={tmp / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # a single instance: no gossip port
            ],
            self.alertmanager_url,
        )
        prom_config = tmp / "prometheus.yml"
        prom_config.write_text(yaml.safe_dump(prometheus_config(target, f"127.0.0.1:{am_port}")))
        self._start(
            "prometheus",
            [
                require("prometheus"),
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            self.prometheus_url,
        )

    def _start(self, name: str, argv: list[str], url: str) -> None:
        process = Process(argv, self.tmp / f"{name}.log")
        self.processes.append(process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.process.poll() is not None:
                raise AssertionError(f"{name} exited:\n{process.output()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + "/-/ready", timeout=1).close()
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} not ready in 30 s:\n{process.output()}")

    def prometheus_alerts(self) -> list[dict]:
        """What Prometheus evaluates (for failure messages)."""
        try:
            with urllib.request.urlopen(self.prometheus_url + "/api/v1/alerts", timeout=5) as r:
                return json.load(r)["data"]["alerts"]
        except OSError as err:
            return [{"error": repr(err)}]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def prometheus_config(target: str, alertmanager: str) -> dict:
    """The project's prometheus.yml, pointed at loopback, with 1 s intervals."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(RULES)]  # unchanged
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == JOB]
    job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = [job]
    return config


def alertmanager_config(webhook: str) -> dict:
    """The project's route tree and inhibitions; every receiver a webhook; short waits."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["receivers"] = [
        {"name": receiver["name"], "webhook_configs": [{"url": webhook, "send_resolved": False}]}
        for receiver in config["receivers"]
    ]

    def shorten(route: dict) -> None:
        if "group_wait" in route:
            route["group_wait"] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    config["route"]["group_wait"] = "1s"
    config["route"]["group_interval"] = "1s"
    return config


@pytest.fixture
def stack():
    """Everything a test starts, stopped at the end whatever happens."""
    with contextlib.ExitStack() as stack:
        yield stack


def start(
    stack: contextlib.ExitStack, deployment: Path, tmp: Path, **env: str
) -> tuple[Service, Webhook, Alerting]:
    """The service, the webhook, Prometheus and Alertmanager; their start-ups overlap."""
    service = Service(deployment, tmp, **env)
    stack.callback(service.stop)
    webhook = Webhook()
    stack.callback(webhook.close)
    alerting = Alerting(tmp, service.address, webhook.url)
    stack.callback(alerting.stop)
    service.wait_until_up()
    return service, webhook, alerting


def test_not_ready_models_page_oncall(stack, deployment, tmp_path):
    manifest = deployment / "models" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"seed"', '"seed" '))
    # one worker is enough to refuse, and starts faster on a busy machine
    service, webhook, monitoring = start(stack, deployment, tmp_path, MIGRAINE_WEB_CONCURRENCY="1")
    assert service.get("/ready")[0] == 503
    assert "migraine_models_ready 0.0" in service.get("/metrics")[1]

    try:  # `for: 30s`, then group_wait
        payload, alert = webhook.wait_for("MigraineNotReady", timeout=50, cause="models")
    except AssertionError as err:
        raise AssertionError(f"{err}\nPrometheus: {monitoring.prometheus_alerts()}") from None
    assert payload["receiver"] == "oncall"  # critical: Slack and e-mail
    assert payload["groupLabels"] == {"alertname": "MigraineNotReady"}
    assert alert["labels"] == {
        "alertname": "MigraineNotReady",
        "severity": "critical",
        "cause": "models",
        "job": JOB,
        "instance": service.address,
    }
    assert alert["annotations"]["runbook"] == "docs/alerting.md#migrainenotready"
    assert alert["annotations"]["summary"].startswith(f"{service.address} has no verified models")
    # nothing else went out: the other alerts hold (or are inhibited by this one)
    names = {a["labels"]["alertname"] for p in webhook.received for a in p["alerts"]}
    assert names == {"MigraineNotReady"}


def drifted_records(schema_path: Path, rows: int = 300) -> list[dict]:
    """Clean cohort rows with one input moved up by one standard deviation (within range)."""
    from migraine_ml.data.schema import load_schema
    from migraine_ml.data.synthetic import generate_cohort

    schema = load_schema(schema_path)
    frame = generate_cohort(
        rows=rows,
        prevalence=0.35,
        seed=20,
        missing_rate=0,
        duplicate_rate=0,
        entry_error_rate=0,
    ).data[schema.features]
    low, high = schema.columns[DRIFTED].range
    frame[DRIFTED] = (frame[DRIFTED] + frame[DRIFTED].std()).clip(low, high).round(1)
    return json.loads(frame.to_json(orient="records"))


def test_feature_drift_reaches_slack_with_its_feature(stack, deployment, tmp_path):
    service, webhook, monitoring = start(stack, deployment, tmp_path, **DRIFT_ENV)
    records = drifted_records(ROOT / "schemas" / "migraine.yaml")
    request = urllib.request.Request(
        service.url + "/predict",
        data=json.dumps({"records": records}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200

    try:  # a check within a second, no `for`, group_wait 1 s; a warning goes to Slack
        payload, alert = webhook.wait_for(
            "MigraineFeatureDrift", timeout=45, receiver="slack", feature=DRIFTED
        )
    except AssertionError as err:
        raise AssertionError(f"{err}\nPrometheus: {monitoring.prometheus_alerts()}") from None
    assert payload["groupLabels"] == {"alertname": "MigraineFeatureDrift", "feature": DRIFTED}
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["job"] == JOB
    summary = alert["annotations"]["summary"]
    assert summary.startswith(f"Input {DRIFTED} drifted (PSI ")
    assert float(summary.rsplit(" ", 1)[1].rstrip(")")) > 0.1
    # and to the retrain trigger (`migraine retrain-webhook`), one group per job
    retrain, _ = webhook.wait_for(
        "MigraineFeatureDrift", timeout=15, receiver="retrain", feature=DRIFTED
    )
    assert retrain["groupLabels"] == {"job": JOB}
