"""The service's Grafana dashboard, generated: `make dashboards` writes dashboards/migraine.json.

`--check` exits 1 when the committed JSON differs from a fresh generation (`make lint`), so
the JSON is never edited by hand. Queries name only the metrics of
tests/monitoring/contract.py (tests/monitoring/test_rules.py holds them to it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row, ThresholdsConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)

OUT = Path(__file__).resolve().parent / "dashboards" / "migraine.json"
# provisioning/datasources/prometheus.yml gives the data source this uid
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
# other Flask apps may export flask_* too: only this job's
FLASK = 'job="migraine"'
PREDICT = f'{FLASK}, endpoint="predict.predict"'


def query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    return Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def graph(title: str, unit: str, *targets: Dataquery, width: int = 8) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE)
    panel = panel.span(width).height(8).fill_opacity(10).line_width(1)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def big_value(title: str, expr: str, steps: ThresholdsConfig) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .span(4)
        .height(4)
        .with_target(query(expr))
        .thresholds(steps)
        .color_mode(BigValueColorMode.BACKGROUND)
        .graph_mode(BigValueGraphMode.NONE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
    )


def flag(title: str, expr: str, *, zero: str, one: str, one_is_bad: bool = True) -> stat.Panel:
    """A 1/0 gauge as a coloured word."""
    words = ValueMap(
        options={"0": ValueMappingResult(text=zero), "1": ValueMappingResult(text=one)}
    )
    colours = ("green", "red") if one_is_bad else ("red", "green")
    steps = thresholds((None, colours[0]), (1, colours[1]))
    return big_value(title, expr, steps).mappings([words])


def number(title: str, expr: str, unit: str, steps: ThresholdsConfig) -> stat.Panel:
    return big_value(title, expr, steps).unit(unit)


def build() -> Dashboard:
    rate = "$__rate_interval"
    return (
        Dashboard("Migraine service")
        .uid("migraine-service")
        .tags(["migraine", "generated"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_row(Row("Service"))
        .with_panel(
            flag(
                "Models",
                "min(migraine_models_ready)",
                zero="NOT READY",
                one="ready",
                one_is_bad=False,
            )
        )
        .with_panel(
            number(
                "5xx share (5 min)",
                f'sum(rate(flask_http_request_total{{{FLASK}, status=~"5.."}}[5m]))'
                f" / sum(rate(flask_http_request_total{{{FLASK}}}[5m]))",
                "percentunit",
                thresholds((None, "green"), (0.01, "orange"), (0.05, "red")),
            )
        )
        .with_panel(
            number(
                "/predict p99 (5 min)",
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(flask_http_request_duration_seconds_bucket{{{PREDICT}}}[5m])))",
                "s",
                thresholds((None, "green"), (0.25, "orange"), (0.5, "red")),
            )
        )
        .with_panel(flag("Any drift", "max(migraine_drift_detected)", zero="none", one="DRIFT"))
        .with_panel(
            flag(
                "Prediction log",
                "min(migraine_prediction_log_healthy)",
                zero="FAILING",
                one="healthy",
                one_is_bad=False,
            )
        )
        .with_panel(
            number(
                "Since last drift check",
                "time() - max(migraine_drift_last_check_timestamp_seconds > 0)",
                "s",
                # rules.yml: stale after 30 minutes
                thresholds((None, "green"), (600, "orange"), (1800, "red")),
            )
        )
        .with_panel(
            graph(
                "Requests by status",
                "reqps",
                query(
                    f"sum by (status) (rate(flask_http_request_total{{{FLASK}}}[{rate}]))",
                    "{{status}}",
                ),
            )
        )
        .with_panel(
            graph(
                "/predict latency",
                "s",
                query(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(flask_http_request_duration_seconds_bucket{{{PREDICT}}}[{rate}])))",
                    "p50",
                ),
                query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(flask_http_request_duration_seconds_bucket{{{PREDICT}}}[{rate}])))",
                    "p99",
                    "B",
                ),
            )
        )
        .with_panel(
            graph(
                "Predictions by class",
                "ops",
                query(
                    f"sum by (predicted_class) (rate(migraine_predictions_total[{rate}]))",
                    "class {{predicted_class}}",
                ),
                query(
                    f"sum by (field) (rate(migraine_validation_errors_total[{rate}]))",
                    "rejected: {{field}}",
                    "B",
                ),
            )
        )
        .with_row(Row("Drift"))
        .with_panel(
            graph(
                "Input PSI per feature (drift above 0.2)",
                "none",
                query("max by (feature) (migraine_drift_feature_psi)", "{{feature}}"),
                width=12,
            ).thresholds(thresholds((None, "green"), (0.1, "orange"), (0.2, "red")))
        )
        .with_panel(
            graph(
                "Output PSI per task",
                "none",
                query(
                    "max by (task, output) (migraine_drift_prediction_psi)",
                    "{{task}} {{output}}",
                ),
                width=12,
            ).thresholds(thresholds((None, "green"), (0.1, "orange"), (0.2, "red")))
        )
        .with_panel(
            graph(
                "Drifted features",
                "none",
                query(
                    "max by (feature) (migraine_drift_feature_drift) == 1",
                    "{{feature}}",
                ),
                query(
                    "max by (task) (migraine_drift_prediction_drift) == 1",
                    "output of {{task}}",
                    "B",
                ),
                query("max(migraine_drift_performance_drift) == 1", "accuracy", "C"),
            )
        )
        .with_panel(
            graph(
                "Accuracy: window vs test",
                "percentunit",
                query("min(migraine_drift_window_accuracy)", "window (labelled rows)"),
                query("max(migraine_drift_test_accuracy)", "test split", "B"),
            )
        )
        .with_panel(
            graph(
                "Rows in the drift window",
                "none",
                query("max(migraine_drift_window_rows)", "rows"),
                query("max(migraine_drift_window_labels)", "labelled", "B"),
            )
        )
        .with_row(Row("Prediction log"))
        .with_panel(
            graph(
                "Rows dropped",
                "none",
                query(
                    f"sum(increase(migraine_prediction_log_dropped_total[{rate}]))",
                    "dropped",
                ),
                width=12,
            )
        )
        .with_panel(
            graph(
                "Rows buffered",
                "none",
                query("sum by (instance) (migraine_prediction_log_buffered)", "{{instance}}"),
                width=12,
            )
        )
    )


def render() -> str:
    dashboard = build().build()
    # stable ids (the builder leaves panels without one, rows at 0): links to a panel survive
    for number_, panel in enumerate(dashboard.panels or [], start=1):
        panel.id_val = number_
    return JSONEncoder(sort_keys=True, indent=2).encode(dashboard) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run `make dashboards`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
