"""Benchmark: the whole pipeline, generate -> evaluate, at several cohort sizes.

For each size, a scratch clone of this commit with `data.synthetic.rows` set to it runs
every stage of dvc.yaml in order (`dvc repro --single-item --force <stage>`: run even
where the outputs at that size are known) under GNU time:
wall seconds and peak RSS per stage (the largest process of the stage, DVC's own
included). Results go to reports/bench/scale.json, a plot of both against rows to
reports/bench/scale.png. A size that breaks a stage or its --stage-timeout is recorded
as such, and the larger sizes are not tried.

    python bench/scale.py --rows 8000,100000
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
GNU_TIME = "/usr/bin/time"  # its peak RSS (%M) covers the stage's processes
# the dvc beside this interpreter (the project's venv), whatever PATH says
DVC = str(Path(sys.executable).parent / "dvc")


def stages() -> list[str]:
    return list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


def clone(rows: int, scratch: Path) -> Path:
    repo = scratch / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
    params_file = repo / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["data"]["synthetic"]["rows"] = rows
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


def run_stage(repo: Path, stage: str, timeout: float) -> dict:
    usage = repo.parent / f"{stage}.time"
    began = time.monotonic()
    try:
        result = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", str(usage),
             DVC, "repro", "--single-item", "--force", stage],
            cwd=repo, capture_output=True, text=True, timeout=timeout,
            env=os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"seconds": None, "peak_rss_mb": None, "failed": f"timeout after {timeout:.0f} s"}
    seconds = time.monotonic() - began
    peak_kb = int(usage.read_text().split()[-1]) if usage.exists() else 0
    entry = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024, 1)}
    if result.returncode != 0:
        entry["failed"] = (result.stdout + result.stderr)[-2000:]
    return entry


def measure(rows: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"migraine-scale-{rows}-") as scratch:
        repo = clone(rows, Path(scratch))
        run = {"rows": rows, "stages": {}}
        for stage in stages():
            print(f"{rows:>9,} rows: {stage} ...", file=sys.stderr, flush=True)
            entry = run["stages"][stage] = run_stage(repo, stage, timeout)
            print(f"{rows:>9,} rows: {stage} {entry}", file=sys.stderr, flush=True)
            if "failed" in entry:
                run["failed"] = stage
                break
        csv = repo / "data" / "raw" / "synthetic.csv"
        run["csv_mb"] = round(csv.stat().st_size / 1e6, 1) if csv.exists() else None
    done = [s for s in run["stages"].values() if s["seconds"] is not None]
    run["total_seconds"] = round(sum(s["seconds"] for s in done), 1)
    run["peak_rss_mb"] = max(s["peak_rss_mb"] for s in done) if done else None
    return run


def plot(runs: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage in stages():
        points = [(r["rows"], r["stages"][stage]) for r in runs if stage in r["stages"]]
        points = [(n, s) for n, s in points if s["seconds"] is not None]
        if points:
            left.plot([n for n, _ in points], [s["seconds"] for _, s in points], "o-", label=stage)
            right.plot([n for n, _ in points], [s["peak_rss_mb"] for _, s in points], "o-")
    for axis, label in ((left, "wall seconds"), (right, "peak RSS, MB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("rows")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle("pipeline cost against cohort size (bench/scale.py)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="8000,100000")
    parser.add_argument("--stage-timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "scale.json")
    args = parser.parse_args()
    if not Path(GNU_TIME).exists():
        raise SystemExit(f"{GNU_TIME} missing: apt-get install time")
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    runs = []
    for rows in (int(n) for n in args.rows.split(",")):
        runs.append(measure(rows, args.stage_timeout))
        if "failed" in runs[-1]:
            break
    result = {
        "benchmark": "dvc repro, stage by stage, of a scratch clone at each cohort size",
        "commit": commit,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(runs, args.out.with_suffix(".png"))
    print(json.dumps(result, indent=2))
    if "failed" in runs[-1]:
        raise SystemExit(f"{runs[-1]['rows']:,} rows: the {runs[-1]['failed']} stage failed")


if __name__ == "__main__":
    main()
