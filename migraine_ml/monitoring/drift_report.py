"""`migraine drift-report`: one drift check over a period of the log, as JSON and a page.

The page is self-contained (figures inlined as PNG): a table of every input with
its statistics, then for each drifted input and each drifted model output the
reference's distribution next to the period's, on the reference's own bins.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from migraine_ml.evaluation.report import png_data_uri
from migraine_ml.monitoring.drift import DriftReference, DriftReport
from migraine_ml.monitoring.monitor import served_versions, window_inputs, window_predictions
from migraine_ml.monitoring.reference import (
    EDGES,
    INPUTS,
    KIND,
    NUMERIC,
    PREDICTIONS,
    SHARES,
    bin_shares,
    category_key,
    value_counts,
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A start time: a duration back from now ("24h", "7d", "30m") or an ISO-8601 date/time."""
    now = now or datetime.now(UTC)
    found = _DURATION.match(text.strip())
    if found:
        return now - timedelta(**{_UNITS[found[2]]: float(found[1])})
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration like 24h, 7d, 30m or an ISO-8601 "
            "date/time like 2026-11-01 or 2026-11-01T08:00:00+00:00"
        ) from None
    return start if start.tzinfo else start.replace(tzinfo=UTC)


def _shares_figure(
    labels: list[str], reference: list[float], current: list[float], *, title: str
) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(max(4.5, 0.55 * len(labels) + 2), 3))
    positions = np.arange(len(labels))
    axes.bar(positions - 0.2, reference, width=0.4, label="reference (training)")
    axes.bar(positions + 0.2, current, width=0.4, label="this period")
    axes.set_xticks(positions, labels, rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("share of rows")
    axes.set_title(title)
    axes.legend(fontsize=8)
    return figure


def _bin_labels(edges: list[float]) -> list[str]:
    bounds = ["-inf", *(f"{e:g}" for e in edges), "inf"]
    return [f"({a}, {b}]" for a, b in itertools.pairwise(bounds)]


def _feature_figure(name: str, profile: Mapping[str, Any], values: pd.Series) -> str:
    if profile[KIND] == NUMERIC:
        present = pd.to_numeric(values, errors="coerce").dropna()
        current = bin_shares(present, profile[EDGES])
        figure = _shares_figure(_bin_labels(profile[EDGES]), profile[SHARES], current, title=name)
    else:
        shares = {category_key(k): v for k, v in profile[SHARES].items()}
        counts = value_counts(values)
        total = sum(counts.values()) or 1
        keys = [*shares, *(k for k in counts if k not in shares)]
        figure = _shares_figure(
            keys,
            [shares.get(k, 0.0) for k in keys],
            [counts.get(k, 0) / total for k in keys],
            title=name,
        )
    return png_data_uri(figure)


def _output_figure(title: str, profile: Mapping[str, Any], scores: np.ndarray) -> str:
    present = scores[~np.isnan(scores)]
    current = bin_shares(present, profile[EDGES])
    return png_data_uri(
        _shares_figure(_bin_labels(profile[EDGES]), profile[SHARES], current, title=title)
    )


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return html.escape(str(value))


def render_drift_html(
    report: DriftReport,
    reference: Mapping[str, Any],
    rows: pd.DataFrame,
    *,
    period: str,
    versions: Mapping[str, str | None] | None = None,
) -> str:
    """The page: summary, the feature table, and a figure per drifted input and output."""
    result = report.to_dict()
    prepared = DriftReference.from_dict(reference)
    inputs = window_inputs(rows, prepared)
    drifted = set(report.drifted_features)
    table = "".join(
        f"<tr class='{'drift' if f['drift'] else 'warning' if f['warning'] else ''}'>"
        f"<td>{html.escape(name)}</td><td>{f['kind']}</td><td>{f['rows']}</td>"
        f"<td>{_number(f['psi'])}</td>"
        f"<td>{_number(f['ks_p'] if f['ks_p'] is not None else f['chi2_p'])}</td>"
        f"<td>{_number(f['effect'])}</td><td>{_number(f['drift'])}</td></tr>"
        for name, f in result["features"].items()
    )
    figures = [
        (f"Input {name}: reference vs this period", _feature_figure(name, profile, inputs[name]))
        for name, profile in reference[INPUTS].items()
        if name in drifted
    ]
    scores = window_predictions(rows, prepared, versions) if report.prediction else {}
    for prediction in report.prediction:
        for output in prediction.outputs:
            if output.drift:
                title = f"{prediction.task} output {output.output}"
                profile = reference[PREDICTIONS][prediction.task][output.output]
                figures.append(
                    (
                        f"Model {title}: reference vs this period",
                        _output_figure(title, profile, scores[prediction.task][output.output]),
                    )
                )
    performance = result["performance"]
    performance_line = (
        "no classifier labels in this period"
        if performance is None or not performance["labels"]
        else f"{performance['metric']} {_number(performance['value'])} on "
        f"{performance['labels']} labels against {_number(performance['test_value'])} on the "
        f"test rows (drop {_number(performance['drop'])}; judged from "
        f"{performance['min_labels']} labels: {'DRIFT' if performance['drift'] else 'no drift'})"
    )
    verdict = (
        result["note"]
        if result["note"]
        else ("DRIFT: " + ", ".join(report.drifted_features or ["model outputs or performance"]))
        if report.drifted
        else "no drift"
    )
    images = "".join(
        f"<figure><img alt='{html.escape(caption)}' src='{uri}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, uri in figures
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: .25rem .6rem; border-bottom: 1px solid #ddd; }}
tr.drift {{ background: #fdd; }} tr.warning {{ background: #ffc; }}
figure {{ display: inline-block; margin: 1rem; }}
</style></head><body>
<h1>Drift report</h1>
<p id="verdict"><strong>{html.escape(verdict)}</strong></p>
<p>Period: {html.escape(period)}; {result["window"]} predictions
(nothing is judged below {result["min_window"]}); checked {html.escape(result["checked_at"])}.
A feature drifts when PSI &gt; 0.2, or when its test (KS for numbers, chi-square for
categories) is significant at {_number(result["test_alpha"])} (0.05 after Bonferroni over the
features tested) <em>and</em> its effect is at least 0.1 (Wasserstein distance / training sd,
or Cohen's w). Yellow rows: PSI between 0.1 and 0.2.</p>
<p>Performance: {html.escape(performance_line)}.</p>
<table id="features"><thead><tr><th>input</th><th>kind</th><th>rows</th><th>PSI</th>
<th>p-value</th><th>effect</th><th>drift</th></tr></thead><tbody>{table}</tbody></table>
<h2>Drifted inputs and outputs</h2>
{images or "<p>None: no figure to show.</p>"}
</body></html>
"""


def write_drift_report(
    database: Any,
    reference: Mapping[str, Any],
    manifest: Mapping[str, Any],
    *,
    since: datetime,
    settings: Any,
    test_value: float | None,
    out_dir: Path,
    now: datetime | None = None,
) -> tuple[DriftReport, Path, Path]:
    """One check over every logged prediction since `since`: drift.json and drift.html."""
    from migraine_ml.monitoring.monitor import check_window

    now = now or datetime.now(UTC)
    rows = database.since(since.timestamp())
    prepared = DriftReference.from_dict(reference)
    versions = served_versions(manifest)
    report = check_window(
        rows, prepared, settings, test_value=test_value, versions=versions, checked_at=now
    )
    period = f"{since.isoformat(timespec='seconds')} to {now.isoformat(timespec='seconds')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "drift.json", out_dir / "drift.html"
    result = report.to_dict() | {
        "since": since.isoformat(),
        "until": now.isoformat(),
        # what judged this period (the window is the period itself, every row of it)
        "settings": {
            key: settings.to_dict()[key]
            for key in ("min_window", "min_labels", "metric", "max_drop")
        },
        "versions": versions,
    }
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    html_path.write_text(
        render_drift_html(report, reference, rows, period=period, versions=versions)
    )
    return report, json_path, html_path
