"""Parameter sweeps as DVC experiments: queue a grid, run it with one worker, show it.

One queue worker: parallel workers (`dvc queue start -j` > 1) have known races
in DVC that can lose experiments.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# Besides the swept parameters, the table shows these (matched against the whole
# column name, as `dvc exp show --keep` does).
SHOWN_COLUMNS = (
    "Experiment",
    "Created",
    "State",
    "classification.champion.roc_auc",
    "classification.champion.f1",
    "regression.champion.r2",
    "gate_passed",
)


class SweepError(RuntimeError):
    """A DVC command of the sweep failed, or the grid names no parameter."""


def swept_parameters(grid: list[str]) -> list[str]:
    """The parameter names of `-S` values: 'features.n_features=10,30' -> features.n_features."""
    names = []
    for assignment in grid:
        name, equals, _ = assignment.partition("=")
        if not equals or not name.strip():
            raise SweepError(f"sweep: {assignment!r} is not <param>=<value>[,<value>...]")
        names.append(name.strip().removeprefix("params.yaml:"))
    return names


def keep_pattern(grid: list[str]) -> str:
    """The `dvc exp show --keep` regex: the table's fixed columns and every swept parameter."""
    columns = [*SHOWN_COLUMNS[:3], *swept_parameters(grid), *SHOWN_COLUMNS[3:]]
    return "|".join(f"{re.escape(column)}$" for column in columns)


def _dvc(repo: Path, *args: str) -> str:
    result = subprocess.run(["dvc", *args], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise SweepError(f"dvc {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def run_sweep(grid: list[str], *, repo: Path = Path(), poll_seconds: float = 10) -> str:
    """Queue the grid, run it with one worker, wait for it; return the Markdown table."""
    keep = keep_pattern(grid)
    _dvc(repo, "exp", "run", "--queue", *(arg for value in grid for arg in ("-S", value)))
    _dvc(repo, "queue", "start", "-j", "1")
    while re.search(r"Queued|Running", status := _dvc(repo, "queue", "status")):
        logger.info("sweep: %s", " ".join(status.split()[-6:]))
        time.sleep(poll_seconds)
    logger.info("sweep done:\n%s", status)
    return _dvc(repo, "exp", "show", "--md", "--no-pager", "--drop", ".*", "--keep", keep)
