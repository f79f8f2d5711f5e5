"""The OpenAPI document, generated from the dataset schema the models were trained on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migraine_ml.data.schema import Schema
from migraine_ml.monitoring.reference import INPUTS, KIND, NUMERIC, SAMPLE, SHARES

PREDICTION_ID_PATTERN = "^[0-9a-f]{32}$"
# RFC 3339 date-time with its offset (JSON Schema's "date-time"), matched ignoring case
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def _field(column) -> dict[str, Any]:
    if column.dtype == "category":
        spec: dict[str, Any] = {"type": "string", "enum": list(column.values)}
    elif column.dtype == "binary":
        spec = {"type": "integer", "enum": [0, 1]}
    else:
        spec = {"type": "integer" if column.dtype == "int" else "number"}
        if column.range is not None:
            spec["minimum"], spec["maximum"] = column.range
    spec["nullable"] = True  # null = unknown, imputed by the model
    if "enum" in spec:
        # OpenAPI 3.0: `nullable` widens `type` only; an enum must list null itself
        spec["enum"].append(None)
    if column.description:
        spec["description"] = column.description
    return spec


def expected_value_key(schema: Schema) -> str:
    """The response field of the regression model: named after the schema's target."""
    return f"expected_{schema.regression_target}"


def _expected_value(schema: Schema) -> dict[str, Any]:
    description = f"the model's expected {schema.regression_target}"
    condition = schema.columns[schema.regression_target].condition
    if condition:
        description += f", given {condition['column']} = {condition['equals']}"
    return {"type": "number", "description": description}


def example_record(schema: Schema, reference: dict[str, Any]) -> dict[str, Any]:
    """A plausible record: the training median (or most common value) of each feature."""
    example = {}
    inputs = reference.get(INPUTS, {})
    for name in schema.features:
        column = schema.columns[name]
        profile = inputs.get(name, {})
        if profile.get(KIND) == NUMERIC and profile.get(SAMPLE):
            sample = sorted(profile[SAMPLE])
            value = sample[len(sample) // 2]
            example[name] = round(value) if column.dtype == "int" else round(value, 1)
        elif profile.get(SHARES):
            value = max(profile[SHARES], key=profile[SHARES].get)
            example[name] = value if column.dtype == "category" else int(float(value))
        elif column.dtype == "category":
            example[name] = column.values[0]
        elif column.range is not None:
            example[name] = column.range[0]
        else:
            example[name] = 0
    return example


def _outcome(classes: Sequence[Any] | None) -> dict[str, Any]:
    description = 'the true class, spelled as GET /model lists the classes (1 and "1" alike)'
    if classes is None:
        return {"oneOf": [{"type": "string"}, {"type": "integer"}], "description": description}
    spellings: list[Any] = []
    for value in classes:
        spellings.append(value)
        if isinstance(value, int) and not isinstance(value, bool):
            spellings.append(str(value))
    return {"enum": spellings, "description": description}


def _feedback(schema: Schema, classes: Sequence[Any] | None) -> dict[str, Any]:
    """The body of POST /feedback: a prediction id, the outcome and/or the true target."""
    properties: dict[str, Any] = {
        "prediction_id": {
            "type": "string",
            "pattern": PREDICTION_ID_PATTERN,
            "description": "the prediction_id /predict answered",
        },
        "observed_at": {
            "type": "string",
            "format": "date-time",
            "description": "when the outcome was observed, with its time zone; not in the "
            "future, not before the prediction",
        },
        "intervened": {
            "type": "boolean",
            "description": "the patient acted on the prediction before the outcome (took "
            "medication, rested): the label is kept for monitoring, left out of retraining",
        },
    }
    labels = []
    if schema.classification_target:
        properties["outcome"] = _outcome(classes)
        labels.append("outcome")
    if schema.regression_target:
        key = expected_value_key(schema)
        column = schema.columns[schema.regression_target]
        target: dict[str, Any] = {
            "type": "number",
            "description": f"the true {schema.regression_target}",
        }
        if column.range is not None:
            target["minimum"], target["maximum"] = column.range
        properties[key] = target
        labels.append(key)
    return {
        "type": "object",
        "required": ["prediction_id"],
        "properties": properties,
        "additionalProperties": False,
        "anyOf": [{"required": [label]} for label in labels],
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build_spec(
    schema: Schema,
    reference: dict[str, Any],
    *,
    max_batch: int,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The document; `classes` are the served classifier's, for the feedback outcome."""
    record = {
        "type": "object",
        "properties": {name: _field(schema.columns[name]) for name in schema.features},
        "required": list(schema.features),
        "additionalProperties": False,
    }
    example = example_record(schema, reference)
    prediction = {
        "type": "object",
        "required": ["prediction_id", "models", "drift_warning"],
        "properties": {
            "prediction_id": {"type": "string"},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
            "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
            "predicted_class": {},
            "models": {"type": "object"},
            "drift_warning": {"nullable": True},
        },
    }
    if schema.regression_target:
        prediction["properties"][expected_value_key(schema)] = _expected_value(schema)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "migraine-mlops prediction service",
            "version": "1.0.0",
            "description": f"Predictions from the models trained on schema "
            f"'{schema.name}'. Fields are the schema's features.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict for one record or a batch",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Record"},
                                        {"$ref": "#/components/schemas/Batch"},
                                    ]
                                },
                                "example": example,
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one prediction per record",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["predictions"],
                                        "properties": {
                                            "predictions": {
                                                "type": "array",
                                                "items": {
                                                    "$ref": "#/components/schemas/Prediction"
                                                },
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("invalid input: every offending field is named"),
                        "401": _error("missing or wrong API key"),
                        "413": _error("body too large"),
                        "415": _error("not JSON"),
                        "429": _error("rate limited; see Retry-After"),
                        "503": _error("models not loaded and verified"),
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "The true outcome of an earlier prediction (once per prediction)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Feedback"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "labelled",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["prediction_id", "delay_seconds"],
                                        "properties": {
                                            "prediction_id": {"type": "string"},
                                            "delay_seconds": {
                                                "type": "number",
                                                "description": "from the prediction to this label",
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("invalid input: every offending field is named"),
                        "401": _error("missing or wrong API key"),
                        "404": _error("no prediction with this id in the log"),
                        "409": _error(
                            "the prediction is labelled already, or observed_at contradicts it "
                            "(before the prediction, or in the future)"
                        ),
                        "413": _error("body too large"),
                        "415": _error("not JSON"),
                        "429": _error("rate limited; see Retry-After"),
                        "503": _error(
                            "the prediction log is off or unavailable, or the models are not "
                            "ready; see Retry-After"
                        ),
                    },
                }
            },
            "/drift": {
                "get": {
                    "summary": "The latest drift check over the pooled prediction log",
                    "responses": {
                        "200": {
                            "description": "the latest check (checked_at null before the first)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["checked_at"],
                                        "properties": {
                                            "checked_at": {"type": ["string", "null"]},
                                            "window": {"type": "integer"},
                                            "drifted": {"type": "boolean"},
                                            "drifted_features": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                            "features": {"type": "object"},
                                            "prediction": {"type": "object"},
                                            "performance": {"type": ["object", "null"]},
                                            "settings": {"type": "object"},
                                        },
                                    }
                                }
                            },
                        },
                        "401": _error("missing or wrong API key"),
                        "503": _error("drift monitoring is off, or the log is unavailable"),
                    },
                }
            },
            "/health": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/ready": {
                "get": {
                    "summary": "Readiness",
                    "responses": {
                        "200": {"description": "models verified"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/model": {
                "get": {
                    "summary": "Models, manifest and metrics",
                    "responses": {"200": {"description": "models"}},
                }
            },
            "/admin/reload": {
                "post": {
                    "summary": "Verify and serve new models now (this worker; the others follow "
                    "within MODEL_RELOAD_INTERVAL seconds)",
                    "responses": {
                        "200": {
                            "description": "the new models serve (reloaded), or nothing changed",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Reload"}
                                }
                            },
                        },
                        "401": _error("missing or wrong API key"),
                        "409": {
                            "description": "the new models failed verification; the served "
                            "ones keep serving",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "allOf": [
                                            {"$ref": "#/components/schemas/Error"},
                                            {"$ref": "#/components/schemas/Reload"},
                                        ]
                                    }
                                }
                            },
                        },
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Record": record,
                "Prediction": prediction,
                "Feedback": _feedback(schema, classes),
                "Batch": {
                    "type": "object",
                    "required": ["records"],
                    "additionalProperties": False,
                    "properties": {
                        "records": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": max_batch,
                            "items": {"$ref": "#/components/schemas/Record"},
                        }
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {"error": {"type": "string"}, "detail": {}},
                },
                "Reload": {
                    "type": "object",
                    "required": ["reloaded", "versions", "problems"],
                    "properties": {
                        "reloaded": {"type": "boolean"},
                        "versions": {
                            "type": "object",
                            "description": "per task, the version each rank serves",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                        "problems": {"type": "array", "items": {"type": "string"}},
                    },
                },
            }
        },
    }
