"""gunicorn settings: `gunicorn -c app/gunicorn.conf.py 'app:create_app()'`.

Prometheus multiprocess mode needs PROMETHEUS_MULTIPROC_DIR set before
prometheus_client is first imported, and emptied at start so counters of an
earlier run do not leak in; this file runs in the master before the app is
loaded, so it is the place. Dead workers are marked in `child_exit`.
"""

import os
import shutil
import tempfile

_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "migraine-prometheus")
)
shutil.rmtree(_metrics_dir, ignore_errors=True)
os.makedirs(_metrics_dir, exist_ok=True)

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# 2 cores: CPU-bound workers, one per core plus one to cover I/O waits.
workers = int(os.environ.get("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
# Beyond saturation, queue only this many connections; the kernel refuses the rest
# quickly instead of letting clients time out in a long queue.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "256"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG")  # None: no per-request log line
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")


def child_exit(server, worker):
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

    GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
