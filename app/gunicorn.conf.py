"""gunicorn settings: `gunicorn -c app/gunicorn.conf.py 'app:create_app()'`.

Prometheus multiprocess mode needs PROMETHEUS_MULTIPROC_DIR set before
prometheus_client is first imported, and emptied at start so counters of an
earlier run do not leak in; this file runs in the master before the app is
loaded, so it is the place. Dead workers are marked in `child_exit`.

Every setting read here is MIGRAINE_<NAME> (MIGRAINE_PORT, MIGRAINE_WEB_CONCURRENCY,
MIGRAINE_GUNICORN_BACKLOG, ...), like the app's own settings. The unprefixed <NAME>
keeps working as an alias, MIGRAINE_<NAME> winning when both are set: PORT and
WEB_CONCURRENCY are the conventional names platforms and gunicorn itself use; HOST,
LOG_LEVEL, GUNICORN_* and PROMETHEUS_MULTIPROC_DIR are the names this file read first.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile


def _setting(name: str, default: str | None = None) -> str | None:
    """MIGRAINE_<name>, else the unprefixed alias <name>, else the default."""
    return os.environ.get(f"MIGRAINE_{name}", os.environ.get(name, default))


# prometheus_client itself reads the unprefixed name, in every worker
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = _setting(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "migraine-prometheus")
)
shutil.rmtree(_metrics_dir, ignore_errors=True)
os.makedirs(_metrics_dir, exist_ok=True)

bind = f"{_setting('HOST', '127.0.0.1')}:{_setting('PORT', '8000')}"
# 2 cores: CPU-bound workers, one per core plus one to cover I/O waits.
workers = int(_setting("WEB_CONCURRENCY", str((os.cpu_count() or 1) + 1)))
threads = int(_setting("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
# Beyond saturation, queue only this many connections; the kernel refuses the rest
# quickly instead of letting clients time out in a long queue.
backlog = int(_setting("GUNICORN_BACKLOG", "256"))
timeout = int(_setting("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(_setting("GUNICORN_MAX_REQUESTS", "0"))
accesslog = _setting("GUNICORN_ACCESSLOG")  # None: no per-request log line
errorlog = "-"
loglevel = _setting("LOG_LEVEL", "info")
# Workers touch a heartbeat file every few seconds: keep it in memory (/dev/shm), not on a
# disk that may be slow or, in the container, read-only.
worker_tmp_dir = _setting(
    "GUNICORN_WORKER_TMP_DIR", "/dev/shm" if os.path.isdir("/dev/shm") else None
)
# gunicorn >= 25.1 opens a control socket in $HOME for `gunicornc`; nothing here uses it,
# and the container's root filesystem is read-only.
control_socket_disable = True


def post_worker_init(worker):
    # each worker looks for promoted models from its start, not from its first request
    # (app/reload.py; the app starts it at a first request elsewhere, e.g. `flask run`)
    reloader = getattr(worker.wsgi, "extensions", {}).get("model_reloader")
    if reloader is not None:
        reloader.start()


def child_exit(server, worker):
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

    GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


# The drift monitor runs as a process of its own beside the workers (app/monitor.py
# says why); it reads the same MIGRAINE_* settings and writes its gauges into the same
# multiprocess directory. It exits by itself when there is nothing to monitor, or when
# this master is gone. Its handle lives on the arbiter: a HUP re-executes this file.


# workers follow while the monitor process whose pid is here runs (app/monitor.py)
os.environ["MIGRAINE_DRIFT_MONITOR_PID_FILE"] = os.path.join(
    tempfile.gettempdir(), f"migraine-drift-monitor-{os.getpid()}.pid"
)


def _start_drift_monitor(server):
    command = "from app.monitor import main; main()"
    server.drift_monitor = subprocess.Popen([sys.executable, "-c", command])
    server.log.info("drift monitor process started (pid %d)", server.drift_monitor.pid)


def _stop_drift_monitor(server):
    process = getattr(server, "drift_monitor", None)
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    with contextlib.suppress(OSError):
        os.remove(os.environ["MIGRAINE_DRIFT_MONITOR_PID_FILE"])


def when_ready(server):
    _start_drift_monitor(server)


def on_reload(server):
    # a reload may serve new models: the monitor must judge against their reference
    _stop_drift_monitor(server)
    _start_drift_monitor(server)


def on_exit(server):
    _stop_drift_monitor(server)
