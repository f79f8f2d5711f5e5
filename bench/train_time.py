"""Benchmark: wall time of the whole `train` stage on the default cohort.

Runs the stage command exactly as dvc.yaml does, into a scratch directory
(models/ and the MLflow store of the repository are left alone), `--runs`
times, and writes the median and each candidate's tuning time to
reports/bench/train.json. Needs `dvc repro` to have produced the inputs.

    python bench/train_time.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRESS = re.compile(r"train: (\w+) \d+/\d+ (\w+)\s+cv (\w+)=([\d.]+) .*\(([\d.]+) s\)")


def run_once(scratch: Path) -> tuple[float, list[dict]]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{scratch / 'mlflow.db'}")
    command = [
        sys.executable,
        "-m",
        "stages.train",
        "--schema",
        "schemas/migraine.yaml",
        "--split-dir",
        "data/split",
        "--preprocessor",
        "data/processed/preprocessor.skops",
        "--builder",
        "data/features/builder.skops",
        "--models-dir",
        str(scratch / "models"),
        "--live-dir",
        str(scratch / "live"),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    candidates = [
        {"task": m[1], "model": m[2], "scoring": m[3], "cv": float(m[4]), "seconds": float(m[5])}
        for m in PROGRESS.finditer(result.stderr)
    ]
    return seconds, candidates


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--runs", type=int, default=3)
    cli.add_argument("--out", default=str(ROOT / "reports" / "bench" / "train.json"))
    args = cli.parse_args()
    walls, per_model = [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
            seconds, candidates = run_once(Path(scratch))
        walls.append(seconds)
        per_model.append(candidates)
        print(
            f"run {run}/{args.runs}: train stage {seconds:.1f} s ({len(candidates)} candidates)",
            flush=True,
        )
    medians = {
        f"{c['task']}/{c['model']}": round(
            statistics.median(run[i]["seconds"] for run in per_model), 2
        )
        for i, c in enumerate(per_model[0])
    }
    result = {
        "benchmark": "train stage wall time, default 8,000-row cohort",
        "machine": f"{os.cpu_count()} cores",
        "runs": args.runs,
        "wall_seconds": [round(w, 2) for w in walls],
        "median_wall_seconds": round(statistics.median(walls), 2),
        "target_seconds": 180,
        "median_seconds_per_candidate": medians,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"median {result['median_wall_seconds']} s over {args.runs} runs "
        f"(target {result['target_seconds']} s) -> {args.out}"
    )


if __name__ == "__main__":
    main()
