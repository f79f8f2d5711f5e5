"""Helpers to run stages in-process and the real DVC pipeline in a throwaway repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = (
    ".gitignore",
    "dvc.yaml",
    "params.yaml",
    "schemas",
    "stages",
    "migraine_ml",
    "data/feedback/feedback.csv",
)


REDUCED_ZOO = {
    "classifiers": ("logistic_regression", "lightgbm"),
    "regressors": ("ridge", "linear"),
}


def small_params(*, reduced_zoo: bool = False, **data_overrides) -> dict:
    """The project's params on a 600-row cohort with one search draw per model.

    `reduced_zoo` keeps two models per task, for tests about the pipeline's
    caching rather than about the zoo.
    """
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["synthetic"]["rows"] = 600
    params["data"].update(data_overrides)
    for task in ("classifiers", "regressors"):
        for config in params["train"][task].values():
            if config.get("space"):
                config["n_iter"] = 1
    params["train"]["max_rows"] = {"svm": 300, "knn": 300}
    params["evaluate"]["bootstrap_resamples"] = 200
    # the held-out path: 600 rows would otherwise take repeated cross-validation of the
    # whole zoo (tests/stages/test_own_data.py and tests/lib/test_nested.py cover that)
    params["evaluate"]["cv_below"] = 0
    if reduced_zoo:
        for task, keep in REDUCED_ZOO.items():
            params["train"][task] = {k: params["train"][task][k] for k in keep}
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


def tool_env() -> dict[str, str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=tool_env() | {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """git in `repo` with a throwaway identity; raises on failure."""
    identity = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    return subprocess.run(
        ["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True
    )


def make_pipeline_repo(repo: Path) -> Path:
    """A git + DVC repository holding this project's pipeline, on a small cohort."""
    repo.mkdir()
    for name in PIPELINE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, repo / name)
    (repo / "params.yaml").write_text(
        yaml.safe_dump(small_params(reduced_zoo=True), sort_keys=False)
    )
    git(repo, "init", "-q")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pipeline")
    return repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    return make_pipeline_repo(tmp_path / "repo")


SCHEMA = ROOT / "schemas" / "migraine.yaml"


def preprocess_argv(work: Path, *, params: Path, data: Path, schema: Path) -> list:
    """The preprocess stage's command line, writing into work/split, work/processed and
    work/preprocess.json."""
    return [
        "--params",
        params,
        "--data",
        data,
        "--schema",
        schema,
        "--split-dir",
        work / "split",
        "--out-dir",
        work / "processed",
        "--preprocessor",
        work / "processed" / "pre.skops",
        "--report",
        work / "preprocess.json",
    ]


def _run_in_process(patch, module, *argv) -> None:
    patch.setattr(sys, "argv", [module.__name__, *map(str, argv)])
    module.main()


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mlflow_uri) -> Path:
    """generate -> preprocess -> features -> train, in-process, once per session."""
    from stages import features, generate, preprocess, train

    work = tmp_path_factory.mktemp("pipeline")
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(small_params()))
    csv = work / "raw.csv"
    with pytest.MonkeyPatch.context() as patch:
        _run_in_process(
            patch, generate, "--params", params, "--out", csv, "--oracle", work / "oracle.json"
        )
        _run_in_process(
            patch, preprocess, *preprocess_argv(work, params=params, data=csv, schema=SCHEMA)
        )
        _run_in_process(
            patch,
            features,
            "--params",
            params,
            "--schema",
            SCHEMA,
            "--in-dir",
            work / "processed",
            "--builder",
            work / "features" / "builder.skops",
            "--report",
            work / "features.json",
        )
        _run_in_process(
            patch,
            train,
            "--params",
            params,
            "--schema",
            SCHEMA,
            "--split-dir",
            work / "split",
            "--preprocessor",
            work / "processed" / "pre.skops",
            "--builder",
            work / "features" / "builder.skops",
            "--models-dir",
            work / "models",
            "--live-dir",
            work / "live",
        )
    return work


def run_evaluate(work: Path, *, data: Path, out: Path) -> None:
    from stages import evaluate

    with pytest.MonkeyPatch.context() as patch:
        _run_in_process(
            patch,
            evaluate,
            "--params",
            work / "params.yaml",
            "--schema",
            SCHEMA,
            "--data",
            data,
            "--split-dir",
            work / "split",
            "--models-dir",
            work / "models",
            "--preprocessor",
            work / "processed" / "pre.skops",
            "--builder",
            work / "features" / "builder.skops",
            "--oracle",
            work / "oracle.json",
            "--metrics",
            out / "metrics.json",
            "--details",
            out / "evaluation.json",
            "--gate",
            out / "gate.json",
            "--html",
            out / "evaluation.html",
            "--live-dir",
            out / "live",
        )


@pytest.fixture(scope="session")
def evaluated(trained) -> Path:
    out = trained / "evaluation"
    run_evaluate(trained, data=trained / "raw.csv", out=out)
    return out
