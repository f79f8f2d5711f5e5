"""`migraine sweep` on the real DVC pipeline in a throwaway git repository (integration).

A file of its own: the longest pipeline test, so the test workers can run it beside
tests/stages/test_pipeline.py.
"""

import json
import subprocess
import sys

import pytest

from tests.pipeline_fixtures import dvc, git, tool_env

pytestmark = pytest.mark.integration


def test_sweep_runs_queued_experiments_with_one_worker(pipeline_repo):
    """`make sweep` (`migraine sweep`) on the small pipeline: queue a grid, one worker, show."""
    repo = pipeline_repo
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    result = subprocess.run(
        [sys.executable, "-m", "migraine_ml.cli", "sweep", "-S", "features.n_features=10,15"],
        cwd=repo,
        env=tool_env() | {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    # Pins a bug: the table dropped the swept parameter's column (DVC matches --keep
    # against the whole column name, so 'n_features' never matched).
    header, _, *rows = result.stdout.strip().splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "features.n_features" in columns, header
    assert "classification.champion.roc_auc" in columns, header
    swept = columns.index("features.n_features")
    values = sorted(row.strip("|").split("|")[swept].strip() for row in rows)
    assert {"10", "15"} <= set(values), result.stdout
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    experiments = [e for commit in shown for e in (commit.get("experiments") or [])]
    n_features = sorted(
        run["data"]["params"]["params.yaml"]["data"]["features"]["n_features"]
        for e in experiments
        for run in e["revs"]
    )
    assert n_features == [10, 15]
