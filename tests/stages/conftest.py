"""Helpers to run stages in-process and the real DVC pipeline in a throwaway repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_FILES = ("dvc.yaml", "params.yaml", "schemas", "stages", "migraine_ml")


def small_params(**data_overrides) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["synthetic"]["rows"] = 600
    params["data"].update(data_overrides)
    return params


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(small_params()))
    return path


@pytest.fixture
def run_stage(monkeypatch):
    """Call a stage's main() with the given command line, as DVC would."""

    def run(module, *argv: str) -> None:
        monkeypatch.setattr(sys, "argv", [module.__name__, *map(str, argv)])
        module.main()

    return run


def _env() -> dict[str, str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """A git + DVC repository holding this project's pipeline, on a small cohort."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PIPELINE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(small_params(), sort_keys=False))
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "pipeline"], cwd=repo, check=True)
    return repo
