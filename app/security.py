"""Optional API keys and rate limiting; both off for local use, on in deployment."""

from __future__ import annotations

import hmac

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

PUBLIC_ENDPOINTS = {"health.health", "health.ready", "prometheus_metrics", "static"}
PREDICT_ENDPOINT = "predict.predict"


def _everyone() -> str:
    return "all-clients"


def _keys() -> list[str]:
    return [k.strip() for k in current_app.config["API_KEYS"].split(",") if k.strip()]


def _presented() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.headers.get("X-API-Key")


def init_app(app: Flask) -> None:
    app.extensions["limiter"] = Limiter(key_func=get_remote_address, app=app)

    @app.before_request
    def require_api_key():
        keys = _keys()
        if not keys or request.endpoint in PUBLIC_ENDPOINTS:
            return None
        presented = _presented()
        if presented is None or not any(hmac.compare_digest(presented, k) for k in keys):
            raise Unauthorized(
                "a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
                www_authenticate=WWWAuthenticate("Bearer"),
            )
        return None


def apply_limits(app: Flask) -> None:
    """Probes and scrapes are never limited; /predict may carry a shared shedding budget.

    `SHED_LIMIT` (e.g. "1500 per second") is one budget for all clients of a
    worker, set near the measured capacity: beyond saturation clients get a
    quick 429 with Retry-After instead of waiting in the accept queue until
    they time out.
    """
    limiter: Limiter = app.extensions["limiter"]
    for endpoint in PUBLIC_ENDPOINTS:
        view = app.view_functions.get(endpoint)
        if view is not None:
            limiter.exempt(view)
    shed = app.config.get("SHED_LIMIT")
    if shed and PREDICT_ENDPOINT in app.view_functions:
        view = app.view_functions[PREDICT_ENDPOINT]
        app.view_functions[PREDICT_ENDPOINT] = limiter.limit(
            shed, key_func=_everyone, scope="shed", override_defaults=False
        )(view)
