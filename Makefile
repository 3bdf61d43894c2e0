# SPMA: `make demo` and `make test` install what they need into .venv, then run.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spma-installed
PYTEST_ARGS ?=

.PHONY: all demo test test-tansu lint bench install format clean

all: test

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "SPMA needs Python 3.11 or newer, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# Reinstall whenever the project's metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/spma demo

# The whole suite on the preferred broker (Apache Kafka from Maven Central where Java 17 and Maven
# are at hand), then the Tansu lane: the tests marked tansu_lane again on the embedded broker.
# (pytest's exit 5, no test selected, is not a failure of the lane when PYTEST_ARGS narrows it.)
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-tansu

test-tansu: $(STAMP)
	SPMA_TEST_BROKER=tansu $(BIN)/python -m pytest -q -m tansu_lane $(PYTEST_ARGS); \
	  status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache reports .cache
