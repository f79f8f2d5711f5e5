"""The `migraine` command line: subcommands, messages and exit codes (0 ok, 1 verdict, 2 usage)."""

import json
import socket
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from migraine_ml.cli import main
from tests.conftest import ROOT

SUBCOMMANDS = (
    "schema",
    "examples",
    "gate",
    "report",
    "smoke",
    "sweep",
    "drift-report",
    "retrain",
    "rollback",
    "retrain-webhook",
    "bench-scale",
)


def _migraine(*args: str):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def _gate_file(tmp_path, **gate):
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(gate))
    return path


def test_help_lists_every_subcommand_on_one_line():
    result = _migraine("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in commands] == sorted(SUBCOMMANDS)
    assert not any(line.rstrip().endswith("...") for line in commands)  # no cut summary


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command):
    result = _migraine(command, "--help")
    assert result.exit_code == 0
    assert result.output.startswith(f"Usage: migraine {command} [OPTIONS]")


def test_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "migraine_ml.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "gate " in result.stdout


def test_gate_passes(tmp_path):
    path = _gate_file(tmp_path, passed=True, failures=[], checks=[{}, {}])
    result = _migraine("gate", "--gate", path)
    assert result.exit_code == 0
    assert result.stdout == "quality gate passed (2 champions checked)\n"


def test_gate_failure_exits_1_and_lists_the_failures(tmp_path):
    path = _gate_file(tmp_path, passed=False, failures=["too weak", "uncalibrated"], checks=[])
    result = _migraine("gate", "--gate", path)
    assert result.exit_code == 1
    assert result.stderr == "quality gate FAILED:\n  too weak\n  uncalibrated\n"


@pytest.mark.parametrize("content", [None, "{not json"])
def test_unreadable_gate_file_says_what_to_do(tmp_path, content):
    path = tmp_path / "gate.json"
    if content is not None:
        path.write_text(content)
    result = _migraine("gate", "--gate", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"quality gate: cannot read {path} (")
    assert result.stderr.endswith("; run `make repro` first\n")


@pytest.mark.parametrize(
    "args",
    [
        ("gate", "--no-such-option"),
        ("no-such-command",),
        ("schema", "--out", "s.yaml"),  # --data is required
        ("examples", "--seed", "many"),
        ("smoke",),  # --url is required
    ],
)
def test_usage_errors_exit_2(args):
    result = _migraine(*args)
    assert result.exit_code == 2
    assert "Usage: migraine" in result.stderr


def test_schema_writes_the_yaml(tmp_path):
    csv, out = tmp_path / "mine.csv", tmp_path / "schemas" / "mine.yaml"
    pd.DataFrame(
        {"age": [30, 41, 25, 52, 38, 47], "answer": ["yes", "no", "no", "yes", "no", "yes"]}
    ).to_csv(csv, index=False)
    result = _migraine("schema", "--data", csv, "--target", "answer", "--out", out)
    assert result.exit_code == 0, result.output
    columns = yaml.safe_load(out.read_text())["columns"]
    assert columns["age"] == {"dtype": "int", "role": "feature", "range": [25, 52]}
    assert columns["answer"]["role"] == "classification_target"


def test_schema_refusing_the_data_exits_1(tmp_path):
    csv, out = tmp_path / "mine.csv", tmp_path / "mine.yaml"
    pd.DataFrame({"x": [1, 2], "y": [0, 1]}).to_csv(csv, index=False)
    result = _migraine("schema", "--data", csv, "--target", "z", "--out", out)
    assert result.exit_code == 1
    assert result.stderr == "schema: target column 'z' is not in the CSV; its columns are: x, y\n"
    assert not out.exists()


def test_examples_writes_every_example_csv(tmp_path):
    result = _migraine("examples", "--out-dir", tmp_path, "--seed", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "headache_clinic.csv",
        "headache_diary.csv",
        "headache_yes_no.csv",
    ]
    assert result.stdout.count("wrote ") == 3


@pytest.mark.parametrize("url", ["ftp://example.org", "example.org", "file:///etc/passwd"])
def test_smoke_refuses_a_url_that_is_not_http(url):
    result = _migraine("smoke", "--url", url)
    assert result.exit_code == 2
    assert result.stderr == f"smoke: --url must start with http:// or https://, got {url!r}\n"


def test_smoke_fails_on_an_unreachable_service():
    # a port nobody listens on: bound to find it free, then released
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _migraine("smoke", "--url", f"http://127.0.0.1:{port}/")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"smoke test FAILED:\n  http://127.0.0.1:{port} is unreachable:"
    )


def test_bench_scale_refuses_bad_sizes_and_a_directory_without_the_benchmark(tmp_path, monkeypatch):
    bad = _migraine("bench-scale", "--rows", "8000,lots")
    assert bad.exit_code == 2
    assert "--rows '8000,lots': expected row counts" in bad.output
    monkeypatch.chdir(tmp_path)  # not a checkout: no bench/scale.py
    elsewhere = _migraine("bench-scale", "--rows", "8000")
    assert elsewhere.exit_code == 2
    assert "run it from the repository's root" in elsewhere.output


def test_bench_scale_runs_the_checkouts_benchmark_with_the_sizes(tmp_path, monkeypatch):
    """The subcommand hands its sizes to bench/scale.py and passes its failure on."""
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "scale.py").write_text(
        "import pathlib, sys\n"
        "pathlib.Path('argv.txt').write_text(' '.join(sys.argv[1:]))\n"
        "sys.exit(3 if '13' in sys.argv[-1] else 0)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert _migraine("bench-scale", "--rows", "12,1000000").exit_code == 0
    assert (tmp_path / "argv.txt").read_text() == "--rows 12,1000000"
    failed = _migraine("bench-scale", "--rows", "13")
    assert failed.exit_code == 1
    assert "exited with 3" in failed.output
