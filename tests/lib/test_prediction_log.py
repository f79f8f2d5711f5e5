"""The prediction log on real databases: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from migraine_ml.monitoring.prediction_log import (
    COLUMNS,
    SCHEMA_VERSION,
    AlreadyLabelled,
    Feedback,
    InvalidFeedback,
    LoggedPrediction,
    LogUnavailable,
    SchemaTooNew,
    SqliteLog,
    UnknownPrediction,
    open_log,
    redact,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "logs" / "predictions.db")
    return request.getfixturevalue("postgres").fresh_url()


@pytest.fixture
def log(target):
    database = open_log(target)
    database.migrate()
    yield database
    database.close()


def _row(created: float, **changes) -> LoggedPrediction:
    return LoggedPrediction(
        prediction_id=uuid.uuid4().hex,
        created=created,
        classifier="gradient_boosting",
        classifier_version="abc123def456",
        regressor="ridge",
        regressor_version="0123456789ab",
        features={"age": 35, "sleep_hours": 5.5, "sex": "female", "missing": None},
        probabilities={"none": 0.2, "mild": 0.5, "severe": 0.3},
        predicted_class="mild",
        predicted_value=6.25,
        drift_warning=None,
    )._replace(**changes)


def test_open_log_picks_the_backend(tmp_path):
    assert open_log(str(tmp_path / "a" / "b.db")).backend == "sqlite"
    assert (tmp_path / "a").is_dir()  # parent directories created
    for url in ("postgresql://u:p@localhost/db", "postgres://u:p@localhost/db"):
        database = open_log(url)  # connects lazily: nothing happens here
        assert database.backend == "postgresql"
        database.close()


def test_redact_hides_the_password():
    assert redact("postgresql://me:s3cr:et@db:5432/log") == "postgresql://me:***@db:5432/log"
    assert redact("postgresql://db/log") == "postgresql://db/log"
    assert redact("/var/log/predictions.db") == "/var/log/predictions.db"


def test_insert_then_read(log):
    assert (log.count(), log.last_seq()) == (0, 0)
    assert list(log.recent(10).columns) == list(COLUMNS)
    rows = [_row(1000.0 + i) for i in range(5)]
    rows[1] = rows[1]._replace(drift_warning=["age"], probabilities=None, predicted_value=None)
    log.insert(rows[:3])
    log.insert(rows[3:])
    log.insert([])
    assert (log.count(), log.last_seq()) == (5, 5)

    recent = log.recent(3)
    assert list(recent.prediction_id) == [r.prediction_id for r in rows[2:]]  # oldest first
    assert list(recent.seq) == [3, 4, 5]
    everything = log.recent(100)
    assert everything.features[0] == rows[0].features
    assert everything.probabilities[0] == {"none": 0.2, "mild": 0.5, "severe": 0.3}
    assert everything.probabilities[1] is None
    assert everything.drift_warning[1] == ["age"]
    assert everything.drift_warning[0] is None
    assert everything.predicted_value[0] == 6.25
    assert everything.classifier[0] == "gradient_boosting"
    assert everything.outcome.isna().all() and everything.delay_seconds.isna().all()

    since = log.since(1003.0)
    assert list(since.created) == [1003.0, 1004.0]
    assert log.since(2000.0).empty


def test_a_retried_batch_is_written_once(log):
    """A writer retries a batch whose commit landed but whose acknowledgement was lost."""
    rows = [_row(1.0), _row(2.0)]
    log.insert(rows[:1])
    log.insert(rows)
    assert log.count() == 2


def test_feedback_is_recorded_once_with_its_delay(log):
    row = _row(time.time() - 60)
    log.insert([row])
    feedback = Feedback(row.prediction_id, "severe", 7.0, observed_at=row.created + 30)
    delay = log.add_feedback(feedback, received_at=row.created + 90)
    assert delay == pytest.approx(90)
    (labelled,) = log.recent(1).itertuples()
    assert (labelled.outcome, labelled.target_value) == ("severe", 7.0)
    assert labelled.observed_at == pytest.approx(row.created + 30)
    assert labelled.delay_seconds == pytest.approx(90)
    assert np.isnan(labelled.intervened)  # not said
    with pytest.raises(AlreadyLabelled):
        log.add_feedback(feedback, received_at=row.created + 100)
    with pytest.raises(UnknownPrediction):
        log.add_feedback(feedback._replace(prediction_id="0" * 32), received_at=time.time())


def test_feedback_observed_before_the_prediction_or_in_the_future_is_refused(log):
    row = _row(1000.0)
    log.insert([row])
    with pytest.raises(InvalidFeedback, match="before the prediction"):
        log.add_feedback(Feedback(row.prediction_id, "mild", None, 900.0), received_at=1100.0)
    with pytest.raises(InvalidFeedback, match="in the future"):
        log.add_feedback(Feedback(row.prediction_id, "mild", None, 1200.0), received_at=1100.0)
    # a regression label alone, no observation time
    assert log.add_feedback(Feedback(row.prediction_id, None, 3.0, None), received_at=1100.0) == 100


def test_drift_checks(log):
    assert log.latest_check() is None
    log.record_check(10.0, {"window": 300, "drifted": False, "features": {}})
    log.record_check(20.0, {"window": 400, "drifted": True, "features": {"age": {"psi": 0.3}}})
    log.record_check(15.0, {"window": 350, "drifted": False})
    assert log.latest_check() == {
        "window": 400,
        "drifted": True,
        "features": {"age": {"psi": 0.3}},
    }


def test_schema_version_is_recorded_and_migrate_is_idempotent(log, target):
    log.migrate()
    other = open_log(target)
    other.migrate()
    other.insert([_row(1.0)])
    other.close()
    with log._cursor() as cursor:
        cursor.execute("SELECT version FROM schema_version")
        assert [r[0] for r in cursor.fetchall()] == [SCHEMA_VERSION]
    assert log.count() == 1


def test_a_version_1_log_gains_the_intervened_column_and_keeps_its_labels(target):
    from migraine_ml.monitoring import prediction_log as module

    old = open_log(target)
    with old._cursor() as cursor:  # the log as schema version 1 wrote it
        old._schema_version(cursor)
        for statement in module._SCHEMA_V1.format(**module._TYPES[old.backend]).split(";"):
            if statement.strip():
                old._execute(cursor, statement)
        old._execute(cursor, "INSERT INTO schema_version (version, applied_at) VALUES (1, 0)")
        row = _row(1000.0)
        old._execute(
            cursor,
            "INSERT INTO predictions (prediction_id, created, features) VALUES (?, ?, ?)",
            (row.prediction_id, row.created, "{}"),
        )
        old._execute(
            cursor,
            "INSERT INTO feedback (prediction_id, outcome, received_at, delay_seconds) "
            "VALUES (?, '1', 1100, 100)",
            (row.prediction_id,),
        )
    old.close()
    reader = open_log(target)  # a reader (retrain, drift-report) takes it as it is
    (unflagged,) = reader.labelled(2000.0).itertuples()
    assert (unflagged.outcome, np.isnan(unflagged.intervened)) == ("1", True)
    with reader._cursor() as cursor:
        cursor.execute("SELECT MAX(version) FROM schema_version")
        assert cursor.fetchone()[0] == 1
    reader.close()
    log = open_log(target)
    log.migrate()
    (kept,) = log.labelled(2000.0).itertuples()
    assert (kept.outcome, np.isnan(kept.intervened)) == ("1", True)
    second = _row(1200.0)
    log.insert([second])
    log.add_feedback(Feedback(second.prediction_id, "0", None, None, True), received_at=1300.0)
    assert log.labelled(2000.0)["intervened"].tolist()[1] == 1
    with log._cursor() as cursor:
        cursor.execute("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in cursor.fetchall()] == [1, SCHEMA_VERSION]
    log.close()


def test_a_newer_schema_is_refused(log, target):
    with log._cursor() as cursor:
        log._execute(
            cursor,
            "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
            (SCHEMA_VERSION + 1, 0.0),
        )
    newer = open_log(target)
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        newer.migrate()
    newer.close()


def test_the_unversioned_sqlite_log_is_kept_as_predictions_v0(tmp_path, caplog):
    path = tmp_path / "predictions.db"
    with sqlite3.connect(path) as connection:  # the log as the first service wrote it
        connection.executescript(
            """
            CREATE TABLE predictions (prediction_id TEXT PRIMARY KEY, created REAL NOT NULL,
                features TEXT NOT NULL, probability REAL, predicted_class TEXT, severity REAL,
                classifier_version TEXT, regressor_version TEXT);
            CREATE INDEX predictions_created ON predictions (created);
            INSERT INTO predictions VALUES ('old1', 1.0, '{"age": 30}', 0.4, '0', 3.5, 'a', 'b');
            INSERT INTO predictions VALUES ('old2', 2.0, '{"age": 31}', 0.7, '1', 6.5, 'a', 'b');
            """
        )
    connection.close()
    log = SqliteLog(path)
    with caplog.at_level("WARNING"):
        log.migrate()
    assert [r.message for r in caplog.records].count(
        f"prediction log {path}: the unversioned table 'predictions' is kept as 'predictions_v0'"
    ) == 1
    log.migrate()
    assert log.count() == 0
    log.insert([_row(3.0)])
    with sqlite3.connect(path) as connection:
        old = connection.execute("SELECT * FROM predictions_v0 ORDER BY created").fetchall()
        indexes = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'predictions'"
        ).fetchall()
    connection.close()
    assert [r[0] for r in old] == ["old1", "old2"]
    assert ("predictions_by_created",) in indexes
    log.close()


def test_the_monitor_lock_is_exclusive_and_released_on_close(target):
    first, second = open_log(target), open_log(target)
    first.migrate()
    try:
        assert first.acquire_monitor_lock()
        assert first.acquire_monitor_lock()  # held already
        assert not second.acquire_monitor_lock()
        first.close()
        assert second.acquire_monitor_lock()
    finally:
        first.close()
        second.close()


def test_the_sqlite_monitor_lock_excludes_another_process(tmp_path):
    path = tmp_path / "predictions.db"
    code = (
        "import sys, time; from migraine_ml.monitoring.prediction_log import open_log; "
        "log = open_log(sys.argv[1]); print(log.acquire_monitor_lock(), flush=True); "
        "sys.stdin.readline(); log.close()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        log = open_log(str(path))
        assert not log.acquire_monitor_lock()
        holder.communicate("\n", timeout=30)  # the holder closes its log and exits
        assert log.acquire_monitor_lock()
        log.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_reading_a_thousand_rows_takes_milliseconds(log):
    log.insert([_row(float(i)) for i in range(1000)])
    log.recent(1000)  # warm
    started = time.perf_counter()
    frame = log.recent(1000)
    seconds = time.perf_counter() - started
    assert len(frame) == 1000
    assert seconds < 0.05, f"recent(1000) took {seconds * 1000:.1f} ms"


def test_an_unreachable_postgresql_is_log_unavailable():
    with socket_port() as port:
        log = open_log(f"postgresql://u:hunter2@127.0.0.1:{port}/none")
        log.timeout = 0.5
        with pytest.raises(LogUnavailable) as err:
            log.count()
        assert "hunter2" not in str(err.value)
        log.close()


class socket_port:
    """A loopback port nobody listens on, for the duration of the block."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_the_postgresql_monitor_lock_is_asked_again_after_a_restart(postgres):
    """A restart ends the leader's session and its lock: the leader must notice, not
    believe it still leads while another replica takes the lock too."""
    url = postgres.fresh_url()
    leader, other = open_log(url), open_log(url)
    leader.migrate()
    try:
        assert leader.acquire_monitor_lock()
        postgres.stop()
        with pytest.raises(LogUnavailable):
            leader.acquire_monitor_lock()  # the session is gone and nothing answers
        postgres.start()
        assert other.acquire_monitor_lock()  # the old lock did not survive the restart
        assert not leader.acquire_monitor_lock()  # and the old leader knows it
    finally:
        leader.close()
        other.close()
