# The verbs a newcomer needs. `make repro` and `make test` set everything up on
# a fresh clone (only Python 3.11 and git required).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed

# No network here or in CI: no analytics, no telemetry.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
# Stage commands in dvc.yaml call `python`; mlflow finds `uvicorn` on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: help setup repro test lint security format gate bench bench-scale serve fuzz sweep report schema retrain clean distclean

help:
	@echo "make setup   create $(VENV) and install the pinned dependencies"
	@echo "make repro   run the DVC pipeline (dvc repro) on params.yaml's dataset"
	@echo "make test    lint, format check, and the whole test suite with coverage"
	@echo "make serve   gunicorn on \$$PORT (default 8000) serving models/ (after make repro)"
	@echo "make fuzz    schemathesis, every check, $(FUZZ_EXAMPLES) examples per operation, against"
	@echo "             gunicorn serving models/ (after make repro); make test runs a small budget"
	@echo "make sweep   queue and run the default parameter grid as DVC experiments (dvc exp show)"
	@echo "make report BASE=<ref>  report.md: params/metrics diff vs BASE, plots side by side, gate"
	@echo "make schema DATA=<csv> TARGET=<col> [REGRESSION_TARGET=<col>] [GROUP=<col>] OUT=<yaml>"
	@echo "             draft a schema for your own CSV (review it, then see docs/own-data.md)"
	@echo "make gate    exit non-zero unless reports/gate.json passed (for CI)"
	@echo "make retrain  train a challenger on labelled feedback, promote it only if better"
	@echo "make bench   train-stage timing, bench/train_time.py (results in reports/bench/)"
	@echo "make lint    ruff check + format check, yamllint, GitHub workflow schema check"
	@echo "make dashboards  regenerate the Grafana dashboard JSON from monitoring/grafana/dashboard.py"
	@echo "make image   build the service image (docs/deployment.md); BASE_IMAGE=migraine-base:bookworm"
	@echo "             after make base-image where no registry is reachable"
	@echo "make compose-secrets  random secrets for docker-compose.yml under ./secrets"
	@echo "make security  bandit and pip-audit"
	@echo "make format  ruff format + ruff check --fix"
	@echo "make clean   remove caches and test leftovers (keeps $(VENV) and DVC outputs)"

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install --quiet -r requirements.lock 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/python -m pip install --quiet --no-deps -e . 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	touch $(STAMP)

repro: setup
	$(BIN)/dvc repro

PORT ?= 8000
serve: setup
	PORT=$(PORT) $(BIN)/gunicorn -c app/gunicorn.conf.py 'app:create_app()'

# Every schemathesis check against the real gunicorn on a free loopback port, with a large
# budget; prediction log and metrics go to a scratch directory, not data/. Exits with
# schemathesis' status, or 2 when the service is not ready (no trained models/?).
FUZZ_EXAMPLES ?= 3000
define WAIT_READY
import sys, time, urllib.error, urllib.request
for _ in range(240):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=5)
        sys.exit(0)
    except urllib.error.HTTPError as err:
        sys.exit(f"{sys.argv[1]} answered {err.code}: {err.read().decode()}")
    except OSError:
        time.sleep(0.25)
sys.exit(f"{sys.argv[1]} did not answer within 60 s")
endef
export WAIT_READY
fuzz: setup
	@scratch=$$(mktemp -d); \
	port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	MIGRAINE_HOST=127.0.0.1 MIGRAINE_PORT=$$port MIGRAINE_WEB_CONCURRENCY=2 \
	MIGRAINE_PROMETHEUS_MULTIPROC_DIR=$$scratch/prometheus \
	MIGRAINE_PREDICTION_LOG=$$scratch/predictions.db \
	$(BIN)/gunicorn -c app/gunicorn.conf.py 'app:create_app()' >$$scratch/gunicorn.log 2>&1 & \
	server=$$!; trap 'kill $$server 2>/dev/null; wait $$server; rm -rf $$scratch' EXIT; \
	$(BIN)/python -c "$$WAIT_READY" http://127.0.0.1:$$port/ready || { tail -n 20 $$scratch/gunicorn.log; exit 2; }; \
	$(BIN)/schemathesis run http://127.0.0.1:$$port/openapi.json --checks all --max-examples $(FUZZ_EXAMPLES)

# The default grid (any `-S param=v1,v2 ...`); the table shows every swept parameter.
SWEEP ?= -S 'features.n_features=10,30'
sweep: setup
	$(BIN)/migraine sweep $(SWEEP)

BASE ?= origin/main
report: setup
	$(BIN)/migraine report --base $(BASE) --out report.md

# A draft schema for your own data; FORCE=1 overwrites an existing OUT.
SCHEMA_ROLES = $(if $(TARGET),--target '$(TARGET)') \
	$(if $(REGRESSION_TARGET),--regression-target '$(REGRESSION_TARGET)') \
	$(if $(GROUP),--group '$(GROUP)') $(if $(FORCE),--force)
schema: setup
	@test -n "$(DATA)" -a -n "$(OUT)" || { echo "usage: make schema DATA=<csv> TARGET=<column> [REGRESSION_TARGET=<column>] [GROUP=<column>] OUT=<yaml>"; exit 2; }
	$(BIN)/migraine schema --data '$(DATA)' --out '$(OUT)' $(strip $(SCHEMA_ROLES))

gate: setup
	$(BIN)/migraine gate --gate reports/gate.json

# One retrain cycle (docs/retraining.md); the prediction log is $MIGRAINE_PREDICTION_LOG,
# else data/predictions.db. CI runs it weekly (.github/workflows/retrain.yaml).
retrain: setup
	$(BIN)/migraine retrain

bench: setup
	$(BIN)/python bench/train_time.py --runs 3

# the whole pipeline at each size in a scratch clone (docs/scale.md; needs GNU time)
SCALE_ROWS ?= 8000,100000
bench-scale: setup
	$(BIN)/migraine bench-scale --rows $(SCALE_ROWS)

# The container image (docs/deployment.md). The build reaches no network: Python packages
# come from build/wheelhouse, fetched here from requirements-serve.lock; BASE_IMAGE is
# python:3.11-slim-bookworm unless given (make base-image builds one from Debian's packages).
WHEELHOUSE := build/wheelhouse
IMAGE ?= migraine-mlops
BASE_IMAGE ?= python:3.11-slim-bookworm
# tag: the commit and the models' hash in dvc.lock, so an image names exactly what it serves
MODELS_MD5 = $(shell $(BIN)/python -c "from pathlib import Path; from app.model_store import locked_md5; print(locked_md5(Path('dvc.lock'), 'models')[:12])")
IMAGE_TAG = $(shell git rev-parse --short=12 HEAD)-$(MODELS_MD5)
.PHONY: image wheelhouse base-image serve-lock
serve-lock: setup
	$(BIN)/python deploy/serve_lock.py > requirements-serve.lock

# wheels for the image's CPython 3.11 on x86-64 Linux, whatever the host runs (macOS, 3.12);
# OFFLINE=1 only checks that a wheelhouse carried in is complete, reaching no index
WHEEL_TARGET := --python-version 3.11 --implementation cp --abi cp311 \
	--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
wheelhouse: setup
	$(BIN)/python -m pip download --quiet --only-binary=:all: --no-deps $(WHEEL_TARGET) \
		$(if $(OFFLINE),--no-index --find-links $(WHEELHOUSE)) \
		-r requirements-serve.lock -d $(WHEELHOUSE) 2>&1 | grep -v "^WARNING: Location" ; \
	test $${PIPESTATUS[0]} -eq 0

# models/ from `make repro` when there are none yet (CI brings them as an artifact)
models/manifest.json:
	$(MAKE) repro

image: wheelhouse models/manifest.json
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE):$(IMAGE_TAG) -t $(IMAGE):latest .
	@echo "built $(IMAGE):$(IMAGE_TAG)"

# A bookworm base with python3 and venv from Debian's packages (needs root and mmdebstrap);
# then: make image BASE_IMAGE=migraine-base:bookworm
base-image:
	deploy/base-image.sh migraine-base:bookworm

# kubernetes-validate and checkov for deploy/check_manifests.py, in a venv of their own:
# checkov pins packages the project pins otherwise (deploy/requirements-tools.txt)
TOOLS_VENV := build/tools-venv
.PHONY: k8s-tools k8s-rules compose-secrets
k8s-tools: $(TOOLS_VENV)/.installed
$(TOOLS_VENV)/.installed: deploy/requirements-tools.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r deploy/requirements-tools.txt 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	touch $@

# the PrometheusRule in k8s/ is generated from monitoring/prometheus/rules.yml
k8s-rules: setup
	$(BIN)/python deploy/k8s_monitoring.py

# random secrets for docker-compose.yml under ./secrets (existing files are kept)
compose-secrets: setup
	$(BIN)/python deploy/compose_secrets.py --dir secrets

# promtool and amtool come from Debian's prometheus and prometheus-alertmanager: where one
# is missing its checks are skipped with a note, except in CI, which must have them (.ci/run).
need_tool = command -v $(1) >/dev/null || { if [ -n "$$CI" ]; then \
	echo "$(1) missing: CI must install Debian's $(2) (.ci/run)" >&2; exit 1; fi; \
	echo "skipped: $(1) not installed (apt-get install $(2))"; exit 0; }
lint: setup k8s-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint -s .github/ dvc.yaml params.yaml schemas/ monitoring/ k8s/ docker-compose.yml \
		deploy/checkov-skips.yaml .pre-commit-config.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yaml
	$(BIN)/python monitoring/grafana/dashboard.py --check
	$(BIN)/python deploy/k8s_monitoring.py --check
	$(BIN)/python deploy/check_manifests.py
	@if docker compose version >/dev/null 2>&1; then set -x; docker compose config --quiet; \
	else $(call need_tool,docker-compose,docker-compose); set -x; docker-compose config --quiet; fi
	$(TOOLS_VENV)/bin/hadolint Dockerfile deploy/mlflow/Dockerfile
	@$(call need_tool,promtool,prometheus); set -x; \
	promtool check rules monitoring/prometheus/rules.yml && \
	cd monitoring/prometheus && promtool test rules rules.test.yml && promtool check config prometheus.yml
	@$(call need_tool,amtool,prometheus-alertmanager); set -x; \
	amtool check-config monitoring/alertmanager/alertmanager.yml

.PHONY: dashboards
# The Grafana dashboard JSON is generated: edit monitoring/grafana/dashboard.py, then this.
dashboards: setup
	$(BIN)/python monitoring/grafana/dashboard.py

# Security linter and dependency audit (the audit asks PyPI's advisory data: needs network).
security: setup
	$(BIN)/bandit -q -r migraine_ml stages app -c pyproject.toml
	$(BIN)/pip-audit -r requirements.lock --no-deps --disable-pip --progress-spinner off

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# two test workers (pytest-xdist), one file each at a time: module fixtures build once;
# files in collection order (tests/conftest.py puts the longest first), not by test count
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--cov --cov-report=term

clean:
	rm -rf .pytest_cache .ruff_cache .coverage htmlcov
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(TOOLS_VENV) $(WHEELHOUSE)
