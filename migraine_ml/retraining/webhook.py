"""Retraining from a drift alert: an Alertmanager webhook receiver that starts `migraine retrain`.

Alertmanager POSTs a JSON notification (payload version 4) for a group of alerts:
`status`, `groupKey` and `alerts`, each alert with its `status`, `labels`
(`alertname`, ...), `fingerprint` and `startsAt`. `RetrainTrigger.consider` starts
the retrain command only for a firing drift alert (`DRIFT_ALERTS`, the alerts of
monitoring/prometheus/rules.yml that say the model no longer fits its traffic),
and only once per incident:

- an incident is one alert's firing episode: its group, fingerprint and
  `startsAt` (`Incident.key`). Alertmanager repeats the notification of a group
  while it fires (`repeat_interval`) and sends it again whenever the group
  changes; an incident that already started a run starts no other;
- never two runs at once: a notification while one runs starts nothing;
- at least `cooldown` seconds from one run's start to the next.

An incident that was turned away (a run going, the cooldown) is not used up: if it
still fires when Alertmanager repeats it after the cooldown, it starts a run.

`make_server` serves `consider` over HTTP (`ThreadingHTTPServer`): 202 when a run
started, 200 when the notification was read and nothing started (with the reason),
400 for a body that is not such a notification, 401 without the bearer token (when
one is set), 404 for another path, 405 for another method, 500 when the command
could not be started. Alertmanager treats any 4xx as a failed notification and
retries a 5xx, so every deliberate "nothing started" is a 200.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The alerts of monitoring/prometheus/rules.yml after which retraining may help: an input
# moved, the champion's outputs moved, or its accuracy on labelled traffic fell.
DRIFT_ALERTS = ("MigraineFeatureDrift", "MigrainePredictionDrift", "MigraineAccuracyDrop")
FIRING = "firing"
DEFAULT_COMMAND = ("migraine", "retrain")
DEFAULT_COOLDOWN = 6 * 3600.0
MAX_BODY = 1 << 20  # Alertmanager's notifications are a few kB; a MB is a mistake or an attack
REMEMBERED_INCIDENTS = 10_000  # the oldest are forgotten beyond this

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class PayloadError(ValueError):
    """A request body that is not an Alertmanager webhook notification."""


def parse_duration(text: str) -> float:
    """Seconds from "90", "90s", "30m", "6h" or "1d"."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"duration {text!r}: expected seconds or a number with s, m, h or d (6h)")
    return float(found[1]) * _SECONDS[found[2]]


def read_token(path: str | Path) -> str:
    """The bearer token in a file, surrounding whitespace removed (as Alertmanager reads
    its `credentials_file`)."""
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"token file {path}: empty; expected the bearer token")
    return token


@dataclass(frozen=True)
class Incident:
    """One alert of a notification."""

    group_key: str
    alertname: str
    status: str
    fingerprint: str
    starts_at: str
    labels: tuple[tuple[str, str], ...]

    @property
    def key(self) -> tuple[str, str, str]:
        """The same for every notification of this firing episode of this alert."""
        return (self.group_key, self.fingerprint, self.starts_at)

    def describe(self) -> str:
        """`MigraineFeatureDrift{feature="<input>",job="migraine"}` (alertname left out)."""
        shown = ",".join(f'{name}="{value}"' for name, value in self.labels if name != "alertname")
        return f"{self.alertname}{{{shown}}}"


def parse_notification(body: bytes) -> list[Incident]:
    """The alerts of an Alertmanager webhook notification; PayloadError names what is wrong."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PayloadError(f"body is not JSON: {err}") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"body is a JSON {type(payload).__name__}; expected an object")
    group_key, alerts = payload.get("groupKey"), payload.get("alerts")
    if not isinstance(group_key, str):
        raise PayloadError(f"groupKey: {group_key!r}; expected a string")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts: {alerts!r}; expected a list")
    incidents = []
    for number, alert in enumerate(alerts):
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict) or not isinstance(labels.get("alertname"), str):
            raise PayloadError(f"alerts[{number}]: no labels.alertname")
        status, starts_at = alert.get("status"), alert.get("startsAt")
        if not isinstance(status, str) or not isinstance(starts_at, str):
            raise PayloadError(f"alerts[{number}]: status and startsAt must be strings")
        pairs = tuple(sorted((str(name), str(value)) for name, value in labels.items()))
        # Alertmanager always sends the fingerprint; without one, the labels identify the alert
        fingerprint = alert.get("fingerprint") or json.dumps(pairs)
        incidents.append(
            Incident(group_key, labels["alertname"], status, str(fingerprint), starts_at, pairs)
        )
    return incidents


@dataclass(frozen=True)
class Verdict:
    """What one notification did: started a run or not, and why."""

    started: bool
    reason: str
    status: HTTPStatus
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "reason": self.reason, "pid": self.pid}


class RetrainTrigger:
    """Starts the retrain command for new firing drift incidents: one run at a time, at
    least `cooldown` seconds apart, never twice for one incident. Thread-safe."""

    def __init__(
        self,
        command: Sequence[str] = DEFAULT_COMMAND,
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        alertnames: Iterable[str] = DRIFT_ALERTS,
        cwd: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not command:
            raise ValueError("command: empty; expected a program and its arguments")
        if cooldown < 0:
            raise ValueError(f"cooldown: {cooldown} s is negative")
        self.command = tuple(command)
        self.cooldown = float(cooldown)
        self.alertnames = frozenset(alertnames)
        self.cwd = cwd
        self._clock = clock
        self._lock = threading.Lock()
        self._run: subprocess.Popen | None = None
        self._watcher: threading.Thread | None = None
        self._last_start: float | None = None
        self._used: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    @property
    def running(self) -> bool:
        with self._lock:
            return self._run is not None

    def consider(self, incidents: Sequence[Incident]) -> Verdict:
        """Start a run for this notification's alerts, or say why not."""
        drift = [i for i in incidents if i.alertname in self.alertnames and i.status == FIRING]
        with self._lock:
            if not drift:
                return self._ignored(_nothing_to_do(incidents, self.alertnames))
            new = [i for i in drift if i.key not in self._used]
            names = ", ".join(i.describe() for i in (new or drift))
            if not new:
                return self._ignored(f"{names}: this incident already started a retrain")
            if self._run is not None:
                return self._ignored(f"{names}: a retrain is running (pid {self._run.pid})")
            now = self._clock()
            if self._last_start is not None and now - self._last_start < self.cooldown:
                since, left = now - self._last_start, self.cooldown - (now - self._last_start)
                return self._ignored(
                    f"{names}: cooldown, the last retrain started {_human(since)} ago "
                    f"(next possible in {_human(left)})"
                )
            try:
                run = subprocess.Popen(self.command, cwd=self.cwd, stdin=subprocess.DEVNULL)
            except OSError as err:
                logger.error("could not start %s for %s: %s", _shown(self.command), names, err)
                # not used up: Alertmanager retries a 5xx, and the next try may work
                return Verdict(False, f"could not start the retrain: {err}", HTTPStatus(500))
            self._run, self._last_start = run, now
            for incident in drift:  # every alert of this notification is handled by this run
                self._used[incident.key] = None
            while len(self._used) > REMEMBERED_INCIDENTS:
                self._used.popitem(last=False)
            self._watcher = threading.Thread(
                target=self._wait_for, args=(run,), name="retrain-run", daemon=True
            )
            self._watcher.start()
        logger.info("started %s (pid %d) for %s", _shown(self.command), run.pid, names)
        return Verdict(True, f"started a retrain for {names}", HTTPStatus.ACCEPTED, run.pid)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the current run, if any, to end; False if it still runs after `timeout`."""
        with self._lock:
            watcher = self._watcher
        if watcher is not None:
            watcher.join(timeout)
            return not watcher.is_alive()
        return True

    def _wait_for(self, run: subprocess.Popen) -> None:
        code = run.wait()
        with self._lock:
            self._run = None
        log = logger.info if code == 0 else logger.warning
        log("retrain (pid %d) exited %d", run.pid, code)

    @staticmethod
    def _ignored(reason: str) -> Verdict:
        logger.info("nothing started: %s", reason)
        return Verdict(False, reason, HTTPStatus.OK)


def _nothing_to_do(incidents: Sequence[Incident], alertnames: frozenset[str]) -> str:
    if not incidents:
        return "no alerts in the notification"
    shown = ", ".join(f"{i.describe()} {i.status}" for i in incidents)
    return f"no firing drift alert ({', '.join(sorted(alertnames))}): {shown}"


def _human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _shown(command: Sequence[str]) -> str:
    return " ".join(command)


def make_server(
    trigger: RetrainTrigger,
    *,
    host: str = "127.0.0.1",
    port: int = 9095,
    path: str = "/alerts",
    token: str | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving: call `serve_forever`) that hands Alertmanager's
    notifications on `path` to `trigger`, with a bearer `token` required when given."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "migraine-retrain-webhook"
        sys_version = ""

        def do_POST(self) -> None:
            # the body is read before any answer: closing a socket with unread data resets
            # the connection, and the client may lose the answer
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
                return
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True
                self._answer(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"body of {length} bytes; at most {MAX_BODY}"},
                )
                return
            body = self.rfile.read(length)
            if not self._at_path():
                return
            if token is not None and not self._authorized():
                logger.warning("refused %s: no valid bearer token", self.client_address[0])
                self._answer(
                    HTTPStatus.UNAUTHORIZED,
                    {"error": "a bearer token is required"},
                    {"WWW-Authenticate": 'Bearer realm="retrain-webhook"'},
                )
                return
            try:
                incidents = parse_notification(body)
            except PayloadError as err:
                logger.warning("bad notification from %s: %s", self.client_address[0], err)
                self._answer(HTTPStatus.BAD_REQUEST, {"error": str(err)})
                return
            verdict = trigger.consider(incidents)
            self._answer(verdict.status, verdict.to_dict())

        def do_GET(self) -> None:
            self._not_allowed()

        do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

        def _at_path(self) -> bool:
            if self.path.split("?", 1)[0] == path:
                return True
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}; POST to {path}"})
            return False

        def _not_allowed(self) -> None:
            if self._at_path():
                self._answer(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    {"error": f"{self.command} {path}: only POST"},
                    {"Allow": "POST"},
                )

        def _authorized(self) -> bool:
            scheme, _, given = self.headers.get("Authorization", "").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode(), token.encode()
            )

        def _answer(
            self, status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode() + b"\n"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s %s", self.client_address[0], format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(
    trigger: RetrainTrigger,
    *,
    host: str,
    port: int,
    path: str = "/alerts",
    token: str | None = None,
) -> None:
    """Serve until interrupted; a run still going is left to finish on its own."""
    server = make_server(trigger, host=host, port=port, path=path, token=token)
    bound_host, bound_port = server.server_address[:2]
    logger.info(
        "listening on http://%s:%d%s: %s for firing %s, cooldown %s%s",
        bound_host,
        bound_port,
        path,
        _shown(trigger.command),
        ", ".join(sorted(trigger.alertnames)),
        _human(trigger.cooldown),
        ", bearer token required" if token else "",
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()


__all__ = [
    "DEFAULT_COMMAND",
    "DEFAULT_COOLDOWN",
    "DRIFT_ALERTS",
    "Incident",
    "PayloadError",
    "RetrainTrigger",
    "Verdict",
    "make_server",
    "parse_duration",
    "parse_notification",
    "read_token",
    "serve",
]
