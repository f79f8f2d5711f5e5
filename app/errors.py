"""One JSON error shape for every HTTP error: {"error": ..., "detail": ...}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)


class InvalidInput(HTTPException):
    """400 with the list of offending fields."""

    code = 400
    description = "invalid input"

    def __init__(self, problems: list[dict]):
        super().__init__()
        self.problems = problems


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        detail = getattr(err, "problems", None) or err.description
        response = jsonify({"error": err.name.lower(), "detail": detail})
        response.status_code = err.code or 500
        # The exception's own headers are part of the protocol: Allow on a 405 (RFC 9110
        # requires it), WWW-Authenticate on a 401. Its Content-Type is for an HTML body.
        for header, value in err.get_headers():
            if header.lower() != "content-type":
                response.headers.add(header, value)
        if err.response is not None:  # e.g. flask-limiter's Retry-After
            for header in ("Retry-After", "WWW-Authenticate"):
                if header in err.response.headers:
                    response.headers[header] = err.response.headers[header]
        return response

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        logger.exception("unhandled error")
        return http_error(InternalServerError())
