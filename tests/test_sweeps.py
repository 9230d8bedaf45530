"""Sweeps (issue 6, "Tests"): every experiment config composes and builds; two-job multiruns through the joblib and
submitit_local launchers on ``synthetic`` end to end into tables and figures; re-running a finished multirun trains
nothing and ``scripts.plan`` counts it as finished; the launcher presets ``hydra/launcher=local|slurm`` compose.

The end-to-end sweeps run a tiny experiment file written into a temporary folder and put on Hydra's search path
with ``hydra.searchpath=[file://...]`` (the same override for ``python -m experiments.train`` and for
``scripts.plan.expand``), so conf/ stays untouched.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import slurm_submission
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

import scripts.figures as plot
from experiments import records
from experiments.controls import resolve_effective_lr
from experiments.models import build_model
from experiments.optim import build_optimizer
from experiments.train import run
from experiments.trainer import validate
from scripts import plan, results
from scripts.records import load_records

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
EXPERIMENTS = sorted(p.relative_to(CONF / "experiment").with_suffix("").as_posix()
                     for p in (CONF / "experiment").glob("**/*.yaml"))

# ---- helpers ----------------------------------------------------------------------------------------------


def input_shape(cfg) -> tuple[int, int, int]:
    """(channels, image size, classes) of the run's dataset, without loading it."""
    return plan.shape(cfg)[:3]


MODELS: dict = {}  # built models, shared by every test of this file: (name, options, shape) -> model


def check_job(cfg) -> None:
    """What ``experiments.train`` does before loading data: resolve sgd_effective_lr's lr (none of its reference
    runs exist in the test's runs_dir: the clear error, then a number), validate, build the model (once per
    model and input shape, with one forward pass on a random batch) and the optimizer."""
    if cfg.optimizer.name == "sgd_effective_lr" and cfg.optimizer.lr is None:
        with pytest.raises(ValueError, match=r"optimizer\.lr=null: sgd_effective_lr takes its lr from completed"):
            resolve_effective_lr(cfg)
        cfg.optimizer.lr = 0.01
    resolve_effective_lr(cfg)  # a no-op now: lr is a number
    validate(cfg)
    records.run_id(records.to_container(cfg))  # resolves: no missing value, no broken interpolation
    channels, size, classes = input_shape(cfg)
    options = {k: v for k, v in cfg.model.items() if k != "name"}
    key = (cfg.model.name, json.dumps(OmegaConf.to_container(cfg.model), sort_keys=True), channels, size, classes)
    if key not in MODELS:
        torch.manual_seed(0)
        model = build_model(cfg.model.name, in_channels=channels, num_classes=classes, image_size=size, **options)
        with torch.no_grad():
            out = model.eval()(torch.rand(2, channels, size, size))
        assert out.shape == (2, classes), f"{cfg.model.name} on {cfg.dataset.name}: output {tuple(out.shape)}"
        MODELS[key] = model
    optimizer = build_optimizer(cfg.optimizer, MODELS[key], seed=cfg.seed)
    assert len(optimizer.param_groups) >= 1


def assert_applied(actual, expected, swept: set[str], path: str = "") -> None:
    """Every value the experiment file sets reaches the composed config (unless a sweep axis sets it)."""
    if path in swept:
        return
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert_applied(actual[key], value, swept, f"{path}.{key}" if path else key)
    else:
        assert actual == expected, f"{path}: the experiment file sets {expected!r}, the job composes {actual!r}"


def diagonal(jobs: list[list[str]]) -> list[list[str]]:
    """A few jobs of a cartesian sweep in which every value of every axis appears at least once (job i takes the
    i-th value of each axis, cycling), starting with the sweep's first job."""
    axes = [list(dict.fromkeys(job[p] for job in jobs)) for p in range(len(jobs[0]))]
    return [[axis[i % len(axis)] for axis in axes] for i in range(max(map(len, axes)))]


def experiment_file_values(experiment: str) -> dict:
    values = OmegaConf.to_container(OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml"))
    return {k: v for k, v in values.items() if k not in ("defaults", "hydra")}


# ---- 1. every experiment composes and instantiates ---------------------------------------------------------

def test_experiments_found():
    assert {"paper/table1", "paper/heatmap"} <= set(EXPERIMENTS)


def _check_experiment(experiment: str, tmp_path: Path, every_job: bool) -> None:
    extra = [f"runs_dir={tmp_path / 'runs'}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        jobs = plan.sweep_overrides(experiment, extra)
        assert jobs, f"{experiment}: hydra.sweeper.params expands to no job"
        assert all(len(job) == len(jobs[0]) for job in jobs)
        file_values = experiment_file_values(experiment)
        assert "experiment_name" in file_values, f"{experiment}: no experiment_name (the record folder)"
        assert f"experiment={experiment}" in jobs[0] and jobs[0][-len(extra):] == extra
        swept = {o.split("=", 1)[0].lstrip("+~") for o in jobs[0][:-len(extra)]} - {"experiment"}
        seen_pairs, run_ids = set(), {}
        for overrides in (jobs if every_job else diagonal(jobs)):
            cfg = compose("config", overrides=overrides)
            assert_applied(OmegaConf.to_container(cfg, resolve=True), file_values, swept)
            if every_job:  # distinct jobs of one file write distinct records
                rid = records.run_id(records.to_container(cfg))
                assert rid not in run_ids, f"{experiment}: {overrides} and {run_ids[rid]} share run_id {rid}"
                run_ids[rid] = overrides
                pair = (cfg.optimizer.name, cfg.dataset.name, cfg.model.name)
                if pair in seen_pairs:  # build model and optimizer once per optimizer/row pair
                    if cfg.optimizer.lr is not None:
                        validate(cfg)
                    continue
                seen_pairs.add(pair)
            check_job(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_builds(experiment, tmp_path):
    """Fast: the jobs of :func:`diagonal` (every value of every sweep axis at least once)."""
    _check_experiment(experiment, tmp_path, every_job=False)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_every_job_composes(experiment, tmp_path):
    """Every job of every experiment composes and validates, distinct jobs have distinct run_ids, and each
    optimizer/dataset/model combination builds (about 0.2 s per composed job: minutes in all)."""
    _check_experiment(experiment, tmp_path, every_job=True)


# ---- 2-4. multiruns end to end --------------------------------------------------------------------------

TINY = """\
# @package _global_
# Two jobs (sgd, rbo) on 256 + 64 synthetic MNIST-shaped examples: one epoch of 2 steps each.
experiment_name: sweeps/tiny
epochs: 1
batch_size: 128
eval_batch_size: 128
log_every: 1
progress: false
defaults:
  - override /dataset: synthetic
  - override /model: mlp
  - override /logger: none
dataset:
  synthetic_size: [320, 64]
  val_size: 64
hydra:
  mode: MULTIRUN
  sweeper:
    params:
      optimizer: sgd,rbo
      seed: 0
"""
# Phase two of sweeps/tiny (as quick/controls_effective_lr after quick/table1): SGD at RBO's measured step.
TINY_EFFECTIVE_LR = TINY.replace("  - override /logger: none\n",
                                 "  - override /logger: none\n  - override /optimizer: sgd_effective_lr\n") \
    .replace("      optimizer: sgd,rbo\n", "")


def cli(*overrides: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> str:
    """``python -m experiments.train <overrides>``; returns stdout + stderr, fails the test on a non-zero exit."""
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "experiments.train", *overrides], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def summaries(runs: Path) -> dict[str, dict]:
    """run_id -> summary.json of every record under ``runs``."""
    return {p.parent.name: json.loads(p.read_text()) for p in runs.glob("*/*/*/summary.json")}


def snapshot(runs: Path) -> dict[str, int]:
    """Every file under ``runs`` with its modification time (ns)."""
    return {str(p.relative_to(runs)): p.stat().st_mtime_ns for p in sorted(runs.rglob("*")) if p.is_file()}


def read_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def aggregate_and_plot(runs: Path, out: Path, monkeypatch, experiment: str) -> list[set[str]]:
    """``python -m scripts.results tables figures --experiments <experiment>`` (its CLI entry point, in this
    process, no committed evidence); returns the optimizers drawn in each curves figure."""
    drawn: list[set[str]] = []
    original = plot.curves_figure

    def spy(agg, groups, title):
        drawn.append(set(groups["optimizer"]))
        return original(agg, groups, title)

    monkeypatch.setattr(plot, "curves_figure", spy)
    assert results.main(["tables", "figures", "--runs", str(runs), "--out", str(out), "--evidence",
                         str(out / "no-evidence"), "--experiments", experiment]) == 0
    return drawn


def assert_results(out: Path, runs: Path, experiment: str, run_ids: set[str], groups: dict[str, int],
                   figures: tuple[str, ...] = ("curves_synthetic_mlp", "cost_synthetic_mlp"),
                   tables: tuple[str, ...] = ("table", "equal_compute")) -> None:
    """``tables`` (Markdown, CSV, LaTeX) and ``figures`` (PNG, PDF) of ``experiment``, holding every run."""
    folder = out / experiment
    for name in tables:
        for ext in ("md", "csv", "tex"):
            assert (folder / f"{name}.{ext}").stat().st_size > 0, f"{folder}/{name}.{ext}"
    table = read_rows(folder / "table.csv")
    assert {row["optimizer"]: int(float(row["n"])) for row in table} == groups
    read = load_records(runs).select([experiment]).runs
    assert set(read["run_id"]) == run_ids and set(read["status"]) == {"completed"}
    for stem in figures:
        for ext in ("png", "pdf"):
            assert (folder / "figures" / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``sweeps/tiny`` (sgd, rbo) run once through ``hydra/launcher=joblib`` with two workers."""
    root = tmp_path_factory.mktemp("sweeps")
    search = root / "conf_extra"
    (search / "experiment" / "sweeps").mkdir(parents=True)
    (search / "experiment" / "sweeps" / "tiny.yaml").write_text(TINY)
    (search / "experiment" / "sweeps" / "tiny_effective_lr.yaml").write_text(TINY_EFFECTIVE_LR)
    common = [f"hydra.searchpath=[file://{search}]", f"runs_dir={root / 'runs'}"]
    output = cli(*common, "experiment=sweeps/tiny", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                 f"hydra.sweep.dir={root / 'multirun'}", cwd=root)
    return {"root": root, "runs": root / "runs", "common": common, "output": output}


def test_joblib_multirun_end_to_end(tiny, tmp_path, monkeypatch):
    assert "Joblib.Parallel(n_jobs=2" in tiny["output"]
    found = summaries(tiny["runs"])
    assert sorted(s["optimizer"] for s in found.values()) == ["rbo", "sgd"]
    for s in found.values():
        assert s["status"] == "completed" and s["experiment"] == "sweeps/tiny" and s["epochs_completed"] == 1.0
        assert s["dataset"] == "synthetic" and s["cost"]["grad_evals"] > 0
    assert all((tiny["root"] / "multirun" / str(i) / ".hydra" / "overrides.yaml").is_file() for i in (0, 1))
    drawn = aggregate_and_plot(tiny["runs"], tmp_path / "results", monkeypatch, "sweeps/tiny")
    assert {"sgd", "rbo"} in drawn
    assert_results(tmp_path / "results", tiny["runs"], "sweeps/tiny", set(found), {"sgd": 1, "rbo": 1})


def test_rerun_of_finished_multirun_trains_nothing(tiny):
    """The same sweep again, through the ``local`` preset (joblib, n_jobs from $RBO_JOBS): every job prints
    ``skip:``, no record file is touched, and ``scripts.plan`` counts both jobs as finished."""
    before = snapshot(tiny["runs"])
    output = cli(*tiny["common"], "experiment=sweeps/tiny", "hydra/launcher=local",
                 f"hydra.sweep.dir={tiny['root'] / 'multirun_again'}", cwd=tiny["root"], env={"RBO_JOBS": "1"})
    assert "Joblib.Parallel(n_jobs=1" in output
    skipped = [line for line in output.splitlines() if line.startswith("skip: ")]
    assert sorted(line.split()[1] for line in skipped) == sorted(
        str(tiny["runs"] / "sweeps" / "tiny" / rid) for rid in summaries(tiny["runs"]))
    assert all(line.split()[2] == "completed" for line in skipped)  # "(code changed ...)" may follow
    assert snapshot(tiny["runs"]) == before

    jobs = plan.expand("sweeps/tiny", tiny["common"])
    assert len(jobs) == 2 and [job for job in jobs if job.pending] == []
    assert {job.status for job in jobs} == {"completed"}
    # The same count with a fresh runs_dir: both pending.
    fresh = plan.expand("sweeps/tiny", [*tiny["common"][:1], f"runs_dir={tiny['root'] / 'empty'}"])
    assert [job.pending for job in fresh] == [True, True]


def test_plan_effective_lr_without_references_is_pending(tiny):
    """sgd_effective_lr with no reference runs yet: plan reports the job pending instead of failing."""
    jobs = plan.expand("sweeps/tiny_effective_lr", [*tiny["common"][:1], f"runs_dir={tiny['root'] / 'empty'}"])
    assert [job.pending for job in jobs] == [True]


@pytest.fixture
def finished_effective_lr(tiny, tmp_path) -> list[str]:
    """sweeps/tiny's rbo record (linked) and the completed sgd_effective_lr control trained from it, through
    experiments.train's task function; returns the overrides that select them."""
    runs = tmp_path / "runs"
    reference = next(p.parent for p in tiny["runs"].glob("sweeps/tiny/*/summary.json")
                     if json.loads(p.read_text())["optimizer"] == "rbo")
    (runs / "sweeps" / "tiny").mkdir(parents=True)
    os.symlink(reference, runs / "sweeps" / "tiny" / reference.name)
    common = [tiny["common"][0], f"runs_dir={runs}"]
    [job] = plan.expand("sweeps/tiny_effective_lr", common)
    assert run(job.cfg)["status"] == "completed"
    assert job.cfg.optimizer.lr > 0  # resolved from the rbo record
    assert run(plan.expand("sweeps/tiny_effective_lr", common)[0].cfg) is None  # a rerun skips it
    return common


def test_plan_counts_finished_effective_lr_run(finished_effective_lr):
    [job] = plan.expand("sweeps/tiny_effective_lr", finished_effective_lr)
    assert job.status == "completed"


def test_submitit_local_multirun_end_to_end(tmp_path, monkeypatch):
    """Two jobs (seeds 0, 1) as ``python -m experiments.train -m ...`` through ``hydra/launcher=submitit_local``
    (each job a separate process started by submitit)."""
    runs, sweep = tmp_path / "runs", tmp_path / "multirun"
    output = cli("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "optimizer=sgd",
                 "seed=0,1", "dataset=synthetic", "model=mlp", "epochs=1", "logger=none", "progress=false",
                 "batch_size=128", "eval_batch_size=128", "dataset.synthetic_size=[320,64]", "dataset.val_size=64",
                 "experiment_name=sweeps/submitit", f"runs_dir={runs}", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert "Submitit 'local' sweep output dir" in output
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2  # both jobs ran under submitit
    found = summaries(runs)
    assert sorted(s["seed"] for s in found.values()) == [0, 1]
    assert all(s["status"] == "completed" and s["optimizer"] == "sgd" for s in found.values())
    drawn = aggregate_and_plot(runs, tmp_path / "results", monkeypatch, "sweeps/submitit")
    assert {"sgd"} in drawn
    assert_results(tmp_path / "results", runs, "sweeps/submitit", set(found), {"sgd": 2},
                   figures=("curves_synthetic_mlp",), tables=("table",))  # one optimizer: no cost bars, nothing
    assert not (tmp_path / "results" / "sweeps/submitit" / "equal_compute.md").exists()  # to compare at equal compute


@pytest.mark.slow  # nine Python processes (plan, sweeps, tables, figures, summary): about a minute on an idle machine
def test_make_target_keeps_going_after_a_failed_job_and_names_it(tmp_path):
    """``make experiments`` over two experiments: the first has one job that fails at run time (a batch larger
    than its training split), the second is fine. The other job of the first and the second experiment still
    finish, tables are built from them, the summary names the failed run and its error file, and make fails."""
    search = tmp_path / "conf_extra"
    (search / "experiment" / "sweeps").mkdir(parents=True)
    bad = TINY.replace("sweeps/tiny", "sweeps/bad").replace("      optimizer: sgd,rbo\n",
                                                             "      optimizer: sgd\n      batch_size: 128,9999\n")
    (search / "experiment" / "sweeps" / "bad.yaml").write_text(bad)
    (search / "experiment" / "sweeps" / "good.yaml").write_text(
        TINY.replace("sweeps/tiny", "sweeps/good").replace("optimizer: sgd,rbo", "optimizer: sgd"))
    runs, results = tmp_path / "runs", tmp_path / "results"
    args = f"hydra.searchpath=[file://{search}] hydra.sweep.dir={tmp_path / 'multirun'}"
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("YES", None)
    proc = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "experiments",
                           "EXPERIMENTS=sweeps/bad sweeps/good", "SCOPE=sweeps/bad sweeps/good", f"RUNS={runs}",
                           f"RESULTS={results}", "DEVICE=cpu",
                           f"ARGS={args}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-4000:]
    found = {(s["experiment"], s["status"]) for s in summaries(runs).values()}
    assert found == {("sweeps/bad", "completed"), ("sweeps/bad", "failed"), ("sweeps/good", "completed")}, output
    [failed] = [p for p in runs.glob("sweeps/bad/*/summary.json") if json.loads(p.read_text())["status"] == "failed"]
    assert ">>> sweeps/bad: some runs did not finish; going on" in output and ">>> sweeps/good" in output
    assert f"UNFINISHED sweeps/bad: 1 of 2 runs did not finish; 1 failed, errors in {failed}" in output
    assert "summary: 1 of 2 experiments finished every run" in output
    assert (results / "sweeps" / "good" / "table.md").is_file()  # tables from what finished


# ---- 5. launcher presets --------------------------------------------------------------------------------

def compose_hydra(*overrides: str, sweep_dir: Path = Path("multirun")):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=["hydra.job.name=train", f"hydra.sweep.dir={sweep_dir}", *overrides],
                       return_hydra_config=True)


def test_slurm_preset(tmp_path, monkeypatch):
    """``hydra/launcher=slurm`` composes over submitit_slurm with our resources, overrides apply, and submitit turns
    it into a valid sbatch script (no cluster needed: the srun check is bypassed, nothing is submitted)."""
    cfg = compose_hydra("experiment=paper/table1", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                        sweep_dir=tmp_path)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    assert (launcher.gpus_per_node, launcher.cpus_per_task, launcher.timeout_min, launcher.mem_gb,
            launcher.array_parallelism, launcher.max_num_timeout, launcher.partition) == (1, 8, 240, 32, 16, 3, "gpu")
    assert compose_hydra("hydra/launcher=slurm").hydra.launcher.partition is None
    assert "row" in cfg.hydra.sweeper.params  # the experiment's sweep is untouched

    # What SlurmLauncher.launch does with these parameters, up to the sbatch file.
    executor, sbatch = slurm_submission(launcher, monkeypatch)
    assert executor._executor.max_num_timeout == 3  # requeued on timeout; the run resumes from its checkpoint
    assert f"#SBATCH --output={tmp_path}/.submitit/%j/" in sbatch
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--time=240", "--mem=32GB"):
        assert f"#SBATCH {line}\n" in sbatch


def test_local_preset(monkeypatch):
    """``hydra/launcher=local`` is joblib with n_jobs from $RBO_JOBS (default 2), an int after resolution."""
    monkeypatch.delenv("RBO_JOBS", raising=False)
    cfg = compose_hydra("hydra/launcher=local")
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert instantiate(cfg.hydra.launcher).joblib["n_jobs"] == 2
    monkeypatch.setenv("RBO_JOBS", "5")
    n_jobs = instantiate(compose_hydra("hydra/launcher=local").hydra.launcher).joblib["n_jobs"]
    assert n_jobs == 5 and isinstance(n_jobs, int)
    assert compose_hydra("hydra/launcher=local", "hydra.launcher.n_jobs=3").hydra.launcher.n_jobs == 3


def test_plan_cli_passes_overrides_after_double_dash(monkeypatch, capsys, tmp_path):
    """`make` calls `scripts.plan EXPERIMENTS -- OVERRIDES`: the overrides reach every job, not the experiment list."""
    def evaluations(*overrides):
        assert plan.main(["--no-timing", "quick/heatmap", "--", f"runs_dir={tmp_path}", *overrides]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| quick/heatmap"))
        return int(row.split("|")[5].replace(",", ""))
    assert evaluations("epochs=2") == 2 * evaluations()
    assert plan.main(["--has-pending", "quick/heatmap", "--", f"runs_dir={tmp_path}"]) == 0


@pytest.mark.parametrize("overrides, per_batch, per_step", [
    (["optimizer=sgd"], 1, 1), (["optimizer=sam"], 2, 2), (["optimizer=entropy_sgd"], 20, 20),
    (["optimizer=entropy_sgd", "optimizer.fresh_batches=true"], 1, 20), (["optimizer=rbo"], 100, 100),
    (["optimizer=sgd_k_steps"], 100, 100)])
def test_plan_counts_the_evaluations_each_optimizer_spends(overrides, per_batch, per_step):
    """Every epoch's evaluations; under a cap, the last whole step within it (the trainer takes no step past it)."""
    from conftest import compose_config

    cfg = compose_config("dataset=mnist_subset", "epochs=3", *overrides)  # 7,000 training digits: 28 batches
    assert plan.batches_per_epoch(cfg) == 28
    assert plan.grad_evals(cfg) == 3 * 28 * per_batch
    capped = compose_config("dataset=mnist_subset", "epochs=3", "max_sgd_epochs=2.5", *overrides)  # 70 evaluations
    assert plan.grad_evals(capped) == min(3 * 28 * per_batch, 70 // per_step * per_step)
