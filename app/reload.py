"""New models picked up by the running service: verified, swapped in, no request failed.

A promotion (`dvc checkout`, `migraine rollback`, a copy) replaces models/ and
dvc.lock under a running service. Every process that serves or judges models
(each gunicorn worker, the drift monitor process) has one `ModelReloader`. Its
daemon thread, started after gunicorn forks the worker, looks at the files every
`MODEL_RELOAD_INTERVAL` seconds: inode, mtime and size of dvc.lock and of every
file below models/, a stat each, nothing read. When they changed and then stay
still for a moment, and dvc.lock names other models than the served ones, it
loads a new `ModelStore` beside the served one, verified against the new
dvc.lock as at start-up, off the request path.

Only a ready store replaces the served one, by one reference assignment: a
request reads `app.extensions["model_store"]` once, so it uses the old models
or the new ones, never a mix. A store that is not ready (a tampered file, a lock
that does not match, a bad promotion) is refused: the old models keep serving,
the problems are logged and shown on GET /model, and the next change of the
files is tried again. A failure while the files were still changing (a checkout
half done) is not a refusal: it is tried again at the next look.

`POST /admin/reload` checks at once in the worker that receives it; the
other workers follow within `MODEL_RELOAD_INTERVAL` seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from app import drift
from app.model_store import ModelStore, locked_md5
from migraine_ml import persist

logger = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

UNCHANGED, LOADED, REFUSED, UNSETTLED = "unchanged", "loaded", "refused", "unsettled"
# after a change, the files must stay still this long before they are verified
SETTLE_SECONDS = 0.5

FileState = tuple[int, int, int]  # inode, mtime_ns, size


def _state(path: Path) -> FileState | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def files_on_disk(models_dir: Path, lock_path: Path) -> tuple:
    """What is on disk, cheaply: the state of dvc.lock and of every file below models/.

    A replaced file has a new inode, a rewritten one a new mtime or size.
    """
    states = []
    for folder, _, names in os.walk(models_dir):
        for name in names:
            path = Path(folder, name)
            states.append((path.relative_to(models_dir).as_posix(), _state(path)))
    return _state(lock_path), tuple(sorted(states))


@dataclass(frozen=True)
class ReloadResult:
    outcome: str  # UNCHANGED, LOADED, REFUSED or UNSETTLED
    problems: tuple[str, ...] = ()

    @property
    def reloaded(self) -> bool:
        return self.outcome == LOADED


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def served_versions(store: ModelStore) -> dict[str, dict[str, str]]:
    """Per task, the version of each served rank: {"classification": {"champion": ...}}."""
    versions: dict[str, dict[str, str]] = {}
    for model in store.models.values():
        versions.setdefault(model.task, {})[model.rank] = model.version
    return versions


class ModelReloader:
    """Loads the models at start-up and swaps in verified new ones while serving."""

    def __init__(self, app: Flask, *, settle: float = SETTLE_SECONDS) -> None:
        config = app.config
        self.models_dir = Path(config["MODELS_DIR"])
        self.lock_path = Path(config["DVC_LOCK"])
        self.verify = bool(config["VERIFY_MODELS"])
        self.fast_path = bool(config["FAST_PATH"])
        self.pipelines = bool(config["LOAD_PIPELINES"])
        self.interval = float(config["MODEL_RELOAD_INTERVAL"])
        self.settle = settle
        self.loaded_at: float | None = None  # when the served models were loaded
        self.last_problems: list[str] = []  # of the last refused models
        self.last_refused_at: float | None = None
        # the thread must not keep a discarded app (tests make many) and its models alive
        self._app = weakref.ref(app)
        self._judged: tuple | None = None  # the files last loaded or refused
        self._served_key: str | None = None  # what dvc.lock named for the served models
        self._pid = os.getpid()
        self._lock = threading.Lock()  # one attempt at a time: the thread, /admin/reload
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def load_first(self) -> ModelStore:
        """The models at start-up (served even when not ready: /ready says why)."""
        on_disk, key = self._on_disk(), self._models_key()  # before reading: no change missed
        store = self._load()
        self._judged = on_disk
        if store.ready:
            self._served_key, self.loaded_at = key, time.time()
        return store

    def _on_disk(self) -> tuple:
        return files_on_disk(self.models_dir, self.lock_path)

    def _models_key(self) -> str | None:
        """What names the model set: dvc.lock's hash of models/ (unverified: the manifest's)."""
        try:
            if self.verify:
                return locked_md5(self.lock_path, self.models_dir.name)
            return persist.file_md5(self.models_dir / "manifest.json")
        except Exception:  # a lock being written: unknown, so the models are verified
            return None

    def _load(self) -> ModelStore:
        store = ModelStore(self.models_dir, self.lock_path, verify=self.verify)
        try:
            return store.load(fast_path=self.fast_path, pipelines=self.pipelines)
        except Exception as err:  # a half-written manifest or lock: a problem, not a crash
            store.ready, store.problems = False, [f"{type(err).__name__}: {err}"]
            return store

    def check(self, *, now: bool = False) -> ReloadResult:
        """Swap in new models if the files changed; `now`: verify them without waiting."""
        app = self._app()
        if app is None:
            return ReloadResult(UNCHANGED)
        with self._lock:
            on_disk = self._on_disk()
            if not now:
                if on_disk == self._judged:
                    return ReloadResult(UNCHANGED)
                # a checkout replaces files one at a time: wait until they stay still
                if self._stop.wait(self.settle) or self._on_disk() != on_disk:
                    return ReloadResult(UNCHANGED)
            return self._attempt(app, on_disk)

    def _attempt(self, app: Flask, on_disk: tuple) -> ReloadResult:
        served: ModelStore = app.extensions["model_store"]
        key = self._models_key()
        if served.ready and key is not None and key == self._served_key:
            self._judged = on_disk  # touched, or rewritten the same: the same models
            return ReloadResult(UNCHANGED)
        store = self._load()
        metrics = app.extensions.get("service_metrics")
        if store.ready:
            app.extensions["model_store"] = store  # one assignment: a request holds one store
            self._judged, self._served_key, self.loaded_at = on_disk, key, time.time()
            if metrics is not None:
                metrics.show_models(store, previous=served)
                metrics.model_reloads.labels(LOADED).inc()
            drift.follow_models(app, store)
            logger.info(
                "new models serving: %s",
                ", ".join(f"{m.task}/{m.rank}={m.name}@{m.version}" for m in store.models.values()),
            )
            return ReloadResult(LOADED)
        problems = tuple(store.problems)
        if self._on_disk() != on_disk:  # still being written: not the promotion's last word
            logger.info(
                "new models not verified yet, files still changing: %s", "; ".join(problems)
            )
            return ReloadResult(UNSETTLED, problems)
        self._judged = on_disk
        self.last_problems, self.last_refused_at = list(problems), time.time()
        if metrics is not None:
            metrics.model_reloads.labels(REFUSED).inc()
        logger.warning("new models refused, the served ones keep serving: %s", "; ".join(problems))
        return ReloadResult(REFUSED, problems)

    def start(self) -> None:
        """Start looking in this process (after gunicorn forked the worker); 0 s: never."""
        if self.interval <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        if self._pid != os.getpid():  # forked: the parent's locks may be held by its threads
            self._pid, self._thread, self._stop = os.getpid(), None, threading.Event()
            self._lock, self._start_lock = threading.Lock(), threading.Lock()
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, daemon=True, name="model-reload")
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._app() is None:
                return
            try:
                self.check()
            except Exception:  # the next look may do better; serving goes on regardless
                logger.exception("model reload: check failed")

    def status(self) -> dict[str, Any]:
        """For GET /model."""
        refused = None
        if self.last_refused_at is not None:
            refused = {"at": _iso(self.last_refused_at), "problems": self.last_problems}
        return {
            "loaded_at": _iso(self.loaded_at),
            "interval_seconds": self.interval,
            "last_refused": refused,
        }


def init_app(app: Flask) -> ModelStore:
    """Load and verify the models into `app.extensions["model_store"]`; reload them later."""
    reloader = ModelReloader(app)
    store = app.extensions["model_store"] = reloader.load_first()
    app.extensions["model_reloader"] = reloader

    @app.before_request
    def start_reloader():
        # here, not in create_app: a thread does not survive gunicorn's fork
        reloader.start()

    return store


@bp.post("/reload")
def reload_models():
    """Verify and swap in new models now, in this worker: 200, or 409 if they fail."""
    result = current_app.extensions["model_reloader"].check(now=True)
    body = {
        "reloaded": result.reloaded,
        "versions": served_versions(current_app.extensions["model_store"]),
        "problems": list(result.problems),
    }
    if result.outcome in (REFUSED, UNSETTLED):
        detail = "the new models failed verification; the served ones keep serving"
        return jsonify({"error": "conflict", "detail": detail} | body), 409
    return jsonify(body)
