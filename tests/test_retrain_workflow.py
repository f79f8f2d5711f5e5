"""The scheduled retrain: .github/workflows/retrain.yaml and `make retrain`.

No GitHub runner here: the workflow is loaded and its triggers, permissions and steps
checked, and the shell of its own steps runs under bash -eo pipefail (as GitHub runs
it) with `make` and `gh` replaced by recorders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from migraine_ml.retraining.summary import promotion_markdown

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "retrain.yaml"
PROMOTED = {
    "status": "promoted",
    "promote": True,
    "reason": "gain 0.031 in roc_auc",
    "primary": "migraine",
    "rule": {"min_gain": 0.01, "max_class_drop": 0.05, "resamples": 1000, "confidence": 0.95},
    "checks": [{"name": "min_gain", "task": "migraine", "passed": True, "detail": "gain 0.031"}],
    "champion": {"commit": "a" * 40, "models": {}},
    "challenger": {"commit": "b" * 40, "models": {}, "experiment": "retrain-20261128-041700"},
    "data": {"test_rows": 1600},
    "tasks": {},
}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict) -> dict[str, dict]:
    (job,) = workflow["jobs"].values()
    return {step.get("name", step.get("uses")): step for step in job["steps"]}


def test_it_runs_weekly_and_by_hand_only(workflow):
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    (schedule,) = triggers["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert minute.isdigit() and hour.isdigit()
    assert (day, month) == ("*", "*") and weekday.isdigit()  # once a week
    assert workflow["concurrency"]["cancel-in-progress"] is False  # a promotion is not cut


def test_it_may_push_a_branch_and_open_a_pull_request(workflow):
    assert workflow["permissions"] == {"contents": "write", "pull-requests": "write"}


def test_its_steps(workflow):
    named = steps(workflow)
    assert list(named) == [
        "actions/checkout@v4",
        "actions/setup-python@v5",
        "iterative/setup-cml@v2",
        "Configure the git identity of the promotion commit",
        "Reproduce the champion (models/ as dvc.lock pins them)",
        "Retrain",
        "Keep the decision",
        "Push the promotion branch",
        "Open the pull request",
        "Comment the metric diff (CML)",
    ]
    assert named["actions/checkout@v4"]["with"]["fetch-depth"] == 0  # the whole history
    assert named["Reproduce the champion (models/ as dvc.lock pins them)"]["run"] == "make repro"
    retrain = named["Retrain"]
    assert retrain["env"] == {"MIGRAINE_PREDICTION_LOG": "${{ secrets.MIGRAINE_PREDICTION_LOG }}"}
    assert "make retrain\n" in retrain["run"]
    assert named["Keep the decision"]["if"] == "always()"
    for name in (
        "Push the promotion branch",
        "Open the pull request",
        "Comment the metric diff (CML)",
    ):
        assert named[name]["if"] == "steps.retrain.outputs.status == 'promoted'"
    assert "gh pr create" in named["Open the pull request"]["run"]
    assert "cml comment update --target=pr" in named["Comment the metric diff (CML)"]["run"]


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def recorder(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/usr/bin/env bash\n{script}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("status", ["promoted", "kept", "skipped"])
def test_the_retrain_step_reads_the_decision(workflow, tmp_path, status):
    record = {**PROMOTED, "status": status, "reason": f"the reason it was {status}"}
    if status == "skipped":
        record["challenger"] = None
    # `make retrain` writes reports/promotion.json, as `migraine retrain` does
    recorder(
        tmp_path / "bin",
        "make",
        f"mkdir -p reports && echo '{json.dumps(record)}' > reports/promotion.json",
    )
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "MIGRAINE_PREDICTION_LOG": "postgresql://log.example/predictions",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }

    result = run_step(steps(workflow)["Retrain"]["run"], tmp_path, env)

    assert result.returncode == 0, result.stderr
    experiment = "" if status == "skipped" else "retrain-20261128-041700"
    assert output.read_text() == f"status={status}\nexperiment={experiment}\n"
    assert summary.read_text() == f"### Retrain: {status}\nthe reason it was {status}\n"


def test_the_retrain_step_refuses_to_run_without_the_log_secret(workflow, tmp_path):
    recorder(tmp_path / "bin", "make", "touch ran")
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "MIGRAINE_PREDICTION_LOG": ""}

    result = run_step(steps(workflow)["Retrain"]["run"], tmp_path, env)

    assert result.returncode == 1
    assert "the secret MIGRAINE_PREDICTION_LOG" in result.stdout
    assert not (tmp_path / "ran").exists()


def test_the_pull_request_is_the_promotion_commit_with_the_rendered_record(workflow, tmp_path):
    repo = tmp_path / "repo"
    (repo / "reports").mkdir(parents=True)
    (repo / "reports" / "promotion.json").write_text(json.dumps(PROMOTED))
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(sys.executable)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "reports"], cwd=repo, check=True)
    subprocess.run(
        [*git, "commit", "-qm", "Promote challenger retrain-20261128-041700 (see x)"],
        cwd=repo,
        check=True,
    )
    calls = tmp_path / "gh-calls"
    recorder(tmp_path / "bin", "gh", f'printf "%s\\n" "$@" > {calls}')
    step = steps(workflow)["Open the pull request"]
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "BRANCH": "retrain/retrain-20261128-041700",  # what the step's env gives
        "BASE": "main",
    }
    assert step["env"]["BRANCH"] == "retrain/${{ steps.retrain.outputs.experiment }}"

    result = run_step(step["run"], repo, env)

    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "pr",
        "create",
        "--base",
        "main",
        "--head",
        "retrain/retrain-20261128-041700",
        "--title",
        "Promote challenger retrain-20261128-041700 (see x)",
        "--body-file",
        "promotion.md",
    ]
    assert (repo / "promotion.md").read_text() == promotion_markdown(PROMOTED)


def test_make_retrain_runs_migraine_retrain():
    result = subprocess.run(
        # --no-print-directory: under `make test` this is a nested make, which would
        # otherwise print "Entering/Leaving directory" lines
        ["make", "-n", "--no-print-directory", "retrain"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{ROOT / '.venv' / 'bin' / 'migraine'} retrain"
