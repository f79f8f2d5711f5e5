"""Benchmark: the service image's size and its start-to-ready time.

Builds the image as `make image` does (from build/wheelhouse, on --base), then starts it
--runs times hardened as docs/deployment.md runs it (read-only, no capabilities, tmpfs
/tmp and /dev/shm, the host's network) and times `docker run` to the first 200 from
/ready: gunicorn's start, three workers importing the libraries and loading and verifying
models/ against dvc.lock. Results go to reports/bench/image.json.

    python bench/image.py --base migraine-base:bookworm
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from serve import free_port  # bench/serve.py's, beside this script

ROOT = Path(__file__).resolve().parents[1]
TAG = "migraine-mlops:bench"
HARDENED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--tmpfs", "/tmp", "--tmpfs", "/dev/shm", "--network", "host"]  # fmt: skip


def docker(*argv: str) -> str:
    return subprocess.run(["docker", *argv], check=True, capture_output=True, text=True).stdout


def start_to_ready(port: int) -> float:
    began = time.monotonic()
    container = docker("run", "-d", *HARDENED, "-e", f"PORT={port}", TAG).strip()
    try:
        while time.monotonic() - began < 180:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                    return time.monotonic() - began
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise SystemExit(f"not ready within 180 s:\n{docker('logs', container)}")
    finally:
        docker("rm", "--force", "--volumes", container)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="migraine-base:bookworm")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "image.json")
    args = parser.parse_args()

    subprocess.run(["make", "-C", str(ROOT), "wheelhouse"], check=True)
    began = time.monotonic()
    docker("build", "--build-arg", f"BASE_IMAGE={args.base}", "-t", TAG, str(ROOT))
    build_seconds = time.monotonic() - began
    size_bytes = int(docker("image", "inspect", TAG, "--format", "{{.Size}}"))
    base_bytes = int(docker("image", "inspect", args.base, "--format", "{{.Size}}"))
    times = []
    for run in range(args.runs):
        times.append(start_to_ready(free_port()))
        print(f"run {run + 1}/{args.runs}: ready after {times[-1]:.2f} s", file=sys.stderr)
    result = {
        "image": TAG,
        "base_image": args.base,
        "size_mb": round(size_bytes / 1e6, 1),
        "base_size_mb": round(base_bytes / 1e6, 1),
        "size_goal_mb": 600,
        "build_seconds": round(build_seconds, 1),
        "start_to_ready_seconds": {
            "median": round(statistics.median(times), 2),
            "min": round(min(times), 2),
            "max": round(max(times), 2),
            "runs": [round(t, 2) for t in times],
        },
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
