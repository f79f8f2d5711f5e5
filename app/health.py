"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """The process is alive (200 even when degraded: the log never stops predictions)."""
    log = current_app.extensions["prediction_log"].status()
    status = "degraded" if log["status"] == "degraded" else "ok"
    return jsonify({"status": status, "prediction_log": log})


@bp.get("/ready")
def ready():
    """Models loaded and verified against dvc.lock; 503 with the reasons otherwise.

    The prediction log plays no part: a database outage must not take replicas
    out of the load balancer.
    """
    store = current_app.extensions["model_store"]
    if store.ready:
        return jsonify({"status": "ready", "models": len(store.models)})
    return jsonify({"status": "not ready", "problems": store.problems}), 503
