import json
import sys

import pytest

from stages import gate


def _run(monkeypatch, path):
    monkeypatch.setattr(sys, "argv", ["gate", "--gate", str(path)])
    gate.main()


def test_gate_exits_non_zero_on_failure(tmp_path, monkeypatch, capsys):
    path = tmp_path / "gate.json"
    path.write_text(json.dumps({"passed": False, "failures": ["too weak"], "checks": []}))
    with pytest.raises(SystemExit) as exit_info:
        _run(monkeypatch, path)
    assert exit_info.value.code == 1
    assert "too weak" in capsys.readouterr().err


def test_gate_passes_quietly(tmp_path, monkeypatch, capsys):
    path = tmp_path / "gate.json"
    path.write_text(json.dumps({"passed": True, "failures": [], "checks": [{}, {}]}))
    _run(monkeypatch, path)
    assert "2 champions checked" in capsys.readouterr().out


def test_missing_gate_file_says_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="run `make repro` first"):
        _run(monkeypatch, tmp_path / "absent.json")
