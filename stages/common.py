"""The few things every stage does the same way: flags, params, JSON out, logging."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import yaml


def parser(description: str) -> argparse.ArgumentParser:
    """Every stage takes --params; its own paths are added by the stage."""
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument("--params", default="params.yaml", help="parameters file")
    return cli


def read_params(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def write_json(data: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
