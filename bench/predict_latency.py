"""Benchmark: in-process /predict latency, numpy fast path vs the scikit-learn pipeline.

For a trained models/ directory (the default cohort, or your own data after
`dvc exp run -S data.path=... -S data.schema=...`), one run sends the same
single records through the Flask test client to two copies of the app, one
with the fast path and one without, alternating request by request so both
see the same machine load. Network and gunicorn are left out: this isolates
what the service itself spends. Results are added to
reports/bench/predict_latency.json under --label.

    python bench/predict_latency.py --label default
    python bench/predict_latency.py --repo /path/to/clone --label headache_diary
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from app import create_app

ROOT = Path(__file__).resolve().parents[1]


def _client(repo: Path, log_dir: Path, *, fast: bool):
    app = create_app(
        {
            "MODELS_DIR": str(repo / "models"),
            "DVC_LOCK": str(repo / "dvc.lock"),
            "PREDICTION_LOG": str(log_dir / f"predictions-{fast}.db"),
            "FAST_PATH": fast,
        }
    )
    return app.test_client()


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--repo", type=Path, default=ROOT, help="holds models/ and dvc.lock")
    cli.add_argument("--label", required=True, help="name of this dataset in the results")
    cli.add_argument("--requests", type=int, default=500, help="per variant")
    cli.add_argument(
        "--out", type=Path, default=ROOT / "reports" / "bench" / "predict_latency.json"
    )
    args = cli.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        clients = {
            "fast_path": _client(args.repo, Path(logs), fast=True),
            "scikit_learn": _client(args.repo, Path(logs), fast=False),
        }
        spec = clients["fast_path"].get("/openapi.json").get_json()
        content = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
        record = content["application/json"]["example"]
        serving = {
            m["file"]: m["serving"] for m in clients["fast_path"].get("/model").get_json()["models"]
        }
        timings: dict[str, list[float]] = {name: [] for name in clients}
        for i in range(args.requests + 20):  # the first 20 warm up
            for name, client in clients.items():
                started = time.perf_counter()
                response = client.post("/predict", json=record)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.get_json()
                if i >= 20:
                    timings[name].append(elapsed)
    medians = {name: statistics.median(t) * 1000 for name, t in timings.items()}
    result = {
        "requests_per_variant": args.requests,
        "median_ms": {name: round(ms, 3) for name, ms in medians.items()},
        "speedup": round(medians["scikit_learn"] / medians["fast_path"], 1),
        "serving": serving,
        "schema": spec["info"]["description"],
    }
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.label] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({args.label: result}, indent=2))


if __name__ == "__main__":
    main()
