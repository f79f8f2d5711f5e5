"""The real gunicorn on a free loopback port, for the integration tests that need a server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, body: dict | None = None, timeout: float = 10):
    """(status, body text, headers) of a GET, or a POST of `body` as JSON."""
    data = json.dumps(body).encode() if body is not None else None
    sent = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


class Gunicorn:
    """gunicorn serving `deployment`; `env` adds or overrides settings.

    With `drain=True` a thread reads its output as it comes (a full pipe would
    block the workers' logging); `stop()` returns the output either way.
    """

    def __init__(self, deployment: Path, tmp: Path, *, drain: bool = False, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            PORT=str(self.port),
            WEB_CONCURRENCY="2",
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"),
            MIGRAINE_MODELS_DIR=str(deployment / "models"),
            MIGRAINE_DVC_LOCK=str(deployment / "dvc.lock"),
            MIGRAINE_PREDICTION_LOG=str(deployment / "predictions.db"),
            MIGRAINE_DRIFT_EVENTS=str(tmp / "drift-events.jsonl"),
        )
        self.env.update(env)
        self.lines: list[str] | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = None
        if drain:
            self.lines = []
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        """What gunicorn printed so far (with drain=True)."""
        return "".join(self.lines or [])

    def wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.output() if self._reader else self.process.stdout.read()
                raise AssertionError(f"gunicorn exited:\n{out}")
            try:
                if request(self.url + "/health", timeout=1)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("gunicorn did not come up")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        if self._reader is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self._reader.join(timeout=5)
            self.process.stdout.close()
            return self.output()
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out
