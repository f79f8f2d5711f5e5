"""`migraine drift-report`: a period of a real SQLite log, judged, as JSON and a page."""

import json
import time

import pytest
from click.testing import CliRunner

from migraine_ml.cli import main
from migraine_ml.monitoring.prediction_log import open_log
from tests.drift_rows import SERVED, log_rows, logged, reference_dict

HOUR = 3600.0


@pytest.fixture
def deployment(tmp_path, schema):
    """models/ (reference and manifest), reports/metrics.json and a log of two periods."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "reference.json").write_text(json.dumps(reference_dict(schema)))
    manifest = {
        "models": [
            {"task": task, "rank": "champion", "md5": SERVED + "f" * 20}
            for task in ("classification", "regression")
        ]
    }
    (models / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "metrics.json").write_text(
        json.dumps({"classification": {"champion": {"accuracy": 0.75}}})
    )
    database = open_log(str(tmp_path / "predictions.db"))
    database.migrate()
    now = time.time()
    # yesterday: 300 ordinary rows; the last hour: 300 rows with sleep 1.2 h shorter
    database.insert(log_rows(logged(300, seed=21), created=now - 24 * HOUR))
    database.insert(log_rows(logged(300, seed=22, shift={"sleep_hours": -1.2}), created=now - 60))
    database.close()
    return tmp_path


def run(deployment, *args: str):
    return CliRunner().invoke(
        main,
        [
            "drift-report",
            "--log",
            str(deployment / "predictions.db"),
            "--models",
            str(deployment / "models"),
            "--metrics",
            str(deployment / "metrics.json"),
            "--out-dir",
            str(deployment / "reports"),
            *args,
        ],
    )


def test_the_last_hour_is_judged_and_its_drift_drawn(deployment):
    result = run(deployment, "--since", "1h")
    assert result.exit_code == 0, result.output
    assert "300 predictions since" in result.output
    assert "DRIFT in sleep_hours" in result.output
    report = json.loads((deployment / "reports" / "drift.json").read_text())
    assert report["window"] == 300
    assert report["drifted_features"] == ["sleep_hours"]
    assert report["versions"] == {"classification": SERVED, "regression": SERVED}
    page = (deployment / "reports" / "drift.html").read_text()
    assert "Input sleep_hours: reference vs this period" in page
    assert page.count("<img") >= 1 and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_a_period_without_drift_says_so(deployment):
    calm = open_log(str(deployment / "calm.db"))
    calm.migrate()
    calm.insert(log_rows(logged(300, seed=23), created=time.time() - 60))
    calm.close()
    result = run(deployment, "--since", "1h", "--log", str(deployment / "calm.db"))
    assert result.exit_code == 0, result.output
    assert "300 predictions since" in result.output and ": no drift" in result.output
    report = json.loads((deployment / "reports" / "drift.json").read_text())
    assert report["drifted"] is False and report["drifted_features"] == []
    assert "None: no figure to show." in (deployment / "reports" / "drift.html").read_text()


def test_the_period_starts_where_since_says(deployment):
    result = run(deployment, "--since", "2d")
    assert result.exit_code == 0, result.output
    assert json.loads((deployment / "reports" / "drift.json").read_text())["window"] == 600


def test_too_few_rows_judge_nothing(deployment):
    result = run(deployment, "--since", "1h", "--min-window", "301")
    assert result.exit_code == 0, result.output
    assert "window too small: 300 rows, at least 301 needed" in result.output
    page = (deployment / "reports" / "drift.html").read_text()
    assert "window too small" in page


def test_bad_input_is_refused_with_the_reason(deployment, tmp_path):
    result = run(deployment, "--since", "last week")
    assert result.exit_code == 2
    assert "expected a duration like 24h" in result.output
    missing = CliRunner().invoke(main, ["drift-report", "--models", str(tmp_path / "none")])
    assert missing.exit_code == 1
    assert "cannot read the models' reference" in missing.output


@pytest.mark.integration
def test_the_page_renders_its_figures_in_a_browser(deployment, browser):
    assert run(deployment, "--since", "1h").exit_code == 0
    browser.get((deployment / "reports" / "drift.html").as_uri())
    images = browser.execute_script(
        "return [...document.images].map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    alts = [alt for alt, complete, width in images if complete and width > 0]
    assert "Input sleep_hours: reference vs this period" in alts
    assert len(alts) == len(images)  # none broken
    assert browser.find_element("id", "verdict").text == "DRIFT: sleep_hours"
    drifted = browser.find_elements("css selector", "#features tr.drift td:first-child")
    assert [cell.text for cell in drifted] == ["sleep_hours"]
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)"
    )
    assert [r for r in resources if not r.startswith("data:")] == []
