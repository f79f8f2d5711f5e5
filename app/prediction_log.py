"""Every prediction logged off the request path; the log never fails a prediction.

Requests hand rows to a bounded in-memory buffer (microseconds, no encoding, no
I/O); one writer thread per worker process, started lazily after gunicorn
forks, writes them in batches. When the database is down the writer keeps its
batch, backs off and retries, and the log reports itself "degraded" until a
write succeeds again; rows beyond `capacity` are dropped and counted. The
database itself (SQLite or PostgreSQL) is `migraine_ml.monitoring.prediction_log`.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from flask import Flask
from prometheus_client import Counter, Gauge

from app.metrics import registry_kwargs
from migraine_ml.monitoring.prediction_log import (
    LogDatabase,
    LoggedPrediction,
    LogUnavailable,
    RowsRejected,
    open_log,
    redact,
)

logger = logging.getLogger(__name__)

OFF = "off"


class LogMetrics:
    """The log's Prometheus metrics: dropped rows, the buffer, health (1 ok, 0 degraded)."""

    def __init__(self, **kwargs: Any):
        self.dropped = Counter(
            "migraine_prediction_log_dropped", "Prediction log rows dropped", **kwargs
        )
        self.buffered = Gauge(
            "migraine_prediction_log_buffered",
            "Prediction log rows waiting to be written",
            multiprocess_mode="livesum",
            **kwargs,
        )
        self.healthy = Gauge(
            "migraine_prediction_log_healthy",
            "1 if the prediction log's last write succeeded, 0 while it is degraded",
            multiprocess_mode="livemin",
            **kwargs,
        )


class PredictionLog:
    """A bounded buffer in front of a `LogDatabase` (None: logging is off)."""

    def __init__(
        self,
        database: LogDatabase | None,
        *,
        capacity: int = 10_000,
        metrics: LogMetrics | None = None,
        batch: int = 500,
        flush_seconds: float = 0.2,
        backoff: tuple[float, float] = (0.2, 5.0),
    ):
        self.database = database
        self.capacity = capacity
        self.metrics = metrics
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.backoff = backoff
        self.dropped = 0
        self.healthy = True
        self.last_error: str | None = None
        self._pid = 0
        self._writer: threading.Thread | None = None
        self._reset()
        if metrics is not None:
            metrics.healthy.set(1)

    def _reset(self) -> None:
        # also after a fork: the parent's lock and thread do not exist in the child
        self._cond = threading.Condition(threading.Lock())
        self._buffer: collections.deque[LoggedPrediction] = collections.deque()
        self._inflight = 0
        self._urgent = False
        self._closing = threading.Event()
        self._writer = None
        self._migrated = False
        self._pid = os.getpid()

    def ready_database(self) -> LogDatabase:
        """The database with its schema in place (migrated once per process).

        Raises LogUnavailable when it cannot be reached; called by the writer and /feedback.
        """
        if self.database is None:
            raise LogUnavailable("the prediction log is off")
        if self._pid != os.getpid():
            self._reset()
        if not self._migrated:
            self.database.migrate()
            self._migrated = True
        return self.database

    @property
    def backend(self) -> str | None:
        return self.database.backend if self.database is not None else None

    def append(self, rows: Sequence[LoggedPrediction]) -> None:
        """Buffer rows for the writer; never blocks, never raises."""
        if self.database is None:
            return
        try:
            self._start()
            with self._cond:
                room = self.capacity - len(self._buffer) - self._inflight
                kept = rows if len(rows) <= room else rows[: max(room, 0)]
                was_empty = not self._buffer
                self._buffer.extend(kept)
                if was_empty and kept:
                    self._cond.notify()
                if len(kept) < len(rows):
                    self._drop(len(rows) - len(kept))
        except Exception:  # a broken log must never fail a prediction
            logger.exception("prediction log: %d rows not buffered", len(rows))

    def _drop(self, rows: int) -> None:
        self.dropped += rows
        if self.metrics is not None:
            self.metrics.dropped.inc(rows)

    def _start(self) -> None:
        if self._pid != os.getpid():
            self._reset()
        if self._writer is None:
            with self._cond:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._run, daemon=True, name="prediction-log"
                    )
                    self._writer.start()
                    atexit.register(self.close, timeout=2.0)

    def _take(self) -> list[LoggedPrediction]:
        with self._cond:
            while not self._buffer and not self._closing.is_set():
                self._cond.wait()
            if len(self._buffer) < self.batch and not (self._urgent or self._closing.is_set()):
                self._cond.wait(self.flush_seconds)  # let a batch gather
            self._urgent = False
            taken = [self._buffer.popleft() for _ in range(min(len(self._buffer), self.batch))]
            self._inflight = len(taken)
            return taken

    def _run(self) -> None:
        delay, rows = self.backoff[0], []
        while True:
            if not rows:
                if self._closing.is_set() and not self._buffer:
                    return
                rows = self._take()
                self._gauge()
            try:
                self.ready_database().insert(rows)
            except RowsRejected as err:  # retrying cannot help: drop them, go on
                logger.error("prediction log: %d rows rejected: %s", len(rows), err)
                self.last_error = str(err)
                self._drop(len(rows))
            except LogUnavailable as err:
                self._degraded(err)
                if self._closing.wait(delay):
                    return  # shutting down with the database away: the rows are lost
                delay = min(delay * 2, self.backoff[1])
                self._gauge()
                continue
            except Exception as err:  # rows that cannot be written at all: drop, go on
                logger.exception("prediction log: %d rows cannot be written", len(rows))
                self.last_error = f"{type(err).__name__}: {err}"
                self._drop(len(rows))
            else:
                if not self.healthy:
                    logger.warning("prediction log %s: writing again", self._where())
                self.healthy, delay = True, self.backoff[0]
                if self.metrics is not None:
                    self.metrics.healthy.set(1)
            with self._cond:
                self._inflight = 0
                self._cond.notify_all()
            rows = []
            self._gauge()

    def _where(self) -> str:
        return redact(self.database.target) if self.database is not None else OFF

    def _degraded(self, err: LogUnavailable) -> None:
        self.last_error = str(err)
        if self.healthy:
            logger.error("prediction log degraded, buffering: %s", err)
        self.healthy = False
        if self.metrics is not None:
            self.metrics.healthy.set(0)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.buffered.set(self.buffered)

    @property
    def buffered(self) -> int:
        """Rows not written yet: waiting in the buffer or in the writer's batch."""
        return len(self._buffer) + self._inflight

    def status(self) -> dict[str, Any]:
        """For /health; the database URL's password never appears."""
        state = OFF if self.database is None else ("ok" if self.healthy else "degraded")
        last_error = self.last_error
        if last_error is not None and self.database is not None:
            last_error = last_error.replace(self.database.target, self._where())
        return {
            "status": state,
            "backend": self.backend,
            "buffered": self.buffered,
            "dropped": self.dropped,
            "last_error": last_error,
        }

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every row buffered so far is written; False on timeout."""
        if self.database is None or self._writer is None or self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            while self._buffer or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
                self._urgent = True
                self._cond.notify_all()
        return True

    def count(self) -> int:
        """Rows in the database (tests; call flush() first)."""
        return self.database.count() if self.database is not None else 0

    def close(self, timeout: float = 2.0) -> None:
        """Write what is buffered (within `timeout`), stop the writer, close the database."""
        if self._pid == os.getpid() and self._writer is not None:
            self.flush(timeout)
            self._closing.set()
            with self._cond:
                self._cond.notify_all()
            self._writer.join(timeout)
        if self.database is not None:
            self.database.close()


def init_app(app: Flask) -> PredictionLog:
    """The log the settings ask for: PREDICTION_LOG (path, PostgreSQL URL or "off")."""
    target = str(app.config["PREDICTION_LOG"])
    database = None if target.strip().lower() == OFF else open_log(target)
    if isinstance(database, LogDatabase) and database.backend == "sqlite":
        try:
            database.migrate()  # refuse a newer schema at start, not in the writer
        except LogUnavailable:
            logger.exception("prediction log %s: not reachable at start", redact(target))
    log = PredictionLog(
        database,
        capacity=int(app.config["PREDICTION_LOG_CAPACITY"]),
        metrics=LogMetrics(**registry_kwargs(app)),
    )
    app.extensions["prediction_log"] = log
    return log
