# Quick start: `make demo` (the pipeline on a simulated cluster) and `make test` (the whole suite).
# Each target sets up what it needs: a virtualenv in .venv, and for the tests the Debian packages
# of the real servers they run (prometheus, chromium).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)

.PHONY: demo test lint install install-dev system-packages bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

demo: $(VENV)/.runtime
	$(BIN)/k8s-monitor demo

system-packages:
	scripts/ensure-system-packages

test: $(VENV)/.dev system-packages
	$(BIN)/python -m pytest

lint: $(VENV)/.dev  # style, types, and the layers' import direction (pyproject.toml)
	$(BIN)/ruff check shared functions tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.dev system-packages  # minutes: collect.py runs up to 100,000 pods, this tree and the baseline revision
	$(BIN)/python benchmarks/collect.py --pods 1000 10000 --prometheus real  # as in a cluster: Debian's Prometheus
	$(BIN)/python benchmarks/collect.py --pods 50000 100000 --runs 2 --inventory-runs 2
	$(BIN)/python benchmarks/cold_start.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/retention.py
	$(BIN)/python benchmarks/backup.py
	$(BIN)/python benchmarks/growth.py

serve: $(VENV)/.runtime
	$(BIN)/k8s-monitor serve

clean:  # the virtualenv and caches; ./data (your history and backups) is left alone
	rm -rf $(VENV) .pytest_cache test-artifacts
