# One entry point for a fresh machine: `make test` and `make demo` set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: setup test lint unit demo bench gas compile clean

setup: $(VENV)/.installed node_modules/.installed

# Each step says what it does, and pip lists the packages as it goes, so a fresh machine's
# minute of installing is never silent.
$(VENV)/.installed: setup.cfg pyproject.toml
	@echo "setup 1/3: creating the Python environment in $(VENV)/"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "setup 2/3: installing the Python packages into $(VENV)/ (about a minute on a fresh machine)"
	$(PY) -m pip install --disable-pip-version-check -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "setup 3/3: installing anvil and the Solidity compiler into node_modules/ (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(BIN)/ruff check channels adjudicator tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/pytest

test: lint unit

demo: setup
	$(PY) examples/demo.py

bench: setup
	$(PY) benchmarks/run.py

gas: setup
	$(PY) benchmarks/gas.py

compile: setup
	node adjudicator/compile.js

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
