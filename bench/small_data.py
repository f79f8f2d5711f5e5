"""Benchmark: the pipeline on small tables, as a user with their own data runs it.

For each example table: a scratch copy of the pipeline (a git + DVC repository,
like the tests'), `migraine schema` drafts the schema, then `dvc repro` runs up
to `features`, and the `train` and `evaluate` stages are timed one by one
(`dvc repro -s`). Records each stage's wall time and what evaluation found:
the champion's primary score against the reference model's, and how it was
estimated. Results go to reports/bench/small_data.json.

    python bench/small_data.py                       # every table
    python bench/small_data.py --tables diary_400    # one
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migraine_ml.data.examples import (  # noqa: E402
    clinical_table,
    headache_diary,
    yes_no_cohort,
)

PIPELINE = (".gitignore", "dvc.yaml", "params.yaml", "schemas", "stages", "migraine_ml")
NO_ENGINEERING = {  # the default engineering names migraine columns: cleared, as docs say
    "health_indices": None,
    "interaction_pairs": [],
    "polynomial_columns": [],
    "bins": None,
}


def diary_400(seed: int) -> pd.DataFrame:
    """A 400-row, 7-class table: the diary with its largest classes thinned."""
    diary = headache_diary(seed=seed).drop_duplicates()
    keep = {"tension": 130, "migraine_without_aura": 80, "migraine_with_aura": 60}
    parts = [
        rows.sample(n=min(len(rows), keep.get(kind, len(rows))), random_state=seed)
        for kind, rows in diary.groupby("headache_type")
    ]
    return pd.concat(parts).sort_index()


TABLES = {
    # name: (frame, target, extra schema roles)
    "diary_400": (diary_400, "headache_type", ("--group", "patient_id")),
    "headache_clinic": (lambda seed: clinical_table(seed=seed), "diagnosis", ()),
    "headache_diary": (
        lambda seed: headache_diary(seed=seed),
        "headache_type",
        ("--group", "patient_id"),
    ),
    "headache_yes_no": (
        lambda seed: yes_no_cohort(seed=seed),
        "headache",
        ("--regression-target", "pain_score"),
    ),
}


def _run(repo: Path, *command: str) -> float:
    env = dict(
        os.environ,
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    started = time.perf_counter()
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return round(time.perf_counter() - started, 1)


def bench_table(name: str, scratch: Path, seed: int) -> dict:
    make, target, roles = TABLES[name]
    repo = scratch / name
    repo.mkdir()
    for item in PIPELINE:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, repo / item)
    frame = make(seed)
    csv = repo / "data" / "own" / f"{name}.csv"
    csv.parent.mkdir(parents=True)
    frame.to_csv(csv, index=False)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"] |= {"path": f"data/own/{name}.csv", "schema": f"schemas/{name}.yaml"}
    params["features"] |= NO_ENGINEERING
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (("git", "init", "-q"), (sys.executable, "-m", "dvc", "init", "-q")):
        _run(repo, *command)
    schema = (sys.executable, "-m", "migraine_ml.cli", "schema", "--data", str(csv))
    _run(repo, *schema, "--target", target, *roles, "--out", f"schemas/{name}.yaml")
    identity = ("-c", "user.email=bench@example.invalid", "-c", "user.name=bench")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", *identity, "commit", "-qm", "table and schema")  # dvclive needs a commit
    # generate is not upstream of another table, but evaluate reads its oracle file
    dvc_repro = (sys.executable, "-m", "dvc", "repro")
    seconds = {"up_to_features": _run(repo, *dvc_repro, "generate", "features")}
    for stage in ("train", "evaluate"):
        seconds[stage] = _run(repo, *dvc_repro, "-s", stage)
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    details = json.loads((repo / "reports" / "evaluation.json").read_text())
    result = {"rows": len(frame), "classes": int(frame[target].nunique()), "seconds": seconds}
    for task, scores in metrics.items():
        if task == "gate_passed":
            continue
        primary = details[task]["primary"]
        result[task] = {
            "primary": primary,
            "method": details[task]["method"],
            "champion": details[task]["names"]["champion"],
            "champion_score": scores["champion"][primary],
            "reference_score": scores["reference"][primary],
            "champion_minus_reference": scores["champion_vs_reference"],
            "dummy_score": scores["dummy"][primary],
        }
    result["gate_passed"] = metrics["gate_passed"]
    return result


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    cli.add_argument("--seed", type=int, default=42)
    cli.add_argument("--out", default=str(ROOT / "reports" / "bench" / "small_data.json"))
    args = cli.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    with tempfile.TemporaryDirectory(prefix="migraine-bench-small-") as scratch:
        for name in args.tables:
            results[name] = bench_table(name, Path(scratch), args.seed)
            results["machine"] = f"{os.cpu_count()} cores"
            print(name, json.dumps(results[name]), flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2) + "\n")  # after each table


if __name__ == "__main__":
    main()
