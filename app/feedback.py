"""POST /feedback: the true outcome of an earlier prediction, for performance monitoring.

A label arrives once per prediction id, days after the prediction perhaps; the
log keeps it next to the prediction with the delay. `intervened` says the patient
acted on the prediction before the outcome (retraining leaves such rows out). The outcome is checked
against the served classifier's classes, the target against the schema's range.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
)

from app.errors import InvalidInput
from app.openapi import PREDICTION_ID_PATTERN, RFC3339, expected_value_key
from migraine_ml.data.schema import plain_number
from migraine_ml.monitoring.prediction_log import (
    AlreadyLabelled,
    Feedback,
    InvalidFeedback,
    LogUnavailable,
    UnknownPrediction,
)

bp = Blueprint("feedback", __name__)

RETRY_AFTER_SECONDS = 5
# the prediction may still wait in this worker's buffer: how long to flush it before a 404
FLUSH_SECONDS = 1.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = re.compile(PREDICTION_ID_PATTERN)
_TIME = re.compile(RFC3339, re.IGNORECASE)


def _body() -> dict[str, Any]:
    if not request.is_json:
        raise UnsupportedMediaType("send Content-Type: application/json")
    try:
        body = orjson.loads(request.get_data())
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"body is not valid JSON (NaN/Infinity are not allowed): {err}") from None
    if not isinstance(body, dict):
        raise InvalidInput([{"field": "body", "problem": "expected a JSON object"}])
    return body


def class_text(value: Any, classes: list[Any] | None) -> str | None:
    """The class as /model spells it (1 and "1" alike), or None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    text = str(value)
    if classes is None:
        return text
    return text if text in {str(c) for c in classes} else None


def _timestamp(value: Any) -> float | None:
    """Unix time of an RFC 3339 date-time with its offset; None if it is not one."""
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        return None
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    return (moment - _EPOCH).total_seconds()  # no overflow near year 1 or 9999


def parse_feedback(body: dict[str, Any], store) -> Feedback:
    """The label in a request body, or InvalidInput naming every problem."""
    schema = store.schema
    classifier = store.get("classification")
    target_key = expected_value_key(schema) if schema.regression_target else None
    allowed = {"prediction_id", "observed_at", "intervened"}
    allowed |= {"outcome"} if schema.classification_target else set()
    allowed |= {target_key} if target_key else set()
    problems = [{"field": k, "problem": "unknown field"} for k in body if k not in allowed]

    prediction_id = body.get("prediction_id")
    if prediction_id is None:
        problems.append({"field": "prediction_id", "problem": "missing"})
    elif not isinstance(prediction_id, str) or not _ID.fullmatch(prediction_id):
        problems.append(
            {"field": "prediction_id", "problem": "expected a prediction id (32 hex digits)"}
        )

    outcome = None
    if "outcome" in allowed and "outcome" in body:
        classes = classifier.classes if classifier else None
        outcome = class_text(body["outcome"], classes)
        if outcome is None:
            allowed_classes = ", ".join(map(str, classes or ()))
            problems.append(
                {
                    "field": "outcome",
                    "problem": f"{body['outcome']!r} is not one of {{{allowed_classes}}}",
                }
            )

    target = None
    if target_key and target_key in body:
        value = body[target_key]
        column = schema.columns[schema.regression_target]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(
                {"field": target_key, "problem": f"expected a number, got {type(value).__name__}"}
            )
        elif not math.isfinite(value):
            problems.append({"field": target_key, "problem": "expected a finite number"})
        elif column.range is not None and not column.range[0] <= value <= column.range[1]:
            low, high = map(plain_number, column.range)
            problems.append({"field": target_key, "problem": f"{value} is outside [{low}, {high}]"})
        else:
            target = float(value)

    observed_at = None
    if "observed_at" in body:
        observed_at = _timestamp(body["observed_at"])
        if observed_at is None:
            problems.append(
                {
                    "field": "observed_at",
                    "problem": "expected an RFC 3339 date-time with a time zone, "
                    "e.g. 2025-05-01T08:30:00Z",
                }
            )

    intervened = body.get("intervened")
    if "intervened" in body and not isinstance(intervened, bool):
        problems.append({"field": "intervened", "problem": "expected true or false"})

    given = [k for k in ("outcome", target_key) if k in allowed and k in body]
    if not given:
        names = " or ".join(k for k in ("outcome", target_key) if k in allowed)
        problems.append({"field": "outcome", "problem": f"missing: give {names}"})
    if problems:
        raise InvalidInput(problems)
    return Feedback(prediction_id, outcome, target, observed_at, intervened)


class Contradiction(Conflict):
    """409: a well-formed label that contradicts the logged prediction (or the clock)."""

    def __init__(self, problems: list[dict]):
        super().__init__()
        self.problems = problems


def _unavailable(detail: str) -> ServiceUnavailable:
    return ServiceUnavailable(detail, retry_after=RETRY_AFTER_SECONDS)


@bp.post("/feedback")
def feedback():
    """Label a prediction: 201 with the delay since it was made."""
    store = current_app.extensions["model_store"]
    if not store.ready:
        raise ServiceUnavailable("models are not loaded and verified: see GET /ready")
    log = current_app.extensions["prediction_log"]
    if log.database is None:
        raise _unavailable("the prediction log is off (MIGRAINE_PREDICTION_LOG=off)")
    label = parse_feedback(_body(), store)
    received_at = time.time()
    try:
        database = log.ready_database()
        try:
            delay = database.add_feedback(label, received_at=received_at)
        except UnknownPrediction:
            if not log.buffered:
                raise
            log.flush(FLUSH_SECONDS)  # the prediction may not be written yet
            delay = database.add_feedback(label, received_at=received_at)
    except UnknownPrediction:
        raise NotFound(f"no prediction {label.prediction_id} in the log") from None
    except AlreadyLabelled:
        raise Conflict(f"prediction {label.prediction_id} is labelled already") from None
    except InvalidFeedback as err:
        # 409, not 400: the body is valid on its own; it conflicts with what the log holds
        raise Contradiction([{"field": "observed_at", "problem": str(err)}]) from None
    except LogUnavailable:
        raise _unavailable("the prediction log is unavailable: try again later") from None
    return jsonify({"prediction_id": label.prediction_id, "delay_seconds": delay}), 201
