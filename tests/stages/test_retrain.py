"""`migraine retrain` end to end on a small pipeline repository: labelled traffic from
the prediction log, the challenger as a DVC experiment, the decision, the promotion
commit, and `migraine rollback`.

One repository for the module (600 base rows; each experiment trains the reduced
zoo with the feedback rows added); the scenarios run in order: too few labels,
labels younger than the delay, undrifted traffic, a shifted cohort and the
rollback of its promotion, a dirty workspace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from scipy.special import expit

from app import create_app
from migraine_ml.data.schema import load_schema
from migraine_ml.data.synthetic import generate_cohort
from migraine_ml.monitoring.monitor import served_versions
from migraine_ml.monitoring.prediction_log import open_log
from migraine_ml.retraining.feedback import log_labelled_traffic
from migraine_ml.retraining.retrain import RetrainError, retrain, rollback
from tests.app.conftest import config
from tests.app.test_reload import champions
from tests.lib.test_aliases import alias_version
from tests.pipeline_fixtures import SCHEMA, dvc, git, make_pipeline_repo, tool_env

DAY = 86_400.0


def _git(repo, *args: str) -> str:
    return git(repo, *args).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory, monkeypatch_module):
    scratch = tmp_path_factory.mktemp("retrain")
    path = make_pipeline_repo(scratch / "repo")
    # a DVC cache outside the repository (shared by clones, as bench/retrain.py does): the
    # experiment must use this one, or `dvc exp apply` finds no outputs to check out
    dvc(path, "cache", "dir", "--local", str(scratch / "shared-cache"))
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["retrain"] |= {"min_new_labels": 100, "resamples": 400, "min_gain": 0.01}
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch_module.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    dvc(path, "repro", "--quiet")
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "models")
    _git(path, "config", "user.email", "t@x.invalid")
    _git(path, "config", "user.name", "t")
    return path


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in tool_env().items():
            patch.setenv(name, value)
        yield patch


def _traffic(log, rows, *, created: float, prefix: str, labelled: float | None = None) -> None:
    """Log `rows` as predictions made at `created`, each labelled at `labelled` (by
    default a day later)."""
    log_labelled_traffic(
        log,
        rows,
        load_schema(SCHEMA),
        created=created,
        labelled=created + DAY if labelled is None else labelled,
        prefix=prefix,
    )


def _alias(repo, alias: str) -> str | None:
    """The version of the registered classifier that `alias` points at, or None."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    return alias_version(client, "migraine-classifier", alias)


def _params(repo) -> dict:
    return yaml.safe_load((repo / "params.yaml").read_text())


def test_too_few_labels_skip_and_say_so(repo, tmp_path):
    log = open_log(str(tmp_path / "log.db"))
    cohort = generate_cohort(rows=60, prevalence=0.35, seed=11).clean
    _traffic(log, cohort, created=time.time() - 3 * DAY, prefix="a")
    head = _git(repo, "rev-parse", "HEAD")
    record = retrain(repo, log=log, params=_params(repo), promotion_path=repo / "promotion.json")
    assert record["status"] == "skipped"
    assert "60 new labels" in record["reason"] and "min_new_labels 100" in record["reason"]
    assert _git(repo, "rev-parse", "HEAD") == head
    assert json.loads((repo / "promotion.json").read_text())["status"] == "skipped"


def test_labels_younger_than_the_delay_are_not_used(repo, tmp_path):
    log = open_log(str(tmp_path / "log.db"))
    cohort = generate_cohort(rows=300, prevalence=0.35, seed=12).clean
    # predicted days ago, labelled 12 hours ago: younger than the 24-hour delay
    now = time.time()
    _traffic(log, cohort, created=now - 3 * DAY, prefix="b", labelled=now - 0.5 * DAY)
    record = retrain(repo, log=log, params=_params(repo), promotion_path=repo / "promotion.json")
    assert record["status"] == "skipped" and "0 new labels" in record["reason"]


def test_undrifted_traffic_keeps_the_champion(repo, tmp_path):
    log = open_log(str(tmp_path / "log.db"))
    cohort = generate_cohort(rows=400, prevalence=0.35, seed=13).clean
    _traffic(log, cohort, created=time.time() - 3 * DAY, prefix="c")
    head = _git(repo, "rev-parse", "HEAD")
    lock = (repo / "dvc.lock").read_text()
    record = retrain(repo, log=log, params=_params(repo), promotion_path=repo / "promotion.json")
    assert record["status"] == "kept", record["reason"]
    assert _git(repo, "rev-parse", "HEAD") == head and (repo / "dvc.lock").read_text() == lock
    assert (
        "retrain-"
        in subprocess.run(
            [*map(str, ["python", "-m", "dvc", "exp", "list"])],
            cwd=repo,
            capture_output=True,
            text=True,
            env=tool_env(),
        ).stdout
    )


def test_a_shifted_cohort_is_learned_promoted_and_rolled_back(repo, tmp_path):
    # the world changed: bright light became a strong trigger
    clean = generate_cohort(rows=1200, prevalence=0.35, seed=14).clean
    rng = np.random.default_rng(14)
    logit = -1.4 + 3.0 * clean["bright_light"].to_numpy() - 0.8 * clean["exercise"].to_numpy() / 7
    clean["migraine_occurrence"] = rng.binomial(1, expit(logit))
    clean["migraine_severity"] = np.where(clean["migraine_occurrence"] == 1, 6, 0)
    log = open_log(str(tmp_path / "log.db"))
    _traffic(log, clean, created=time.time() - 3 * DAY, prefix="d")
    before = _git(repo, "rev-parse", "HEAD")
    old_manifest = json.loads((repo / "models" / "manifest.json").read_text())
    old_models = old_manifest["models"]
    old_champion = _alias(repo, "champion")
    # the service on this checkout, serving the champion while the cycle runs
    client = create_app(config(repo, PREDICTION_LOG=str(tmp_path / "service.db"))).test_client()
    record = clean[load_schema(SCHEMA).features].iloc[0].to_dict()
    assert champions(client, record) == served_versions(old_manifest)
    assert old_champion is not None  # the first repro registered it
    promoted = retrain(repo, log=log, params=_params(repo), promotion_path=repo / "promotion.json")
    task = promoted["tasks"]["classification"]
    assert promoted["status"] == "promoted", promoted["reason"]
    assert task["difference"]["ci_low"] > 0.01
    assert _git(repo, "log", "-1", "--format=%s").startswith("Promote challenger")
    assert _git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    new_models = json.loads((repo / "models" / "manifest.json").read_text())["models"]
    assert [m["md5"] for m in new_models] != [m["md5"] for m in old_models]
    assert dvc(repo, "status", "--quiet", check=False).returncode == 0  # models match dvc.lock
    archived = _git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert f"reports/promotions/{promoted['challenger']['experiment']}.json" in archived
    assert promoted["challenger"]["commit"] and promoted["data"]["hashes"]
    # MLflow: the challenger is the champion now, the old champion kept as `previous`
    assert _alias(repo, "previous") == old_champion
    assert _alias(repo, "champion") not in (None, old_champion)
    # the running service verifies the promoted models against the new dvc.lock and serves them
    assert client.post("/admin/reload").get_json()["reloaded"] is True
    new_versions = served_versions(json.loads((repo / "models" / "manifest.json").read_text()))
    assert champions(client, record) == new_versions != served_versions(old_manifest)

    # the next cycle after a promotion runs (no label is new: skipped, not refused)
    again = retrain(repo, log=log, params=_params(repo), promotion_path=repo / "promotion.json")
    assert again["status"] == "skipped" and "0 new labels" in again["reason"]

    reverted = rollback(repo, schema_path=_params(repo)["data"]["schema"])
    assert reverted == _git(repo, "rev-parse", "HEAD~1")
    restored = json.loads((repo / "models" / "manifest.json").read_text())["models"]
    assert [m["md5"] for m in restored] == [m["md5"] for m in old_models]
    assert _alias(repo, "champion") == old_champion
    assert _git(repo, "diff", before, "HEAD", "--", "dvc.lock") == ""
    assert client.post("/admin/reload").get_json()["reloaded"] is True
    assert champions(client, record) == served_versions(old_manifest)  # the old ones again
    with pytest.raises(RetrainError, match="no promotion left"):
        rollback(repo, schema_path=_params(repo)["data"]["schema"])


def test_a_retrain_killed_mid_training_changes_nothing(repo, tmp_path):
    log_path = tmp_path / "log.db"
    cohort = generate_cohort(rows=400, prevalence=0.35, seed=15).clean
    _traffic(open_log(str(log_path)), cohort, created=time.time() - 3 * DAY, prefix="e")
    head, lock = _git(repo, "rev-parse", "HEAD"), (repo / "dvc.lock").read_text()
    models = (repo / "models" / "manifest.json").read_text()
    process = subprocess.Popen(
        [sys.executable, "-m", "migraine_ml.cli", "retrain", "--log", str(log_path)],
        cwd=repo,
        env=tool_env() | {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    for line in process.stdout:  # wait until the experiment is training
        seen.append(line)
        if "running the pipeline as DVC experiment" in line:
            break
    time.sleep(8)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    assert any("DVC experiment" in line for line in seen), "".join(seen)
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert (repo / "dvc.lock").read_text() == lock
    assert (repo / "models" / "manifest.json").read_text() == models
    # the next cycle removes the killed one's scratch worktree (its labels are too
    # young at this `now`: nothing is trained)
    record = retrain(
        repo,
        log=open_log(str(log_path)),
        params=_params(repo),
        promotion_path=tmp_path / "promotion.json",
        now=time.time() - 10 * DAY,
    )
    assert record["status"] == "skipped"
    assert _git(repo, "worktree", "list").count("\n") == 0  # the repository alone


def test_a_dirty_workspace_is_refused(repo, tmp_path):
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "\n# edited\n")
    try:
        with pytest.raises(RetrainError, match="uncommitted changes"):
            retrain(
                repo,
                log=open_log(str(tmp_path / "log.db")),
                params=_params(repo),
                promotion_path=repo / "promotion.json",
            )
    finally:
        _git(repo, "checkout", "params.yaml")


def test_champion_models_that_differ_from_dvc_lock_are_refused(repo, tmp_path):
    manifest = repo / "models" / "manifest.json"
    original = manifest.read_bytes()
    manifest.write_bytes(original + b"\n")  # models/ edited by hand: git cannot see it
    try:
        with pytest.raises(RetrainError, match=r"not what dvc\.lock records") as refused:
            retrain(
                repo,
                log=open_log(str(tmp_path / "log.db")),
                params=_params(repo),
                promotion_path=repo / "promotion.json",
            )
        assert "models" in str(refused.value)
    finally:
        manifest.write_bytes(original)
    assert dvc(repo, "status", "--quiet", check=False).returncode == 0
