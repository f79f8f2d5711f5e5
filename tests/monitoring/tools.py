"""The Debian binaries the monitoring tests run, and a process that is always stopped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

# binary -> the Debian package that installs it (.ci/run installs them in CI)
PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


def require(binary: str) -> str:
    """The binary's path; skip where it is missing, but fail in CI, which must install it."""
    path = shutil.which(binary)
    if path:
        return path
    package = PACKAGES[binary]
    if os.environ.get("CI"):
        pytest.fail(f"{binary} missing: CI must install Debian's {package} (.ci/run)")
    pytest.skip(f"{binary} not installed (apt-get install {package})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


class Process:
    """A background process with its output in a file, ended by `stop` (SIGTERM, then kill)."""

    def __init__(self, argv: list[str], log: Path):
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
