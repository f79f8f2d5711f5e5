# The prediction service: gunicorn + Flask serving the models baked in at build time.
# `make image` builds it (docs/deployment.md). Every Python package comes from the
# wheelhouse in build/wheelhouse (`make wheelhouse`), so on a base with libgomp1 the build
# reaches no network: the path an air-gapped hospital network takes. BASE_IMAGE is any
# Debian bookworm image with python3 and venv: python:3.11-slim-bookworm on GitHub's
# runners, `make base-image` (built from Debian's packages with mmdebstrap) where no
# registry can be reached.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-eu", "-c"]
COPY requirements-serve.lock /tmp/requirements-serve.lock
COPY build/wheelhouse /tmp/wheelhouse
# Only the serving set; bundled test suites and pip itself do not ship.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --no-index --quiet \
       --find-links /tmp/wheelhouse -r /tmp/requirements-serve.lock \
    && /opt/venv/bin/python -m pip uninstall --quiet --yes pip \
    && find /opt/venv/lib -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
COPY app /srv/migraine/app
COPY migraine_ml /srv/migraine/migraine_ml
# The root filesystem is read-only at run time: compile the bytecode now, once.
RUN /opt/venv/bin/python -m compileall -q /opt/venv/lib /srv/migraine

FROM ${BASE_IMAGE}
ARG UID=10001
SHELL ["/bin/bash", "-o", "pipefail", "-eu", "-c"]
# LightGBM needs OpenMP's libgomp1. `make base-image` includes it; a slim base lacks it and
# gets it from apt (where the build can reach Debian's mirror, as on GitHub's runners).
# hadolint ignore=DL3008
RUN if ! ldconfig -p | grep -q 'libgomp\.so\.1'; then \
        apt-get update && apt-get install -y --no-install-recommends libgomp1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi
LABEL org.opencontainers.image.title="migraine-mlops service" \
      org.opencontainers.image.source="https://github.com/migraine-mlops/migraine-mlops"
# The SQLite prediction log and drift events live on a volume; everything else the
# service writes goes to /tmp (a tmpfs or an emptyDir) and gunicorn's heartbeats to /dev/shm.
RUN mkdir -p /var/lib/migraine && chown "${UID}:${UID}" /var/lib/migraine
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv/migraine /srv/migraine
# models/ and the dvc.lock that names their hashes: the service refuses to become ready
# when a file does not match (app/model_store.py).
COPY dvc.lock /srv/migraine/dvc.lock
COPY models /srv/migraine/models
COPY reports/metrics.json /srv/migraine/reports/metrics.json
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PORT=8000 \
    MIGRAINE_HOST=0.0.0.0 \
    MIGRAINE_PREDICTION_LOG=/var/lib/migraine/predictions.db \
    MIGRAINE_DRIFT_EVENTS=/var/lib/migraine/drift-events.jsonl \
    MIGRAINE_PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
VOLUME ["/var/lib/migraine"]
WORKDIR /srv/migraine
USER ${UID}:${UID}
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('MIGRAINE_PORT', os.environ['PORT']), timeout=2)"]
# exec form: gunicorn is PID 1 and gets docker stop's SIGTERM, finishing the requests
# in flight within its graceful timeout.
CMD ["gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
