"""`migraine retrain` and `migraine rollback`: promotion only of a better model.

One cycle:

1. labelled feedback older than the label delay is exported from the prediction
   log into the feedback file (`data.feedback`), in a scratch git worktree of
   the repository (no tracked file changes before a promotion);
2. with fewer new labels than `min_new_labels` the cycle stops, and says so in
   the promotion record;
3. the pipeline runs there as a DVC experiment (`dvc exp run`: its params, data
   hashes and metrics show in `dvc exp show`), the MLflow model registered under
   the alias `challenger`;
4. champion (the workspace's models/) and challenger score the challenger's test
   split, the same rows (`migraine_ml.retraining.compare`); the decision is
   written to the promotion record (reports/promotion.json, not versioned);
5. only a decided promotion changes tracked files: `dvc exp apply`, one git
   commit with a copy of the record (reports/promotions/<experiment>.json),
   MLflow aliases moved (`champion` -> `previous`, `challenger` -> `champion`).
   A service watching dvc.lock picks the new models up.

Killed at any point before step 5, the tracked files and the served models are
as they were; the scratch worktree is removed (or by the next run).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from migraine_ml import persist
from migraine_ml.data.schema import Schema, load_schema
from migraine_ml.data.validation import coerce_types
from migraine_ml.evaluation.metrics import PRIMARY
from migraine_ml.modeling.fastpath import reference_output
from migraine_ml.modeling.manifest import model_file
from migraine_ml.modeling.tasks import task_data, task_rows
from migraine_ml.monitoring.prediction_log import LogDatabase
from migraine_ml.pipeline import CHAMPION
from migraine_ml.retraining.compare import (
    PromotionRule,
    compare_task,
    decide,
    write_promotion,
    write_skip,
)
from migraine_ml.retraining.feedback import export_feedback
from migraine_ml.retraining.summary import PROMOTIONS

logger = logging.getLogger(__name__)

CHALLENGER = "challenger"
PREVIOUS = "previous"
PROMOTION_PREFIX = "Promote challenger"  # the promotion commits' subject; rollback finds them
SCRATCH_PREFIX = "migraine-retrain-"  # the temporary directory of a cycle's worktree


class RetrainError(RuntimeError):
    """A cycle that cannot run: a dirty workspace, a failed experiment, no promotion to undo."""


@dataclass(frozen=True)
class RetrainConfig:
    label_delay: float  # seconds: younger labels are not exported yet
    min_new_labels: int
    rule: PromotionRule
    seed: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RetrainConfig:
        retrain = params["retrain"]
        return cls(
            label_delay=float(retrain["label_delay_hours"]) * 3600,
            min_new_labels=int(retrain["min_new_labels"]),
            rule=PromotionRule.from_params(retrain),
            seed=int(params["seed"]),
        )


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RetrainError(f"{' '.join(args)} failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result.stdout


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def _tool_env(repo: Path) -> dict[str, str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    # one MLflow store for champion and challenger: the repository's, by absolute path
    uri = env.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(repo / uri.removeprefix('sqlite:///')).resolve()}"
    env["MLFLOW_TRACKING_URI"] = uri
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def require_clean(repo: Path) -> None:
    """A promotion is one commit of its own: refuse to mix in the user's edits."""
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"], repo).strip()
    if dirty:
        raise RetrainError(
            f"the workspace has uncommitted changes; commit or stash them first:\n{dirty}"
        )


def require_champion_as_locked(repo: Path, env: dict[str, str]) -> None:
    """The champion is what dvc.lock records: its models/ were not edited by hand or left
    behind by another checkout, so the comparison judges the models that are served."""
    quiet = subprocess.run(_dvc("status", "--quiet"), cwd=repo, env=env, capture_output=True)
    if quiet.returncode == 0:
        return
    shown = subprocess.run(_dvc("status"), cwd=repo, env=env, capture_output=True, text=True)
    if quiet.returncode != 1:  # 1 is "changed"; anything else, dvc itself failed
        raise RetrainError(f"dvc status failed in {repo}:\n{shown.stdout}{shown.stderr}")
    raise RetrainError(
        "the workspace's pipeline is not what dvc.lock records (dvc status below): "
        f"run `dvc checkout` or `make repro` and commit first\n{shown.stdout}{shown.stderr}"
    )


def _champion_entries(models_dir: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads((models_dir / "manifest.json").read_text())
    return {m["task"]: m for m in manifest["models"] if m["rank"] == CHAMPION}


def compare_models(
    champion_dir: Path, challenger_dir: Path, schema: Schema, test: pd.DataFrame, config
) -> dict[str, Any]:
    """Champion and challenger on the same test rows, task by task, in the champion's
    metric and class order (a class missing from the test rows keeps its column)."""
    champions = _champion_entries(champion_dir)
    comparisons = {}
    for task in task_data(schema, test):
        entry = champions[task.name]
        classes = entry.get("classes")
        rows, y = task_rows(task.name, schema, test, classes)
        outputs = [
            reference_output(
                persist.load(directory / model_file(task.name, CHAMPION)), rows[schema.features]
            )
            for directory in (champion_dir, challenger_dir)
        ]
        comparisons[task.name] = compare_task(
            task.name,
            y.to_numpy(),
            *outputs,
            classification=classes is not None,
            classes=classes,
            groups=None if schema.group is None else rows[schema.group].to_numpy(),
            rule=config.rule,
            seed=config.seed,
            metric=PRIMARY[entry["cv"]["scoring"]],
        )
    return comparisons


def _experiment_commit(repo: Path, name: str) -> str | None:
    """The commit DVC recorded the experiment as (refs/exps/.../<name>)."""
    refs = _run(["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps"], repo)
    found = [line.split()[0] for line in refs.splitlines() if line.endswith(f"/{name}")]
    return found[0] if found else None


def _data_hashes(lock_path: Path, data: dict[str, Any]) -> dict[str, str]:
    """The md5s dvc.lock records for the data and feedback files the challenger read."""
    wanted = {data["path"], data["feedback"]}
    lock = yaml.safe_load(lock_path.read_text())
    return {
        dep["path"]: dep["md5"]
        for stage in lock.get("stages", {}).values()
        for dep in stage.get("deps", [])
        if dep["path"] in wanted and "md5" in dep
    }


def _identity(repo: Path, models_dir: Path) -> dict[str, Any]:
    manifest = json.loads((models_dir / "manifest.json").read_text())
    return {
        "commit": _run(["git", "rev-parse", "HEAD"], repo).strip(),
        "models": {
            m["file"]: {"name": m["name"], "md5": m["md5"]}
            for m in manifest["models"]
            if m["rank"] == CHAMPION
        },
    }


def retrain(
    repo: Path,
    *,
    log: LogDatabase,
    params: dict[str, Any],
    promotion_path: Path,
    now: float | None = None,
) -> dict[str, Any]:
    """One cycle (the module's docstring); returns what it wrote to `promotion_path`."""
    repo = repo.resolve()
    config = RetrainConfig.from_params(params)
    schema = load_schema(repo / params["data"]["schema"])
    now = time.time() if now is None else now
    require_clean(repo)
    with _one_cycle_at_a_time(repo):
        require_champion_as_locked(repo, _tool_env(repo))
        return _cycle(repo, log, params, config, schema, promotion_path, now)


def _is_scratch(path: Path) -> bool:
    """A worktree `_cycle` made: <tmp>/migraine-retrain-XXXX/challenger, nothing else."""
    return (
        path.name == "challenger"
        and path.parent.name.startswith(SCRATCH_PREFIX)
        and path.parent.parent == Path(tempfile.gettempdir())
    )


@contextlib.contextmanager
def _one_cycle_at_a_time(repo: Path) -> Iterator[None]:
    """An exclusive lock on the repository's retraining; scratch worktrees left by a
    killed cycle are removed first (no other cycle can be using them)."""
    lock_path = repo / ".dvc" / "tmp" / "retrain.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetrainError("another retrain is running in this repository") from None
        listing = _run(["git", "worktree", "list", "--porcelain"], repo)
        paths = [Path(line.removeprefix("worktree ")) for line in listing.splitlines()]
        for path in paths[1:]:  # the first is this checkout
            if not _is_scratch(path):
                continue
            logger.info("removing the scratch worktree of an interrupted cycle: %s", path)
            removed = subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=repo)
            if removed.returncode == 0:
                shutil.rmtree(path.parent, ignore_errors=True)
        _run(["git", "worktree", "prune"], repo)
        yield


def _cycle(
    repo: Path,
    log: LogDatabase,
    params: dict[str, Any],
    config: RetrainConfig,
    schema: Schema,
    promotion_path: Path,
    now: float,
) -> dict[str, Any]:
    feedback_path = params["data"]["feedback"]
    labelled = log.labelled(now - config.label_delay)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    worktree = scratch / "challenger"
    _run(["git", "worktree", "add", "--detach", str(worktree), "HEAD"], repo)
    try:
        export = export_feedback(
            labelled, schema, worktree / feedback_path, labelled_before=now - config.label_delay
        )
        logger.info(
            "feedback: %d rows, %d new; %d labels after an intervention left out",
            export.rows,
            export.new_rows,
            export.intervened,
        )
        champion = _identity(repo, repo / "models")
        if export.new_rows < config.min_new_labels:
            reason = (
                f"{export.new_rows} new labels (older than {config.label_delay / 3600:g} h), "
                f"fewer than min_new_labels {config.min_new_labels}: no retraining"
            )
            logger.info("skipped: %s", reason)
            return write_skip(
                promotion_path, reason, champion=champion, data={"feedback": export.to_dict()}
            )
        env = _tool_env(repo) | {"MIGRAINE_REGISTER_ALIAS": CHALLENGER}
        # the experiment shares this repository's DVC cache (wherever its config puts it,
        # so that `dvc exp apply` here finds the outputs): unchanged outputs are not rebuilt
        cache = _run(_dvc("cache", "dir"), repo, env).strip()
        _run(_dvc("config", "--local", "cache.dir", cache), worktree, env)
        subprocess.run(_dvc("checkout", "--quiet"), cwd=worktree, env=env, capture_output=True)
        # the time it ran, and a few random letters: two cycles in one second differ too
        name = f"retrain-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        logger.info("running the pipeline as DVC experiment %s", name)
        _run(_dvc("exp", "run", "--name", name), worktree, env)
        test = coerce_types(pd.read_parquet(worktree / "data" / "split" / "test.parquet"), schema)
        comparisons = compare_models(repo / "models", worktree / "models", schema, test, config)
        decision = decide(comparisons, primary=next(iter(comparisons)), rule=config.rule)
        challenger = _identity(worktree, worktree / "models") | {
            "experiment": name,
            "commit": _experiment_commit(repo, name),
        }
        record = write_promotion(
            promotion_path,
            decision=decision,
            comparisons=comparisons,
            champion=champion,
            challenger=challenger,
            data={
                "feedback": export.to_dict(),
                "test_rows": len(test),
                "hashes": _data_hashes(worktree / "dvc.lock", params["data"]),
            },
        )
        logger.info(
            "%s: %s", "PROMOTE" if decision.promote else "KEEP the champion", decision.reason
        )
        if decision.promote:
            promote(repo, name, promotion_path, baseline=champion["commit"], env=env, schema=schema)
        return record
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True)


def promote(
    repo: Path, experiment: str, record: Path, *, baseline: str, env, schema: Schema
) -> None:
    """Apply the experiment to the workspace and commit it with a copy of the record
    (reports/promotions/<experiment>.json), then move the MLflow aliases.

    The workspace must still be as the cycle found it (clean, at `baseline`): a
    promotion is a commit of its own. If applying or committing fails, the
    workspace goes back to `baseline` and its models, and the champion serves on.
    """
    require_clean(repo)
    head = _run(["git", "rev-parse", "HEAD"], repo).strip()
    if head != baseline:
        raise RetrainError(
            f"HEAD moved from {baseline[:12]} to {head[:12]} during the cycle: "
            f"the challenger ({experiment}) was not applied; run the retrain again"
        )
    archive = repo / PROMOTIONS / f"{experiment}.json"
    try:
        _run(_dvc("exp", "apply", experiment), repo, env)
        archive.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record, archive)
        _run(["git", "add", "-u"], repo)
        _run(["git", "add", str(archive.relative_to(repo))], repo)
        message = f"{PROMOTION_PREFIX} {experiment} ({archive.relative_to(repo)})"
        _run(["git", "commit", "-q", "-m", message], repo)
    except RetrainError:
        subprocess.run(["git", "reset", "-q", "--hard", baseline], cwd=repo)
        subprocess.run(_dvc("checkout", "--quiet", "--force"), cwd=repo, env=env)
        archive.unlink(missing_ok=True)
        raise
    move_aliases(schema, {CHALLENGER: CHAMPION, CHAMPION: PREVIOUS}, env=env)


def move_aliases(schema: Schema, moves: dict[str, str], *, env: dict[str, str]) -> None:
    """Re-point MLflow aliases of the schema's registered models (old -> new names),
    all read before any is written. A new name whose old one is not in the store is
    removed, with a warning: it would name a model that no longer serves (a rollback
    in a store that never held the previous champion)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    for role in ("classifier", "regressor"):
        registered = f"{schema.name}-{role}"
        versions = {}
        for old in moves:
            try:
                versions[old] = client.get_model_version_by_alias(registered, old).version
            except Exception:  # no such model or alias in this store
                continue
        for old, new in moves.items():
            if old in versions:
                client.set_registered_model_alias(registered, new, versions[old])
            elif new not in {moves[o] for o in versions}:
                try:
                    stale = client.get_model_version_by_alias(registered, new).version
                except Exception:  # no such model or alias in this store
                    continue
                client.delete_registered_model_alias(registered, new)
                logger.warning(
                    "%s: alias '%s' removed from version %s: no '%s' in this store to take "
                    "its place",
                    registered,
                    new,
                    stale,
                    old,
                )
        for old in moves:
            if old in versions and old not in moves.values():
                client.delete_registered_model_alias(registered, old)
        if versions:
            logger.info("%s aliases: %s", registered, {moves[o]: v for o, v in versions.items()})
        else:
            logger.warning(
                "%s: none of the aliases %s in this MLflow store", registered, list(moves)
            )


def _unreverted_promotion(repo: Path) -> str | None:
    """The newest promotion commit on this branch that no later commit reverted."""
    log = _run(["git", "log", "--format=%H%x00%s%x00%b%x1e"], repo)
    reverted: set[str] = set()
    for entry in log.split("\x1e"):  # newest first: a revert comes before what it reverts
        if not entry.strip():
            continue
        sha, subject, body = entry.strip("\n").split("\x00", 2)
        reverted.update(re.findall(r"This reverts commit ([0-9a-f]{40})", body))
        if subject.startswith(PROMOTION_PREFIX) and sha not in reverted:
            return sha
    return None


def rollback(repo: Path, *, schema_path: str) -> str:
    """Undo the latest promotion not undone yet: revert its commit, check its models
    out, point the `champion` alias back at `previous`. Returns the reverted commit."""
    repo = repo.resolve()
    require_clean(repo)
    with _one_cycle_at_a_time(repo):
        commit = _unreverted_promotion(repo)
        if commit is None:
            raise RetrainError("no promotion left to roll back on this branch")
        env = _tool_env(repo)
        try:
            _run(["git", "revert", "--no-edit", commit], repo)
        except RetrainError:
            subprocess.run(["git", "revert", "--abort"], cwd=repo, capture_output=True)
            raise
        _run(_dvc("checkout", "--quiet"), repo, env)
        move_aliases(load_schema(repo / schema_path), {PREVIOUS: CHAMPION}, env=env)
    return commit


def promotion_summary(record: dict[str, Any]) -> str:
    """One line for the command's output: what happened and why."""
    return f"{record['status']}: {record['reason']}"


__all__ = [
    "CHALLENGER",
    "PREVIOUS",
    "RetrainConfig",
    "RetrainError",
    "retrain",
    "rollback",
]
