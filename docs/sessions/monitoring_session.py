"""The monitoring session of docs/monitoring.md, rerunnable: every command and its real output.

Starts, on loopback and in a scratch directory, the service on the repository's
models/ (small drift settings), a webhook receiver, Alertmanager with the
project's route tree (receivers pointed at the webhook) and Prometheus with the
project's rules; then sends normal and drifted traffic, labels a prediction,
waits for the alert, runs `migraine drift-report`, and stops everything it
started. Each step prints the shell command it runs (curl, jq, grep, amtool,
migraine) and that command's output; `$PORT`, `$PROM`, `$AM` and `$X` are set
in the commands' environment. Only the webhook's payload is printed by this
script itself (it is received here), trimmed to the fields the doc discusses.

    .venv/bin/python docs/sessions/monitoring_session.py --scratch /tmp/monitoring-session

Needs models/ from `dvc repro`, curl, jq, and Debian's prometheus and
prometheus-alertmanager; chromium (optional) screenshots drift.html.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "migraine.yaml"
TARGETS = ["migraine_occurrence", "migraine_severity"]
DRIFTED = "humidity"
ROWS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def heading(text: str) -> None:
    print(f"\n## {text}\n", flush=True)


class Shell:
    """Runs a command line in bash with the session's variables; prints it and its output."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def __call__(self, command: str, *, check: bool = True) -> str:
        print(f"$ {command}", flush=True)
        result = subprocess.run(
            ["bash", "-c", "set -o pipefail; " + command],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = result.stdout + result.stderr
        print(output.rstrip("\n"), flush=True)
        if check and result.returncode != 0:
            raise SystemExit(f"session: `{command}` exited {result.returncode}")
        return result.stdout


def records(rows: int, seed: int, shift_sd: float = 0.0) -> list[dict]:
    """Valid requests: the cohort generator with nothing injected, targets dropped,
    each value of the schema's JSON type and inside its range; DRIFTED moved up by
    `shift_sd` of its standard deviation and clipped to its range."""
    from migraine_ml.data.schema import load_schema
    from migraine_ml.data.synthetic import generate_cohort

    schema = load_schema(SCHEMA)
    frame = (
        generate_cohort(
            rows=max(rows, 10),
            prevalence=0.35,
            seed=seed,
            missing_rate=0,
            duplicate_rate=0,
            entry_error_rate=0,
        )
        .data.drop(columns=TARGETS)[schema.features]
        .iloc[:rows]
        .copy()
    )
    if shift_sd:
        frame[DRIFTED] = frame[DRIFTED] + shift_sd * frame[DRIFTED].std()
    out = []
    for name in schema.features:
        column = schema.columns[name]
        if column.range is not None:
            frame[name] = frame[name].clip(*column.range)
    for record in frame.to_dict("records"):
        out.append(
            {
                k: round(float(v), 1)
                if schema.columns[k].dtype == "float"
                else int(v)
                if schema.columns[k].dtype in ("int", "binary")
                else v
                for k, v in record.items()
            }
        )
    return out


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

            def log_message(self, *args) -> None:
                pass

        self.payloads = payloads
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, alertname: str, timeout: float, **labels: str) -> dict:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                payload = self.payloads.get(timeout=left)
            except queue.Empty:
                break
            for alert in payload["alerts"]:
                wanted = {"alertname": alertname, **labels}
                if alert["status"] == "firing" and wanted.items() <= alert["labels"].items():
                    return payload
        raise SystemExit(f"session: no {alertname} {labels} at the webhook in {timeout:.0f} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def alertmanager_config(webhook: str) -> dict:
    """The project's routes and inhibitions; every receiver the webhook; 1 s group waits."""
    config = yaml.safe_load((ROOT / "monitoring/alertmanager/alertmanager.yml").read_text())
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": webhook, "send_resolved": False}]}
        for r in config["receivers"]
    ]

    def shorten(route: dict) -> None:
        if "group_wait" in route:
            route["group_wait"] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    config["route"]["group_interval"] = "1s"
    return config


def prometheus_config(target: str, alertmanager: str) -> dict:
    """The project's prometheus.yml and rules.yml unchanged, pointed at loopback, 2 s intervals."""
    config = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    config["global"] = {
        "scrape_interval": "2s",
        "scrape_timeout": "2s",
        "evaluation_interval": "2s",
    }
    config["rule_files"] = [str(ROOT / "monitoring/prometheus/rules.yml")]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "migraine"]
    job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = [job]
    return config


class Processes:
    """Every process the session starts, each stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], log: Path, env: dict | None = None):
        out = log.open("w")
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.started.append((name, process))
        return process

    def stop(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in reversed(self.started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"session: {url} exited:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).close()
            return
        time.sleep(0.3)
    raise SystemExit(f"session: {url} not ready in {timeout:.0f} s:\n{log.read_text()}")


def wait_for_check(service: str, last_seq: int, timeout: float = 60) -> dict:
    """The first drift check that saw the log up to `last_seq` (as every worker reports it)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        drift = get_json(service + "/drift")
        if (drift.get("last_seq") or 0) >= last_seq:
            waited = time.monotonic() - started
            print(f"(a check covering row {last_seq} arrived after {waited:.0f} s)")
            time.sleep(2.5)  # the other worker reads the latest check every 2 s
            return drift
        time.sleep(0.5)
    raise SystemExit(f"session: no drift check reached row {last_seq} in {timeout:.0f} s")


def wait_for_next_check(service: str, after: float, timeout: float = 60) -> None:
    """Until /drift shows a check made after the Unix time `after`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        checked_at = get_json(service + "/drift")["checked_at"]
        if datetime.fromisoformat(checked_at).timestamp() > after:
            print(f"(the next check arrived after {time.monotonic() - started:.0f} s)")
            time.sleep(2.5)  # the other worker reads the latest check every 2 s
            return
        time.sleep(0.5)
    raise SystemExit(f"session: no drift check in {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scratch", type=Path, help="an empty or new directory (default: a temp dir)"
    )
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="monitoring-session-"))
    if scratch.exists() and any(scratch.iterdir()):
        parser.error(f"{scratch} is not empty")
    scratch.mkdir(parents=True, exist_ok=True)
    for tool in ("curl", "jq", "prometheus", "prometheus-alertmanager", "amtool"):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed")

    port, prom_port, am_port = free_port(), free_port(), free_port()
    service = f"http://127.0.0.1:{port}"
    bindir = str(Path(sys.executable).parent)
    env = dict(
        os.environ,
        PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        PORT=str(port),
        PROM=str(prom_port),
        AM=str(am_port),
        X=str(scratch),
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    sh = Shell(env)
    processes = Processes()
    webhook = Webhook()
    try:
        heading("1. the service, a scratch log, small drift settings")
        service_env = {
            "MIGRAINE_PREDICTION_LOG": "$X/predictions.db",
            "MIGRAINE_DRIFT_EVENTS": "$X/drift-events.jsonl",
            "MIGRAINE_DRIFT_CHECK_EVERY": "100",
            "MIGRAINE_DRIFT_WINDOW": "300",
            "MIGRAINE_DRIFT_INTERVAL": "5",
            "MIGRAINE_PROMETHEUS_MULTIPROC_DIR": "$X/prom",
            "MIGRAINE_WEB_CONCURRENCY": "2",
            "MIGRAINE_PORT": "$PORT",
        }
        print(f"$ export PORT={port} PROM={prom_port} AM={am_port} X={scratch}")
        print(
            "$ "
            + " ".join(f"{k}={v}" for k, v in service_env.items())
            + " gunicorn -c app/gunicorn.conf.py 'app:create_app()' >$X/gunicorn.log 2>&1 &"
        )
        expanded = {
            k: v.replace("$X", str(scratch)).replace("$PORT", str(port))
            for k, v in service_env.items()
        }
        gunicorn_log = scratch / "gunicorn.log"
        gunicorn = processes.start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"],
            gunicorn_log,
            env=env | expanded,
        )

        # Alertmanager and Prometheus start while gunicorn loads the models
        (scratch / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(webhook.url)))
        (scratch / "prometheus.yml").write_text(
            yaml.safe_dump(prometheus_config(f"127.0.0.1:{port}", f"127.0.0.1:{am_port}"))
        )
        alertmanager = processes.start(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={scratch / 'alertmanager.yml'}",
                f"--storage.path={scratch / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            scratch / "am.log",
        )
        prometheus = processes.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={scratch / 'prometheus.yml'}",
                f"--storage.tsdb.path={scratch / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            scratch / "prom.log",
        )
        wait_ready(service + "/ready", gunicorn, gunicorn_log)
        sh("curl -s localhost:$PORT/ready")
        sh("curl -s localhost:$PORT/health | jq -c")
        sh("curl -s localhost:$PORT/drift | jq -c")

        heading(f"2. normal traffic: {ROWS} valid records in one batch")
        (scratch / "normal.json").write_text(json.dumps({"records": records(ROWS, seed=1)}))
        (scratch / "one.json").write_text(json.dumps(records(1, seed=2)[0]))
        (scratch / "another.json").write_text(json.dumps(records(1, seed=4)[0]))
        sh("jq -c '.records[0]' $X/normal.json")
        sh(
            "curl -s localhost:$PORT/predict -H 'Content-Type: application/json' "
            "-d @$X/normal.json | jq '.predictions | length'"
        )
        wait_for_check(service, ROWS)
        sh(
            "curl -s localhost:$PORT/drift | jq '{checked_at, window, drifted, drifted_features, "
            f"note, test_alpha, {DRIFTED}: .features.{DRIFTED}, age: .features.age, "
            "prediction: (.prediction | map_values({drift, psi: (.outputs | map_values(.psi))})), "
            "performance, settings}'"
        )
        sh(
            "curl -s localhost:$PORT/predict -H 'Content-Type: application/json' "
            "-d @$X/one.json | jq -c '.predictions[0] | {predicted_class, probability, "
            "drift_warning}'"
        )

        heading(f"3. drifted traffic: {DRIFTED} up by one standard deviation")
        (scratch / "drifted.json").write_text(
            json.dumps({"records": records(ROWS, seed=3, shift_sd=1.0)})
        )
        sh(
            f"jq '[.records[].{DRIFTED}] | {{mean: (add / length), min: min, max: max}}' "
            "$X/normal.json $X/drifted.json | jq -c"
        )
        sh(
            "curl -s localhost:$PORT/predict -H 'Content-Type: application/json' "
            "-d @$X/drifted.json | jq '.predictions | length'"
        )
        wait_for_check(service, 2 * ROWS + 1)
        sh(
            "curl -s localhost:$PORT/drift | jq '{checked_at, window, drifted, drifted_features, "
            f"test_alpha, {DRIFTED}: .features.{DRIFTED}, age: .features.age, "
            "prediction: (.prediction | map_values({drift, warning, outputs}))}'"
        )
        predicted = sh(
            "curl -s localhost:$PORT/predict -H 'Content-Type: application/json' "
            "-d @$X/another.json | tee $X/another-answer.json | jq -c '.predictions[0] | "
            "{prediction_id, predicted_class, probability, drift_warning}'"
        )
        assert json.loads(predicted)["drift_warning"] == [DRIFTED], predicted
        sh("grep -c '\"drift_check\"' $X/drift-events.jsonl")
        sh("grep -v '\"drift_check\"' $X/drift-events.jsonl")
        sh(f'grep -m1 \'"drifted_features":\\["{DRIFTED}"\\]\' $X/drift-events.jsonl')
        sh(
            "curl -s localhost:$PORT/metrics | grep -E '^migraine_drift_' | grep -Ev "
            f"'feature=\"[a-z_]+\"' ; curl -s localhost:$PORT/metrics | "
            f"grep -E '^migraine_drift_feature_[a-z]+\\{{feature=\"({DRIFTED}|age)\"'"
        )

        heading("4. feedback: the true outcome of a prediction, once")
        sh(
            "jq -c '{prediction_id: .predictions[0].prediction_id, outcome: 1}' "
            "$X/another-answer.json | tee $X/label.json"
        )
        for _ in range(2):
            sh(
                "curl -s -w ' %{http_code}\\n' localhost:$PORT/feedback "
                "-H 'Content-Type: application/json' -d @$X/label.json"
            )
        wait_for_next_check(service, time.time())
        sh("curl -s localhost:$PORT/drift | jq -c '{checked_at, performance}'")

        heading("5. the alert: Prometheus (rules.yml), Alertmanager (alertmanager.yml), webhook")
        wait_ready(f"http://127.0.0.1:{am_port}/-/ready", alertmanager, scratch / "am.log")
        wait_ready(f"http://127.0.0.1:{prom_port}/-/ready", prometheus, scratch / "prom.log")
        started = time.monotonic()
        payload = webhook.wait_for("MigraineFeatureDrift", timeout=90, feature=DRIFTED)
        print(f"(the webhook received it {time.monotonic() - started:.0f} s after this step began)")
        sh(
            "curl -s localhost:$PROM/api/v1/alerts | jq -c '.data.alerts[] | "
            "{alertname: .labels.alertname, feature: .labels.feature, task: .labels.task, "
            "severity: .labels.severity, state, value}'"
        )
        sh("amtool alert query --alertmanager.url=http://127.0.0.1:$AM")
        print("the webhook's payload (received by this script; trimmed to these fields):")
        print(
            json.dumps(
                {
                    "receiver": payload["receiver"],
                    "status": payload["status"],
                    "groupLabels": payload["groupLabels"],
                    "alerts": [
                        {
                            "labels": alert["labels"],
                            "annotations": {
                                "summary": alert["annotations"]["summary"],
                                "runbook": alert["annotations"]["runbook"],
                            },
                        }
                        for alert in payload["alerts"]
                    ],
                },
                indent=2,
            )
        )

        heading("6. migraine drift-report over the last hour of the log")
        sh("migraine drift-report --since 1h --log $X/predictions.db --out-dir $X/report")
        sh(
            "jq '{since, until, window, min_window, drifted, drifted_features, "
            f"{DRIFTED}: .features.{DRIFTED}, "
            "prediction: (.prediction | map_values({drift, psi: (.outputs | map_values(.psi))})), "
            "performance, versions}' $X/report/drift.json"
        )
        if shutil.which("chromium"):
            sh(
                "chromium --headless --no-sandbox --disable-gpu --screenshot=$X/drift.png "
                "--window-size=1200,2000 file://$X/report/drift.html 2>&1 | grep -i written",
                check=False,
            )
    finally:
        processes.stop()
        webhook.close()
        print(f"\n(stopped gunicorn, Prometheus, Alertmanager and the webhook; files in {scratch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
