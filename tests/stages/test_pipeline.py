"""The real DVC pipeline in a throwaway git repository (integration)."""

import json

import pytest
import yaml

from tests.pipeline_fixtures import dvc, git

pytestmark = pytest.mark.integration


def _ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def _set(repo, path: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    node = params
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


ALL = ["generate", "validate", "preprocess", "features", "train", "evaluate"]


def test_repro_caches_and_reruns_only_what_changed(pipeline_repo):
    repo = pipeline_repo
    first = dvc(repo, "repro")
    assert _ran(first.stdout) == ALL
    assert json.loads((repo / "reports" / "validation.json").read_text())["passed"]
    assert (repo / "models" / "manifest.json").exists()
    lock = (repo / "dvc.lock").read_text()
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first run")
    # the service's own DVC hash of models/ agrees with what DVC recorded
    from app.model_store import dvc_dir_md5, locked_md5

    assert dvc_dir_md5(repo / "models") == locked_md5(repo / "dvc.lock", "models")

    again = dvc(repo, "repro")
    assert _ran(again.stdout) == []
    assert "Data and pipelines are up to date" in again.stdout

    _set(repo, "evaluate.overfit_gap", 0.2)
    assert _ran(dvc(repo, "repro").stdout) == ["evaluate"]

    _set(repo, "train.cv_folds", 2)
    assert _ran(dvc(repo, "repro").stdout) == ["train", "evaluate"]

    _set(repo, "features.n_features", 15)
    assert _ran(dvc(repo, "repro").stdout) == ["features", "train", "evaluate"]

    _set(repo, "preprocess.test_size", 0.25)
    assert _ran(dvc(repo, "repro").stdout) == ["preprocess", "features", "train", "evaluate"]

    _set(repo, "data.synthetic.rows", 500)
    assert _ran(dvc(repo, "repro").stdout) == ALL

    # back to the first params: the same data, models and reports, hash for hash
    for key, value in (
        ("evaluate.overfit_gap", 0.1),
        ("train.cv_folds", 3),
        ("features.n_features", "auto"),
        ("preprocess.test_size", 0.2),
        ("data.synthetic.rows", 600),
    ):
        _set(repo, key, value)
    dvc(repo, "repro")
    assert json.loads((repo / "reports" / "metrics.json").read_text()) == metrics
    assert (repo / "dvc.lock").read_text() == lock
    # Pins a bug: the MLflow registry version (local state of one store, which has
    # counted up by now) was a committed output, so every rerun left git dirty.
    assert git(repo, "status", "--porcelain").stdout == ""


def test_failing_validation_stops_the_pipeline(pipeline_repo):
    repo = pipeline_repo
    dvc(repo, "repro")
    lock = (repo / "dvc.lock").read_text()
    report = (repo / "reports" / "evaluation.html").read_text()
    bad = repo / "data" / "bad.csv"
    text = (repo / "data" / "raw" / "synthetic.csv").read_text().splitlines()
    header = text[0].split(",")
    drop = header.index("stress_level")
    rows = [",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in text]
    bad.write_text("\n".join(rows) + "\n")
    _set(repo, "data.path", "data/bad.csv")

    result = dvc(repo, "repro", check=False)
    assert result.returncode != 0
    assert "column 'stress_level': missing" in result.stdout + result.stderr
    # the last good run is untouched in dvc.lock and its outputs are recoverable
    assert (repo / "dvc.lock").read_text() == lock
    assert (repo / "data" / "processed" / "train.parquet").exists()
    assert (repo / "models" / "manifest.json").exists()
    assert (repo / "reports" / "evaluation.html").read_text() == report
