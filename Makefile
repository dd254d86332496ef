# sftp-contact-import: `make help` lists the targets.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
VENV := .venv
PY := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export SFTP_IMPORT_CODE_DIR := $(CURDIR)

.PHONY: help install lock test test-fast soak lint fmt demo demo-cluster screenshots bench bench-more bench-peak ui deploy worker server clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# requirements.lock pins every package with its hashes and no registry address (uv.lock records the
# registry's; the repo holds none): the environment is synced to it exactly, then the project is added
$(VENV)/.installed: pyproject.toml requirements.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) venv --allow-existing --python python3 $(VENV)
	$(UV) pip sync --python $(PY) --require-hashes --compile-bytecode requirements.lock
	$(UV) pip install --python $(PY) --no-deps --compile-bytecode -e .
	@touch $@

install: $(VENV)/.installed ## create .venv from the lock file

lock: ## re-pin pyproject.toml's dependencies into requirements.lock, keeping its pins where they fit (LOCK_ARGS=--upgrade: the newest)
	$(UV) pip compile pyproject.toml --group dev --universal --python-version 3.11 --generate-hashes $(LOCK_ARGS) -o requirements.lock

test: install ## install, then run the whole suite (slow end-to-end tests included)
	$(PY) -m pytest

test-fast: install ## the suite without the slow end-to-end tests
	$(PY) -m pytest -m "not slow"

fuzz: install ## a long fuzz of the readers and the contract loader (FUZZ_EXAMPLES=20000; make test runs 150)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-20000} $(PY) -m pytest -q -p no:cacheprovider tests/test_fuzz.py

soak: install ## the crash kill loop at length: SOAK_POINTS=500 kill points over sync, import, backfill, purge (~15 min)
	SOAK_POINTS=$${SOAK_POINTS:-500} $(PY) -m tests.kill_loop

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: ## stop the demos' Prefect servers (and demo-cluster's PostgreSQL), remove the venv and the demos' state
	-SFTP_IMPORT_HOME=$(CURDIR)/.demo/home $(VENV)/bin/sftp-import server stop
	-$(PY) -m demo.cluster stop
	rm -rf $(VENV) .demo

demo: install ## the main job on embedded defaults: SFTP server, sample clients, sync, import, status
	$(PY) -m demo.run

demo-cluster: install ## several machines on one: PostgreSQL store and Prefect server, two workers as two machines (~2 min)
	$(PY) -m demo.cluster

screenshots: demo ## the README's screenshot of the ops overview (docs/overview.png): the demo's UI in Debian's Chromium
	$(PY) -m demo.screenshots

bench: install ## issue 12's lines in one run against DuckDB's floor, dlt, sftp -b, targets: a table + bench/results/latest.json
	$(PY) -m bench

bench-more: install ## the raw XLSX readers (calamine vs openpyxl) and the UI at 1,000 clients in Chromium
	$(PY) -m bench.bench_readers
	$(PY) -m bench.bench_ui

bench-peak: install ## the peak: 1,000 clients due the same minute; PEAK_ARGS="--store postgresql --workers 1 3" scales out
	$(PY) -m bench.bench_peak $(PEAK_ARGS)

# --- running on a Prefect server (see the README: "Running on a Prefect server") ----------------
PREFECT := $(VENV)/bin/prefect
WORKER_LIMIT ?= 2

server: install ## start (or find) the resident Prefect server of SFTP_IMPORT_HOME; prints its UI and API
	$(VENV)/bin/sftp-import server start

ui: install ## the resident Prefect server of the demo's home (started if needed): its UI address
	SFTP_IMPORT_HOME=$(CURDIR)/.demo/home $(VENV)/bin/sftp-import server start

deploy: install ## pool + store limit, prefect.yaml from the contracts, deploy all, prune stale slots (needs PREFECT_API_URL)
	@test -n "$$PREFECT_API_URL" || { echo "set PREFECT_API_URL (e.g. http://127.0.0.1:$(PREFECT_PORT)/api)"; exit 1; }
	$(PY) -m deployments.setup
	$(PY) -m deployments.generate
	$(PREFECT) --no-prompt deploy --all
	$(PY) -m deployments.setup prune

worker: install ## a process worker on the sftp-import pool, $(WORKER_LIMIT) runs at a time (needs PREFECT_API_URL)
	@test -n "$$PREFECT_API_URL" || { echo "set PREFECT_API_URL (e.g. http://127.0.0.1:$(PREFECT_PORT)/api)"; exit 1; }
	$(PREFECT) worker start --pool sftp-import --limit $(WORKER_LIMIT)
