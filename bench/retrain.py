"""Benchmark: one `migraine retrain` cycle on the default cohort, end to end.

In a scratch clone of this repository (sharing its DVC cache, so the champion's
outputs are checked out, not rebuilt), labelled traffic is written to a fresh
SQLite prediction log, then one whole cycle runs and is timed: the export, the
DVC experiment (validate -> evaluate on the base rows plus the feedback), the
comparison and the decision. Two scenarios, each on its own log:

  undrifted  records and outcomes from the cohort's own generating model
  shifted    the same kind of records, outcomes from a changed world (bright light
             a strong trigger, as in tests/stages/test_retrain.py)

Wall time per cycle, the decision and its reason go to reports/bench/retrain.json
(goal: one cycle <= 300 s on this machine). The clone and its MLflow store are
thrown away; the experiments stay in the clone, not in this repository.

    python bench/retrain.py               # 1,000 labels per scenario
    python bench/retrain.py --labels 2000
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


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--labels", type=int, default=1000, help="labelled predictions per scenario")
    cli.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "retrain.json")
    args = cli.parse_args()
    sys.path.insert(0, str(ROOT))
    from migraine_ml.data.schema import load_schema
    from migraine_ml.monitoring.prediction_log import open_log
    from migraine_ml.retraining.feedback import log_labelled_traffic
    from migraine_ml.retraining.retrain import promotion_summary, retrain

    os.environ.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    scratch = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    repo = _clone(scratch)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    params = yaml.safe_load((repo / "params.yaml").read_text())
    schema = load_schema(repo / params["data"]["schema"])
    results = {}
    now = time.time()
    for seed, name in ((101, "undrifted"), (102, "shifted")):
        log = open_log(str(scratch / f"{name}.db"))
        rows = _cohort(args.labels, seed, shifted=name == "shifted")
        log_labelled_traffic(
            log, rows, schema, created=now - 3 * DAY, labelled=now - 2 * DAY, prefix=f"{seed:x}"
        )
        started = time.perf_counter()
        record = retrain(
            repo, log=log, params=params, promotion_path=scratch / f"{name}.json", now=now
        )
        seconds = time.perf_counter() - started
        task = record.get("tasks", {}).get("classification", {})
        results[name] = {
            "labels": args.labels,
            "cycle_seconds": round(seconds, 1),
            "status": record["status"],
            "reason": record["reason"],
            "summary": promotion_summary(record),
            "classification": {
                k: task.get(k) for k in ("metric", "champion", "challenger", "difference")
            },
            "test_rows": record.get("data", {}).get("test_rows"),
        }
        print(f"{name}: {seconds:.0f} s, {promotion_summary(record)}", flush=True)
        log.close()
    report = {
        "benchmark": "one migraine retrain cycle on the default cohort (export, DVC experiment "
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
