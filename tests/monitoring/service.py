"""The real gunicorn service for the monitoring tests, on the helper tests/app uses."""

from __future__ import annotations

import signal
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

try:  # the helper may move to a shared module
    from tests.app.servers import Gunicorn
except ImportError:
    from tests.app.test_gunicorn import Gunicorn


class Service:
    """Gunicorn whose output is drained in the background (a full pipe would block it)."""

    def __init__(self, deployment: Path, tmp: Path, **env: str):
        self.gunicorn = Gunicorn(deployment, tmp, **env)
        self.url = self.gunicorn.url
        self.address = f"127.0.0.1:{self.gunicorn.port}"
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        for line in self.gunicorn.process.stdout:
            self.lines.append(line)

    def wait_until_up(self) -> None:
        self.gunicorn.wait_until_up()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def stop(self) -> str:
        process = self.gunicorn.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reader.join(timeout=5)
        process.stdout.close()
        return "".join(self.lines)
