"""Prometheus metrics through prometheus-flask-exporter.

Under gunicorn, `app/gunicorn.conf.py` sets PROMETHEUS_MULTIPROC_DIR before
anything imports prometheus_client, and every worker writes its own files that
/metrics aggregates. Outside gunicorn (tests, `flask run`) each app gets its
own registry. Requests are grouped by endpoint, never by raw path, so a client
cannot blow up the label space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class ServiceMetrics:
    predictions: Counter
    validation_errors: Counter
    model_info: Gauge
    models_ready: Gauge
    batch_size: Histogram


def registry_kwargs(app: Flask) -> dict:
    """Keyword arguments for a metric of this app: its own registry outside gunicorn."""
    registry = app.extensions["metrics_registry"]
    return {"registry": registry} if registry is not None else {}


def init_app(app: Flask) -> None:
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if multiprocess:
        # the "Internal" variant serves /metrics from the app itself, on the service port
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        exporter = GunicornInternalPrometheusMetrics(
            app, group_by="endpoint", buckets=LATENCY_BUCKETS
        )
        registry = None  # metric files are written per process; /metrics collects them
    else:
        registry = CollectorRegistry()
        exporter = PrometheusMetrics(
            app, group_by="endpoint", buckets=LATENCY_BUCKETS, registry=registry
        )
    app.extensions["metrics_registry"] = registry
    kwargs = registry_kwargs(app)
    service = ServiceMetrics(
        predictions=Counter(
            "migraine_predictions",
            "Predictions served",
            ["model", "version", "predicted_class"],
            **kwargs,
        ),
        validation_errors=Counter(
            "migraine_validation_errors", "Rejected input fields", ["field"], **kwargs
        ),
        model_info=Gauge(
            "migraine_model_info",
            "Models loaded (1 = serving)",
            ["task", "rank", "model", "version", "serving"],
            multiprocess_mode="max",
            **kwargs,
        ),
        models_ready=Gauge(
            "migraine_models_ready",
            "1 if models are loaded and verified",
            multiprocess_mode="min",
            **kwargs,
        ),
        batch_size=Histogram(
            "migraine_batch_size",
            "Records per /predict request",
            buckets=(1, 2, 5, 10, 50, 100, 500, 1000),
            **kwargs,
        ),
    )
    store = app.extensions["model_store"]
    service.models_ready.set(1 if store.ready else 0)
    for model in store.models.values():
        fast = "fast_path" if model.fast is not None else "sklearn"
        service.model_info.labels(model.task, model.rank, model.name, model.version, fast).set(1)
    app.extensions["prometheus"] = exporter
    app.extensions["service_metrics"] = service
