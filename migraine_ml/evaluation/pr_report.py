"""The pull-request report: params and metrics diffs as Markdown, plots side by side.

`write_pr_report` compares the working tree with a base git ref: it runs `dvc
params diff`, `dvc metrics diff` and `git show`, then hands the results to the
pure rendering functions, with a champion-against-challenger section for each
promotion record the branch adds (`migraine retrain`). It works on a fresh
clone without a DVC remote: params, metrics and plot data are committed to git
(`cache: false`), so both revisions are read from git.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from migraine_ml.evaluation.report import draw_confusion, plt  # report selects the Agg backend
from migraine_ml.retraining.summary import PROMOTIONS, promotion_markdown

logger = logging.getLogger(__name__)

INTERVAL_SUFFIXES = ("_ci_low", "_ci_high")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def params_table(diff: dict[str, dict[str, dict[str, Any]]]) -> str:
    """`dvc params diff --json` as a Markdown table."""
    rows = [
        f"| {path} | `{name}` | {_fmt(change.get('old'))} | {_fmt(change.get('new'))} |"
        for path, params in diff.items()
        for name, change in sorted(params.items())
    ]
    if not rows:
        return "No parameter changed.\n"
    return "| file | param | base | this branch |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def metrics_table(diff: dict[str, dict[str, dict[str, Any]]]) -> str:
    """`dvc metrics diff --json` as a Markdown table; intervals beside their metric."""
    rows = []
    for path, metrics in diff.items():
        for name, change in sorted(metrics.items()):
            if name.endswith(INTERVAL_SUFFIXES):
                continue
            interval = ""
            low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
            if low and high and low.get("new") is not None and high.get("new") is not None:
                interval = f" [{_fmt(low['new'])}, {_fmt(high['new'])}]"
            delta = change.get("diff")
            shown = f"{delta:+.4f}" if isinstance(delta, float) else _fmt(delta)
            rows.append(
                f"| {path} | `{name}` | {_fmt(change.get('old'))} | "
                f"{_fmt(change.get('new'))}{interval} | {shown} |"
            )
    if not rows:
        return "No metric changed.\n"
    return (
        "| file | metric | base | this branch [95 % CI] | change |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def _series(data: Any) -> list[dict[str, Any]]:
    """dvclive plot data: a list of points, or {name: [points]} for sklearn plots."""
    if isinstance(data, dict):
        (points,) = data.values()
        return points
    return data


def _draw(axes, points: list[dict[str, Any]], x: str, y: str, kind: str) -> None:
    if not points:
        axes.text(0.5, 0.5, "no data", ha="center")
        return
    if kind == "bar":
        axes.barh([str(p[y]) for p in points][::-1], [p[x] for p in points][::-1])
    elif kind == "scatter":
        axes.scatter([p[x] for p in points], [p[y] for p in points], s=4, alpha=0.4)
    elif kind == "confusion":  # x is the actual class, y the predicted one
        labels = sorted({str(p[x]) for p in points} | {str(p[y]) for p in points})
        counts = [
            [sum(1 for p in points if str(p[x]) == a and str(p[y]) == b) for b in labels]
            for a in labels
        ]
        draw_confusion(axes, counts, labels)
        return  # draw_confusion labels its own axes
    else:
        axes.plot([p[x] for p in points], [p[y] for p in points])
    axes.set(xlabel=x, ylabel=y)


def side_by_side(
    base: Any, head: Any, *, x: str, y: str, kind: str, title: str, path: Path
) -> Path:
    """One PNG: the base revision's plot left, this branch's right."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, data, label in ((left, base, "base"), (right, head, "this branch")):
        if data is None:
            axes.text(0.5, 0.5, "not in this revision", ha="center")
            axes.set_axis_off()
        else:
            _draw(axes, _series(data), x, y, kind)
        axes.set_title(f"{title}: {label}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def plot_kind(template: str | None) -> str:
    return {"bar_horizontal": "bar", "scatter": "scatter", "confusion": "confusion"}.get(
        template or "", "line"
    )


def render(
    *,
    base: str,
    params_diff: dict,
    metrics_diff: dict,
    gate: dict | None,
    base_gate: dict | None,
    plots: list[tuple[str, Path]],
    promotions: tuple[tuple[str, dict], ...] = (),
) -> str:
    """The whole report.md; `promotions` are (path, record) of the promotion records this
    branch adds (`migraine retrain`): champion against challenger, as the PR body has it."""
    lines = [f"# Model report: this branch vs `{base}`", ""]
    if gate is None:
        lines.append("**Quality gate:** no `reports/gate.json` (run `dvc repro`).")
    else:
        verdict = "PASSED" if gate["passed"] else "FAILED"
        was = (
            ""
            if base_gate is None
            else (f" (base: {'PASSED' if base_gate['passed'] else 'FAILED'})")
        )
        lines.append(f"**Quality gate: {verdict}**{was}")
        lines += [f"- {failure}" for failure in gate.get("failures", [])]
    for path, record in promotions:
        lines += ["", promotion_markdown(record, source=path).rstrip()]
    lines += [
        "",
        "## Parameters",
        "",
        params_table(params_diff),
        "## Metrics",
        "",
        metrics_table(metrics_diff),
        "## Plots (base left, this branch right)",
        "",
    ]
    lines += [f"![{title}]({path.as_posix()})" for title, path in plots]
    return "\n".join(lines) + "\n"


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class ReportError(RuntimeError):
    """A git or dvc command the report needs failed (an unknown base ref, no git repo)."""


@dataclass(frozen=True)
class PrReport:
    """What `write_pr_report` wrote: the Markdown file and the PNGs it links."""

    path: Path
    plots_dir: Path
    plots: tuple[Path, ...]


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReportError(f"`{' '.join(command)}` failed:\n{result.stderr.strip()}")
    return result.stdout


def _git_show(ref: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def declared_plots(dvc_yaml: Path) -> list[dict]:
    """The top-level `plots:` entries of dvc.yaml, each as {path, template, x, y, ...}."""
    plots = []
    for entry in yaml.safe_load(dvc_yaml.read_text()).get("plots", []):
        ((path, config),) = entry.items() if isinstance(entry, dict) else ((entry, {}),)
        plots.append({"path": path, **(config or {})})
    return plots


def write_pr_report(
    *,
    base: str,
    out: Path,
    dvc_yaml: Path = Path("dvc.yaml"),
    gate: str = "reports/gate.json",
) -> PrReport:
    """report.md at `out` (plots in `report_plots/` beside it), this working tree vs `base`.

    Run from the repository root: `dvc`, `git` and the paths in dvc.yaml are
    relative to it.

    Raises:
        ReportError: `base` is not a commit, or `dvc ... diff` failed.
    """
    _run("git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    plots_dir = out.parent / "report_plots"
    params_diff = json.loads(
        _run(sys.executable, "-m", "dvc", "params", "diff", base, "--json") or "{}"
    )
    metrics_diff = json.loads(
        _run(sys.executable, "-m", "dvc", "metrics", "diff", base, "--json") or "{}"
    )
    plots = []
    for plot in declared_plots(dvc_yaml):
        path = plot["path"]
        head_file = Path(path)
        head = json.loads(head_file.read_text()) if head_file.exists() else None
        base_data = load_json(_git_show(base, path))
        if head is None and base_data is None:
            logger.info("%s: in neither revision, left out", path)
            continue
        name = path.removeprefix("reports/").removesuffix(".json").replace("/", "_")
        title = plot.get("title") or name
        png = side_by_side(
            base_data,
            head,
            x=plot.get("x", "x"),
            y=plot.get("y", "y"),
            kind=plot_kind(plot.get("template")),
            title=title,
            path=plots_dir / f"{name}.png",
        )
        plots.append((title, png))
    records = f"{PROMOTIONS}/*.json"
    added = _run("git", "diff", "--name-only", "--diff-filter=A", base, "--", records)
    promotions = tuple((path, json.loads(Path(path).read_text())) for path in added.split())
    gate_file = Path(gate)
    out.write_text(
        render(
            base=base,
            params_diff=params_diff,
            metrics_diff=metrics_diff,
            gate=json.loads(gate_file.read_text()) if gate_file.exists() else None,
            base_gate=load_json(_git_show(base, gate)),
            plots=[(title, png.relative_to(out.parent)) for title, png in plots],
            promotions=promotions,
        ),
        encoding="utf-8",
    )
    return PrReport(path=out, plots_dir=plots_dir, plots=tuple(png for _, png in plots))
