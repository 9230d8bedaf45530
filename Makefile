# rbo-bench: every target installs what it needs into .venv first (`make help` lists them).
#   DEVICE=auto|cpu|cuda|cuda:N   where runs train (auto: cuda if available)
#   LAUNCHER=basic|local|slurm    Hydra launcher: sequential, joblib on this machine, or SLURM via submitit
#   ARGS='key=value ...'          extra Hydra overrides for every run, e.g. ARGS='data_dir=/data logger.mode=online'
#   RUNS=runs RESULTS=results     where run records and tables/figures go
#   MAX_CPU_HOURS=2               a CPU launch estimated above this many hours asks first (no terminal, CI: refused)
#   YES=1                         launch without asking
#   EXPERIMENTS='a b'             for `make experiments` and `make plan`: names under conf/experiment
#   SCOPE='a b'                   experiment_names that tables/figures read (default: every conf/experiment one)
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
SCOPE ?=
MAX_CPU_HOURS ?= 2
# pytest-xdist workers of `make test` (auto: one per core)
TEST_WORKERS ?= auto
PLAN_FLAGS ?=
export YES CI
TRAIN := $(PY) -m experiments.train device=$(DEVICE) runs_dir=$(RUNS) hydra/launcher=$(LAUNCHER) $(ARGS)
PLAN := $(PY) -m scripts.plan --device $(DEVICE) --gpu-throughput $(RESULTS)/gpu/throughput.json
# The results pipeline, one pass over the records: the committed evidence (results/records) and RUNS.
RESULTS_CMD = $(PY) -m scripts.results --runs $(RUNS) --out $(RESULTS) $(if $(SCOPE),--experiments $(SCOPE))
IRONING_RECORD := results/records/paper/ironing/record.json
OVERRIDES = -- runs_dir=$(RUNS) $(ARGS)
PAPER := paper/table1 paper/heatmap
REVIEW := review/tuned review/tuned_adamw review/tuned_rbo review/compute_matched review/inner_solver \
          review/inner_solver_gauss_newton review/inner_solver_newton review/loss_scale review/long review/controls \
          review/controls_effective_lr
QUICK := quick/table1 quick/heatmap quick/controls_effective_lr
FASHION := fashion/table1 fashion/controls_effective_lr fashion/heatmap
# In order: a control's measured step needs its reference runs (sgd_effective_lr after rbo and rbo_radius0).
FASHION_CPU := fashion_cpu/table1 fashion_cpu/table1_baselines fashion_cpu/controls_effective_lr fashion_cpu/convergence \
               fashion_cpu/convergence_baselines fashion_cpu/convergence_controls_effective_lr
ZOO_CPU := zoo_cpu/sgd_family zoo_cpu/lion zoo_cpu/adahessian zoo_cpu/rbo
REVIEW_CPU := review_cpu/tuned review_cpu/tuned_adamw review_cpu/tuned_rbo review_cpu/tuned_controls_effective_lr \
              review_cpu/tuned_fashion review_cpu/tuned_fashion_adamw review_cpu/tuned_fashion_rbo \
              review_cpu/tuned_fashion_controls_effective_lr review_cpu/loss_scale review_cpu/loss_scale_controls \
              review_cpu/loss_scale_rbo_rescaled review_cpu/loss_scale_fashion review_cpu/loss_scale_fashion_rbo \
              review_cpu/loss_scale_fashion_controls review_cpu/loss_scale_fashion_rbo_rescaled review_cpu/compute_matched \
              review_cpu/compute_matched_controls_effective_lr review_cpu/compute_matched_fashion \
              review_cpu/compute_matched_fashion_controls_effective_lr review_cpu/inner_solver_sgd review_cpu/inner_solver \
              review_cpu/inner_solver_sgd_fashion review_cpu/inner_solver_newton_fashion review_cpu/inner_solver_fashion \
              review_cpu/inner_solver_gauss_newton review_cpu/inner_solver_newton
# $(call present,LIST): the experiments of LIST that have a conf/experiment file (the others are named and skipped).
present = $(foreach e,$(1),$(if $(wildcard conf/experiment/$(e).yaml),$(e)))
absent = $(filter-out $(call present,$(1)),$(1))
# The variables given on make's command line, repeated in the command the plan names when it refuses a launch.
given = $(strip $(foreach v,DEVICE LAUNCHER RUNS RESULTS SCOPE ARGS,$(if $(filter command line,$(origin $(v))),$(v)='$($(v))')))
# $(call launch,LIST): `make experiments` on the experiments of LIST that exist.
launch = $(if $(call absent,$(1)),@echo ">>> skipped (no conf/experiment file yet): $(call absent,$(1))")

# $(call sweep,EXPERIMENT): launch its multirun unless every run is finished; a failed sweep does not stop the target.
define sweep
	@$(PLAN) --has-pending $(1) $(OVERRIDES); rc=$$?; \
	if [ $$rc = 0 ]; then echo ">>> $(1)"; \
		$(TRAIN) experiment=$(1) || echo ">>> $(1): some runs did not finish; going on (summary at the end)"; \
	elif [ $$rc = 1 ]; then echo ">>> $(1): every run is finished, nothing to launch"; \
	else echo ">>> $(1): could not be planned (above); going on"; fi

endef

.PHONY: help install lint test test-all experiments quick reproduce review fashion fashion-cpu review-cpu zoo-cpu plan \
	tables figures ironing evidence bench clean

help: ## List the targets and their variables (target names in colour in a terminal)
	@if [ -t 1 ]; then on=$$'\033[36m' off=$$'\033[0m'; fi; grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-11s%s %s\n", on, $$1, off, $$2}'
	@grep -hE '^#   ' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[bench,dev,zoo]'
# the wheel ships rbo and baselines alone; the suite (experiments, scripts) runs from this checkout, put on the path
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "rbo_bench_checkout.pth").write_text("$(CURDIR)\n")'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with the suite's extras: bench, dev, zoo (once; again only if pyproject.toml changes)

lint: $(STAMP) ## Ruff on the whole tree
	$(VENV)/bin/ruff check .

test: lint ## Ruff, then every test but the slow ones (what CI runs), one pytest worker per core
	$(VENV)/bin/pytest -m "not slow" -q -n $(TEST_WORKERS)

test-all: lint ## Every test, slow ones included
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS)

SLURM_CLUSTER := scripts/slurm/local_cluster.sh
.PHONY: slurm-up slurm-down test-slurm

slurm-up: ## A one-node SLURM on this machine for hydra/launcher=slurm (as root, installs slurm-wlm and munge)
	$(SLURM_CLUSTER) up

slurm-down: ## Cancel the local SLURM's jobs and stop exactly the daemons slurm-up started
	$(SLURM_CLUSTER) down

test-slurm: $(STAMP) ## The sweep tests on a real SLURM: slurm-up, the slurm tests, slurm-down (even if they fail)
	@was_up=$$($(SLURM_CLUSTER) status >/dev/null && echo yes); status=0; \
	$(SLURM_CLUSTER) up && $(VENV)/bin/pytest -m slurm -q tests/test_slurm_cluster.py || status=1; \
	[ -n "$$was_up" ] || $(SLURM_CLUSTER) down || status=1; exit $$status

plan: $(STAMP) ## Pre-flight, runs, finished, cost of the rest on DEVICE: of EXPERIMENTS='a b' (timed), else of all (counts)
	$(PLAN) $(or $(EXPERIMENTS),--no-timing $(call present,$(PAPER) $(REVIEW) $(QUICK) $(FASHION) $(FASHION_CPU) \
		$(REVIEW_CPU))) $(OVERRIDES)

experiments: export RBO_MAKE_COMMAND = make $(or $(MAKE_TARGET),experiments EXPERIMENTS='$(EXPERIMENTS)')$(if $(given), $(given))
experiments: $(STAMP) ## EXPERIMENTS='a b': pre-flight, plan, ask, each sweep (a failure does not stop the rest), tables, figures, summary
	$(PLAN) --fetch --confirm --max-cpu-hours $(MAX_CPU_HOURS) $(PLAN_FLAGS) $(EXPERIMENTS) $(OVERRIDES)
	$(foreach e,$(EXPERIMENTS),$(call sweep,$(e)))
	@status=0; $(RESULTS_CMD) tables figures || status=1; $(PLAN) --summary $(EXPERIMENTS) $(OVERRIDES) || status=1; \
	exit $$status

quick: ## The whole pipeline at CPU scale on the real mnist_subset digits (minutes on 2 cores)
	$(call launch,$(QUICK))
	@$(MAKE) --no-print-directory experiments MAKE_TARGET=$@ EXPERIMENTS="$(call present,$(QUICK))"

reproduce: ## The paper: Table 1 and the heat map at full scale, then tables and figures into results/
	$(call launch,$(PAPER))
	@$(MAKE) --no-print-directory experiments MAKE_TARGET=$@ EXPERIMENTS="$(call present,$(PAPER))" PLAN_FLAGS=--pending

review: ## What the reviewers asked (tuned, compute-matched, inner solver, loss scale, long, controls)
	$(call launch,$(REVIEW))
	@$(MAKE) --no-print-directory experiments MAKE_TARGET=$@ EXPERIMENTS="$(call present,$(REVIEW))"

fashion: ## Table 1, the effective-lr control and the heat map on Fashion-MNIST
	$(call launch,$(FASHION))
	@$(MAKE) --no-print-directory experiments MAKE_TARGET=$@ EXPERIMENTS="$(call present,$(FASHION))"

fashion-cpu: ## Fashion-MNIST at CPU scale: Table 1, the effective-lr control, 5 epochs for the convergence claims
	$(call launch,$(FASHION_CPU))
	@$(MAKE) --no-print-directory experiments MAKE_TARGET=$@ EXPERIMENTS="$(call present,$(FASHION_CPU))"

review-cpu: ## The reviewers' questions at CPU scale: tuned, compute-matched, inner solver, loss scale
	$(call launch,$(REVIEW_CPU))
	@$(MAKE) --no-print-directory experiments MAKE_TARGET=$@ EXPERIMENTS="$(call present,$(REVIEW_CPU))"

zoo-cpu: $(STAMP) ## Third-party optimizers (the zoo extra) beside SAM and RBO, Fashion-MNIST / MLP, CPU
	$(call launch,$(ZOO_CPU))
	@$(MAKE) --no-print-directory experiments MAKE_TARGET=$@ EXPERIMENTS="$(call present,$(ZOO_CPU))"

# `make tables figures` reads the records once: the tables' pass draws the figures too.
tables: $(STAMP) $(IRONING_RECORD) ## Tables, claims.md and index from results/records (committed) and RUNS
	$(RESULTS_CMD) tables $(filter figures,$(MAKECMDGOALS))

figures: $(STAMP) $(IRONING_RECORD) ## Curves, heat maps, cost and the ironing figure into results/
	$(if $(filter tables,$(MAKECMDGOALS)),@echo ">>> figures: drawn in the tables' pass above",$(RESULTS_CMD) figures)

$(IRONING_RECORD): | $(STAMP)
	$(PY) -m experiments.ironing --out $@

ironing: $(STAMP) ## Record the 1-D experiments again (exact ball, RBO, the authors' demo): results/records/paper/ironing
	$(PY) -m experiments.ironing --out $(IRONING_RECORD)

evidence: $(STAMP) ## Commit RUNS' finished, launched records into results/records (config, summary, metrics)
	$(PY) -m scripts.evidence --runs $(RUNS)

bench: $(STAMP) ## Side-by-side timings: optimizer step cost (RBO vs K x SGD) and trainer vs a bare loop
	$(PY) -m scripts.bench.optimizers --device $(DEVICE)
	$(PY) -m scripts.bench.trainer --device $(DEVICE)

clean: ## Remove Hydra's outputs/ and multirun/ logs and caches (never runs/ or results/)
	rm -rf outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
