"""The docs cannot go stale: what they quote is checked against the code and its output.

README.md is the front door (at most 12 KB, with the two quick-start commands);
every relative link in README.md and docs/*.md resolves (to a heading, too, when it
has an #anchor); a fenced block right
after `<!-- output of: <command> -->` is that command's output, run here from
the repository root; a number right after `<!-- value of: <file> <key.path> -->`
is that value of the JSON (or YAML) file, rounded as printed. A few lists the
docs keep (settings, subcommands, pipeline outputs, modules) are compared with
the code they describe.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_BYTES = 12 * 1024

# Only cheap commands without side effects may stand behind an output marker: `make help`
# and the help of the `migraine` command and its subcommands.
HELP_FLAGS = ("--help", "-h")

OUTPUT_MARKER = re.compile(r"^<!-- output of: (?P<command>.+?) -->$")
VALUE_MARKER = re.compile(r"<!-- value of: (?P<file>\S+) (?P<key>\S+) -->")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = "```"


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _prose_lines(page: Path, *, keep_code: bool = False) -> list[tuple[int, str]]:
    """(line number, text) outside fenced blocks; inline code spans removed unless kept."""
    lines, fenced = [], False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith(FENCE):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line if keep_code else re.sub(r"`[^`]*`", "", line)))
    return lines


def _output_blocks() -> list:
    """(page, line of the marker, command, block text) for every output marker."""
    blocks = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            match = OUTPUT_MARKER.match(line.strip())
            if not match:
                continue
            where = f"{_name(page)}:{i + 1}"
            if i + 1 >= len(lines) or not lines[i + 1].startswith(FENCE):
                raise AssertionError(f"{where}: an output marker must be followed by a ``` block")
            end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == FENCE), None)
            if end is None:
                raise AssertionError(f"{where}: the ``` block after the marker is not closed")
            block = "\n".join(lines[i + 2 : end])
            blocks.append(
                pytest.param(
                    _name(page), i + 1, match["command"], block, id=f"{where}: {match['command']}"
                )
            )
    return blocks


def _value_markers() -> list:
    """(page, line, file, key path, the number as printed) for every value marker."""
    markers = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            for match in VALUE_MARKER.finditer(line):
                after = line[match.end() :]
                following = after if after.strip() else (lines[i + 1] if i + 1 < len(lines) else "")
                number = NUMBER.search(following)
                where = f"{_name(page)}:{i + 1}"
                assert number, f"{where}: no number after the value marker {match[0]}"
                markers.append(
                    pytest.param(
                        _name(page), i + 1, match["file"], match["key"], number[0], id=where
                    )
                )
    return markers


def _lookup(data, key_path: str):
    for part in key_path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _allowed(argv: list[str]) -> bool:
    return argv == ["make", "help"] or (argv[:1] == ["migraine"] and argv[-1] in HELP_FLAGS)


def _anchors(page: Path) -> set[str]:
    """GitHub's ids for the page's headings: lower case, punctuation dropped, '-' for ' '."""
    anchors = set()
    for _, line in _prose_lines(page, keep_code=True):
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower().replace("`", "")
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def _command_env() -> dict[str, str]:
    env = dict(os.environ)
    # The venv's console scripts (`migraine`) first; a fixed width for click's help text;
    # no inherited make state, which would make `make` print "Entering directory".
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "80"
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


def test_readme_is_the_front_door():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, over {README_MAX_BYTES}"
    text = README.read_text(encoding="utf-8")
    for command in ("make repro", "make test"):
        assert command in text, f"README.md lost the quick-start command `{command}`"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_relative_links_resolve(page):
    broken = []
    for number, line in _prose_lines(page):
        for match in LINK.finditer(line):
            target = match["target"]
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{_name(page)}:{number}: {target} (no {path})")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{_name(page)}:{number}: {target} (no heading #{anchor})")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


@pytest.mark.parametrize(("page", "line", "command", "block"), _output_blocks())
def test_quoted_output_is_the_commands_output(page, line, command, block):
    where = f"{page}:{line}"
    argv = shlex.split(command)
    assert _allowed(argv), (
        f"{where}: tests/test_docs.py runs only cheap, side-effect-free commands (`make help`,"
        f" `migraine ... --help`), not `{command}`"
    )
    result = subprocess.run(
        argv, cwd=ROOT, env=_command_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{where}: `{command}` exited {result.returncode}:\n" + (
        result.stderr
    )
    actual = result.stdout.rstrip("\n")
    if block != actual:
        diff = "\n".join(
            difflib.unified_diff(
                block.splitlines(), actual.splitlines(), "the doc", f"`{command}`", lineterm=""
            )
        )
        pytest.fail(f"{where}: the block quoted as `{command}` differs from its output:\n{diff}")


@pytest.mark.parametrize(("page", "line", "file", "key", "printed"), _value_markers())
def test_quoted_values_match_their_file(page, line, file, key, printed):
    where = f"{page}:{line}"
    path = ROOT / file
    assert path.exists(), f"{where}: {file} does not exist"
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    try:
        value = _lookup(data, key)
    except (KeyError, IndexError, ValueError, TypeError) as err:
        pytest.fail(f"{where}: {file} has no {key} ({err!r})")
    digits = len(printed.split(".", 1)[1]) if "." in printed else 0
    shown = float(printed.replace(",", ""))
    assert round(float(value), digits) == shown, (
        f"{where}: the doc says {printed} but {file} {key} is {value}"
    )


def _config_settings() -> set[str]:
    """The app's settings (`app.config.from_mapping(...)` keys) and gunicorn's (`_setting`)."""
    names = set()
    for node in ast.walk(ast.parse((ROOT / "app" / "__init__.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "from_mapping":
            names |= {keyword.arg for keyword in node.keywords if keyword.arg}
    for node in ast.walk(ast.parse((ROOT / "app" / "gunicorn.conf.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_setting":
            names.add(node.args[0].value)
    return names


def test_every_service_setting_is_documented():
    settings = _config_settings()
    assert settings, "found no settings in app/__init__.py or app/gunicorn.conf.py: fix this test"
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    missing = sorted(name for name in settings if f"`MIGRAINE_{name}`" not in text)
    assert not missing, f"docs/service.md does not document the settings {missing}"


def test_readme_lists_every_migraine_subcommand():
    from click import Group

    from migraine_ml.cli import main

    assert isinstance(main, Group)
    text = README.read_text(encoding="utf-8")
    missing = sorted(name for name in main.commands if f"`migraine {name}`" not in text)
    assert not missing, f"README.md does not list the subcommands {missing}"


def _table_rows(page: Path) -> dict[str, str]:
    """Markdown table rows by their first cell."""
    rows = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], line)
    return rows


@pytest.mark.parametrize("page", [README, ROOT / "docs" / "pipeline.md"], ids=_name)
def test_pipeline_tables_name_every_stage_output(page):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    rows = _table_rows(page)
    problems = []
    for stage, spec in stages.items():
        row = rows.get(stage)
        if row is None:
            problems.append(f"no row for stage '{stage}'")
            continue
        named = [span.rstrip("/") for span in re.findall(r"`([^`]+)`", row)]
        for out in spec.get("outs", []) + spec.get("metrics", []):
            out = next(iter(out)) if isinstance(out, dict) else out
            if not any(name == out or name.startswith(f"{out}/") for name in named):
                problems.append(f"stage '{stage}': output `{out}` is not named")
    assert not problems, f"{_name(page)} vs dvc.yaml:\n" + "\n".join(problems)


def test_architecture_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [
        path.relative_to(ROOT).as_posix()
        for top in ("migraine_ml", "stages", "app")
        for path in sorted((ROOT / top).rglob("*.py"))
        if path.name != "__init__.py" or top == "app"
    ]
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"docs/architecture.md does not name the modules {missing}"
