# Two commands (see README): `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench clean

# torch==2.13.0 goes in first, alone: it is the CPU build on disk here; letting pip resolve
# torch through another package would download a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/fedrec demo

lint: setup
	$(BIN)/ruff check fedrec cli server client shared simulations tests
	$(BIN)/ruff format --check fedrec cli server client shared simulations tests

typecheck: setup
	$(BIN)/mypy fedrec shared server client simulations cli

unit: setup
	$(BIN)/python -m pytest -q

test: lint typecheck unit

bench: setup
	$(BIN)/fedrec bench quality

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
