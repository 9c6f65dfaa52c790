# kubetfx — every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3.10 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
# Python 3.10 has its own lock (protobuf 3.20, no kfp SDK: see requirements.in).
LOCK := $(if $(filter 3.10,$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')),requirements-py310.lock,requirements.lock)
INSTALLED := $(VENV)/.installed
KUBETFX := $(VENV)/bin/kubetfx
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lock compile run-containers regenerate clean bench bench-quality bench-startup bench-containers bench-monitor bench-serve browser report report-screenshot portable-hosts portable-hosts-stop

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# The stamp depends on the lock: editing it reinstalls, otherwise `install` does nothing.
# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI machines, many
# images) every run would otherwise recompile TF and TFX from source (measured 2 min 21 s
# instead of 59 s for `make run`).
$(INSTALLED): $(LOCK) pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON) and installing the pinned TFX 1.16 stack ($(LOCK))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) pip install --python $(PY) --compile-bytecode -r $(LOCK)
	$(UV) pip install --python $(PY) --no-deps -e .
	@touch $@

install: $(INSTALLED) ## Create .venv/ with the locked stack and kubetfx (idempotent)

run: install ## Run the nine-stage pipeline locally on the embedded penguins data
	$(KUBETFX) run

test: install object-store-env browser ## Run the whole test suite (slow and container tests included)
	$(PY) -m pytest $(PYTEST_ARGS)

lock: ## Re-resolve both locks (Python 3.11 and 3.10) from requirements.in
	$(UV) pip compile requirements.in --python-version 3.11 --no-python-downloads -o requirements.lock
	$(UV) pip compile requirements.in --python-version 3.10 --no-python-downloads -o requirements-py310.lock

# Headless Chromium (Debian's package) renders the run reports in the tests. Installed when
# missing and root (as in CI); otherwise the browser tests are skipped and say why.
browser: ## Install headless Chromium for the report tests, when missing (needs root)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing chromium (report tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium missing and not root: the report's browser tests will be skipped"; fi

REPORT_DIR := build/report
report: install ## Write the report of the latest run to build/report/report.html (runs the pipeline first if it never ran)
	@test -e "$${KUBETFX_HOME:-.kubetfx}/metadata/kubetfx-penguin.sqlite" || $(MAKE) run
	$(KUBETFX) report --output $(REPORT_DIR)/report.html

report-screenshot: report browser ## Render that report in headless Chromium to build/report/report.png
	$(PY) -c "from kubetfx.pipelines.report import browser; print('wrote', browser.screenshot('$(REPORT_DIR)/report.html', '$(REPORT_DIR)/report.png', height=4200))"

clean: ## Remove run outputs and build files (keeps .venv/)
	rm -rf .kubetfx build

include pipelines/kubeflow/object_store.mk
include components/container/container.mk
include manifests/cluster.mk

compile: install ## Write the KFP v2 pipeline spec to build/<pipeline-name>.yaml
	$(KUBETFX) compile

run-containers: image object-store-env ## Run the compiled spec on the local KFP backend, every stage in its container
	$(KUBETFX) run --engine containers

regenerate: install ## Refresh golden files (compiled spec, README tables) after an intended change
	KUBETFX_REGENERATE=1 $(PY) -m pytest pipelines/kubeflow/compiler_test.py tests/test_readme_tables.py -q

BENCH_SIZES ?= default,100k,1m
BENCH_REPS ?= 3
BENCH_ARGS ?=
bench: install ## Speed vs TFX's penguin example; BENCH_SIZES=default,100k,1m|10m|wide BENCH_REPS=3 (build/bench/results.json)
	$(PY) tests/bench/bench.py --sizes $(BENCH_SIZES) --reps $(BENCH_REPS) $(BENCH_ARGS)

bench-quality: install ## The default model's accuracy/MAE beside HistGradientBoosting on bundled datasets
	$(PY) tests/bench/quality.py

BENCH_STARTUP_ARGS ?=
bench-startup: install ## Fixed costs: CLI start, the run's imports, a stage container to its executor, monitor on 10k rows (build/bench/startup.json)
	$(PY) tests/bench/startup.py $(BENCH_STARTUP_ARGS)

BENCH_CONTAINERS_ARGS ?=
bench-containers: install ## run --engine containers beside the in-process run, per task (build/bench/containers.json; needs make image)
	$(PY) tests/bench/containers.py $(BENCH_CONTAINERS_ARGS)

bench-monitor: install ## kubetfx monitor's false alarms on healthy samples with gaps, true alarms on shifted ones (build/bench-monitor/results.json)
	$(PY) tests/bench/monitor_false_alarms.py

# wrk (Debian's package) loads the model server from a second process; installed when
# missing and root, as the browser target does for chromium.
BENCH_SERVE_ARGS ?=
bench-serve: install ## kubetfx serve under wrk load (1/16/64 connections) beside the in-process signature (build/bench/serve.json)
	@command -v wrk >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing wrk (load generator)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "error: wrk missing and not root: apt-get install wrk" >&2; exit 2; fi
	$(PY) tests/bench/serve.py $(BENCH_SERVE_ARGS)

# Beam's portable stack across hosts (tests/portable_beam/hosts.sh; root: ip netns): the
# job service and two SDK worker pools, each a network namespace; docs/scale-out.md.
portable-hosts: install ## Start Beam's job service and two SDK worker pools as namespaced hosts (root); prints their endpoints
	tests/portable_beam/hosts.sh start

portable-hosts-stop: ## Stop the portable Beam hosts and remove their namespaces, bridge and hosts files
	tests/portable_beam/hosts.sh stop
