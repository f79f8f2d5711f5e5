"""The real DVC pipeline in a throwaway git repository (integration)."""

import json

import pytest
import yaml

from tests.stages.conftest import dvc

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


ALL = ["generate", "validate", "preprocess", "features", "train"]


def test_repro_caches_and_reruns_only_what_changed(pipeline_repo):
    repo = pipeline_repo
    first = dvc(repo, "repro")
    assert _ran(first.stdout) == ALL
    assert json.loads((repo / "reports" / "validation.json").read_text())["passed"]
    assert (repo / "models" / "manifest.json").exists()
    lock = (repo / "dvc.lock").read_text()

    again = dvc(repo, "repro")
    assert _ran(again.stdout) == []
    assert "Data and pipelines are up to date" in again.stdout

    _set(repo, "train.cv_folds", 2)
    assert _ran(dvc(repo, "repro").stdout) == ["train"]

    _set(repo, "features.n_features", 15)
    assert _ran(dvc(repo, "repro").stdout) == ["features", "train"]

    _set(repo, "preprocess.test_size", 0.25)
    assert _ran(dvc(repo, "repro").stdout) == ["preprocess", "features", "train"]

    _set(repo, "data.synthetic.rows", 500)
    assert _ran(dvc(repo, "repro").stdout) == ALL

    # back to the first params: the same data, models and reports, hash for hash
    for key, value in (
        ("train.cv_folds", 3),
        ("features.n_features", 20),
        ("preprocess.test_size", 0.2),
        ("data.synthetic.rows", 600),
    ):
        _set(repo, key, value)
    dvc(repo, "repro")
    assert _without_registry(repo / "dvc.lock") == _without_registry(lock)


def _without_registry(lock) -> dict:
    """dvc.lock minus the MLflow registry record, whose version numbers count up."""
    text = lock.read_text() if hasattr(lock, "read_text") else lock
    stages = yaml.safe_load(text)["stages"]
    outs = stages["train"]["outs"]
    stages["train"]["outs"] = [o for o in outs if not o["path"].endswith("registry.json")]
    return stages


def test_failing_validation_stops_the_pipeline(pipeline_repo):
    repo = pipeline_repo
    dvc(repo, "repro")
    lock = (repo / "dvc.lock").read_text()
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
