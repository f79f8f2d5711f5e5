"""Print requirements-serve.lock: the `serve` extra of pyproject.toml, resolved by pip at
the versions requirements.lock pins, so the image serves with what the tests ran.

    python deploy/serve_lock.py > requirements-serve.lock    (make serve-lock)
"""

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    serve = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["serve"]
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--only-binary=:all:",
                "--report",
                str(report),
                "-c",
                str(ROOT / "requirements.lock"),
                *serve,
            ],
            check=True,
        )
        resolved = json.loads(report.read_text())["install"]
    pins = sorted(
        f"{item['metadata']['name'].lower()}=={item['metadata']['version']}" for item in resolved
    )
    print("# The serving dependencies (pyproject.toml's `serve` extra) at requirements.lock's")
    print("# versions. Made by `make serve-lock` (deploy/serve_lock.py); do not edit.")
    print("\n".join(pins))


if __name__ == "__main__":
    main()
