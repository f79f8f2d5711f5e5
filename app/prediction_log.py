"""Every prediction appended to a SQLite log, off the request path.

Requests put rows on a queue; one writer thread per worker process commits
them in batches (WAL mode, so several gunicorn workers share the file). The
drift monitor reads windows of this log later.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    features TEXT NOT NULL,
    probability REAL,
    predicted_class TEXT,
    severity REAL,
    classifier_version TEXT,
    regressor_version TEXT
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created);
"""


class LogRow(NamedTuple):
    """One logged prediction, field for field the `predictions` table's columns."""

    prediction_id: str
    created: float  # Unix time
    features: dict[str, Any]  # the raw input record, stored as JSON
    probability: float | None  # positive class of a two-class model
    predicted_class: str | None
    severity: float | None  # the regression answer
    classifier_version: str | None
    regressor_version: str | None


def connect(path: str | Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(SCHEMA_SQL)
    return connection


class PredictionLog:
    def __init__(self, path: str | Path, *, flush_seconds: float = 0.2, batch: int = 500):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connect(self.path).close()
        self.flush_seconds = flush_seconds
        self.batch = batch
        self._queue: queue.Queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def append(self, rows: list[LogRow]) -> None:
        """Queue rows for the writer thread."""
        self._start()
        for row in rows:
            self._queue.put(row)

    def _start(self) -> None:
        # started lazily: gunicorn forks workers after the app is created
        if self._writer is None or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(
                        target=self._run, daemon=True, name="prediction-log"
                    )
                    self._writer.start()

    def _run(self) -> None:
        connection = connect(self.path)
        while True:
            rows = [self._queue.get()]
            deadline = time.monotonic() + self.flush_seconds
            while len(rows) < self.batch:
                try:
                    rows.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self._write(connection, rows)

    def _write(self, connection: sqlite3.Connection, rows: list[LogRow]) -> None:
        try:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [row._replace(features=json.dumps(row.features)) for row in rows],
                )
        except sqlite3.Error:
            self.dropped += len(rows)
            logger.exception("prediction log: %d rows not written", len(rows))
        finally:
            for _ in rows:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def count(self) -> int:
        with sqlite3.connect(self.path) as connection:
            return connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
