"""report: report.md for a pull request, comparing this working tree with a base ref.

Works on a fresh clone without a DVC remote: params, metrics and plot data
are committed to git (`cache: false`), so both revisions are read from git.

    python -m stages.report --base origin/main --out report.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from migraine_ml.evaluation.pr_report import load_json, plot_kind, render, side_by_side


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"report: `{' '.join(command)}` failed:\n{result.stderr.strip()}")
    return result.stdout


def _git_show(ref: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def _declared_plots(dvc_yaml: Path) -> list[dict]:
    """The top-level `plots:` entries of dvc.yaml, each as {path, template, x, y, ...}."""
    plots = []
    for entry in yaml.safe_load(dvc_yaml.read_text()).get("plots", []):
        ((path, config),) = entry.items() if isinstance(entry, dict) else ((entry, {}),)
        plots.append({"path": path, **(config or {})})
    return plots


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--base", required=True, help="git ref to compare with (origin/main)")
    cli.add_argument("--out", default="report.md", help="Markdown file to write")
    args = cli.parse_args()
    _run("git", "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}")
    out = Path(args.out)
    plots_dir = out.parent / "report_plots"
    params_diff = json.loads(
        _run(sys.executable, "-m", "dvc", "params", "diff", args.base, "--json") or "{}"
    )
    metrics_diff = json.loads(
        _run(sys.executable, "-m", "dvc", "metrics", "diff", args.base, "--json") or "{}"
    )
    plots = []
    for plot in _declared_plots(Path("dvc.yaml")):
        path = plot["path"]
        head_file = Path(path)
        head = json.loads(head_file.read_text()) if head_file.exists() else None
        base = load_json(_git_show(args.base, path))
        if head is None and base is None:
            continue
        name = path.removeprefix("reports/").removesuffix(".json").replace("/", "_")
        title = plot.get("title") or name
        png = side_by_side(
            base,
            head,
            x=plot.get("x", "x"),
            y=plot.get("y", "y"),
            kind=plot_kind(plot.get("template")),
            title=title,
            path=plots_dir / f"{name}.png",
        )
        plots.append((title, png.relative_to(out.parent)))
    gate_path = Path("reports/gate.json")
    gate = json.loads(gate_path.read_text()) if gate_path.exists() else None
    base_gate = load_json(_git_show(args.base, "reports/gate.json"))
    out.write_text(
        render(
            base=args.base,
            params_diff=params_diff,
            metrics_diff=metrics_diff,
            gate=gate,
            base_gate=base_gate,
            plots=plots,
        ),
        encoding="utf-8",
    )
    print(f"wrote {out} ({len(plots)} plots in {plots_dir})")


if __name__ == "__main__":
    main()
