"""A prediction-log outage, real gunicorn and PostgreSQL: no prediction fails (integration).

The service logs to PostgreSQL while clients keep predicting; the database is
stopped mid-load and started again. Predictions, /ready and /health keep
answering; /health says "degraded" meanwhile; afterwards logging resumes by
itself and the buffered rows arrive.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from migraine_ml.monitoring.prediction_log import open_log
from tests.app.servers import Gunicorn, free_port, request

pytestmark = pytest.mark.integration


class Load:
    """Client threads posting /predict until stopped: every answer and failure, timed."""

    def __init__(self, url: str, record: dict, threads: int = 2):
        self.url, self.record = url, record
        self.served: list[tuple[float, str]] = []  # (time, prediction_id)
        self.failures: list[str] = []
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._drive) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _drive(self) -> None:
        while not self._done.is_set():
            try:
                status, body, _ = request(self.url + "/predict", self.record, timeout=10)
            except OSError as err:
                self.failures.append(repr(err))
                continue
            if status != 200:
                self.failures.append(f"{status}: {body}")
                continue
            for prediction in json.loads(body)["predictions"]:
                self.served.append((time.time(), prediction["prediction_id"]))

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join()


def _health(server: Gunicorn) -> dict:
    status, body, _ = request(server.url + "/health", timeout=10)
    assert status == 200, body
    return json.loads(body)


def _wait_for(server: Gunicorn, wanted: str, seconds: float, *, in_a_row: int = 1) -> dict:
    """Poll /health (and /ready) until `in_a_row` answers in a row say `wanted`."""
    deadline, streak, health = time.monotonic() + seconds, 0, {}
    while time.monotonic() < deadline:
        assert request(server.url + "/ready", timeout=10)[0] == 200
        health = _health(server)
        streak = streak + 1 if health["status"] == wanted else 0
        if streak >= in_a_row:
            return health
        time.sleep(0.1)
    raise AssertionError(f"/health did not say {wanted!r} within {seconds} s: {health}")


def test_a_database_outage_fails_no_prediction_and_logging_resumes(
    deployment, tmp_path, record, postgres
):
    url = postgres.fresh_url()
    server = Gunicorn(deployment, tmp_path, drain=True, MIGRAINE_PREDICTION_LOG=url)
    load = None
    try:
        server.wait_until_up()
        assert _health(server)["prediction_log"]["backend"] == "postgresql"
        load = Load(server.url, record)
        time.sleep(1.5)
        _wait_for(server, "ok", 10, in_a_row=4)

        postgres.stop()
        degraded = _wait_for(server, "degraded", 15)
        assert degraded["prediction_log"]["last_error"]
        assert postgres.url.split(":")[2].split("@")[0] not in json.dumps(degraded)  # password
        time.sleep(2)  # predictions keep coming during the outage
        during = len(load.served)

        postgres.start()
        restarted = time.time()
        # both workers write again: several answers in a row say ok
        _wait_for(server, "ok", 30, in_a_row=6)
        time.sleep(1)
        load.stop()
        assert load.failures == []
        assert len(load.served) > during > 0
        after = [pid for t, pid in load.served if t > restarted + 0.5]
        assert after, "no predictions after the database came back"

        # everything served reaches the database: rows predicted after the restart, and
        # those buffered during the outage (far fewer than the capacity)
        log = open_log(url)
        deadline = time.monotonic() + 20
        while log.count() < len(load.served) and time.monotonic() < deadline:
            time.sleep(0.2)
        logged = set(log.recent(len(load.served) + 10).prediction_id)
        log.close()
        assert {pid for _, pid in load.served} <= logged
        health = _health(server)["prediction_log"]
        assert (health["dropped"], health["buffered"]) == (0, 0)
    finally:
        if load is not None:
            load.stop()
        output = server.stop()
        if postgres_down(postgres):
            postgres.start()
    assert "prediction log degraded" in output


def postgres_down(postgres) -> bool:
    import psycopg

    try:
        psycopg.connect(postgres.url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def test_a_full_buffer_drops_and_counts_rows(deployment, tmp_path, record):
    """A database that never answers, a buffer of 3 rows per worker: the rest are dropped."""
    secret = "s3cret-pw"
    server = Gunicorn(
        deployment,
        tmp_path,
        drain=True,
        MIGRAINE_PREDICTION_LOG=f"postgresql://u:{secret}@127.0.0.1:{free_port()}/log",
        MIGRAINE_PREDICTION_LOG_CAPACITY="3",
    )
    try:
        server.wait_until_up()
        for _ in range(5):
            status, _, _ = request(server.url + "/predict", {"records": [record] * 4})
            assert status == 200
        health = _wait_for(server, "degraded", 15)
        assert secret not in json.dumps(health)
        status, metrics, _ = request(server.url + "/metrics")
        assert status == 200
        values = {
            line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("migraine_prediction_log_")
        }
        buffered = values["migraine_prediction_log_buffered"]
        assert 3 <= buffered <= 6  # 3 per worker that took a request
        assert values["migraine_prediction_log_dropped_total"] == 20 - buffered
        assert values["migraine_prediction_log_healthy"] == 0
    finally:
        output = server.stop()
    assert secret not in output
