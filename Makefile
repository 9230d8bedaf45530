# rbo-bench: every target installs what it needs into .venv first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install test test-all lint

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with its dev extra (idempotent)

lint: $(STAMP) ## Ruff on the whole tree
	$(VENV)/bin/ruff check .

test: lint ## Ruff, then pytest without the slow tests
	$(VENV)/bin/pytest -m "not slow" -q

test-all: lint ## Every test, slow ones included
	$(VENV)/bin/pytest -q
