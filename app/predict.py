"""POST /predict: one record or {"records": [...]}, validated against the schema."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any, NamedTuple

import numpy as np
import orjson
from flask import Blueprint, current_app, request
from werkzeug.exceptions import BadRequest, ServiceUnavailable, UnsupportedMediaType

from app.errors import InvalidInput
from app.openapi import expected_value_key
from app.validation import RecordValidator
from migraine_ml.monitoring.prediction_log import LoggedPrediction

bp = Blueprint("predict", __name__)


def _records() -> list[Any]:
    if not request.is_json:
        raise UnsupportedMediaType("send Content-Type: application/json")
    try:
        # orjson is strict JSON: NaN and Infinity are errors, as they should be
        body = orjson.loads(request.get_data())
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"body is not valid JSON (NaN/Infinity are not allowed): {err}") from None
    if isinstance(body, dict) and "records" in body:
        if set(body) != {"records"}:
            raise InvalidInput(
                [{"field": k, "problem": "unknown field"} for k in body if k != "records"]
            )
        records = body["records"]
        if not isinstance(records, list):
            raise InvalidInput([{"field": "records", "problem": "expected a list of records"}])
        if not records:
            raise InvalidInput([{"field": "records", "problem": "empty batch"}])
        limit = current_app.config["MAX_BATCH"]
        if len(records) > limit:
            raise InvalidInput(
                [
                    {
                        "field": "records",
                        "problem": f"batch of {len(records)} records is larger than {limit}",
                    }
                ]
            )
        return records
    return [body]


class _Served(NamedTuple):
    """What every request reads of the loaded models, worked out once per store (reloaded
    models may come with another schema: app/reload.py)."""

    validator: RecordValidator
    classifier: Any
    regressor: Any
    models: dict[str, dict[str, str]]  # the response's "models"
    names: tuple[str | None, ...]  # the log row's model names and versions
    expected_key: str
    class_labels: np.ndarray | None  # dtype=object, indexed by argmax
    class_keys: tuple[str, ...] | None  # the probabilities' keys
    counted: dict[str, Any] | None  # class key -> its child of migraine_predictions


def _served(extensions: dict, store) -> _Served:
    cached = extensions.get("served")
    if cached is not None and cached[0] is store:
        return cached[1]
    classifier, regressor = store.get("classification"), store.get("regression")
    classes = classifier.classes if classifier else None
    counter = extensions["service_metrics"].predictions
    served = _Served(
        RecordValidator(store.schema),
        classifier,
        regressor,
        {m.task: {"name": m.name, "version": m.version} for m in (classifier, regressor) if m},
        (
            classifier.name if classifier else None,
            classifier.version if classifier else None,
            regressor.name if regressor else None,
            regressor.version if regressor else None,
        ),
        expected_value_key(store.schema),
        np.asarray(classes, dtype=object) if classes is not None else None,
        tuple(str(c) for c in classes) if classes is not None else None,
        # labelled once here: `labels()` on every request is a measurable share of one
        {str(c): counter.labels(classifier.name, classifier.version, str(c)) for c in classes}
        if classes is not None
        else None,
    )
    extensions["served"] = (store, served)
    return served


def _drift_warning(extensions: dict) -> list[str] | None:
    """The inputs the latest drift check flagged, or None (what the log records too)."""
    monitor = extensions["drift_monitor"]
    return None if monitor is None else monitor.drift_warning


@bp.post("/predict")
def predict():
    # the app's extensions read once: every `current_app.` goes through a context-local proxy
    extensions = current_app.extensions
    store = extensions["model_store"]
    if not store.ready:
        raise ServiceUnavailable("models are not loaded and verified: see GET /ready")
    metrics = extensions["service_metrics"]
    records = _records()
    served = _served(extensions, store)
    validator = served.validator
    rows, problems = validator.validate(records)
    if problems:
        for field, count in Counter(p.field for p in problems).items():
            metrics.validation_errors.labels(field).inc(count)
        raise InvalidInput([p.to_dict() for p in problems])
    classifier, regressor = served.classifier, served.regressor
    started = time.perf_counter()
    matrix = validator.matrix(rows)
    proba = classifier.predict(matrix, store.schema) if classifier else None
    severity = regressor.predict(matrix, store.schema) if regressor else None
    model_seconds = time.perf_counter() - started

    models, names, expected_key, keys = (
        served.models,
        served.names,
        served.expected_key,
        served.class_keys,
    )
    now = time.time()
    predictions, log_rows = [], []
    predicted = served.class_labels[proba.argmax(axis=1)] if classifier else None
    drift_warning = _drift_warning(extensions)
    # time-ordered ids, as UUIDv7 lays them out: the log's unique index on them then
    # grows at its right edge instead of dirtying a random page per row (random ids
    # wrote 5.7 KB to disk per prediction here, these 2.7 KB: bench/README.md)
    millis = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    for i, record in enumerate(records):
        # 48 bits of milliseconds and 80 random bits as 32 hex digits (what /feedback
        # accepts), without building a UUID object
        out: dict[str, Any] = {"prediction_id": (millis + os.urandom(10)).hex()}
        probabilities = predicted_class = predicted_value = None
        if classifier:
            row = proba[i]
            probabilities = out["probabilities"] = {
                k: round(p, 6) for k, p in zip(keys, row.tolist(), strict=True)
            }
            if len(keys) == 2:
                out["probability"] = round(float(row[1]), 6)
            out["predicted_class"] = predicted[i]
            predicted_class = str(predicted[i])
        if regressor:
            predicted_value = out[expected_key] = round(float(severity[i]), 4)
        out["models"] = models
        out["drift_warning"] = drift_warning
        predictions.append(out)
        log_rows.append(
            LoggedPrediction(
                out["prediction_id"],
                now,
                *names,
                record,
                probabilities,
                predicted_class,
                predicted_value,
                drift_warning,
            )
        )
    extensions["prediction_log"].append(log_rows)
    metrics.batch_size.observe(len(records))
    if classifier:
        for label, count in Counter(map(str, predicted)).items():
            served.counted[label].inc(count)
    response = current_app.response_class(
        orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY),
        mimetype="application/json",
    )
    response.headers["Server-Timing"] = f"model;dur={model_seconds * 1000:.2f}"
    return response
