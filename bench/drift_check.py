"""Benchmark: one drift check over a window of the default cohort, against a 50 ms budget.

The window is `--rows` rows of data/raw/synthetic.csv with the champion's
scores for every output of both tasks (each class's probability, the
severity) and a label on every row, so every statistic runs: PSI, KS and the
effect size on each numeric feature, PSI and the two-sample chi-square on each
categorical one, prediction PSI per output and the accuracy. The reference is
models/reference.json (what the service loads); without it, `input_profile`
of the CSV's first 80 % of rows. Two timings: the check against a
`DriftReference` prepared once (what the monitor does) and against the raw
dict (preparing it inside every check). Results go to reports/bench/drift_check.json.

    python bench/drift_check.py
    python bench/drift_check.py --rows 5000 --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migraine_ml.data.schema import load_schema  # noqa: E402
from migraine_ml.monitoring.drift import DriftReference, check_drift  # noqa: E402
from migraine_ml.monitoring.reference import (  # noqa: E402
    INPUTS,
    NUMERIC,
    PREDICTIONS,
    SAMPLE,
    input_profile,
    prediction_profiles,
)

BUDGET_MS = 50.0


def _reference(path: Path, cohort: pd.DataFrame, schema_path: Path) -> tuple[dict, str]:
    if path.exists():
        return json.loads(path.read_text()), str(path.relative_to(ROOT))
    train = cohort.iloc[: int(len(cohort) * 0.8)]
    scores = np.random.default_rng(0).beta(2, 4, len(train))
    profile = input_profile(train, load_schema(schema_path))
    outputs = prediction_profiles({"0": 1 - scores, "1": scores})
    return {INPUTS: profile, PREDICTIONS: {"classification": outputs}}, (
        "input_profile of the first 80 % of the CSV (no models/reference.json)"
    )


def _timed(reference, window, runs: int, **inputs) -> list[float]:
    check_drift(reference, window, **inputs)  # warm-up: imports, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        check_drift(reference, window, **inputs)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--data", type=Path, default=ROOT / "data" / "raw" / "synthetic.csv")
    cli.add_argument("--schema", type=Path, default=ROOT / "schemas" / "migraine.yaml")
    cli.add_argument("--reference", type=Path, default=ROOT / "models" / "reference.json")
    cli.add_argument("--rows", type=int, default=1000, help="rows in the window")
    cli.add_argument("--runs", type=int, default=50, help="timed checks per variant")
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "drift_check.json")
    args = cli.parse_args()

    cohort = pd.read_csv(args.data)
    reference, source = _reference(args.reference, cohort, args.schema)
    rng = np.random.default_rng(args.seed)
    window = cohort.sample(n=args.rows, random_state=args.seed).reset_index(drop=True)
    predictions = {
        task: {
            output: rng.choice(np.asarray(profile[SAMPLE]), args.rows)
            for output, profile in outputs.items()
        }
        for task, outputs in reference[PREDICTIONS].items()
    }
    outcomes = rng.binomial(1, 0.35, args.rows)
    predicted = np.where(rng.random(args.rows) < 0.75, outcomes, 1 - outcomes)
    inputs = dict(predictions=predictions, outcomes=outcomes, predicted=predicted, test_value=0.75)

    prepared = DriftReference.from_dict(reference)
    timings = {
        "prepared_reference": _timed(prepared, window, args.runs, **inputs),
        "reference_dict": _timed(reference, window, args.runs, **inputs),
    }
    report = check_drift(prepared, window, **inputs)
    kinds = [profile["kind"] for profile in reference[INPUTS].values()]
    median_ms = {name: round(statistics.median(t), 2) for name, t in timings.items()}
    result = {
        "rows": args.rows,
        "runs": args.runs,
        "reference": source,
        "features": {
            "numeric": kinds.count(NUMERIC),
            "categorical": len(kinds) - kinds.count(NUMERIC),
        },
        "prediction_outputs": {task: sorted(outputs) for task, outputs in predictions.items()},
        "labels": int(report.performance.labels),
        "median_ms": median_ms,
        "p90_ms": {name: round(float(np.percentile(t, 90)), 2) for name, t in timings.items()},
        "budget_ms": BUDGET_MS,
        "within_budget": median_ms["prepared_reference"] <= BUDGET_MS,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
