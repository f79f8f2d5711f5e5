"""Benchmark: `migraine retrain` cycles on the default cohort, end to end.

In a scratch clone of this repository (sharing its DVC cache, so the champion's
outputs are checked out, not rebuilt), labelled traffic is written to a fresh
SQLite prediction log, then the real command runs one whole cycle and is timed:
the export, the DVC experiment (validate -> evaluate on the base rows plus the
feedback), the comparison and the decision. Two scenarios, in order, each on
its own log:

  undrifted  1,000 records and outcomes from the cohort's own generating model
  shifted    3,000 records of the same kind, outcomes from a changed world
             (bright light a strong trigger, as in tests/stages/test_retrain.py)

A promotion is then rolled back with `migraine rollback` (timed too). Wall
time per command, the decision, its reason and the command's own output go to
reports/bench/retrain.json (goal: one cycle <= 300 s on this machine);
docs/retraining.md quotes them. The clone and its MLflow store are thrown away.

    python bench/retrain.py
    python bench/retrain.py --labels 2000 --shifted-labels 4000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from scipy.special import expit

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400.0


def _clone(scratch: Path) -> Path:
    repo = scratch / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    for key, value in (("user.email", "bench@example.invalid"), ("user.name", "bench")):
        subprocess.run(["git", "config", key, value], cwd=repo, check=True)
    dvc = [sys.executable, "-m", "dvc"]
    cache = str(ROOT / ".dvc" / "cache")
    subprocess.run([*dvc, "config", "--local", "cache.dir", cache], cwd=repo, check=True)
    subprocess.run([*dvc, "checkout", "--quiet"], cwd=repo, check=True)
    return repo


def _cohort(labels: int, seed: int, *, shifted: bool):
    from migraine_ml.data.synthetic import generate_cohort

    rows = generate_cohort(rows=labels, prevalence=0.35, seed=seed).clean
    if shifted:
        rng = np.random.default_rng(seed)
        light = rows["bright_light"].to_numpy()
        logit = -1.4 + 3.0 * light - 0.8 * rows["exercise"].to_numpy() / 7
        rows["migraine_occurrence"] = rng.binomial(1, expit(logit))
        rows["migraine_severity"] = np.where(rows["migraine_occurrence"] == 1, 6, 0)
    return rows


def _command(repo: Path, *args: str) -> tuple[float, int, list[str]]:
    """Run `migraine <args>` in the clone: (seconds, exit code, output lines)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "migraine_ml.cli", *args],
        cwd=repo,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    lines = (result.stderr + result.stdout).splitlines()
    for line in lines:
        print("   ", line, flush=True)
    return seconds, result.returncode, lines


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--labels", type=int, default=1000, help="labelled undrifted predictions")
    cli.add_argument(
        "--shifted-labels", type=int, default=3000, help="labelled predictions after the shift"
    )
    cli.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "retrain.json")
    args = cli.parse_args()
    sys.path.insert(0, str(ROOT))
    from migraine_ml.data.schema import load_schema
    from migraine_ml.monitoring.prediction_log import open_log
    from migraine_ml.retraining.feedback import log_labelled_traffic

    os.environ.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    scratch = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    repo = _clone(scratch)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    params = yaml.safe_load((repo / "params.yaml").read_text())
    schema = load_schema(repo / params["data"]["schema"])
    results = {}
    now = time.time()
    scenarios = (("undrifted", 101, args.labels), ("shifted", 102, args.shifted_labels))
    for name, seed, labels in scenarios:
        log_path = scratch / f"{name}.db"
        log = open_log(str(log_path))
        rows = _cohort(labels, seed, shifted=name == "shifted")
        log_labelled_traffic(
            log, rows, schema, created=now - 3 * DAY, labelled=now - 2 * DAY, prefix=f"{seed:x}"
        )
        log.close()
        record_path = scratch / f"{name}.json"
        print(f"{name}: migraine retrain on {labels:,} labels", flush=True)
        seconds, code, output = _command(
            repo, "retrain", "--log", str(log_path), "--out", str(record_path)
        )
        if code != 0:
            raise SystemExit(f"migraine retrain failed (exit {code})")
        record = json.loads(record_path.read_text())
        task = record.get("tasks", {}).get("classification", {})
        results[name] = {
            "labels": labels,
            "command": f"migraine retrain --log {name}.db",
            "cycle_seconds": round(seconds, 1),
            "status": record["status"],
            "reason": record["reason"],
            "classification": {
                k: task.get(k) for k in ("metric", "champion", "challenger", "difference")
            },
            "test_rows": record.get("data", {}).get("test_rows"),
            "output": output,
        }
        if record["status"] == "promoted":
            results[name]["commit"] = _git(repo, "log", "-1", "--stat", "--format=%s")
            seconds, code, output = _command(repo, "rollback")
            results[name]["rollback"] = {
                "command": "migraine rollback",
                "seconds": round(seconds, 1),
                "exit": code,
                "output": output,
                "commit": _git(repo, "log", "-1", "--format=%s"),
            }
    report = {
        "benchmark": "migraine retrain cycles on the default cohort (export, DVC experiment "
        "validate -> evaluate, comparison, decision), in a scratch clone sharing the DVC cache",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "goal_seconds": 300,
        "scenarios": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("->", args.out)


if __name__ == "__main__":
    main()
