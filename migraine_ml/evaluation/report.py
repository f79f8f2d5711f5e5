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
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from migraine_ml.evaluation.diagnosis import Diagnosis
from migraine_ml.evaluation.evaluate import HELD_OUT, Evaluation, TaskEvaluation
from migraine_ml.evaluation.metrics import LOWER_IS_BETTER

Figure = tuple[str, str]  # (caption, PNG data URI)


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
    if max(map(len, labels), default=0) > 3:  # class names, not 0/1: keep them legible
        plt.setp(axes.get_xticklabels(), rotation=40, ha="right")
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


def classification_figures(
    y: np.ndarray,
    outputs: dict[str, np.ndarray],
    classes: list[Any],
    names: dict[str, str],
    *,
    rows: str = "test split",
) -> list[Figure]:
    """Confusion matrix of the champion; for two classes also ROC, precision-recall and
    calibration curves of every model (the dummy included, as the chance line)."""
    labels = [str(c) for c in classes]
    predicted = outputs["champion"].argmax(axis=1)
    matrix = confusion_matrix(y, predicted, labels=range(len(labels)))
    figures = [
        (
            f"Confusion matrix, champion ({rows})",
            png_data_uri(
                confusion_figure(matrix, labels, title=f"Confusion matrix: {names['champion']}")
            ),
        )
    ]
    if len(classes) != 2:
        return figures
    roc, pr, calibration = {}, {}, {}
    for rank, proba in outputs.items():
        label = f"{rank}: {names.get(rank, rank)}"
        fpr, tpr, _ = roc_curve(y, proba[:, 1])
        roc[label] = (fpr, tpr)
        precision, recall, _ = precision_recall_curve(y, proba[:, 1])
        pr[label] = (recall, precision)
        if rank != "dummy":
            true, pred = calibration_curve(y, proba[:, 1], n_bins=10, strategy="quantile")
            calibration[label] = (pred, true)
    roc_plot = curve_figure(
        roc, title="ROC", xlabel="false positive rate", ylabel="true positive rate", diagonal=True
    )
    pr_plot = curve_figure(pr, title="Precision-recall", xlabel="recall", ylabel="precision")
    calibration_plot = curve_figure(
        calibration,
        title="Calibration",
        xlabel="mean predicted probability",
        ylabel=f"observed share of '{labels[1]}'",
        diagonal=True,
    )
    figures.append((f"ROC curve ({rows})", png_data_uri(roc_plot)))
    figures.append((f"Precision-recall curve ({rows})", png_data_uri(pr_plot)))
    figures.append((f"Calibration curve ({rows}, quantile bins)", png_data_uri(calibration_plot)))
    return figures


def residual_figure(
    y: np.ndarray, predicted: np.ndarray, name: str, *, rows: str = "test split"
) -> Figure:
    plot = scatter_figure(
        predicted,
        y - predicted,
        title=f"Residuals: {name}",
        xlabel="predicted",
        ylabel="actual - predicted",
    )
    return (f"Residuals vs predicted, champion ({rows})", png_data_uri(plot))


def importance_figure(
    means: dict[str, float], errors: dict[str, float], *, scoring: str, name: str
) -> Figure:
    plot = bar_figure(
        means,
        errors=errors,
        xlabel=f"drop in {scoring} when permuted",
        title=f"Permutation importance: {name}",
    )
    return ("Permutation importance, served champion (held-out test split)", png_data_uri(plot))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def metric_table(task: TaskEvaluation) -> str:
    """Rows: metrics. Columns: each model with its 95 % CI, the dummy, the ceiling."""
    test = task.scores.test
    ranks = [r for r in ("champion", "runner_up", "reference", "dummy") if r in test]
    names = {r: task.names.get(r, r) for r in ranks}
    ceiling = task.ceiling or {}
    metrics = [k for k in test["champion"] if not k.endswith(("_ci_low", "_ci_high"))]
    head = "".join(
        f"<th>{html.escape(r)}<br><small>{html.escape(names[r])}</small></th>" for r in ranks
    )
    rows = []
    for metric in metrics:
        cells = []
        for rank in ranks:
            scores = test[rank]
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


def _chosen_features(entry: dict[str, Any]) -> str:
    """What a leaderboard entry's selection chose: '12 of the validated columns'."""
    chosen = entry.get("features") or {}
    if not chosen:
        return ""
    pool = "validated" if chosen.get("pool") == "plain" else "validated + engineered"
    return f"{chosen.get('n_features')} ({pool})"


def leaderboard_table(entries: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(e['task'])}</td><td>{html.escape(e['name'])}</td>"
        f"<td>{html.escape(e['scoring'])}</td><td>{e['cv_mean']:.4f} ± {e['cv_std']:.4f}</td>"
        f"<td>{html.escape(_chosen_features(e))}</td>"
        f"<td>{html.escape('; '.join(e.get('notes', [])))}</td></tr>"
        for e in entries
    )
    return (
        "<table><tr><th>task</th><th>model</th><th>CV scoring</th><th>CV mean ± sd</th>"
        f"<th>features kept (from)</th><th>notes</th></tr>{rows}</table>"
    )


def diagnosis_block(diagnoses: dict[str, Diagnosis], names: dict[str, str]) -> str:
    parts = []
    for rank, d in diagnoses.items():
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in d.reasons)
        advice = "".join(f"<li>{html.escape(r)}</li>" for r in d.recommendations)
        parts.append(
            f'<div class="diag"><h4>{html.escape(rank)} ({html.escape(names.get(rank, ""))}):'
            f' <span class="verdict">{html.escape(d.verdict)}</span></h4>'
            f"<p>train {d.train:.4f}, test {d.test:.4f}, gap {d.gap:.4f}, "
            f"lift over dummy {d.lift_over_dummy:.4f}</p>"
            f"<ul>{reasons}</ul>"
            + (f"<p>Recommendations:</p><ul>{advice}</ul>" if advice else "")
            + "</div>"
        )
    return "".join(parts)


def _scored_rows(task: TaskEvaluation) -> str:
    if task.method == HELD_OUT:
        return "test split"
    return "out-of-fold outputs of the first repeat, one champion per fold"


def task_figures(task: TaskEvaluation) -> list[tuple[str, str]]:
    """(caption, PNG data URI) of the task's plots: curves or residuals, then importance."""
    outputs, champion = task.scores.outputs, task.names["champion"]
    if task.classes is not None:
        figures = classification_figures(
            task.y_test, outputs, task.classes, task.names, rows=_scored_rows(task)
        )
    else:
        figures = [
            residual_figure(task.y_test, outputs["champion"], champion, rows=_scored_rows(task))
        ]
    figures.append(
        importance_figure(
            task.importance, task.importance_spread, scoring=task.scoring, name=champion
        )
    )
    return figures


def render_report(evaluation: Evaluation) -> str:
    """One self-contained HTML page: no scripts, no network, images as data URIs."""
    title, gate = evaluation.title, evaluation.gate
    verdict = "PASSED" if gate.passed else "FAILED"
    gate_items = "".join(f"<li>{html.escape(f)}</li>" for f in gate.failures)
    sections = []
    for task_name, task in evaluation.tasks.items():
        images = "".join(
            f'<figure><img src="{uri}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            for caption, uri in task_figures(task)
        )
        comparison = task.scores.champion_vs_runner_up
        compared = ""
        if comparison:
            compared = (
                f"<p>Champion minus runner-up on {html.escape(task.primary)} (paired "
                f"bootstrap on the same test rows): {comparison.difference:+.4f}, 95 % CI "
                f"[{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}]; share of "
                f"resamples where the champion is not better: "
                f"{comparison.share_not_better:.2f}.</p>"
            )
        sections.append(
            f"<h2>{html.escape(task_name.capitalize())}</h2>"
            f"<p>Scored on the {html.escape(task.method)}.</p>"
            f"<p>{html.escape(task.judgement.ceiling_note)}</p>"
            f"{metric_table(task)}{compared}"
            f'<p class="reference">{html.escape(task.reference_note)}</p>'
            f"<h3>Fit diagnosis</h3>{diagnosis_block(task.judgement.diagnosis, task.names)}"
            f'<div class="figures">{images}</div>'
        )
    summary_items = "".join(f"<li>{html.escape(s)}</li>" for s in evaluation.summary)
    note_items = "".join(f"<li>{html.escape(n)}</li>" for n in evaluation.notes)
    leaderboard = evaluation.leaderboard
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
