"""The drift monitor: one process checks the pooled prediction log for every worker.

Under gunicorn the checking is done by a process of its own that the master
starts beside the workers (`main`, from app/gunicorn.conf.py): a check holds
the GIL for tens of milliseconds, and in a worker every request would wait on
it. That process holds the log's monitor lock (`LogDatabase.acquire_monitor_lock`:
a file lock beside a SQLite log, an advisory lock on PostgreSQL, so one monitor
per shared log even across replicas) and checks drift every `check_every`
logged predictions or `interval` seconds over the last `window` rows of the
log: the traffic of all workers, not a third of it. It records each result in
the log (`record_check`), writes the JSON-lines events and sets the Prometheus
gauges (multiprocess mode "mostrecent": the newest value wins, whichever
process wrote it).

Every worker runs a `DriftMonitor` thread too, as a follower: it reads the
latest result from the log every `refresh` seconds, so `/drift` and each
prediction's `drift_warning` agree across workers within that delay. If no
process holds the lock (the monitor process died, or there is no gunicorn),
a worker takes it after `lead_delay` seconds and checks itself.

Nothing here runs on the request path: a request reads `drift_warning`, an
attribute.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Gauge

from migraine_ml.monitoring.drift import DriftReference, DriftReport
from migraine_ml.monitoring.monitor import DriftSettings, check_window
from migraine_ml.monitoring.prediction_log import LogDatabase, LogUnavailable

logger = logging.getLogger(__name__)

NAN = math.nan


def _flag(value: bool) -> int:
    return 1 if value else 0


class DriftGauges:
    """The drift results as Prometheus gauges (see monitoring/ for the alerts on them)."""

    def __init__(self, **registry: Any) -> None:
        def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, documentation, labels, multiprocess_mode="mostrecent", **registry)

        self.feature_psi = gauge("migraine_drift_feature_psi", "PSI per input", ("feature",))
        self.feature_drift = gauge(
            "migraine_drift_feature_drift", "1 if the input drifted", ("feature",)
        )
        self.prediction_psi = gauge(
            "migraine_drift_prediction_psi", "PSI per model output", ("task", "output")
        )
        self.prediction_drift = gauge(
            "migraine_drift_prediction_drift", "1 if a task's outputs drifted", ("task",)
        )
        self.window_accuracy = gauge(
            "migraine_drift_window_accuracy", "Primary metric on the window's labelled rows"
        )
        self.test_accuracy = gauge("migraine_drift_test_accuracy", "The same metric on test rows")
        self.performance_drift = gauge(
            "migraine_drift_performance_drift", "1 if the window's metric dropped too far"
        )
        self.window_labels = gauge("migraine_drift_window_labels", "Labelled rows in the window")
        self.window_rows = gauge("migraine_drift_window_rows", "Rows in the last checked window")
        self.detected = gauge("migraine_drift_detected", "1 if the last check found any drift")
        self.last_check = gauge(
            "migraine_drift_last_check_timestamp_seconds", "Unix time of the last drift check"
        )

    def publish(self, report: DriftReport, reference: DriftReference) -> None:
        judged = {feature.name: feature for feature in report.features}
        for feature in reference.inputs:  # below min_window nothing is judged: no flag
            result = judged.get(feature.name)
            psi = result.psi if result is not None and result.psi is not None else NAN
            self.feature_psi.labels(feature.name).set(psi)
            self.feature_drift.labels(feature.name).set(_flag(result is not None and result.drift))
        judged_tasks = {p.task: p for p in report.prediction}
        for task, outputs in reference.predictions.items():
            result = judged_tasks.get(task)
            judged_outputs = {o.output: o for o in result.outputs} if result else {}
            for output in outputs:
                value = judged_outputs.get(output)
                psi = value.psi if value is not None and value.psi is not None else NAN
                self.prediction_psi.labels(task, output).set(psi)
            self.prediction_drift.labels(task).set(_flag(result is not None and result.drift))
        performance = report.performance
        if performance is not None:
            self.window_accuracy.set(NAN if performance.value is None else performance.value)
            self.test_accuracy.set(
                NAN if performance.test_value is None else performance.test_value
            )
            self.window_labels.set(performance.labels)
        self.performance_drift.set(_flag(performance is not None and performance.drift))
        self.window_rows.set(report.window)
        self.detected.set(_flag(report.drifted))
        self.last_check.set(report.checked_at.timestamp())


def _unchanged(result: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    """The same window judged the same way as the previous check (only the time differs)."""
    if previous is None:
        return False
    same = {key: value for key, value in result.items() if key != "checked_at"}
    return same == {key: value for key, value in previous.items() if key != "checked_at"}


def _drifting(report: dict[str, Any]) -> set[tuple[str, str]]:
    """What a check flagged, as (kind, name) pairs: features, prediction tasks, performance."""
    flagged = {("feature", name) for name in report.get("drifted_features", [])}
    flagged |= {("prediction", t) for t, p in report.get("prediction", {}).items() if p["drift"]}
    performance = report.get("performance") or {}
    if performance.get("drift"):
        flagged.add(("performance", performance["metric"]))
    return flagged


def _changes(
    result: dict[str, Any], previous: dict[str, Any] | None
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """What started drifting since the previous check, and what stopped."""
    now, before = _drifting(result), _drifting(previous or {})
    return now - before, before - now


class DriftEvents:
    """The JSON-lines event log: one line per check, one per drift that starts or ends."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(
        self, report: dict[str, Any], started: set[tuple[str, str]], ended: set[tuple[str, str]]
    ) -> None:
        if self.path is None:
            return
        at = report["checked_at"]
        lines = [
            {
                "time": at,
                "event": "drift_check",
                "window": report["window"],
                "drifted": report["drifted"],
                "drifted_features": report["drifted_features"],
                "note": report["note"],
            }
        ]
        lines += [
            {"time": at, "event": "drift_started", "kind": kind, "name": name}
            for kind, name in sorted(started)
        ]
        lines += [
            {"time": at, "event": "drift_ended", "kind": kind, "name": name}
            for kind, name in sorted(ended)
        ]
        with self.path.open("ab") as events:
            events.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))


class DriftMonitor:
    def __init__(
        self,
        database: Callable[[], LogDatabase],
        reference: DriftReference,
        settings: DriftSettings,
        *,
        gauges: DriftGauges,
        events: DriftEvents,
        test_value: float | None = None,
        versions: dict[str, str | None] | None = None,
        refresh: float = 2.0,
        lead_retry: float = 5.0,
        lead_delay: float = 5.0,
        monitor_process_alive: Callable[[], bool] | None = None,
    ) -> None:
        self.database = database  # the log's database, its schema in place (may raise)
        self.reference = reference
        self.settings = settings
        self.gauges = gauges
        self.events = events
        self.test_value = test_value
        self.versions = versions or {}
        self.refresh = refresh
        self.lead_retry = lead_retry
        # workers wait this long before their first try, so that the monitor process
        # gunicorn starts beside them (app.monitor.main) takes the lock first
        self.lead_delay = lead_delay
        # in a worker under gunicorn: whether the monitor process runs (then only follow)
        self.monitor_process_alive = monitor_process_alive
        self.leader = False
        self.latest: dict[str, Any] | None = None  # the newest check, as /drift shows it
        self.drift_warning: list[str] | None = None  # what each prediction says
        self._checked_seq = 0
        self._checked_time = -math.inf
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._basis = threading.Lock()  # reference, versions and test_value change together

    def judge_against(
        self,
        reference: DriftReference,
        *,
        versions: dict[str, str | None],
        test_value: float | None,
    ) -> None:
        """New models are served (app/reload.py): the next checks judge against them."""
        with self._basis:
            self.reference, self.versions, self.test_value = reference, versions, test_value

    def start(self) -> None:
        """Start the thread in this process (after gunicorn forked the worker)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, daemon=True, name="drift")
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def check(self, last_seq: int | None = None) -> dict[str, Any]:
        """One check over the last `window` logged rows, recorded and published."""
        previous = self.latest  # before anything can replace it
        with self._basis:  # one set of models, even if a reload swaps them meanwhile
            reference, versions, test_value = self.reference, self.versions, self.test_value
        last_seq = self.database().last_seq() if last_seq is None else last_seq
        rows = self.database().recent(self.settings.window)
        report = check_window(
            rows,
            reference,
            self.settings,
            test_value=test_value,
            versions=versions,
            checked_at=datetime.now(UTC),
        )
        result = report.to_dict() | {"settings": self.settings.to_dict(), "last_seq": last_seq}
        unchanged = _unchanged(result, previous)
        if not unchanged:  # a quiet hour would otherwise add a copy a minute
            self.database().record_check(report.checked_at.timestamp(), result)
        # the gauges say when the last check ran, changed or not (DriftCheckStale reads it)
        self.gauges.publish(report, reference)
        self._checked_seq, self._checked_time = last_seq, time.monotonic()
        if unchanged:
            return previous
        started, ended = _changes(result, previous)
        self.events.write(result, started, ended)
        self._show(result)
        if started or ended:  # once per change, as the events file says it
            logger.warning(
                "drift started: %s; ended: %s",
                ", ".join(f"{kind} {name}" for kind, name in sorted(started)) or "nothing",
                ", ".join(f"{kind} {name}" for kind, name in sorted(ended)) or "nothing",
            )
        return result

    def _show(self, result: dict[str, Any] | None) -> None:
        self.latest = result
        self.drift_warning = (result or {}).get("drifted_features") or None

    def _due(self, last_seq: int) -> bool:
        since = time.monotonic() - self._checked_time
        return since >= self.settings.interval or (
            last_seq - self._checked_seq >= self.settings.check_every
            and since >= self.settings.min_seconds
        )

    def run(self) -> None:
        """Lead (or follow) in the calling thread until stopped: the monitor process."""
        self.lead_delay = 0.0
        self._run()

    def _run(self) -> None:
        poll = min(1.0, self.settings.interval, self.refresh)
        next_lead_try = time.monotonic() + self.lead_delay
        refreshed = -math.inf
        warned = False
        # a restarted monitor goes on from the last result: no drift announced twice
        with contextlib.suppress(LogUnavailable):
            self._show(self.database().latest_check())
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_lead_try:
                    # the leader asks again too: a PostgreSQL restart ends its session lock
                    next_lead_try = now + self.lead_retry
                    was_leader = self.leader
                    if self.monitor_process_alive is not None and self.monitor_process_alive():
                        if self.leader:  # it was away (a reload): hand the checks back
                            self.database().release_monitor_lock()
                        self.leader = False
                    else:
                        self.leader = self.database().acquire_monitor_lock()
                    if self.leader != was_leader:
                        logger.info(
                            "drift monitor: process %d %s",
                            os.getpid(),
                            "now checks for every worker" if self.leader else "lost the lock",
                        )
                if self.leader:
                    last_seq = self.database().last_seq()
                    if self._due(last_seq):
                        self.check(last_seq)
                elif now - refreshed >= self.refresh:
                    refreshed = now
                    latest = self.database().latest_check()
                    if latest is not None:
                        self._show(latest)
                warned = False
            except LogUnavailable as err:
                self.leader = False  # cannot check without the log; ask again once it is back
                if not warned:  # once per outage, not once per poll
                    logger.warning("drift monitor: prediction log unavailable: %s", err)
                    warned = True
            except Exception:  # the monitor must outlive any one bad check
                logger.exception("drift monitor: check failed")
            self._stop.wait(poll)


# Set by app/gunicorn.conf.py: where the monitor process writes its pid.
PID_FILE = "MIGRAINE_DRIFT_MONITOR_PID_FILE"


def monitor_process_alive() -> bool:
    """Whether the monitor process gunicorn started (per PID_FILE) is running."""
    try:
        pid = int(Path(os.environ[PID_FILE]).read_text())
        os.kill(pid, 0)
    except (KeyError, OSError, ValueError):
        return False
    return True


def main() -> None:
    """The drift monitor as a process of its own (`from app.monitor import main; main()`).

    gunicorn's master starts it beside the workers (app/gunicorn.conf.py), with
    the same MIGRAINE_* settings: a check holds the GIL for tens of
    milliseconds, and in a worker every request thread waiting on it would pay.
    The workers then only follow (read the latest check); if this process dies,
    one of them takes the lock over within `lead_retry` seconds.
    """
    from app import create_app

    os.nice(10)  # background work: the workers answering requests come first
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] %(message)s")
    # it reads the verified manifest and reference, never a model: none is loaded
    os.environ["MIGRAINE_LOAD_PIPELINES"] = "false"
    app = create_app()
    monitor: DriftMonitor | None = app.extensions["drift_monitor"]
    if monitor is None:
        logger.info("drift monitor process: nothing to do (%s)", app.extensions["drift_off"])
        return
    signal.signal(signal.SIGTERM, lambda *_: monitor._stop.set())
    signal.signal(signal.SIGINT, lambda *_: monitor._stop.set())
    monitor.monitor_process_alive = None  # this is that process: it leads
    # after a promotion it judges against the new models' reference and versions, like
    # the workers serve them (the same reloader; it loads no model here)
    app.extensions["model_reloader"].start()
    pid_file = os.environ.get(PID_FILE)
    if pid_file:  # the workers read it: while this process runs they only follow
        Path(pid_file).write_text(str(os.getpid()))
    parent = os.getppid()

    def orphaned() -> None:  # the master was killed without stopping us: stop too
        while not monitor._stop.wait(1.0):
            if os.getppid() != parent:
                logger.info("drift monitor process: the gunicorn master is gone; exiting")
                monitor._stop.set()

    threading.Thread(target=orphaned, daemon=True, name="orphaned").start()
    monitor.run()
