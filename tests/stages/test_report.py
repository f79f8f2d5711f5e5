"""`make report` (`migraine report`) in a throwaway git repo with two commits (integration)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

DVC_YAML = {
    "stages": {
        "evaluate": {
            "cmd": "true",
            "params": ["features.n_features"],
            "metrics": [{"reports/metrics.json": {"cache": False}}],
            "outs": [{"reports/roc.json": {"cache": False}}],
        }
    },
    "plots": [
        {"reports/roc.json": {"template": "simple", "x": "fpr", "y": "tpr", "title": "ROC"}},
        # a plot one revision lacks (no regression target) is skipped, not an error
        {"reports/residuals.json": {"template": "scatter", "x": "predicted", "y": "residual"}},
    ],
}


PROMOTED = {
    "status": "promoted",
    "reason": "gain 0.02 in roc_auc",
    "primary": "classification",
    "tasks": {
        "classification": {
            "metric": "roc_auc",
            "champion": 0.79,
            "challenger": 0.81,
            "difference": {
                "difference": 0.02,
                "ci_low": 0.01,
                "ci_high": 0.03,
                "share_not_better": 0.004,
            },
        }
    },
    "challenger": {"experiment": "retrain-20261128-1200-ab12"},
}


def _commit(repo: Path, *, n_features: int, auc: float, passed: bool, message: str) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump({"features": {"n_features": n_features}}))
    reports = repo / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "metrics.json").write_text(
        json.dumps(
            {
                "classification": {
                    "champion": {
                        "roc_auc": auc,
                        "roc_auc_ci_low": auc - 0.02,
                        "roc_auc_ci_high": auc + 0.02,
                    }
                }
            }
        )
    )
    (reports / "roc.json").write_text(
        json.dumps({"roc": [{"fpr": 0, "tpr": 0}, {"fpr": 0.2, "tpr": auc}, {"fpr": 1, "tpr": 1}]})
    )
    (reports / "gate.json").write_text(
        json.dumps({"passed": passed, "failures": [] if passed else ["too weak"], "checks": []})
    )
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", message], cwd=repo, check=True)


def test_report_tables_plots_and_gate(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, env=env, check=True)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    promotions = repo / "reports" / "promotions"
    promotions.mkdir(parents=True)
    (promotions / "retrain-on-main.json").write_text(  # promoted before the branch: not shown
        json.dumps(PROMOTED | {"challenger": {"experiment": "retrain-on-main"}})
    )
    _commit(repo, n_features=20, auc=0.79, passed=True, message="base")
    subprocess.run(["git", "checkout", "-qb", "more-features"], cwd=repo, check=True)
    (promotions / "retrain-20261128-1200-ab12.json").write_text(json.dumps(PROMOTED))
    (promotions / "README.md").write_text("the records\n")  # not a record
    _commit(repo, n_features=30, auc=0.81, passed=False, message="try 30 features")

    result = subprocess.run(
        [sys.executable, "-m", "migraine_ml.cli", "report", "--base", "main", "--out", "report.md"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    report = (repo / "report.md").read_text()
    assert "| params.yaml | `features.n_features` | 20 | 30 |" in report
    assert (
        "| reports/metrics.json | `classification.champion.roc_auc` | 0.7900 | "
        "0.8100 [0.7900, 0.8300] | +0.0200 |"
    ) in report
    assert "ci_low`" not in report  # intervals sit beside their metric
    assert "**Quality gate: FAILED** (base: PASSED)" in report
    assert "- too weak" in report
    assert "![ROC](report_plots/roc.png)" in report
    # the branch adds a promotion record: champion against challenger, before the diffs
    section = report.index("## Retrain: promoted (retrain-20261128-1200-ab12)")
    assert section < report.index("## Parameters")
    assert "| classification (primary) | roc_auc | 0.7900 | 0.8100 | +0.0200 |" in report
    assert "Rendered from `reports/promotions/retrain-20261128-1200-ab12.json`." in report
    assert "retrain-on-main" not in report
    png = repo / "report_plots" / "roc.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_base_is_a_clear_error(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "migraine_ml.cli", "report", "--base", "nope"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "git rev-parse --verify --quiet nope^{commit}" in result.stderr
