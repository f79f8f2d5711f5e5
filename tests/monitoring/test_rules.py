"""The alert rules, routes and dashboard, checked the way `make lint` does and more.

promtool and amtool come from Debian's prometheus and prometheus-alertmanager: where
they are missing these tests skip, except in CI (.ci/run installs them).
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.monitoring.contract import PROMETHEUS_SERIES, series_names
from tests.monitoring.tools import Process, free_port, require, run

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
RULES = MONITORING / "prometheus" / "rules.yml"
RULE_TESTS = MONITORING / "prometheus" / "rules.test.yml"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
DASHBOARD = MONITORING / "grafana" / "dashboard.py"
DASHBOARD_JSON = MONITORING / "grafana" / "dashboards" / "migraine.json"
RUNBOOKS = ROOT / "docs" / "alerting.md"

# PromQL words that are not metric names
KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")
# a contract-looking name anywhere in a file, comments and annotations included
MENTION = re.compile(r"(?<![\w:])((?:migraine|flask)_[a-z0-9_]+)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a scanner, not a parser)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = GROUPING.sub("", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    return set(IDENTIFIER.findall(expr)) - KEYWORDS


def rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard_module():
    spec = importlib.util.spec_from_file_location("migraine_dashboard", DASHBOARD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD_JSON.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets") or []]


def test_metric_names_scanner():
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{endpoint="x.y"}[5m])))'
        " / on (job) group_left b_total and c > 1e-4 or time() - d offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}
    assert metric_names("job:recorded:rate5m > $threshold") == {"job:recorded:rate5m"}


# --- promtool -------------------------------------------------------------------------


def test_rules_pass_promtool_check():
    result = run(require("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_their_unit_tests():
    result = run(require("promtool"), "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid():
    result = run(require("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_quiet():
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tested for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    names = {rule["alert"] for rule in alerts()}
    assert names == {
        "MigraineFeatureDrift",
        "MigrainePredictionDrift",
        "MigraineAccuracyDrop",
        "MigraineHighErrorRate",
        "MigraineHighLatency",
        "MigraineNotReady",
        "MigrainePredictionLogDropping",
        "MigraineDriftCheckStale",
    }
    assert names - fires == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested below threshold or before `for`"


def test_every_alert_has_a_severity_a_summary_and_a_runbook_that_exists():
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alerts():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/alerting.md" and anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in headings, f"docs/alerting.md has no heading for {rule['alert']}"


# --- the metric contract --------------------------------------------------------------


def test_rules_and_dashboard_name_only_contract_metrics():
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    allowed = series_names() | PROMETHEUS_SERIES | recorded
    for expr in [rule["expr"] for rule in rules()] + dashboard_exprs():
        assert metric_names(expr) <= allowed, f"{expr}: {metric_names(expr) - allowed}"
    # annotations' queries and prose too
    for path in (RULES, DASHBOARD_JSON, ALERTMANAGER_CONFIG):
        mentioned = set(MENTION.findall(path.read_text()))
        assert mentioned <= series_names(), f"{path.name}: {mentioned - series_names()}"


# --- Grafana --------------------------------------------------------------------------


def test_committed_dashboard_is_a_fresh_generation():
    assert DASHBOARD_JSON.read_text() == dashboard_module().render(), "run `make dashboards`"


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Every panel's query against a real (empty) Prometheus: a typo is a 400."""
    binary = require("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {}\n")
    port = free_port()
    server = Process(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/-/ready", server)
        for expr in dashboard_exprs():
            query = expr.replace("$__rate_interval", "1m")
            with urllib.request.urlopen(
                f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query}), timeout=10
            ) as response:
                assert json.load(response)["status"] == "success", expr
    finally:
        server.stop()


def wait_ready(url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"{url} exited:\n{process.output()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready:\n{process.output()}")


# --- Alertmanager ---------------------------------------------------------------------


def test_alertmanager_config_passes_amtool_without_its_secret_files():
    """amtool parses strictly but does not open *_file secrets: none need exist here."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for secret in config["global"]:
        assert not secret.endswith(("api_url", "password")), f"inline secret: {secret}"
    files = [v for k, v in config["global"].items() if k.endswith("_file")]
    assert files and all(path.startswith("/etc/alertmanager/secrets/") for path in files)
    assert not any(Path(path).exists() for path in files)  # the check really ran without them
    result = run(require("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_retrain_receiver_is_the_webhook_with_a_token_from_a_secret_file():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    (receiver,) = [r for r in config["receivers"] if r["name"] == "retrain"]
    (webhook,) = receiver["webhook_configs"]
    # `migraine retrain-webhook`'s defaults: --host 127.0.0.1 --port 9095 --path /alerts
    assert webhook["url"] == "http://127.0.0.1:9095/alerts"
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer" and "credentials" not in authorization
    assert authorization["credentials_file"].startswith("/etc/alertmanager/secrets/")
    assert not Path(authorization["credentials_file"]).exists()  # amtool ran without it


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=MigraineNotReady", "severity=critical"], "oncall"),
        (["alertname=MigraineHighLatency", "severity=warning"], "slack"),
        (["alertname=Unlabelled"], "slack"),
        # drift alerts also start a retrain (`migraine retrain-webhook`), then notify as before
        (["alertname=MigraineFeatureDrift", "severity=warning", "feature=age"], "retrain,slack"),
        (["alertname=MigrainePredictionDrift", "severity=warning", "task=t"], "retrain,slack"),
        (["alertname=MigraineAccuracyDrop", "severity=critical"], "retrain,oncall"),
    ],
)
def test_routes_send_critical_to_oncall_and_warnings_to_slack(labels, receiver):
    result = run(
        require("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
