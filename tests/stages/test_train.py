"""features and train in-process on a small cohort, with a real MLflow store (integration)."""

import json
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from migraine_ml import persist

pytestmark = pytest.mark.integration


def test_features_stage_writes_the_fitted_builder_and_its_selection(trained):
    report = json.loads((trained / "features.json").read_text())
    # n_features: auto -- the stage keeps and scores every column; each model's search
    # then chooses how many, and from which pool
    assert report["n_features"] == 35 and report["target"] == "migraine_occurrence"
    assert report["pool"] == "engineered" and not report["dropped"]
    builder = persist.load(trained / "features" / "builder.skops")
    assert list(builder.named_steps["select"].selected_) == list(report["selected"])
    # the stage writes the builder and its report only: no engineered copy of the data
    assert sorted(p.name for p in (trained / "features").iterdir()) == ["builder.skops"]


def test_top_two_per_task_are_saved_with_a_manifest(trained):
    manifest = json.loads((trained / "models" / "manifest.json").read_text())
    saved = [(m["task"], m["rank"]) for m in manifest["models"]]
    assert saved == [
        ("classification", "champion"),
        ("classification", "runner_up"),
        ("classification", "reference"),
        ("regression", "champion"),
        ("regression", "runner_up"),
        ("regression", "reference"),
    ]
    assert len(manifest["leaderboard"]) == 18  # eight models and the reference, per task
    board = [e for e in manifest["leaderboard"] if e["task"] == "classification"]
    assert manifest["models"][0]["name"] == board[0]["name"]
    assert board[0]["cv_mean"] >= board[1]["cv_mean"]
    for entry in manifest["models"]:
        path = trained / "models" / entry["file"]
        from migraine_ml.persist import file_md5

        assert entry["md5"] == file_md5(path)
        assert len(entry["raw_features"]) == 23
        assert 0 < len(entry["model_features"]) <= 35
    assert manifest["models"][0]["classes"] == [0, 1]
    assert manifest["training_data"]["rows"] > 0
    assert {"sklearn", "xgboost", "lightgbm"} <= set(manifest["libraries"])
    svm = next(e for e in manifest["leaderboard"] if e["name"] == "svm")
    assert "subsample of at most 300 rows" in svm["notes"][0]


def test_reference_holds_inputs_and_predictions(trained):
    reference = json.loads((trained / "models" / "reference.json").read_text())
    assert len(reference["inputs"]) == 23
    predictions = reference["predictions"]
    assert set(predictions) == {"classification", "regression"}
    # every class's probability, and the severity, each profiled on every training row
    # (the service answers both tasks for every record)
    assert set(predictions["classification"]) == {"0", "1"}
    assert set(predictions["regression"]) == {"value"}
    for outputs in predictions.values():
        for profile in outputs.values():
            assert sum(profile["shares"]) == pytest.approx(1)
            assert profile["rows"] == reference["rows"]


def test_mlflow_has_a_child_run_per_candidate_and_two_champions(trained, mlflow_uri):
    client = MlflowClient(mlflow_uri)
    manifest = json.loads((trained / "models" / "manifest.json").read_text())
    saved = {(m["task"], m["rank"]): m["md5"] for m in manifest["models"]}
    parents = set()
    for task, name in (
        ("classification", "migraine-classifier"),
        ("regression", "migraine-regressor"),
    ):
        version = client.get_model_version_by_alias(name, "champion")
        # the registered champion is the saved champion file, found by its md5 tag
        assert version.tags["model_md5"] == saved[(task, "champion")]
        champion_run = client.get_run(version.run_id)
        assert champion_run.data.params["task"] == task
        parents.add(champion_run.data.tags["mlflow.parentRunId"])
    (parent_id,) = parents  # both champions come from one training run
    experiment = client.get_experiment_by_name("migraine")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    assert len(children) == 18
    assert all("cv_mean" in r.data.metrics for r in children)
    assert client.get_run(parent_id).data.params["train.cv_folds"] == "3"


def test_dvclive_metrics_and_leaderboard_plot(trained):
    metrics = json.loads((trained / "live" / "metrics.json").read_text())
    assert 0.5 < metrics["classification"]["best_cv_roc_auc"] <= 1
    plot = json.loads(
        (trained / "live" / "plots" / "custom" / "leaderboard_classification.json").read_text()
    )
    assert len(plot) == 9


def test_saved_models_load_in_a_fresh_process_on_raw_csv_rows(trained):
    """No import of stages/: the models stand alone on raw schema columns."""
    script = f"""
import json, sys, pandas as pd
from migraine_ml import persist
rows = pd.read_csv({str(trained / "raw.csv")!r}).head(5)
out = {{"proba": [], "severity": []}}
for rank in ("champion", "runner_up"):
    classifier = persist.load(f"models/classifier-{{rank}}.skops")
    regressor = persist.load(f"models/regressor-{{rank}}.skops")
    out["proba"] += classifier.predict_proba(rows).tolist()
    out["severity"] += regressor.predict(rows).tolist()
assert not any(m.startswith("stages") for m in sys.modules), "stages imported"
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=trained, check=True
    )
    out = json.loads(result.stdout)
    assert len(out["proba"]) == 10  # five rows, champion and runner-up
    assert all(abs(sum(p) - 1) < 1e-9 for p in out["proba"])
    assert all(1 <= s <= 10 for s in out["severity"])
