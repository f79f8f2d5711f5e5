"""Each stage's main(), in-process, on a small cohort."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from migraine_ml import persist
from stages import generate, preprocess, validate
from tests.pipeline_fixtures import preprocess_argv

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "migraine.yaml"


@pytest.fixture
def generated(tmp_path, params_file, run_stage):
    csv = tmp_path / "raw.csv"
    run_stage(generate, "--params", params_file, "--out", csv, "--oracle", tmp_path / "o.json")
    return csv


def test_generate_writes_cohort_and_oracle(tmp_path, generated):
    data = pd.read_csv(generated)
    assert len(data) == 606  # 600 rows + 1 % duplicates
    oracle = json.loads((tmp_path / "o.json").read_text())
    assert oracle["rows"] == 600
    assert 0.5 < oracle["roc_auc"] < 1


def _validate(run_stage, tmp_path, params_file, data):
    run_stage(
        validate,
        "--params",
        params_file,
        "--data",
        data,
        "--schema",
        SCHEMA,
        "--report",
        tmp_path / "v.json",
        "--html",
        tmp_path / "v.html",
    )
    return json.loads((tmp_path / "v.json").read_text())


def test_validate_passes_the_generated_cohort(tmp_path, params_file, generated, run_stage):
    report = _validate(run_stage, tmp_path, params_file, generated)
    assert report["passed"] is True
    assert "PASSED" in (tmp_path / "v.html").read_text()


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: d.drop(columns=["hydration"]), "column 'hydration': missing"),
        (
            lambda d: d.assign(age=d["age"].astype(object).where(d.index != 5, "forty")),
            r"column 'age': 1 non-numeric values \(e.g. 'forty'\)",
        ),
        (
            lambda d: d.assign(humidity=d["humidity"].mask(d.index % 10 < 3)),
            r"column 'humidity': 3\d\.\d% missing, above the limit 10%",
        ),
    ],
)
def test_validate_exits_non_zero_naming_the_column(
    tmp_path, params_file, generated, run_stage, caplog, corrupt, message
):
    bad = tmp_path / "bad.csv"
    corrupt(pd.read_csv(generated)).to_csv(bad, index=False)
    with pytest.raises(SystemExit) as exit_info:
        _validate(run_stage, tmp_path, params_file, bad)
    assert exit_info.value.code == 1
    assert re.search(message, caplog.text)
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["passed"] is False


def _preprocess(run_stage, work, *, params, data, schema) -> None:
    run_stage(preprocess, *preprocess_argv(work, params=params, data=data, schema=schema))


def test_preprocess_writes_split_processed_and_preprocessor(
    tmp_path, params_file, generated, run_stage
):
    _preprocess(run_stage, tmp_path, params=params_file, data=generated, schema=SCHEMA)
    train = pd.read_parquet(tmp_path / "processed" / "train.parquet")
    test = pd.read_parquet(tmp_path / "processed" / "test.parquet")
    raw_test = pd.read_parquet(tmp_path / "split" / "test.parquet")
    assert len(test) == len(raw_test)
    assert len(train) + len(test) == 600
    assert not train.isna().any().any()
    assert {"migraine_occurrence", "migraine_severity"} <= set(train.columns)
    fitted = persist.load(tmp_path / "processed" / "pre.skops")
    pd.testing.assert_frame_equal(
        fitted.transform(raw_test), test.drop(columns=["migraine_occurrence", "migraine_severity"])
    )
    summary = json.loads((tmp_path / "preprocess.json").read_text())
    assert summary["rows_dropped"]["duplicates"] == 6


def _features(run_stage, work, *, schema) -> None:
    """The features stage on work/processed with work/params.yaml, report in work/f.json."""
    from stages import features

    run_stage(
        features,
        "--params",
        work / "params.yaml",
        "--schema",
        schema,
        "--in-dir",
        work / "processed",
        "--builder",
        work / "features" / "builder.skops",
        "--report",
        work / "f.json",
    )


def test_text_labels_categories_and_groups_flow_through_features(tmp_path, run_stage):
    """Pins a bug: text class labels crashed the features stage's interaction scoring."""
    import numpy as np
    import yaml

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "patient": rng.integers(0, 60, n),
            "age": rng.integers(18, 70, n),
            "sex": rng.choice(["female", "male"], n),
            "intensity": rng.integers(0, 4, n),
            "type": rng.choice(["basilar", "typical aura", "none"], n),
        }
    )
    frame.to_csv(tmp_path / "own.csv", index=False)
    schema = tmp_path / "own.yaml"
    schema.write_text(
        yaml.safe_dump(
            {
                "name": "own",
                "columns": {
                    "patient": {"dtype": "int", "role": "group"},
                    "age": {"dtype": "int", "range": [10, 90]},
                    "sex": {"dtype": "category", "values": ["female", "male"]},
                    "intensity": {"dtype": "int", "range": [0, 3]},
                    "type": {
                        "dtype": "category",
                        "role": "classification_target",
                        "values": ["basilar", "none", "typical aura"],
                    },
                },
            }
        )
    )
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _preprocess(
        run_stage,
        tmp_path,
        params=tmp_path / "params.yaml",
        data=tmp_path / "own.csv",
        schema=schema,
    )
    train = pd.read_parquet(tmp_path / "split" / "train.parquet")
    test = pd.read_parquet(tmp_path / "split" / "test.parquet")
    assert set(train["patient"]).isdisjoint(test["patient"])
    _features(run_stage, tmp_path, schema=schema)
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["target"] == "type"
    assert any("not in the data" in s for s in report["skipped_config"])
    assert {"sex_female", "sex_male"} <= set(report["selected"]) | set(report["dropped"])


def test_a_regression_only_schema_selects_features_on_rows_with_a_target(tmp_path, run_stage):
    """Pins a bug: with no classification target, rows whose regression target is
    missing reached the selection score, which refuses NaN targets."""
    import yaml

    from migraine_ml.data.examples import yes_no_cohort
    from migraine_ml.data.inference import infer_schema, to_yaml

    cohort = yes_no_cohort(seed=4, rows=300).drop(columns="headache")
    cohort.loc[cohort.index[::25], "pain_score"] = None  # 4 % unknown
    cohort.to_csv(tmp_path / "own.csv", index=False)
    inferred = infer_schema(cohort, target=None, regression_target="pain_score", name="own")
    schema = tmp_path / "own.yaml"
    schema.write_text(to_yaml(inferred, source="own.csv", rows=len(cohort)))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    _preprocess(
        run_stage,
        tmp_path,
        params=tmp_path / "params.yaml",
        data=tmp_path / "own.csv",
        schema=schema,
    )
    _features(run_stage, tmp_path, schema=schema)
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["target"] == "pain_score"
    assert (
        yaml.safe_load(schema.read_text())["columns"]["pain_score"]["role"] == "regression_target"
    )


def test_stages_holds_only_thin_dvc_stages():
    """Every script in stages/ is a DVC stage of at most 60 lines (tools live in `migraine`)."""
    root = Path(__file__).resolve().parents[2]
    commands = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    declared = {f"{name}.py" for name in commands}
    scripts = {p.name for p in (root / "stages").glob("*.py")} - {"__init__.py", "common.py"}
    assert scripts == declared
    for name in scripts:
        assert len((root / "stages" / name).read_text().splitlines()) <= 60, name


@pytest.mark.parametrize(
    "stage", ["generate", "validate", "preprocess", "features", "train", "evaluate"]
)
def test_each_stage_declares_exactly_the_library_modules_it_runs(stage):
    """DVC reruns a stage when a dependency changes: every module the stage imports,
    directly or not, must be listed, and nothing it does not import."""
    root = Path(__file__).resolve().parents[2]
    code = (
        f"import sys, importlib; importlib.import_module('stages.{stage}'); "
        "print(' '.join(m.__file__ for n, m in sys.modules.items() "
        "if n.startswith('migraine_ml') and getattr(m, '__file__', None)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    imported = {
        Path(f).resolve().relative_to(root).as_posix()
        for f in loaded
        if not f.endswith("__init__.py")
    }
    deps = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]["deps"]
    assert {d for d in deps if d.startswith("migraine_ml/")} == imported
