"""smoke: check a deployed service end to end (CI runs it after a deploy; non-zero = roll back).

python -m stages.smoke --url https://migraine.example.org   # API_KEY from the environment
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def _call(url: str, body: dict | None = None, *, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        # main() accepts only http(s) base URLs, so no file: or custom scheme reaches here
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def check(base: str, key: str | None) -> list[str]:
    """The problems found; empty when the service is healthy and predicts sensibly."""
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


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--url", required=True, help="base URL of the service")
    args = cli.parse_args()
    if urlsplit(args.url).scheme not in ("http", "https"):
        sys.exit(f"smoke: --url must start with http:// or https://, got {args.url!r}")
    problems = check(args.url.rstrip("/"), os.environ.get("API_KEY"))
    if problems:
        print("smoke test FAILED:", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"smoke test passed: {args.url}")


if __name__ == "__main__":
    main()
