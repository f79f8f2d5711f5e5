"""A real /metrics scrape of the real gunicorn service: promtool's lint and the contract."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.contract import EXPORTED_TODAY, series_names
from tests.monitoring.service import Service
from tests.monitoring.tools import require

pytestmark = pytest.mark.integration


def _post(url: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_real_scrape_passes_promtool_and_keeps_the_metric_contract(deployment, tmp_path, record):
    promtool = require("promtool")
    service = Service(deployment, tmp_path)
    try:
        service.wait_until_up()
        for _ in range(4):  # labelled series appear once observed
            assert _post(service.url + "/predict", record) == 200
        assert _post(service.url + "/predict", record | {"age": 999}) == 400
        assert service.get("/no-such-page")[0] == 404
        status, text = service.get("/metrics")
        assert status == 200
    finally:
        log = service.stop()

    linted = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr + log

    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    names = {sample.name for sample in samples}
    assert names <= series_names(), (
        f"not in tests/monitoring/contract.py: {sorted(names - series_names())}"
    )
    today = {n for n in series_names() if any(n.startswith(m) for m in EXPORTED_TODAY)}
    assert today <= names, f"missing from /metrics: {sorted(today - names)}"

    # the label names rules.yml and the dashboard select on
    def labels(name: str) -> set[str]:
        return {key for s in samples if s.name == name for key in s.labels}

    assert labels("flask_http_request_duration_seconds_bucket") == {
        "endpoint",
        "method",
        "status",
        "le",
    }
    assert labels("flask_http_request_total") == {"method", "status"}
    endpoints = {s.labels["endpoint"] for s in samples if "endpoint" in s.labels}
    assert "predict.predict" in endpoints
    assert labels("migraine_predictions_total") == {"model", "version", "predicted_class"}
