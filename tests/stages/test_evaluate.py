"""The evaluate stage on the session's small trained pipeline (integration)."""

import json

import pytest

from tests.pipeline_fixtures import run_evaluate

pytestmark = pytest.mark.integration


def test_metrics_have_models_baseline_ceiling_and_intervals(evaluated):
    metrics = json.loads((evaluated / "metrics.json").read_text())
    classification = metrics["classification"]
    assert set(classification) >= {
        "champion",
        "runner_up",
        "dummy",
        "ceiling",
        "champion_vs_runner_up",
        "champion_gap_to_ceiling",
        "reference",
        "champion_vs_reference",
    }
    champion = classification["champion"]
    for name in (
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "brier",
    ):
        assert champion[f"{name}_ci_low"] <= champion[name] <= champion[f"{name}_ci_high"]
    assert classification["dummy"]["roc_auc"] == 0.5
    assert set(metrics["regression"]["champion"]) >= {"r2", "rmse", "mae"}
    assert isinstance(metrics["gate_passed"], bool)
    # flat enough for `dvc metrics diff`: numbers (and the gate flag) only
    leaves = [
        v
        for task in ("classification", "regression")
        for block in metrics[task].values()
        for v in block.values()
    ]
    assert all(isinstance(v, int | float) for v in leaves)


def test_gate_and_diagnosis_are_written(evaluated):
    gate = json.loads((evaluated / "gate.json").read_text())
    details = json.loads((evaluated / "evaluation.json").read_text())
    assert {c["task"] for c in gate["checks"]} == {"classification", "regression"}
    verdicts = {
        d["verdict"]
        for t in ("classification", "regression")
        for d in details[t]["diagnosis"].values()
    }
    assert verdicts <= {"GOOD FIT", "OVERFITTING", "UNDERFITTING"}
    assert gate["passed"] is (not gate["failures"])
    importance = details["classification"]["permutation_importance"]
    assert len(importance) == 23  # raw feature names, not engineered ones
    assert "sleep_hours" in importance


def test_plots_are_written_for_dvc(evaluated):
    plots = evaluated / "live" / "plots"
    for path in (
        "sklearn/classification/confusion.json",
        "sklearn/classification/roc.json",
        "sklearn/classification/precision_recall.json",
        "sklearn/classification/calibration.json",
        "custom/classification/importance.json",
        "custom/regression/residuals.json",
    ):
        assert (plots / path).exists(), path


def test_other_data_gets_no_ceiling(trained, tmp_path):
    """The oracle describes the generated cohort only: any other file has no known ceiling."""
    other = tmp_path / "other.csv"
    other.write_text((trained / "raw.csv").read_text() + "\n")
    run_evaluate(trained, data=other, out=tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "ceiling" not in metrics["classification"]
    details = json.loads((tmp_path / "evaluation.json").read_text())
    assert details["classification"]["ceiling_note"].startswith("No known ceiling")
    assert "No known ceiling" in (tmp_path / "evaluation.html").read_text()
