"""The prediction service: `create_app()` for gunicorn ('app:create_app()') and tests."""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from pathlib import Path
from types import FunctionType

from flask import Flask

from app import drift, errors, metrics, prediction_log, reload, security

ROOT = Path(__file__).resolve().parents[1]


def _log_where_gunicorn_logs() -> None:
    """Under gunicorn, the service's own loggers write to gunicorn's error log, at its level."""
    gunicorn_error = logging.getLogger("gunicorn.error")
    if not gunicorn_error.handlers:
        return  # tests, flask run, the drift monitor process: the caller configures logging
    for name in ("app", "migraine_ml"):
        own = logging.getLogger(name)
        own.handlers, own.propagate = list(gunicorn_error.handlers), False
        own.setLevel(gunicorn_error.level)


def _parsed(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def _settings_from_files(environ, settings: dict) -> dict[str, str]:
    """MIGRAINE_<NAME>_FILE: a setting read from a file (a Docker or Kubernetes secret), so
    a password in a PostgreSQL URL or the API keys never sit in the environment. Only for
    the settings above (MIGRAINE_METRICS_FILE is a setting of its own); parsed as JSON where
    it can be, like the environment (API keys verbatim), without a final newline; an empty
    file stops the start. The file wins over MIGRAINE_<NAME>: the image sets plain
    defaults a deployment overrides."""
    found = {}
    for variable, path in environ.items():
        name = variable.removeprefix("MIGRAINE_").removesuffix("_FILE")
        if variable == f"MIGRAINE_{name}_FILE" and name in settings:
            value = Path(path).read_text().removesuffix("\n")
            if not value.strip():  # an empty key file would silently turn off authentication
                raise ValueError(f"{variable}: {path} is empty")
            found[name] = value if name == "API_KEYS" else _parsed(value)
    return found


class _Service(Flask):
    """Flask that asks once per function whether it is a coroutine: Flask asks
    `iscoroutinefunction` of every hook and the view on every request, a measurable
    share of a single-record prediction (bench/README.md), and the answer never changes."""

    def ensure_sync(self, func):
        if type(func) is not FunctionType:  # bound to a fresh object per request: no cache
            return super().ensure_sync(func)
        wrapped = self._sync_functions.get(func)
        if wrapped is None:
            wrapped = self._sync_functions[func] = super().ensure_sync(func)
        return wrapped

    @cached_property
    def _sync_functions(self) -> dict:
        return {}


def create_app(test_config: dict | None = None) -> Flask:
    app = _Service(__name__)
    app.config.from_mapping(
        MODELS_DIR=str(ROOT / "models"),
        DVC_LOCK=str(ROOT / "dvc.lock"),
        VERIFY_MODELS=True,  # refuse models whose hash does not match dvc.lock
        FAST_PATH=True,  # numpy fast path where training recorded parity
        LOAD_PIPELINES=True,  # False: verify models/ but load no model (the drift monitor)
        # seconds between looks at models/ and dvc.lock for promoted models, which are
        # verified and swapped in while serving (app/reload.py); 0 = never (POST /admin/reload)
        MODEL_RELOAD_INTERVAL=2,
        MAX_BATCH=1000,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,  # bytes; larger bodies get 413
        # a SQLite file, a postgresql:// URL (shared by replicas), or "off" (no logging)
        PREDICTION_LOG=str(ROOT / "data" / "predictions.db"),
        PREDICTION_LOG_CAPACITY=10_000,  # rows buffered per worker while the database is away
        # drift monitoring over the log (docs/monitoring.md): a check every DRIFT_CHECK_EVERY
        # logged predictions or DRIFT_INTERVAL seconds over the last DRIFT_WINDOW rows
        DRIFT_CHECK_EVERY=500,
        DRIFT_INTERVAL=60,
        DRIFT_MIN_SECONDS=5,  # never two checks closer together
        DRIFT_WINDOW=1000,
        DRIFT_MIN_WINDOW=200,  # judge nothing on fewer rows
        DRIFT_MIN_LABELS=200,  # judge accuracy from this many labels in the window
        DRIFT_EVENTS=str(ROOT / "data" / "drift-events.jsonl"),  # "" = no event file
        METRICS_FILE=str(ROOT / "reports" / "metrics.json"),  # the test accuracy to compare
        API_KEYS="",  # comma-separated; empty = no authentication (local use)
        RATELIMIT_ENABLED=False,
        RATELIMIT_DEFAULT="50 per second",
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_HEADERS_ENABLED=True,  # Retry-After on 429
        SHED_LIMIT=None,  # e.g. "1500 per second": one budget for all clients (429 beyond)
    )
    if test_config is None:
        # deployment: every setting above as MIGRAINE_<NAME> (MIGRAINE_MODELS_DIR=...,
        # MIGRAINE_RATELIMIT_ENABLED=true, ...); values are parsed as JSON where they can be
        app.config.from_prefixed_env("MIGRAINE")
        # Keys are read verbatim (a key like "1234" or "null" must not become JSON). Plain
        # API_KEYS is a documented alias; MIGRAINE_API_KEYS wins when both are set.
        app.config["API_KEYS"] = os.environ.get(
            "MIGRAINE_API_KEYS", os.environ.get("API_KEYS", app.config["API_KEYS"])
        )
        app.config.update(_settings_from_files(os.environ, app.config))
    else:
        app.config.update(test_config)

    _log_where_gunicorn_logs()
    reload.init_app(app)  # app.extensions["model_store"], verified; ["model_reloader"]
    errors.init_app(app)
    security.init_app(app)
    metrics.init_app(app)
    prediction_log.init_app(app)  # app.extensions["prediction_log"]
    drift.init_app(app)  # app.extensions["drift_monitor"]

    from app.drift import bp as drift_bp
    from app.feedback import bp as feedback_bp
    from app.health import bp as health_bp
    from app.introspection import bp as introspection_bp
    from app.predict import bp as predict_bp
    from app.reload import bp as admin_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(predict_bp)
    app.register_blueprint(feedback_bp)
    app.register_blueprint(drift_bp)
    app.register_blueprint(introspection_bp)
    app.register_blueprint(admin_bp)
    security.apply_limits(app)
    return app
