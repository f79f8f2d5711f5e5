"""Benchmark: the prediction service against the usual alternatives, side by side.

One run measures, one after the other on this machine, single-record POST
requests at concurrency 8 with `hey` (load generator on the same machine):

  service    our gunicorn service (validation, metrics, prediction log on)
  mlflow     `mlflow models serve` on the same champion pipeline, logged to a
             throwaway MLflow store
  plain      Flask + gunicorn calling predict_proba on a one-row DataFrame
  hello      Flask hello-world on gunicorn (the framework's ceiling)

and the server time of a 1,000-record batch on our service. Results go to
reports/bench/serve.json. Needs `make repro` (models/) and `hey` on PATH.

    python bench/serve.py --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, body: bytes, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def hey(url: str, body_file: Path, *, seconds: int, concurrency: int) -> dict:
    out = subprocess.run(
        [
            "hey",
            "-z",
            f"{seconds}s",
            "-c",
            str(concurrency),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-D",
            str(body_file),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentile = dict(re.findall(r"(\d+)% in ([\d.]+) secs", out))
    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    return {
        "requests_per_second": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]), 1),
        "p50_ms": round(float(percentile["50"]) * 1000, 2),
        "p99_ms": round(float(percentile["99"]) * 1000, 2),
        "statuses": {k: int(v) for k, v in statuses.items()},
    }


def gunicorn(app: str, port: int, env: dict, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "app/gunicorn.conf.py", "-w", str(workers), app],
        cwd=ROOT,
        env=env | {"PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def log_champion(store: Path) -> str:
    """The champion pipeline in a throwaway MLflow store; returns its model URI."""
    script = f"""
import mlflow, json
from migraine_ml import persist
from migraine_ml.modeling import tracking
mlflow.set_tracking_uri("sqlite:///{store / "mlflow.db"}")
path = "models/classifier-champion.skops"
with mlflow.start_run():
    info = mlflow.sklearn.log_model(
        persist.load(path), name="model", serialization_format="skops",
        skops_trusted_types=persist.trusted_types(path), pyfunc_predict_fn="predict_proba",
        pip_requirements=tracking.serving_requirements(),
        code_paths=["migraine_ml"])
print(info.model_uri)
"""
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def batch_server_time(url: str, records: list[dict], repeats: int = 30) -> dict:
    body = json.dumps({"records": records}).encode()
    walls, model = [], []
    for _ in range(repeats):
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            timing = response.headers["Server-Timing"]
        walls.append((time.perf_counter() - started) * 1000)
        model.append(float(timing.split("dur=")[1]))
    return {
        "records": len(records),
        "repeats": repeats,
        "median_round_trip_ms": round(statistics.median(walls), 2),
        "median_model_ms": round(statistics.median(model), 2),
    }


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=int, default=10)
    cli.add_argument("--concurrency", type=int, default=8)
    cli.add_argument("--workers", type=int, default=3)
    cli.add_argument("--out", default=str(ROOT / "reports" / "bench" / "serve.json"))
    args = cli.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PROMETHEUS_MULTIPROC_DIR": str(scratch / "prometheus"),
        "MIGRAINE_PREDICTION_LOG": str(scratch / "predictions.db"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    reference = json.loads((ROOT / "models" / "reference.json").read_text())
    sys.path.insert(0, str(ROOT))
    from app.openapi import example_record
    from migraine_ml.data.schema import schema_from_dict

    record = example_record(schema_from_dict(manifest["schema"]), reference)
    body_file = scratch / "record.json"
    body_file.write_text(json.dumps(record))
    mlflow_body = scratch / "mlflow.json"
    mlflow_body.write_text(json.dumps({"dataframe_records": [record]}))

    results = {}
    targets = [
        ("service", "app:create_app()", body_file),
        ("plain", "bench.plain_app:app", body_file),
        ("hello", "bench.hello_app:app", body_file),
    ]
    for name, app, body in targets:
        port = free_port()
        process = gunicorn(app, port, env, args.workers)
        try:
            url = f"http://127.0.0.1:{port}/predict"
            wait_for(url, body.read_bytes())
            results[name] = hey(url, body, seconds=args.seconds, concurrency=args.concurrency)
            if name == "service":
                results["service_batch_1000"] = batch_server_time(url, [record] * 1000)
        finally:
            stop(process)
        print(name, results[name], flush=True)

    port = free_port()
    uri = log_champion(scratch)
    process = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env | {"MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        wait_for(url, mlflow_body.read_bytes())
        results["mlflow"] = hey(
            url, mlflow_body, seconds=args.seconds, concurrency=args.concurrency
        )
    finally:
        stop(process)
    print("mlflow", results["mlflow"], flush=True)

    service = results["service"]["requests_per_second"]
    summary = {
        "benchmark": (
            f"single-record POST /predict, hey -z {args.seconds}s -c "
            f"{args.concurrency}, load generator on the same 2-core machine"
        ),
        "workers": args.workers,
        "results": results,
        "ratios": {
            "service_vs_mlflow": round(service / results["mlflow"]["requests_per_second"], 1),
            "service_vs_plain": round(service / results["plain"]["requests_per_second"], 1),
            "service_vs_hello": round(service / results["hello"]["requests_per_second"], 2),
        },
        "targets": {"requests_per_second": 1500, "p99_ms": 15, "batch_1000_server_ms": 30},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["ratios"]), "->", args.out)


if __name__ == "__main__":
    main()
