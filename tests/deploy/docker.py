"""The Docker engine and the service image for the deployment tests.

The engine is Debian's docker.io, started by `.ci/run` in CI (as root: `dockerd
--iptables=false --bridge=none`; containers use the host's network or none). Where no
engine answers, the tests skip, naming the package; under CI=true they fail instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "build" / "wheelhouse"
LOCAL_BASE = "migraine-base:bookworm"  # deploy/base-image.sh, from Debian's packages
SLIM_BASE = "python:3.11-slim-bookworm"  # the Dockerfile's default, where it can be pulled
# the image's Python and platform, as `make wheelhouse` asks for them
WHEEL_TARGET = (
    "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux_2_28_x86_64",
)  # fmt: skip


def _unavailable(reason: str, package: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install and start Debian's {package} (.ci/run)")
    pytest.skip(f"{reason} (apt-get install {package}; start dockerd as root)")


def docker(*argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def require_engine() -> None:
    if shutil.which("docker") is None:
        _unavailable("no docker command", "docker.io")
    if docker("info", "--format", "{{.ServerVersion}}", timeout=30, check=False).returncode:
        _unavailable("no Docker engine answers", "docker.io")


def _has_image(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def _pulled(tag: str) -> bool:
    """Whether a registry gave us `tag` (GitHub's runners); none is reachable here."""
    return docker("pull", "--quiet", tag, timeout=300, check=False).returncode == 0


def base_image() -> str:
    """A bookworm base with python3: the local one, built offline if need be."""
    for tag in (os.environ.get("MIGRAINE_BASE_IMAGE"), LOCAL_BASE, SLIM_BASE):
        if tag and _has_image(tag):
            return tag
    if _pulled(SLIM_BASE):
        return SLIM_BASE
    if shutil.which("mmdebstrap") is None or os.geteuid() != 0:
        _unavailable(f"no base image ({LOCAL_BASE} or {SLIM_BASE})", "mmdebstrap")
    subprocess.run([ROOT / "deploy" / "base-image.sh", LOCAL_BASE], check=True, timeout=600)
    return LOCAL_BASE


def fill_wheelhouse() -> None:
    """`make wheelhouse`: the serving wheels, fetched once (pip skips what is there).

    Locked: two test workers may build at once, and pip rewrites a wheel in place."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    with open(WHEELHOUSE.parent / "wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _download_wheels()


def _download_wheels() -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
         *WHEEL_TARGET, "-r", ROOT / "requirements-serve.lock", "-d", WHEELHOUSE],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip


def build_context(target: Path, deployment: Path) -> Path:
    """The repository's Dockerfile and code with `deployment`'s models and dvc.lock."""
    for name in ("Dockerfile", ".dockerignore", "requirements-serve.lock"):
        shutil.copy(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("app", "migraine_ml"):
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    shutil.copytree(WHEELHOUSE, target / "build" / "wheelhouse", copy_function=_link_or_copy)
    shutil.copytree(deployment / "models", target / "models")
    shutil.copy(deployment / "dvc.lock", target / "dvc.lock")
    (target / "reports").mkdir()
    shutil.copy(ROOT / "reports" / "metrics.json", target / "reports" / "metrics.json")
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem (a tmpfs /tmp)
        shutil.copy2(source, target)


def build(context: Path, tag: str, base: str) -> None:
    docker("build", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(context), timeout=900)


HARDENED = (
    "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--tmpfs", "/tmp", "--tmpfs", "/dev/shm",
)  # fmt: skip


class Container:
    """`docker run -d` of the image; always removed, its log kept for the assertion."""

    def __init__(self, image: str, *options: str, name: str):
        self.name = name
        docker("rm", "--force", "--volumes", name, check=False)
        started = docker("run", "-d", "--name", name, *options, image, check=False)
        if started.returncode != 0:  # a created but unstarted container stays otherwise
            self.remove()
            raise AssertionError(f"docker run {image} failed: {started.stderr}")

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def health(self) -> str:
        state = json.loads(docker("inspect", self.name).stdout)[0]["State"]
        return state.get("Health", {}).get("Status", "none") if state["Running"] else "exited"

    def uids(self) -> list[int]:
        rows = docker("top", self.name, "-eo", "pid,uid").stdout.splitlines()[1:]
        return [int(row.split()[1]) for row in rows]

    def remove(self) -> None:
        # -v: the anonymous volume of the image's VOLUME goes too, not one per test run
        docker("rm", "--force", "--volumes", self.name, check=False)


def wait_for(url: str, container: Container, status: int = 200, seconds: float = 120) -> str:
    """The body once `url` answers `status`; fails with the container's log otherwise."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                last = (response.status, response.read().decode())
        except urllib.error.HTTPError as err:
            last = (err.code, err.read().decode())
        except OSError as err:
            last = (None, repr(err))
        if last[0] == status:
            return last[1]
        if container.health() == "exited":
            break
        time.sleep(0.25)
    raise AssertionError(f"{url} answered {last}, not {status}:\n{container.logs()[-3000:]}")


STANDINS = Path(__file__).parent / "standins"
# Official images the local stack names, made from Debian's packages where no registry is
# reachable: tag -> (packages, mmdebstrap hooks, docker import changes)
STANDIN_IMAGES = {
    "migraine-standin-postgres:15": (
        "postgresql-15",
        [f"--customize-hook=copy-in {STANDINS / 'postgres-entrypoint.sh'} /usr/local/bin"],
        [
            "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin",
            'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]',
        ],
    ),
    "migraine-standin-prometheus:debian": (
        "prometheus,wget",
        [],
        ['ENTRYPOINT ["/usr/bin/prometheus"]'],
    ),
}


def standin_image(tag: str, scratch: Path, official: str) -> str:
    """The `official` image where a registry gives it; else `tag`, built with mmdebstrap
    unless the engine has it already."""
    if _has_image(official) or _pulled(official):
        return official
    if _has_image(tag):
        return tag
    if shutil.which("mmdebstrap") is None or os.geteuid() != 0:
        _unavailable(f"no {tag} image", "mmdebstrap")
    packages, hooks, changes = STANDIN_IMAGES[tag]
    tar = scratch / f"{tag.replace(':', '-')}.tar"
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", f"--include={packages}", *hooks, "bookworm", tar],
        check=True, timeout=900, capture_output=True,
    )  # fmt: skip
    docker("import", *(f"--change={change}" for change in changes), str(tar), tag, timeout=300)
    tar.unlink()
    return tag
