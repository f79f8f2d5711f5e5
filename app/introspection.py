"""Introspection, what is being served: /model and /openapi.json.

/metrics comes from the Prometheus exporter (app/metrics.py); the name
`monitoring` is kept for drift and prediction-log monitoring.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify

from app.openapi import build_spec

bp = Blueprint("introspection", __name__)


@bp.get("/model")
def model():
    store = current_app.extensions["model_store"]
    metrics_path = Path(current_app.config["MODELS_DIR"]).parent / "reports" / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    manifest = {k: v for k, v in store.manifest.items() if k != "schema"}
    reload = current_app.extensions["model_reloader"].status()
    return jsonify(store.describe() | {"manifest": manifest, "metrics": metrics, "reload": reload})


@bp.get("/openapi.json")
def openapi():
    store = current_app.extensions["model_store"]
    if store.schema is None:
        return jsonify({"error": "service unavailable", "detail": store.problems}), 503
    cached = current_app.extensions.get("openapi")  # one per store, as models are reloaded
    if cached is not None and cached[0] is store:
        return jsonify(cached[1])
    classifier = store.get("classification")
    spec = build_spec(
        store.schema,
        store.reference,
        max_batch=current_app.config["MAX_BATCH"],
        classes=classifier.classes if classifier else None,
    )
    current_app.extensions["openapi"] = (store, spec)
    return jsonify(spec)
