"""`migraine retrain-webhook`: a real server on loopback, real HTTP requests, a real command.

The command each test starts is a small Python script that appends "started" to a file,
waits for a release file when the test asks it to, then appends "ended": the file's lines
say how often it ran and whether two runs ever overlapped.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from migraine_ml.cli import main
from migraine_ml.retraining.webhook import (
    DRIFT_ALERTS,
    PayloadError,
    RetrainTrigger,
    make_server,
    parse_duration,
    parse_notification,
    read_token,
)
from tests.monitoring.tools import free_port

COOLDOWN = 3600.0
FAKE_RETRAIN = """
import pathlib, sys, time
runs, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
with runs.open("a") as out:
    out.write("started\\n")
while release.name != "-" and not release.exists():
    time.sleep(0.01)
with runs.open("a") as out:
    out.write("ended\\n")
"""


class Clock:
    """A monotonic clock the test moves by hand, for the cooldown."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Webhook:
    """The server on a free loopback port, its trigger and the fake retrain's files."""

    def __init__(self, tmp: Path, *, cooldown: float, token: str | None, block: bool) -> None:
        self.runs = tmp / "runs.txt"
        self.release = tmp / "release" if block else Path("-")
        self.clock = Clock()
        self.trigger = RetrainTrigger(
            [sys.executable, "-c", FAKE_RETRAIN, str(self.runs), str(self.release)],
            cooldown=cooldown,
            clock=self.clock,
        )
        self.server = make_server(self.trigger, host="127.0.0.1", port=0, token=token)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def lines(self) -> list[str]:
        return self.runs.read_text().splitlines() if self.runs.exists() else []

    def wait_for_lines(self, expected: list[str], timeout: float = 30) -> None:
        """The run writes its lines a moment after it starts."""
        deadline = time.monotonic() + timeout
        while self.lines() != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.lines() == expected

    def finish(self) -> None:
        """Let the current run end, and wait for it."""
        if self.release.name != "-":
            self.release.touch()
        assert self.trigger.wait(timeout=30), "the fake retrain did not end"

    def close(self) -> None:
        self.finish()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def start_webhook(tmp_path) -> Iterator:
    started: list[Webhook] = []

    def start(*, cooldown: float = COOLDOWN, token: str | None = None, block: bool = False):
        webhook = Webhook(tmp_path, cooldown=cooldown, token=token, block=block)
        started.append(webhook)
        return webhook

    yield start
    for webhook in started:
        webhook.close()


def notification(
    alertname: str = "MigraineFeatureDrift",
    *,
    status: str = "firing",
    starts_at: str = "2026-11-28T09:00:00.000Z",
    fingerprint: str = "5f3c1e9a2b7d4c60",
    **labels: str,
) -> dict:
    """An Alertmanager webhook notification (payload version 4) of one alert."""
    labels = {"alertname": alertname, "job": "migraine", "severity": "warning", **labels}
    return {
        "version": "4",
        "groupKey": '{}/{alertname=~"^(?:MigraineFeatureDrift|...)$"}:{job="migraine"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "retrain",
        "groupLabels": {"job": "migraine"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "Input humidity drifted (PSI 0.412)"},
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def post(
    url: str, body: dict | bytes, *, token: str | None = None, method: str = "POST"
) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of one request."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response), dict(response.headers)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err), dict(err.headers)


def test_a_firing_drift_alert_starts_the_command_once_and_logs_it(start_webhook, caplog):
    caplog.set_level(logging.INFO, logger="migraine_ml.retraining.webhook")
    webhook = start_webhook()

    status, body, _ = post(webhook.url, notification(feature="humidity"))
    webhook.finish()

    assert status == 202
    assert body["started"] is True and body["pid"] > 0
    assert 'MigraineFeatureDrift{feature="humidity"' in body["reason"]
    assert webhook.lines() == ["started", "ended"]
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"started {sys.executable} -c") for m in logged)
    assert any(m == f"retrain (pid {body['pid']}) exited 0" for m in logged)


def test_the_same_incident_notified_again_starts_nothing(start_webhook, caplog):
    caplog.set_level(logging.INFO, logger="migraine_ml.retraining.webhook")
    webhook = start_webhook()
    assert post(webhook.url, notification())[0] == 202
    webhook.finish()

    # Alertmanager repeats a firing group every repeat_interval, long after any cooldown
    webhook.clock.now += 10 * COOLDOWN
    status, body, _ = post(webhook.url, notification())

    assert status == 200
    assert body == {
        "started": False,
        "reason": 'MigraineFeatureDrift{job="migraine",severity="warning"}: '
        "this incident already started a retrain",
        "pid": None,
    }
    assert webhook.lines() == ["started", "ended"]
    assert f"nothing started: {body['reason']}" in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("alertname", DRIFT_ALERTS)
def test_every_drift_alert_of_the_rules_starts_a_run(start_webhook, alertname):
    webhook = start_webhook()
    assert post(webhook.url, notification(alertname))[0] == 202
    webhook.finish()
    assert webhook.lines() == ["started", "ended"]


@pytest.mark.parametrize(
    "payload",
    [
        notification(status="resolved"),
        notification("MigraineHighLatency"),
        notification("MigraineNotReady", severity="critical"),
        {**notification(), "alerts": []},
    ],
    ids=["drift-resolved", "latency", "not-ready", "no-alerts"],
)
def test_a_resolved_or_other_alert_starts_nothing(start_webhook, payload):
    webhook = start_webhook()

    status, body, _ = post(webhook.url, payload)

    assert status == 200 and body["started"] is False
    assert "no firing drift alert" in body["reason"] or "no alerts" in body["reason"]
    assert not webhook.trigger.running
    assert webhook.lines() == []


def test_a_new_incident_within_the_cooldown_waits_for_it(start_webhook):
    webhook = start_webhook(cooldown=600)
    assert post(webhook.url, notification(feature="humidity"))[0] == 202
    webhook.finish()

    webhook.clock.now += 599  # another input drifts: a new incident, 599 s later
    second = notification(feature="age", starts_at="2026-11-28T09:09:59Z", fingerprint="77aa")
    status, body, _ = post(webhook.url, second)
    assert status == 200
    assert "cooldown, the last retrain started 10 min ago (next possible in 1 s)" in body["reason"]
    assert webhook.lines() == ["started", "ended"]

    # still firing when Alertmanager repeats it after the cooldown: it was not used up
    webhook.clock.now += 1
    assert post(webhook.url, second)[0] == 202
    webhook.finish()
    assert webhook.lines() == ["started", "ended", "started", "ended"]


def test_concurrent_notifications_never_start_two_runs(start_webhook):
    webhook = start_webhook(cooldown=0, block=True)  # each run lasts until released
    incidents = [notification(fingerprint=f"f{n}", feature=f"input{n}") for n in range(8)]
    ready = threading.Barrier(len(incidents))

    def send(payload: dict) -> tuple[int, dict]:
        ready.wait()  # all eight requests leave together
        return post(webhook.url, payload)[:2]

    with ThreadPoolExecutor(len(incidents)) as pool:
        answers = list(pool.map(send, incidents))

    started = [n for n, (status, _) in enumerate(answers) if status == 202]
    assert len(started) == 1
    for status, body in (answer for n, answer in enumerate(answers) if n not in started):
        assert status == 200
        assert "a retrain is running (pid" in body["reason"]
    assert webhook.trigger.running
    webhook.wait_for_lines(["started"])

    webhook.finish()
    assert not webhook.trigger.running
    # an incident turned away while a run went on starts the next run when notified again
    turned_away = incidents[(started[0] + 1) % len(incidents)]
    assert post(webhook.url, turned_away)[0] == 202
    assert post(webhook.url, incidents[started[0]])[0] == 200  # used up: never again
    webhook.finish()
    assert webhook.lines() == ["started", "ended", "started", "ended"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[]", "body is a JSON list; expected an object"),
        (json.dumps({"alerts": []}).encode(), "groupKey: None; expected a string"),
        (json.dumps({"groupKey": "g", "alerts": {}}).encode(), "alerts: {}; expected a list"),
        (
            json.dumps({"groupKey": "g", "alerts": [{"labels": {}}]}).encode(),
            "alerts[0]: no labels.alertname",
        ),
        (
            json.dumps({"groupKey": "g", "alerts": [{"labels": {"alertname": "A"}}]}).encode(),
            "alerts[0]: status and startsAt must be strings",
        ),
    ],
    ids=["not-json", "not-utf8", "list", "no-group-key", "alerts-object", "no-name", "no-start"],
)
def test_a_body_that_is_no_notification_is_400(start_webhook, body, message):
    webhook = start_webhook()

    status, answer, _ = post(webhook.url, body)

    assert status == 400
    assert answer["error"].startswith(message)
    assert webhook.lines() == []


def test_with_a_token_file_a_request_without_the_token_is_401(start_webhook, tmp_path):
    token_file = tmp_path / "retrain-webhook-token"
    token_file.write_text("s3cret-token\n")  # a trailing newline, as editors leave it
    webhook = start_webhook(token=read_token(token_file))

    for wrong in (None, "guess", "s3cret-token-and-more"):
        status, body, headers = post(webhook.url, notification(), token=wrong)
        assert status == 401
        assert body == {"error": "a bearer token is required"}
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert webhook.lines() == []

    assert post(webhook.url, notification(), token="s3cret-token")[0] == 202
    webhook.finish()
    assert webhook.lines() == ["started", "ended"]


def test_another_path_is_404_and_another_method_405(start_webhook):
    webhook = start_webhook()
    base = webhook.url.removesuffix("/alerts")

    assert post(f"{base}/", notification())[0] == 404
    assert post(f"{base}/alerts/extra", notification())[0] == 404
    status, _, headers = post(webhook.url, b"", method="PUT")
    assert (status, headers["Allow"]) == (405, "POST")
    request = urllib.request.Request(webhook.url)
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    with raised.value:
        assert raised.value.code == 405
    assert webhook.lines() == []


def test_a_command_that_cannot_start_is_500_and_the_incident_is_not_used_up(tmp_path):
    trigger = RetrainTrigger([str(tmp_path / "no-such-program")], cooldown=0)
    incidents = parse_notification(json.dumps(notification()).encode())

    first = trigger.consider(incidents)
    assert (first.started, first.status) == (False, 500)
    assert "could not start the retrain" in first.reason
    trigger.command = (sys.executable, "-c", "pass")
    assert trigger.consider(incidents).started  # Alertmanager retries a 5xx
    assert trigger.wait(timeout=30)


def test_an_incident_is_its_group_alert_and_start():
    (incident,) = parse_notification(json.dumps(notification(feature="humidity")).encode())
    assert incident.key == (
        notification()["groupKey"],
        "5f3c1e9a2b7d4c60",
        "2026-11-28T09:00:00.000Z",
    )
    assert incident.describe() == (
        'MigraineFeatureDrift{feature="humidity",job="migraine",severity="warning"}'
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("6h", 21600), ("1.5d", 129600)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "6 hours"])
def test_parse_duration_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="expected seconds or a number with s, m, h or d"):
        parse_duration(text)


def test_parse_notification_refuses_bad_bodies_with_payload_error():
    with pytest.raises(PayloadError, match="body is a JSON str; expected an object"):
        parse_notification(b'"alerts"')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cooldown", "soon"], "retrain-webhook: duration 'soon'"),
        (["--command", ""], "retrain-webhook: command: empty"),
    ],
)
def test_the_command_refuses_bad_options_with_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["retrain-webhook", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message)


def test_an_empty_token_file_is_refused(tmp_path):
    empty = tmp_path / "token"
    empty.write_text("\n")
    result = CliRunner().invoke(main, ["retrain-webhook", "--token-file", str(empty)])
    assert result.exit_code == 2
    assert "token file" in result.stderr and "empty" in result.stderr


@pytest.mark.integration
def test_the_command_serves_until_stopped(tmp_path):
    """`migraine retrain-webhook` as a process: a drift alert starts --command once."""
    port, runs = free_port(), tmp_path / "runs.txt"
    token_file = tmp_path / "token"
    token_file.write_text("t0ken")
    script = tmp_path / "fake_retrain.py"
    script.write_text(FAKE_RETRAIN)
    command = shlex.join([sys.executable, str(script), str(runs), "-"])
    migraine = Path(sys.executable).parent / "migraine"
    argv = [str(migraine), "retrain-webhook", "--port", str(port), "--command", command]
    argv += ["--token-file", str(token_file)]
    log = tmp_path / "webhook.log"
    with log.open("w") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/alerts"
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert post(url, notification(), token="t0ken")[0] == 202
        assert post(url, notification(), token="t0ken")[0] == 200
        deadline = time.monotonic() + 30
        while "exited 0" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert runs.read_text().splitlines() == ["started", "ended"]
    logged = log.read_text()
    assert f"listening on http://127.0.0.1:{port}/alerts" in logged
    assert "bearer token required" in logged
    assert "this incident already started a retrain" in logged
