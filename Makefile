# Two commands (see README): `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-e2e test-all test-fast lint typecheck unit bench clean

# torch==2.13.0 goes in first, alone: it is the CPU build on disk here; letting pip resolve
# torch through another package would download a multi-GB CUDA build. --no-compile: pip
# would byte-compile every module of every package up front (most of set-up's time);
# Python compiles the ones a command imports on first use instead, and keeps them: so the
# targets below write bytecode even where the environment says not to
# (PYTHONDONTWRITEBYTECODE, set in many container images). Without it every process (the
# service, each Flower and Ray worker, each test's subprocess) compiles transformers,
# torch and flwr from source again, several seconds each.
unexport PYTHONDONTWRITEBYTECODE
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile "torch==2.13.0"
	$(BIN)/python -m pip install --quiet --no-compile -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/fedrec demo

lint: setup
	$(BIN)/ruff check fedrec cli server client shared simulations tests
	$(BIN)/ruff format --check fedrec cli server client shared simulations tests

# mypy cannot see setuptools' editable import hook that maps fedrec.server -> server/ etc.,
# so it checks a link tree laid out as the installed package (build/ is ignored).
TYPECHECK_TREE := build/typecheck
typecheck: setup
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)/fedrec
	for f in __init__.py __main__.py simulation; do ln -s ../../../fedrec/$$f $(TYPECHECK_TREE)/fedrec/$$f; done
	for d in cli server client shared simulations; do ln -s ../../../$$d $(TYPECHECK_TREE)/fedrec/$$d; done
	MYPYPATH=$(TYPECHECK_TREE) $(BIN)/mypy -p fedrec

unit: setup
	$(BIN)/python -m pytest -q -m "not slow"

# Before a commit, and CI's first step (.ci/run): lint, types and every test but the
# multi-process end-to-end ones.
test: lint typecheck unit

# The end-to-end tests on the real path (pytest -m slow): Flower's simulation and
# deployment engines with their daemons, a Ray cluster, kills and restarts, the demo.
# CI runs them after `make test`.
test-e2e: setup
	$(BIN)/python -m pytest -q -m slow

# Everything CI runs.
test-all: test test-e2e

# While developing: the unit tests of the library (no slow end-to-end tests, no benchmark
# drivers, no CLI), under two minutes on 2 CPU cores.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" tests/shared tests/client tests/server tests/fedrec

bench: setup
	$(BIN)/fedrec bench quality

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
