# rbo-bench: every target installs what it needs into .venv first (`make help` lists them).
#   DEVICE=auto|cpu|cuda|cuda:N   where runs train (auto: cuda if available)
#   LAUNCHER=basic|local|slurm    Hydra launcher: sequential, joblib on this machine, or SLURM via submitit
#   ARGS='key=value ...'          extra Hydra overrides for every run, e.g. ARGS='data_dir=/data logger.mode=online'
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVICE ?= auto
LAUNCHER ?= basic
ARGS ?=
RUNS ?= runs
RESULTS ?= results
TRAIN := $(PY) -m experiments.train device=$(DEVICE) runs_dir=$(RUNS) hydra/launcher=$(LAUNCHER) $(ARGS)
PAPER := paper/table1 paper/heatmap
REVIEW := review/tuned review/tuned_adamw review/compute_matched review/inner_solver \
          review/inner_solver_gauss_newton review/loss_scale review/long review/controls
QUICK := quick/table1 quick/heatmap

# $(call sweep,EXPERIMENT): launch the experiment's multirun unless every one of its runs is finished.
define sweep
	@if $(PY) -m scripts.plan --has-pending $(1) -- runs_dir=$(RUNS) $(ARGS); then \
		echo ">>> $(1)"; $(TRAIN) experiment=$(1); \
	else echo ">>> $(1): every run is finished, nothing to launch"; fi

endef

.PHONY: help install lint test test-all quick reproduce review plan tables figures bench clean

help: ## List the targets and their variables
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'
	@grep -hE '^#   ' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with its dev extra (once; again only if pyproject.toml changes)

lint: $(STAMP) ## Ruff on the whole tree
	$(VENV)/bin/ruff check .

test: lint ## Ruff, then every test but the slow ones (what CI runs)
	$(VENV)/bin/pytest -m "not slow" -q

test-all: lint ## Every test, slow ones included
	$(VENV)/bin/pytest -q

plan: $(STAMP) ## Print every experiment's runs, what is finished, and the cost of the rest on DEVICE
	$(PY) -m scripts.plan --device $(DEVICE) $(PAPER) $(REVIEW) review/controls_effective_lr $(QUICK) -- runs_dir=$(RUNS) $(ARGS)

quick: $(STAMP) ## The whole pipeline at CPU scale on the real mnist_subset digits (minutes on 2 cores)
	$(PY) -m scripts.plan --device $(DEVICE) $(QUICK) quick/controls_effective_lr -- runs_dir=$(RUNS) $(ARGS)
	$(foreach e,$(QUICK) quick/controls_effective_lr,$(call sweep,$(e)))
	$(MAKE) --no-print-directory tables figures

reproduce: $(STAMP) ## The paper: Table 1 and the heat map at full scale, then tables and figures into results/
	$(PY) -m scripts.plan --pending --device $(DEVICE) $(PAPER) -- runs_dir=$(RUNS) $(ARGS)
	$(foreach e,$(PAPER),$(call sweep,$(e)))
	$(MAKE) --no-print-directory tables figures

review: $(STAMP) ## What the reviewers asked (tuned, compute-matched, inner solver, loss scale, long, controls)
	$(PY) -m scripts.plan --device $(DEVICE) $(REVIEW) review/controls_effective_lr -- runs_dir=$(RUNS) $(ARGS)
	$(foreach e,$(REVIEW) review/controls_effective_lr,$(call sweep,$(e)))
	$(MAKE) --no-print-directory tables figures

tables: $(STAMP) ## Aggregate every run record under RUNS into results/ tables and results/claims.md
	$(PY) -m scripts.aggregate --runs $(RUNS) --out $(RESULTS)

figures: $(STAMP) ## Curves, heat maps, cost and the ironing figure into results/
	$(PY) -m scripts.plot --runs $(RUNS) --out $(RESULTS)

bench: $(STAMP) ## Side-by-side timings: optimizer step cost (RBO vs K x SGD) and trainer vs a bare loop
	$(PY) -m scripts.bench_optimizers --device $(DEVICE)
	$(PY) -m scripts.bench_trainer --device $(DEVICE)

clean: ## Remove Hydra's outputs/ and multirun/ logs and caches (never runs/ or results/)
	rm -rf outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
