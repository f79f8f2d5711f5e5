"""Benchmark: the prediction service against a Flask hello-world, side by side, with wrk.

Single-record POST /predict requests, `wrk -t1 -c8 --latency` (load generator on
the same machine), against servers that are all started once, with the same
gunicorn config file (app/gunicorn.conf.py) and worker count, warmed up, then
measured in interleaved rounds once the machine is quiet after their start-up
(each round visits every server, in a rotated
order), so that the other work on a shared machine hits them all alike:

  service      our gunicorn service, monitoring on (validation, metrics,
               prediction log)
  service_off  the same with MIGRAINE_PREDICTION_LOG=off (no prediction log)
  hello        Flask hello-world on gunicorn (bench/hello_app.py: the framework's
               ceiling)

Reported per server: every round's req/s and their median, latency percentiles
(median over rounds), non-2xx responses and socket errors; and the two ratios the
service is held to, each the ratio of the medians with the per-round ratios beside:

  service_vs_hello       goal >= 0.45
  monitoring_on_vs_off   goal >= 0.9

Then, once each (they are 20-30x slower, so a ratio to a tenth is plenty): `plain`
(Flask + gunicorn calling predict_proba on a one-row DataFrame), `mlflow`
(`mlflow models serve` on the same champion, logged to a throwaway MLflow store),
both with wrk; and the server time of a 1,000-record batch on our service.
Results go to reports/bench/serve.json. Needs models/ (`dvc repro`) and `wrk`.

    python bench/serve.py                 # 5 rounds x 10 s per server, plus plain/mlflow
    python bench/serve.py --quick         # 2 rounds x 3 s, no plain/mlflow, prints only

Why wrk and not `hey` (which this used before): hey is a Go client that needs
several times wrk's CPU per request; on two cores shared with the servers, it
held the hello-world (cheap requests, so the client's share is large) down more
than the service, which flattered the service (0.58 with hey, 0.34-0.40 with wrk
in the same week). wrk is one C thread.

gunicorn's sync worker does not keep connections alive (every response says
`Connection: close`), so with sync workers each wrk request is a new TCP
connection for both servers alike; the report records the worker class.

Where a request's CPU goes (py-spy and cProfile, one worker, monitoring on,
wrk -t1 -c8, see bench/README.md for the method and figures).
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
CONFIG = ROOT / "app" / "gunicorn.conf.py"

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {{\\"requests\\": %.0f, \\"duration_us\\": %.0f, \\"connect\\": %.0f, " ..
    "\\"read\\": %.0f, \\"write\\": %.0f, \\"timeout\\": %.0f, \\"non_2xx\\": %.0f, " ..
    "\\"p50_us\\": %.0f, \\"p90_us\\": %.0f, \\"p99_us\\": %.0f, \\"max_us\\": %.0f}}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


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


def busy_fraction(seconds: float = 1.0) -> float:
    """The machine's CPU busy share over `seconds` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1)


def settle(limit: float = 0.25, timeout: float = 90) -> float:
    """Wait until start-up work is over (model loading in every worker, the drift
    monitor processes): the machine below `limit` busy, or `timeout` seconds.
    Returns the last busy share; measuring before this would charge start-up to
    the first round of whichever server started last."""
    deadline = time.monotonic() + timeout
    busy = busy_fraction()
    while busy > limit and time.monotonic() < deadline:
        busy = busy_fraction()
    return busy


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(" Copyright")[0] if out else "unknown"


def wrk(url: str, script: Path, *, seconds: float, connections: int) -> dict:
    """One wrk run: req/s, latency percentiles (ms), errors."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    raw = json.loads(re.search(r"^WRK_JSON (.*)$", out, re.M)[1])
    return {
        "requests_per_second": round(raw["requests"] / raw["duration_us"] * 1e6, 1),
        "requests": int(raw["requests"]),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "non_2xx": int(raw["non_2xx"]),
        "socket_errors": {k: int(raw[k]) for k in ("connect", "read", "write", "timeout")},
    }


def gunicorn(
    app: str, port: int, env: dict, workers: int, cwd: Path, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    """gunicorn with the service's config file, run from `cwd` (a scratch directory, so
    that a relative path a server writes, such as an unsupported
    MIGRAINE_PREDICTION_LOG=off, lands there and not in the repository)."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(CONFIG), "-w", str(workers), *extra, app],
        cwd=cwd,
        env=env
        | {
            "PORT": str(port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def gunicorn_settings(env: dict, scratch: Path) -> dict:
    """The worker settings app/gunicorn.conf.py gives in this environment."""
    script = (
        "import json, runpy, sys; s = runpy.run_path(sys.argv[1]); "
        "print(json.dumps({k: s[k] for k in ('worker_class', 'threads', 'keepalive')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(CONFIG)],
        env=env | {"PROMETHEUS_MULTIPROC_DIR": str(scratch / "settings-prometheus")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def log_champion(store: Path, models_dir: Path) -> str:
    """The champion pipeline in a throwaway MLflow store; returns its model URI."""
    script = f"""
import mlflow, json
from migraine_ml import persist
from migraine_ml.modeling import tracking
mlflow.set_tracking_uri("sqlite:///{store / "mlflow.db"}")
path = "{models_dir / "classifier-champion.skops"}"
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


def summarise(rounds: list[dict]) -> dict:
    """Medians over rounds, with every round's req/s."""
    return {
        "requests_per_second": round(
            statistics.median(r["requests_per_second"] for r in rounds), 1
        ),
        "rounds_requests_per_second": [r["requests_per_second"] for r in rounds],
        **{
            key: round(statistics.median(r[key] for r in rounds), 2)
            for key in ("p50_ms", "p90_ms", "p99_ms")
        },
        "max_ms": max(r["max_ms"] for r in rounds),
        "requests": sum(r["requests"] for r in rounds),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": {
            key: sum(r["socket_errors"][key] for r in rounds)
            for key in ("connect", "read", "write", "timeout")
        },
    }


def ratio(results: dict, a: str, b: str) -> dict:
    ra, rb = results[a]["rounds_requests_per_second"], results[b]["rounds_requests_per_second"]
    per_round = [round(x / y, 3) for x, y in zip(ra, rb, strict=True)]
    return {
        "ratio_of_medians": round(
            results[a]["requests_per_second"] / results[b]["requests_per_second"], 3
        ),
        "per_round": per_round,
        "median_of_rounds": round(statistics.median(per_round), 3),
    }


def log_rows(path: Path) -> int | None:
    import sqlite3

    if not path.exists():
        return None
    try:
        with sqlite3.connect(path) as connection:
            return connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    except sqlite3.Error:  # another layout of the log
        return None


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=float, default=10, help="per wrk round")
    # 5: single rounds on this shared 2-core machine spread by +-15 %, and a median of 3
    # moved the monitoring on/off ratio by as much as the margin it is judged by
    cli.add_argument("--rounds", type=int, default=5)
    cli.add_argument("--warmup", type=float, default=3, help="seconds of wrk per server first")
    cli.add_argument("--connections", type=int, default=8)
    cli.add_argument("--workers", type=int, default=3)
    cli.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds x 3 s, no plain/mlflow/batch; writes only with an explicit --out",
    )
    cli.add_argument(
        "--servers",
        default="service,service_off,hello",
        help="comma-separated subset of service,service_off,hello",
    )
    cli.add_argument(
        "--gunicorn-arg",
        action="append",
        default=[],
        help="extra gunicorn command-line argument for every server (repeatable), "
        "e.g. --gunicorn-arg=--threads=2",
    )
    cli.add_argument("--out", default=None)
    args = cli.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.warmup = min(args.seconds, 3), min(args.rounds, 2), 1
    out_path = args.out or (None if args.quick else str(ROOT / "reports/bench/serve.json"))

    scratch = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    base_env = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    # MIGRAINE_MODELS_DIR (with MIGRAINE_DVC_LOCK) serves another copy of the models
    models_dir = Path(os.environ.get("MIGRAINE_MODELS_DIR", ROOT / "models"))
    base_env["BENCH_MODEL"] = str(models_dir / "classifier-champion.skops")
    base_env.pop("MIGRAINE_PREDICTION_LOG", None)
    base_env.pop("MIGRAINE_PROMETHEUS_MULTIPROC_DIR", None)
    manifest = json.loads((models_dir / "manifest.json").read_text())
    reference = json.loads((models_dir / "reference.json").read_text())
    sys.path.insert(0, str(ROOT))
    from app.openapi import example_record
    from migraine_ml.data.schema import schema_from_dict

    record = example_record(schema_from_dict(manifest["schema"]), reference)
    body = json.dumps(record)
    script = scratch / "post.lua"
    script.write_text(LUA.format(body=body))
    mlflow_body = json.dumps({"dataframe_records": [record]})
    mlflow_script = scratch / "mlflow.lua"
    mlflow_script.write_text(LUA.format(body=mlflow_body))

    def server_env(name: str, log: str) -> dict:
        return base_env | {
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / name / "prometheus"),
            "MIGRAINE_PREDICTION_LOG": log,
        }

    available = {
        "service": ("app:create_app()", str(scratch / "service" / "predictions.db")),
        "service_off": ("app:create_app()", "off"),
        "hello": ("bench.hello_app:app", str(scratch / "hello" / "predictions.db")),
    }
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    extra = tuple(args.gunicorn_arg)
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    results: dict = {}
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    try:
        for name in names:
            app, log = available[name]
            port = free_port()
            process = gunicorn(
                app, port, server_env(name, log), args.workers, scratch / name, extra
            )
            servers[name] = (process, f"http://127.0.0.1:{port}/predict")
        for _, url in servers.values():
            wait_for(url, body.encode())
        print(f"machine busy {settle():.0%} after start-up", file=sys.stderr)
        for _, url in servers.values():
            wrk(url, script, seconds=args.warmup, connections=args.connections)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                figures = wrk(
                    servers[name][1], script, seconds=args.seconds, connections=args.connections
                )
                rounds[name].append(figures)
                print(f"round {r + 1} {name}: {figures}", flush=True)
        for name in names:
            results[name] = summarise(rounds[name])
        if "service" in servers and not args.quick:
            results["service_batch_1000"] = batch_server_time(
                servers["service"][1], [record] * 1000
            )
    finally:
        for process, _ in servers.values():
            stop(process)

    monitoring = {}
    if "service" in names:
        monitoring["service_prediction_log_rows"] = log_rows(scratch / "service" / "predictions.db")
    if "service_off" in names:
        # before the switch exists, "off" is taken as a file name (in the scratch cwd)
        monitoring["prediction_log_off_honoured"] = not (scratch / "service_off" / "off").exists()

    if not args.quick:
        for name, app in (("plain", "bench.plain_app:app"),):
            port = free_port()
            process = gunicorn(app, port, server_env(name, "off"), args.workers, scratch / name)
            try:
                url = f"http://127.0.0.1:{port}/predict"
                wait_for(url, body.encode())
                wrk(url, script, seconds=1, connections=args.connections)
                results[name] = wrk(url, script, seconds=args.seconds, connections=args.connections)
            finally:
                stop(process)
            print(name, results[name], flush=True)

        port = free_port()
        uri = log_champion(scratch, models_dir)
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
            env=base_env | {"MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            wait_for(url, mlflow_body.encode())
            wrk(url, mlflow_script, seconds=1, connections=args.connections)
            results["mlflow"] = wrk(
                url, mlflow_script, seconds=args.seconds, connections=args.connections
            )
        finally:
            stop(process)
        print("mlflow", results["mlflow"], flush=True)

    ratios = {}
    if {"service", "hello"} <= set(names):
        ratios["service_vs_hello"] = ratio(results, "service", "hello")
    if {"service", "service_off"} <= set(names):
        ratios["monitoring_on_vs_off"] = ratio(results, "service", "service_off")
    if "service" in results:
        service = results["service"]["requests_per_second"]
        for other in ("plain", "mlflow"):
            if other in results:
                ratios[f"service_vs_{other}"] = round(
                    service / results[other]["requests_per_second"], 1
                )
    summary = {
        "benchmark": (
            f"single-record POST /predict, wrk -t1 -c{args.connections} -d{args.seconds:g}s "
            f"--latency, {args.rounds} interleaved rounds per server after a "
            f"{args.warmup:g} s warm-up, load generator on the same "
            f"{os.cpu_count()}-core machine; figures are medians over rounds"
        ),
        "load_generator": wrk_version(),
        "workers": args.workers,
        "gunicorn": gunicorn_settings(base_env, scratch) | {"extra_args": list(extra)},
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "results": results,
        "monitoring": monitoring,
        "ratios": ratios,
        "targets": {
            "service_vs_hello": 0.45,
            "monitoring_on_vs_off": 0.9,
            "p99_ms": 15,
            "batch_1000_server_ms": 30,
        },
    }
    print(json.dumps({"ratios": ratios, "monitoring": monitoring}, indent=2))
    if out_path:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_text(json.dumps(summary, indent=2) + "\n")
        print("->", out_path)


if __name__ == "__main__":
    main()
