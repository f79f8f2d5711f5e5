"""The evaluation report: matplotlib figures inlined as PNG into one self-contained page."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
import numpy as np

from migraine_ml.evaluation import LOWER_IS_BETTER


def png_data_uri(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def curve_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    diagonal: bool = False,
) -> plt.Figure:
    """Several named (x, y) curves on one set of axes."""
    figure, axes = plt.subplots(figsize=(5, 4))
    for name, (x, y) in curves.items():
        axes.plot(x, y, label=name)
    if diagonal:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance / perfect")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.legend(loc="best", fontsize="small")
    return figure


def draw_confusion(axes: plt.Axes, matrix: np.ndarray, labels: list[str]) -> None:
    """Counts with actual classes as rows and predicted classes as columns."""
    matrix = np.asarray(matrix)
    axes.imshow(matrix, cmap="Blues")
    axes.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="actual",
    )
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
        )


def confusion_figure(matrix: np.ndarray, labels: list[str], *, title: str) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(1.2 + 0.7 * len(labels), 1 + 0.6 * len(labels)))
    draw_confusion(axes, matrix, labels)
    axes.set_title(title)
    return figure


def bar_figure(
    values: dict[str, float], *, title: str, xlabel: str, errors: dict[str, float] | None = None
) -> plt.Figure:
    names = list(values)[::-1]
    figure, axes = plt.subplots(figsize=(5.5, 0.3 * len(names) + 1.2))
    axes.barh(
        names,
        [values[n] for n in names],
        xerr=[errors[n] for n in names] if errors else None,
        color="#4c72b0",
    )
    axes.set(title=title, xlabel=xlabel)
    return figure


def scatter_figure(
    x: np.ndarray, y: np.ndarray, *, title: str, xlabel: str, ylabel: str
) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.scatter(x, y, s=6, alpha=0.4)
    axes.axhline(0, color="grey", linestyle="--")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return figure


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def metric_table(task: dict[str, Any]) -> str:
    """Rows: metrics. Columns: each model with its 95 % CI, the dummy, the ceiling."""
    ranks = [r for r in ("champion", "runner_up", "dummy") if r in task["test"]]
    names = {r: task["names"].get(r, r) for r in ranks}
    ceiling = task.get("ceiling") or {}
    metrics = [k for k in task["test"]["champion"] if not k.endswith(("_ci_low", "_ci_high"))]
    head = "".join(
        f"<th>{html.escape(r)}<br><small>{html.escape(names[r])}</small></th>" for r in ranks
    )
    rows = []
    for metric in metrics:
        cells = []
        for rank in ranks:
            scores = task["test"][rank]
            cells.append(
                f"<td>{_cell(scores[metric])} <small>[{_cell(scores[metric + '_ci_low'])}, "
                f"{_cell(scores[metric + '_ci_high'])}]</small></td>"
            )
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        rows.append(
            f"<tr><th>{html.escape(metric)} <small>({better} is better)</small></th>"
            f"{''.join(cells)}<td>{_cell(ceiling.get(metric, '—'))}</td></tr>"
        )
    return f"<table><tr><th>metric</th>{head}<th>oracle ceiling</th></tr>{''.join(rows)}</table>"


def leaderboard_table(entries: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(e['task'])}</td><td>{html.escape(e['name'])}</td>"
        f"<td>{html.escape(e['scoring'])}</td><td>{e['cv_mean']:.4f} ± {e['cv_std']:.4f}</td>"
        f"<td>{html.escape('; '.join(e.get('notes', [])))}</td></tr>"
        for e in entries
    )
    return (
        "<table><tr><th>task</th><th>model</th><th>CV scoring</th><th>CV mean ± sd</th>"
        f"<th>notes</th></tr>{rows}</table>"
    )


def diagnosis_block(diagnoses: dict[str, dict[str, Any]], names: dict[str, str]) -> str:
    parts = []
    for rank, d in diagnoses.items():
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in d["reasons"])
        advice = "".join(f"<li>{html.escape(r)}</li>" for r in d["recommendations"])
        parts.append(
            f'<div class="diag"><h4>{html.escape(rank)} ({html.escape(names.get(rank, ""))}):'
            f' <span class="verdict">{html.escape(d["verdict"])}</span></h4>'
            f"<p>train {d['train']:.4f}, test {d['test']:.4f}, gap {d['gap']:.4f}, "
            f"lift over dummy {d['lift_over_dummy']:.4f}</p>"
            f"<ul>{reasons}</ul>"
            + (f"<p>Recommendations:</p><ul>{advice}</ul>" if advice else "")
            + "</div>"
        )
    return "".join(parts)


def render_report(
    *,
    title: str,
    summary: list[str],
    gate: dict[str, Any],
    tasks: dict[str, dict[str, Any]],
    leaderboard: list[dict[str, Any]],
    figures: dict[str, list[tuple[str, str]]],
    notes: list[str],
) -> str:
    """One self-contained HTML page: no scripts, no network, images as data URIs."""
    verdict = "PASSED" if gate["passed"] else "FAILED"
    gate_items = "".join(f"<li>{html.escape(f)}</li>" for f in gate["failures"])
    sections = []
    for task_name, task in tasks.items():
        images = "".join(
            f'<figure><img src="{uri}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            for caption, uri in figures.get(task_name, [])
        )
        comparison = task.get("champion_vs_runner_up")
        compared = ""
        if comparison:
            compared = (
                f"<p>Champion minus runner-up on {html.escape(task['primary'])} (paired "
                f"bootstrap on the same test rows): {comparison['difference']:+.4f}, 95 % CI "
                f"[{comparison['ci_low']:+.4f}, {comparison['ci_high']:+.4f}]; share of "
                f"resamples where the champion is not better: "
                f"{comparison['share_not_better']:.2f}.</p>"
            )
        sections.append(
            f"<h2>{html.escape(task_name.capitalize())}</h2>"
            f"<p>{html.escape(task['ceiling_note'])}</p>"
            f"{metric_table(task)}{compared}"
            f"<h3>Fit diagnosis</h3>{diagnosis_block(task['diagnosis'], task['names'])}"
            f'<div class="figures">{images}</div>'
        )
    summary_items = "".join(f"<li>{html.escape(s)}</li>" for s in summary)
    note_items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 75rem; padding: 0 1rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td, th {{ border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; }}
small {{ color: #555; }}
.gate-passed {{ color: #1a7f37; }} .gate-failed {{ color: #cf222e; }}
.verdict {{ font-weight: bold; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
figure {{ margin: 0; }} img {{ max-width: 36rem; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{summary_items}</ul>
<h2 class="gate-{verdict.lower()}">Quality gate: {verdict}</h2>
<ul>{gate_items}</ul>
{"".join(sections)}
<h2>Leaderboard (cross-validation on the train split)</h2>
{leaderboard_table(leaderboard)}
<h2>Notes</h2><ul>{note_items}</ul>
</body></html>
"""
