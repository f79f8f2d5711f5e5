"""The prediction log: every prediction, its later label and the drift checks, in one database.

The service writes it (through the buffer of `app/prediction_log.py`); the drift
monitor, the `migraine` command and retraining read it. The same schema lives in
SQLite (a file, for one machine) or PostgreSQL (shared by replicas); `open_log`
picks by the target. Every driver error surfaces as `LogUnavailable`, so callers
decide with one exception whether to retry, degrade or answer 503.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# One schema for both databases: only the spellings of these types differ.
_TYPES = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "int": "INTEGER"},
    "postgresql": {
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "int": "BIGINT",
    },
}
_SCHEMA_V1 = """
CREATE TABLE predictions (
    seq {serial},
    prediction_id TEXT UNIQUE NOT NULL,
    created {real} NOT NULL,
    classifier TEXT,
    classifier_version TEXT,
    regressor TEXT,
    regressor_version TEXT,
    features TEXT NOT NULL,
    probabilities TEXT,
    predicted_class TEXT,
    predicted_value {real},
    drift_warning TEXT
);
CREATE INDEX predictions_by_created ON predictions (created);
CREATE TABLE feedback (
    prediction_id TEXT PRIMARY KEY REFERENCES predictions (prediction_id),
    outcome TEXT,
    target_value {real},
    observed_at {real},
    received_at {real} NOT NULL,
    delay_seconds {real} NOT NULL
);
CREATE TABLE drift_checks (
    id {serial},
    checked_at {real} NOT NULL,
    window_rows {int},
    drifted {int},
    report TEXT NOT NULL
)
"""
# v2: whether the patient acted on the prediction (medication, rest) before the outcome
_SCHEMA_V2 = "ALTER TABLE feedback ADD COLUMN intervened {int}"
# the log of the first service version: one table, no schema_version
_V0_COLUMNS = {"prediction_id", "created", "features", "probability", "predicted_class"}

_INSERT_COLUMNS = (
    "prediction_id",
    "created",
    "classifier",
    "classifier_version",
    "regressor",
    "regressor_version",
    "features",
    "probabilities",
    "predicted_class",
    "predicted_value",
    "drift_warning",
)
_FEEDBACK_COLUMNS = (
    "outcome",
    "target_value",
    "observed_at",
    "received_at",
    "delay_seconds",
    "intervened",
)
COLUMNS = ("seq", *_INSERT_COLUMNS, *_FEEDBACK_COLUMNS)
_NUMERIC = {"created", "predicted_value", "target_value", "observed_at", "received_at"}
_NUMERIC |= {"delay_seconds", "intervened"}
_JSON = ("features", "probabilities", "drift_warning")
_SELECT = (
    "SELECT p.seq, "
    + ", ".join(f"p.{c}" for c in _INSERT_COLUMNS)
    + ", "
    + ", ".join(f"f.{c}" for c in _FEEDBACK_COLUMNS)
    + " FROM predictions p LEFT JOIN feedback f ON f.prediction_id = p.prediction_id"
)
# A client's clock and ours may disagree a little, and ISO times are often whole seconds.
CLOCK_SLACK_SECONDS = 1.0
_MONITOR_LOCK_KEY = 0x6D6967726169  # pg advisory lock id: "migrai"


class LoggedPrediction(NamedTuple):
    """One row written per predicted record."""

    prediction_id: str
    created: float  # Unix time
    classifier: str | None  # model name, e.g. "gradient_boosting"
    classifier_version: str | None
    regressor: str | None
    regressor_version: str | None
    features: dict[str, Any]  # the raw input record as received
    probabilities: dict[str, float] | None  # every class's probability
    predicted_class: str | None
    predicted_value: float | None  # the regression answer
    drift_warning: list[str] | None  # what the response said


class Feedback(NamedTuple):
    """The true outcome of a prediction, reported later by a client."""

    prediction_id: str
    outcome: str | None  # the true class, spelled as the classes are in /model
    target_value: float | None  # the true regression target
    observed_at: float | None  # when the outcome was observed (Unix time), if known
    # the patient acted on the prediction (took medication, rested) before the outcome, so
    # the outcome is not the one the prediction was about; None: not said
    intervened: bool | None = None


class LogUnavailable(Exception):
    """The database cannot be reached or failed; the driver's error is the cause."""


class RowsRejected(LogUnavailable):
    """The database is there but refused the data (bad value, broken constraint): no retry."""


class UnknownPrediction(LookupError):
    """No logged prediction has this id."""


class AlreadyLabelled(Exception):
    """This prediction has feedback already; a label is given once."""


class InvalidFeedback(ValueError):
    """The feedback contradicts the logged prediction (observed before it, or in the future)."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of this code."""


def redact(target: str) -> str:
    """A database target fit for logs and /health: the URL's password replaced."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", target)


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _loads(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


class LogDatabase:
    """The log's operations, written once in SQL; subclasses bring the connection.

    Statements use `?` placeholders; PostgreSQL's driver gets them as `%s`.
    """

    backend: str = ""
    target: str = ""
    _intervened_column = False  # whether feedback has it (schema version 2), once seen

    def _transaction(self, write: bool) -> contextlib.AbstractContextManager:
        """A cursor in one transaction: committed on success, rolled back on error."""
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        return statement

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    def _integrity_error(self) -> type[BaseException]:
        raise NotImplementedError

    def _data_errors(self) -> tuple[type[BaseException], ...]:
        """Errors about the data, not the database's availability: retrying cannot help."""
        raise NotImplementedError

    def _lock_schema(self, cursor) -> None:
        """Serialise concurrent migrations (several workers start at once)."""

    def _table_columns(self, cursor, table: str) -> set[str] | None:
        raise NotImplementedError

    @contextlib.contextmanager
    def _cursor(self, *, write: bool = True) -> Iterator[Any]:
        try:
            with self._transaction(write) as cursor:
                yield cursor
        except self._driver_errors() as err:
            error = RowsRejected if isinstance(err, self._data_errors()) else LogUnavailable
            raise error(f"{self.backend} prediction log {redact(self.target)}: {err}") from err

    def _execute(self, cursor, statement: str, params: Sequence = ()) -> Any:
        return cursor.execute(self._sql(statement), tuple(params))

    def migrate(self) -> None:
        """Create or upgrade the schema; idempotent, safe from several processes at once."""
        with self._cursor() as cursor:
            self._lock_schema(cursor)
            version = self._schema_version(cursor)
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"prediction log {redact(self.target)} has schema version {version}, "
                    f"newer than this code's {SCHEMA_VERSION}: upgrade the service"
                )
            if version == SCHEMA_VERSION:
                return
            types = _TYPES[self.backend]
            if version < 1:
                self._migrate_v0(cursor)
                for statement in _SCHEMA_V1.format(**types).split(";"):
                    if statement.strip():
                        self._execute(cursor, statement)
            self._execute(cursor, _SCHEMA_V2.format(**types))
            self._execute(
                cursor,
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (SCHEMA_VERSION, time.time()),
            )
            logger.info("prediction log %s: schema version %d", redact(self.target), SCHEMA_VERSION)

    def _schema_version(self, cursor) -> int:
        real = _TYPES[self.backend]["real"]
        self._execute(
            cursor,
            f"CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
            f"applied_at {real} NOT NULL)",
        )
        self._execute(cursor, "SELECT MAX(version) FROM schema_version")
        return cursor.fetchone()[0] or 0

    def _migrate_v0(self, cursor) -> None:
        columns = self._table_columns(cursor, "predictions")
        if columns is None:
            return
        if not _V0_COLUMNS.issubset(columns):
            raise SchemaTooNew(
                f"prediction log {redact(self.target)}: a 'predictions' table of unknown shape "
                f"and no schema version: refusing to touch it"
            )
        self._execute(cursor, "ALTER TABLE predictions RENAME TO predictions_v0")
        logger.warning(
            "prediction log %s: the unversioned table 'predictions' is kept as 'predictions_v0'",
            redact(self.target),
        )

    def insert(self, rows: Sequence[LoggedPrediction]) -> None:
        """Write rows in one transaction (JSON encoded here, off the request path)."""
        if not rows:
            return
        values = [
            (
                r.prediction_id,
                r.created,
                r.classifier,
                r.classifier_version,
                r.regressor,
                r.regressor_version,
                _dumps(r.features),
                _dumps(r.probabilities),
                r.predicted_class,
                r.predicted_value,
                _dumps(r.drift_warning),
            )
            for r in rows
        ]
        # a retried batch whose commit did land (the acknowledgement was lost) is harmless
        statement = self._sql(
            f"INSERT INTO predictions ({', '.join(_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_INSERT_COLUMNS))}) "
            "ON CONFLICT (prediction_id) DO NOTHING"
        )
        with self._cursor() as cursor:
            cursor.executemany(statement, values)

    def add_feedback(self, feedback: Feedback, *, received_at: float) -> float:
        """Label a prediction once; returns the delay from the prediction to this label."""
        try:
            with self._cursor() as cursor:
                self._execute(
                    cursor,
                    "SELECT p.created, f.prediction_id FROM predictions p LEFT JOIN feedback f "
                    "ON f.prediction_id = p.prediction_id WHERE p.prediction_id = ?",
                    (feedback.prediction_id,),
                )
                found = cursor.fetchone()
                if found is None:
                    raise UnknownPrediction(f"no prediction {feedback.prediction_id!r} in the log")
                created, labelled = found
                if labelled is not None:
                    raise AlreadyLabelled(f"prediction {feedback.prediction_id!r} has a label")
                observed = feedback.observed_at
                if observed is not None and observed < created - CLOCK_SLACK_SECONDS:
                    raise InvalidFeedback("observed_at is before the prediction was made")
                if observed is not None and observed > received_at + CLOCK_SLACK_SECONDS:
                    raise InvalidFeedback("observed_at is in the future")
                delay = received_at - created
                self._execute(
                    cursor,
                    f"INSERT INTO feedback (prediction_id, {', '.join(_FEEDBACK_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * (1 + len(_FEEDBACK_COLUMNS)))})",
                    (
                        feedback.prediction_id,
                        feedback.outcome,
                        feedback.target_value,
                        feedback.observed_at,
                        received_at,
                        delay,
                        None if feedback.intervened is None else int(feedback.intervened),
                    ),
                )
        except LogUnavailable as err:
            # two labels at once: the loser's insert breaks the primary key
            if isinstance(err.__cause__, self._integrity_error()):
                raise AlreadyLabelled(
                    f"prediction {feedback.prediction_id!r} has a label"
                ) from None
            raise
        return delay

    def _frame(self, statement: str, params: Sequence, *, reverse: bool = False) -> pd.DataFrame:
        with self._cursor(write=False) as cursor:
            if not self._has_intervened(cursor):
                # a log an older service keeps (version 1): read it as it is, unflagged;
                # readers never migrate a log they do not own
                statement = statement.replace("f.intervened", "NULL", 1)
            self._execute(cursor, statement, params)
            rows = cursor.fetchall()
        if reverse:
            rows.reverse()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
        data: dict[str, Any] = {}
        loads = orjson.loads
        for name, values in zip(COLUMNS, columns, strict=True):
            if name == "features":
                array = np.empty(len(values), dtype=object)
                array[:] = [loads(v) for v in values]
            elif name in _JSON:
                array = np.empty(len(values), dtype=object)
                array[:] = [None if v is None else loads(v) for v in values]
            elif name == "seq":
                array = np.array(values, dtype=np.int64)
            elif name in _NUMERIC:
                array = np.array(values, dtype=np.float64)  # None becomes NaN
            else:
                array = np.array(values, dtype=object)
            data[name] = array
        return pd.DataFrame(data, copy=False)

    def _has_intervened(self, cursor) -> bool:
        if not self._intervened_column:  # once there, it stays
            columns = self._table_columns(cursor, "feedback") or ()
            self._intervened_column = "intervened" in columns
        return self._intervened_column

    def recent(self, limit: int) -> pd.DataFrame:
        """The newest `limit` predictions with their labels, oldest first."""
        return self._frame(f"{_SELECT} ORDER BY p.seq DESC LIMIT ?", (int(limit),), reverse=True)

    def since(self, created_from: float) -> pd.DataFrame:
        """Every prediction created at or after `created_from`, oldest first."""
        return self._frame(
            f"{_SELECT} WHERE p.created >= ? ORDER BY p.created, p.seq", (float(created_from),)
        )

    def labelled(self, received_before: float) -> pd.DataFrame:
        """Every labelled prediction whose label arrived before `received_before`, oldest
        prediction first (what a retraining may learn from)."""
        return self._frame(
            f"{_SELECT} WHERE f.received_at < ? ORDER BY p.created, p.seq",
            (float(received_before),),
        )

    def _scalar(self, statement: str, params: Sequence = ()) -> Any:
        with self._cursor(write=False) as cursor:
            self._execute(cursor, statement, params)
            return cursor.fetchone()[0]

    def last_seq(self) -> int:
        return int(self._scalar("SELECT COALESCE(MAX(seq), 0) FROM predictions"))

    def count(self) -> int:
        return int(self._scalar("SELECT COUNT(*) FROM predictions"))

    def record_check(self, checked_at: float, report: dict) -> None:
        """Keep one drift check's report (`DriftReport.to_dict()`)."""
        drifted = report.get("drifted")
        with self._cursor() as cursor:
            self._execute(
                cursor,
                "INSERT INTO drift_checks (checked_at, window_rows, drifted, report) "
                "VALUES (?, ?, ?, ?)",
                (
                    checked_at,
                    report.get("window"),
                    None if drifted is None else int(bool(drifted)),
                    _dumps(report),
                ),
            )

    def latest_check(self) -> dict | None:
        """The newest recorded drift report, or None before the first check."""
        with self._cursor(write=False) as cursor:
            self._execute(
                cursor,
                "SELECT report FROM drift_checks ORDER BY checked_at DESC, id DESC LIMIT 1",
            )
            row = cursor.fetchone()
        return None if row is None else _loads(row[0])

    def acquire_monitor_lock(self) -> bool:
        """Non-blocking: True makes this process the drift monitor until close() or death."""
        raise NotImplementedError

    def release_monitor_lock(self) -> None:
        """Stop being the drift monitor (another process is to take over)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteLog(LogDatabase):
    """A SQLite file in WAL mode: one connection per thread (and per forked process)."""

    backend = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.target = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock_file: int | None = None
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            # autocommit mode: transactions are the explicit BEGIN IMMEDIATE below
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection, self._local.pid = connection, os.getpid()
            with self._guard:
                self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Cursor]:
        connection = self._connection()
        cursor = connection.cursor()
        # writers take the write lock up front: no deadlock upgrading a read lock
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        else:
            connection.commit()
        finally:
            cursor.close()

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def _integrity_error(self) -> type[BaseException]:
        return sqlite3.IntegrityError

    def _data_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError)

    def _table_columns(self, cursor, table: str) -> set[str] | None:
        cursor.execute(f"PRAGMA table_info({table})")
        columns = {row[1] for row in cursor.fetchall()}
        return columns or None

    def acquire_monitor_lock(self) -> bool:
        if self._lock_file is not None:
            return True
        lock_file = os.open(f"{self.path}.monitor.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_file)
            return False
        self._lock_file = lock_file
        return True

    def close(self) -> None:
        with self._guard:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
        self._local = threading.local()
        self.release_monitor_lock()

    def release_monitor_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing the descriptor releases the flock
            self._lock_file = None


class PostgresLog(LogDatabase):
    """PostgreSQL through a psycopg connection pool, opened on first use.

    Nothing connects in the constructor, so the object may be created before
    gunicorn forks; each process opens its own pool. Connections are checked
    when taken from the pool, so after a database restart the broken ones are
    dropped and new ones made.
    """

    backend = "postgresql"

    def __init__(self, url: str, *, max_size: int = 4, timeout: float = 2.0):
        self.target = url
        self.max_size = max_size
        self.timeout = timeout  # seconds to wait for a connection before LogUnavailable
        self._pool = None
        self._pool_pid = 0
        self._guard = threading.Lock()
        self._monitor = None

    def _get_pool(self):
        from psycopg_pool import ConnectionPool

        if self._pool is None or self._pool_pid != os.getpid():
            with self._guard:
                if self._pool is None or self._pool_pid != os.getpid():
                    # a pool inherited across fork belongs to the parent: start a new one
                    self._pool = ConnectionPool(
                        self.target,
                        min_size=1,
                        max_size=self.max_size,
                        open=False,
                        timeout=self.timeout,
                        check=ConnectionPool.check_connection,
                        # give up quickly on a dead server; the next request grows it anew
                        reconnect_timeout=self.timeout,
                        name="prediction-log",
                    )
                    self._pool.open(wait=False)
                    self._pool_pid = os.getpid()
        return self._pool

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[Any]:
        with self._get_pool().connection() as connection, connection.cursor() as cursor:
            yield cursor  # the pool's context commits, or rolls back on an exception

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg
        from psycopg_pool import PoolTimeout

        return (psycopg.Error, PoolTimeout)

    def _integrity_error(self) -> type[BaseException]:
        import psycopg

        return psycopg.errors.UniqueViolation

    def _data_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.IntegrityError, psycopg.DataError)

    def _lock_schema(self, cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_MONITOR_LOCK_KEY + 1,))

    def _table_columns(self, cursor, table: str) -> set[str] | None:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        columns = {row[0] for row in cursor.fetchall()}
        return columns or None

    def acquire_monitor_lock(self) -> bool:
        import psycopg

        if self._monitor is not None:
            try:  # the lock lives as long as its session: is the session still there?
                self._monitor.execute("SELECT 1")
                return True
            except psycopg.Error:
                logger.warning("prediction log: the monitor lock's session ended; asking again")
                with contextlib.suppress(psycopg.Error):
                    self._monitor.close()
                self._monitor = None
        try:
            # a session lock on a connection of its own, held as long as it stays open
            connection = psycopg.connect(self.target, autocommit=True, connect_timeout=5)
            got = connection.execute(
                "SELECT pg_try_advisory_lock(%s)", (_MONITOR_LOCK_KEY,)
            ).fetchone()[0]
        except psycopg.Error as err:
            raise LogUnavailable(f"postgresql prediction log {redact(self.target)}: {err}") from err
        if not got:
            connection.close()
            return False
        self._monitor = connection
        return True

    def release_monitor_lock(self) -> None:
        if self._monitor is not None:
            with contextlib.suppress(Exception):
                self._monitor.close()  # the session ends, and its advisory lock with it
            self._monitor = None

    def close(self) -> None:
        self.release_monitor_lock()
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.close()
        self._pool = None


def open_log(target: str) -> LogDatabase:
    """A PostgreSQL URL (postgresql://, postgres://) or a SQLite file path; nothing migrated."""
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresLog(target)
    return SqliteLog(target)
