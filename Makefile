# sftp-contact-import: `make help` lists the targets.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
VENV := .venv
PY := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: help install test test-fast lint fmt demo bench ui deploy worker clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --python python3
	@touch $@

install: $(VENV)/.installed ## create .venv from the lock file

test: install ## install, then run the whole suite (slow end-to-end tests included)
	$(PY) -m pytest

test-fast: install ## the suite without the slow end-to-end tests
	$(PY) -m pytest -m "not slow"

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: ## remove the venv and the demo's state
	rm -rf $(VENV) .demo
