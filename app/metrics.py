"""Prometheus metrics through prometheus-flask-exporter.

Under gunicorn, `app/gunicorn.conf.py` sets PROMETHEUS_MULTIPROC_DIR before
anything imports prometheus_client, and every worker writes its own files that
/metrics aggregates. Outside gunicorn (tests, `flask run`) each app gets its
own registry. Requests are grouped by endpoint, never by raw path, so a client
cannot blow up the label space.

The exporter serves /metrics; the per-request metrics it calls its defaults
(`flask_http_request_duration_seconds`, `flask_http_request_total`,
`flask_http_request_exceptions_total`, `flask_exporter_info`) are recorded here
instead, with the same names, labels and buckets: the exporter's hooks cost ~85 us
a request on the benchmark machine (LocalProxy attribute probes, `labels(**kwargs)`
on every call), these ~15 us (one proxy lookup, label children cached per
(method, endpoint, status)). As with the exporter, /metrics itself is not counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from timeit import default_timer
from typing import TYPE_CHECKING

from flask import Flask, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics

if TYPE_CHECKING:
    from app.model_store import ModelStore, ServedModel

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class ServiceMetrics:
    predictions: Counter
    validation_errors: Counter
    model_info: Gauge
    models_ready: Gauge
    batch_size: Histogram
    model_reloads: Counter

    def show_models(self, store: ModelStore, previous: ModelStore | None = None) -> None:
        """`migraine_model_info` for the served models; those of `previous` drop to 0."""
        if previous is not None:
            for model in previous.models.values():
                self.model_info.labels(*_model_labels(model)).set(0)
        self.models_ready.set(1 if store.ready else 0)
        for model in store.models.values():
            self.model_info.labels(*_model_labels(model)).set(1)


def _model_labels(model: ServedModel) -> tuple[str, str, str, str, str]:
    serving = "fast_path" if model.fast is not None else "sklearn"
    return model.task, model.rank, model.name, model.version, serving


def registry_kwargs(app: Flask) -> dict:
    """Keyword arguments for a metric of this app: its own registry outside gunicorn."""
    registry = app.extensions["metrics_registry"]
    return {"registry": registry} if registry is not None else {}


def init_app(app: Flask) -> None:
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if multiprocess:
        # the "Internal" variant serves /metrics from the app itself, on the service port
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        exporter = GunicornInternalPrometheusMetrics(app, export_defaults=False)
        registry = None  # metric files are written per process; /metrics collects them
    else:
        registry = CollectorRegistry()
        exporter = PrometheusMetrics(app, export_defaults=False, registry=registry)
    _track_requests(app, exporter)
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
        # summed over processes: every worker and the drift monitor reload (app/reload.py)
        model_reloads=Counter(
            "migraine_model_reloads",
            "New models loaded, or refused because they failed verification",
            ["result"],
            **kwargs,
        ),
    )
    for result in ("loaded", "refused"):  # both series exist from the start, at 0
        service.model_reloads.labels(result)
    service.show_models(app.extensions["model_store"])
    app.extensions["prometheus"] = exporter
    app.extensions["service_metrics"] = service


_STARTED = "migraine.request_started"  # WSGI environ keys
_REPORTED = "migraine.request_reported"
_UNTRACKED = ("prom_do_not_track", "prom_exclude_all")  # the exporter's opt-out marks


def _track_requests(app: Flask, exporter: PrometheusMetrics) -> None:
    """Request count and latency by endpoint, as prometheus-flask-exporter's defaults
    (`export_defaults(group_by="endpoint")`) record them, at a fraction of the cost."""
    exporter.info(
        "flask_exporter_info",
        "Information about the Prometheus Flask exporter",
        version=exporter.version,
    )
    duration = Histogram(
        "flask_http_request_duration_seconds",
        "Flask HTTP request duration in seconds",
        ("method", "endpoint", "status"),
        registry=exporter.registry,
        buckets=LATENCY_BUCKETS,
    )
    total = Counter(
        "flask_http_request_total",
        "Total number of HTTP requests",
        ("method", "status"),
        registry=exporter.registry,
    )
    exceptions = Counter(
        "flask_http_request_exceptions_total",
        "Total number of HTTP requests which resulted in an exception",
        ("method", "status"),
        registry=exporter.registry,
    )
    # (method, endpoint, status) -> (duration child, total child): endpoints are the
    # app's routes (None when no route matched); a client may invent methods, so the
    # cache stops growing at a bound (the metric itself is labelled as before)
    children: dict[tuple, tuple] = {}

    def record(req, status: int) -> None:
        method, endpoint = req.method, req.endpoint
        key = (method, endpoint, status)
        pair = children.get(key)
        if pair is None:
            pair = (duration.labels(method, endpoint, status), total.labels(method, status))
            if len(children) < 256:
                children[key] = pair
        environ = req.environ
        started = environ.get(_STARTED)
        if started is not None:
            pair[0].observe(max(default_timer() - started, 0))
        pair[1].inc()
        environ[_REPORTED] = True  # a teardown with an exception does not count it again

    wsgi_app = app.wsgi_app

    def timed(environ, start_response):
        environ[_STARTED] = default_timer()
        return wsgi_app(environ, start_response)

    app.wsgi_app = timed

    @app.after_request
    def after_request(response):
        req = request._get_current_object()
        if _UNTRACKED[0] in req.__dict__ or _UNTRACKED[1] in req.__dict__:
            return response
        record(req, response.status_code)
        return response

    @app.teardown_request
    def teardown_request(exception=None):
        if exception is None:
            return
        req = request._get_current_object()
        if _UNTRACKED[0] in req.__dict__ or _UNTRACKED[1] in req.__dict__:
            return
        exceptions.labels(req.method, 500).inc()
        if _REPORTED not in req.environ:  # after_request did not run
            record(req, 500)
