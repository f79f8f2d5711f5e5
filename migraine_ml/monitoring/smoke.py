"""The post-deploy smoke test: a deployed service is up and predicts sensibly.

CI runs it (`migraine smoke --url ...`) after a deploy and rolls back when it
finds problems.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit


class URLSchemeError(ValueError):
    """The base URL is not http:// or https://."""


def _call(url: str, body: dict | None = None, *, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        # check() accepts only http(s) base URLs, so no file: or custom scheme reaches here
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def check(base: str, key: str | None) -> list[str]:
    """The problems found; empty when the service is healthy and predicts sensibly.

    Raises:
        URLSchemeError: `base` is not an http:// or https:// URL.
    """
    if urlsplit(base).scheme not in ("http", "https"):
        raise URLSchemeError(f"must start with http:// or https://, got {base!r}")
    base = base.rstrip("/")
    try:
        return _problems(base, key)
    except OSError as err:  # refused, unknown host, timed out: no HTTP answer at all
        return [f"{base} is unreachable: {getattr(err, 'reason', err)}"]


def _problems(base: str, key: str | None) -> list[str]:
    problems = []
    status, ready = _call(f"{base}/ready")
    if status != 200:
        return [f"/ready answered {status}: {ready}"]
    status, spec = _call(f"{base}/openapi.json", key=key)
    if status != 200:
        return [f"/openapi.json answered {status}"]
    example = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
        "example"
    ]
    status, body = _call(f"{base}/predict", example, key=key)
    if status != 200:
        problems.append(f"/predict with the documented example answered {status}: {body}")
    else:
        (prediction,) = body["predictions"]
        probabilities = prediction.get("probabilities", {})
        if probabilities and abs(sum(probabilities.values()) - 1) > 1e-3:
            problems.append(f"probabilities do not sum to 1: {probabilities}")
    bad_field = next(iter(example))
    status, _ = _call(f"{base}/predict", {**example, bad_field: "not a number"}, key=key)
    if status != 400:
        problems.append(f"an invalid record was answered {status}, expected 400")
    return problems
