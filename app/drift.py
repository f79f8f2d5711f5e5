"""GET /drift: the latest drift check, and the monitor's wiring into the app."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify
from werkzeug.exceptions import ServiceUnavailable

from app.metrics import registry_kwargs
from app.model_store import ModelStore
from app.monitor import (
    PID_FILE,
    DriftEvents,
    DriftGauges,
    DriftMonitor,
    monitor_process_alive,
)
from migraine_ml.monitoring.drift import DriftReference
from migraine_ml.monitoring.monitor import DriftSettings, champion_figure, served_versions
from migraine_ml.monitoring.prediction_log import LogUnavailable

logger = logging.getLogger(__name__)

bp = Blueprint("drift", __name__)


def settings_from(config) -> DriftSettings:
    return DriftSettings(
        check_every=int(config["DRIFT_CHECK_EVERY"]),
        interval=float(config["DRIFT_INTERVAL"]),
        min_seconds=float(config["DRIFT_MIN_SECONDS"]),
        window=int(config["DRIFT_WINDOW"]),
        min_window=int(config["DRIFT_MIN_WINDOW"]),
        min_labels=int(config["DRIFT_MIN_LABELS"]),
    )


def _test_value(path: Path, metric: str) -> float | None:
    """The champion's test figure the window's accuracy is judged against, if evaluated."""
    try:
        return champion_figure(json.loads(path.read_text()), metric)
    except (OSError, ValueError) as err:
        logger.warning(
            "drift monitor: no test %s from %s (%s): performance not judged", metric, path, err
        )
        return None


def init_app(app: Flask) -> None:
    """Build the monitor when there is a log to read and a reference to compare with.

    Otherwise `app.extensions["drift_monitor"]` is None and `drift_off` says why.
    """
    app.extensions["drift_monitor"] = None
    store = app.extensions["model_store"]
    log = app.extensions["prediction_log"]
    settings = settings_from(app.config)  # invalid settings stop the start, with the reason
    if log.database is None:
        app.extensions["drift_off"] = "drift monitoring is off: the prediction log is off"
        return
    if not store.ready or not store.reference:
        app.extensions["drift_off"] = "drift monitoring is off: no verified models/reference.json"
        return
    monitor = DriftMonitor(
        log.ready_database,
        DriftReference.from_dict(store.reference),
        settings,
        gauges=DriftGauges(**registry_kwargs(app)),
        events=DriftEvents(app.config["DRIFT_EVENTS"] or None),
        test_value=_test_value(Path(app.config["METRICS_FILE"]), settings.metric),
        versions=served_versions(store.manifest),
        # under gunicorn a process of its own checks; workers take over only without it
        monitor_process_alive=monitor_process_alive if os.environ.get(PID_FILE) else None,
    )
    app.extensions["drift_monitor"] = monitor

    @app.before_request
    def start_monitor():
        # here, not in create_app: gunicorn forks workers after the app is imported in
        # tests and tools, and a thread does not survive a fork
        monitor.start()


def follow_models(app: Flask, store: ModelStore) -> None:
    """Newly served models (app/reload.py): later checks judge against their reference."""
    monitor: DriftMonitor | None = app.extensions.get("drift_monitor")
    if monitor is None:
        return
    if not store.reference:
        logger.warning("drift monitor: the new models have no reference.json; judging as before")
        return
    monitor.judge_against(
        DriftReference.from_dict(store.reference),
        versions=served_versions(store.manifest),
        test_value=_test_value(Path(app.config["METRICS_FILE"]), monitor.settings.metric),
    )


@bp.get("/drift")
def drift():
    """The latest drift check over the pooled log (workers agree within their 2-s refresh)."""
    monitor: DriftMonitor | None = current_app.extensions["drift_monitor"]
    if monitor is None:
        raise ServiceUnavailable(current_app.extensions["drift_off"])
    if monitor.latest is None:
        try:
            latest = monitor.database().latest_check()  # this worker may not have refreshed yet
        except LogUnavailable as err:
            raise ServiceUnavailable(f"the prediction log is unavailable: {err}") from err
        if latest is None:
            return jsonify(
                {
                    "checked_at": None,
                    "note": "no drift check has run yet",
                    "settings": monitor.settings.to_dict(),
                }
            )
        return jsonify(latest)
    return jsonify(monitor.latest)
