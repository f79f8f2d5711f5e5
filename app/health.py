"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """The process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready():
    """Models loaded and verified against dvc.lock; 503 with the reasons otherwise."""
    store = current_app.extensions["model_store"]
    if store.ready:
        return jsonify({"status": "ready", "models": len(store.models)})
    return jsonify({"status": "not ready", "problems": store.problems}), 503
