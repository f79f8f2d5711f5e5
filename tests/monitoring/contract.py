"""The metric contract: every metric the alerts and the dashboard may name.

The service exports these on /metrics (counters with their `_total`, histograms by
their family name); monitoring/prometheus/rules.yml and monitoring/grafana/dashboard.py
name nothing else (tests/monitoring/test_rules.py), and the service exports nothing
else (tests/monitoring/test_scrape.py). A new metric is added here first.
"""

from __future__ import annotations

CONTRACT: list[tuple[str, str]] = [
    # prometheus-flask-exporter, group_by="endpoint"
    ("flask_http_request_duration_seconds", "histogram"),  # endpoint, method, status
    ("flask_http_request_total", "counter"),  # method, status
    ("flask_exporter_info", "gauge"),
    # app/metrics.py
    ("migraine_predictions_total", "counter"),  # model, version, predicted_class
    ("migraine_validation_errors_total", "counter"),  # field
    ("migraine_models_ready", "gauge"),
    ("migraine_model_info", "gauge"),  # task, rank, model, version, serving
    ("migraine_batch_size", "histogram"),
    # app/reload.py: promoted models picked up (or refused), per process
    ("migraine_model_reloads_total", "counter"),  # result
    # the prediction log
    ("migraine_prediction_log_dropped_total", "counter"),
    ("migraine_prediction_log_buffered", "gauge"),
    ("migraine_prediction_log_healthy", "gauge"),
    # the drift monitor (multiprocess "mostrecent")
    ("migraine_drift_feature_psi", "gauge"),  # feature
    ("migraine_drift_feature_drift", "gauge"),  # feature
    ("migraine_drift_prediction_psi", "gauge"),  # task, output
    ("migraine_drift_prediction_drift", "gauge"),  # task
    ("migraine_drift_window_accuracy", "gauge"),
    ("migraine_drift_test_accuracy", "gauge"),
    ("migraine_drift_performance_drift", "gauge"),
    ("migraine_drift_window_labels", "gauge"),
    ("migraine_drift_window_rows", "gauge"),
    ("migraine_drift_detected", "gauge"),
    ("migraine_drift_last_check_timestamp_seconds", "gauge"),
]

# what the service exported before the prediction log and drift metrics
EXPORTED_TODAY = {
    "flask_http_request_duration_seconds",
    "flask_http_request_total",
    "migraine_predictions_total",
    "migraine_validation_errors_total",
    "migraine_models_ready",
    "migraine_model_info",
    "migraine_batch_size",
}

# series Prometheus makes itself
PROMETHEUS_SERIES = {"up"}

_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def series_names() -> set[str]:
    """The sample names a query may select."""
    return {name + suffix for name, kind in CONTRACT for suffix in _SUFFIXES[kind]}
