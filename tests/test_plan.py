"""scripts/plan.py (issues 12 and 16): sweeps expanded by Hydra's own parser (range, choice, glob, a search
space), each job composed as Hydra composes it, cached median timings, the question before a long CPU launch,
and the summary after a sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments import records
from scripts import plan

SEARCH = """\
# @package _global_
experiment_name: sweeps/search
defaults:
  - override /dataset: synthetic
  - override /model: mlp
  - override /optimizer: sgd
hydra:
  sweeper:
    params:
      optimizer.lr: tag(log, interval(0.001, 0.1))
      optimizer.momentum: choice(0.5, 0.9)
      seed: int(interval(0, 10))
"""
SEARCH_SWEEPER = "_target_: my.search.Sweeper\nn_trials: 4\nparams: null\n"


@pytest.fixture(scope="module")
def extra_conf(tmp_path_factory) -> Path:
    """A search path holding an experiment with a search space and a search sweeper (n_trials, as Optuna's)."""
    root = tmp_path_factory.mktemp("conf_extra")
    (root / "experiment" / "sweeps").mkdir(parents=True)
    (root / "experiment" / "sweeps" / "search.yaml").write_text(SEARCH)
    (root / "hydra" / "sweeper").mkdir(parents=True)
    (root / "hydra" / "sweeper" / "search.yaml").write_text(SEARCH_SWEEPER)
    return root


def jobs_of(experiment: str, *extra: str) -> list[list[str]]:
    with initialize_config_dir(config_dir=str(plan.CONF), version_base="1.3"):
        return plan.sweep_overrides(experiment, list(extra))


def values(jobs: list[list[str]], key: str) -> list[str]:
    return [next(o.split("=", 1)[1] for o in job if o.startswith(f"{key}=")) for job in jobs]


def test_range_choice_and_comma_lists_cross_as_hydra_does(tmp_path):
    """quick/heatmap sweeps 3 radii x 3 lrs x seed 0; a command-line axis replaces the file's (as in Hydra)."""
    base = jobs_of("quick/heatmap", f"runs_dir={tmp_path}")
    assert len(base) == 9 and set(values(base, "seed")) == {"0"}
    ranged = jobs_of("quick/heatmap", "seed=range(0,3)", f"runs_dir={tmp_path}")
    assert len(ranged) == 27 and sorted(set(values(ranged, "seed"))) == ["0", "1", "2"]
    chosen = jobs_of("quick/heatmap", "seed=choice(4,7)", "epochs=2,3", f"runs_dir={tmp_path}")
    assert len(chosen) == 9 * 2 * 2 and sorted(set(values(chosen, "epochs"))) == ["2", "3"]
    assert all(job[-1] == f"runs_dir={tmp_path}" and "experiment=quick/heatmap" in job for job in chosen)


def test_glob_over_a_config_group():
    jobs = jobs_of("quick/table1", "optimizer=glob(rbo*)")
    names = values(jobs, "optimizer")
    assert {"rbo", "rbo_gauss_newton", "rbo_radius0"} <= set(names) and all(n.startswith("rbo") for n in names)
    assert len(jobs) == len(set(names)) * len(set(values(jobs, "seed")))


def test_interval_needs_a_search_sweeper(extra_conf):
    search = f"hydra.searchpath=[file://{extra_conf}]"
    with pytest.raises(ValueError, match=r"tag\(log, interval\(0.001, 0.1\)\).*search sweeper with n_trials"):
        jobs_of("sweeps/search", search)
    jobs = jobs_of("sweeps/search", search, "hydra/sweeper=search")
    assert len(jobs) == 4  # n_trials, each at a representative point: the log midpoint, the first choice
    assert set(values(jobs, "optimizer.lr")) == {repr(0.01)} and set(values(jobs, "optimizer.momentum")) == {"0.5"}
    assert set(values(jobs, "seed")) == {"5"}  # int interval: an int
    assert jobs[0][-2:] == [search, "hydra/sweeper=search"]  # hydra overrides reach every job, unswept


def test_each_job_composes_as_hydra_composes_it(tmp_path):
    """plan composes once per set of group choices and applies the value overrides itself: the same configs."""
    with initialize_config_dir(config_dir=str(plan.CONF), version_base="1.3"):
        jobs = plan.sweep_overrides("review/loss_scale", ["seed=range(0,2)", f"runs_dir={tmp_path}"])
        fast = plan._compose_all(jobs)
        for i in (0, 1, len(jobs) // 2, len(jobs) - 1):
            slow = compose("config", overrides=jobs[i])
            assert OmegaConf.to_container(fast[i], resolve=True) == OmegaConf.to_container(slow, resolve=True)
            assert OmegaConf.get_type(fast[i].optimizer) is OmegaConf.get_type(slow.optimizer)
    assert len({records.run_id(records.to_container(c)) for c in fast}) == len(jobs)


# ---- timings --------------------------------------------------------------------------------------------

def test_timings_are_measured_once_and_cached(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(plan, "measure_pass", lambda cfg, device: calls.append(cfg.seed) or 0.25)
    cpu = torch.device("cpu")
    jobs = plan.expand("quick/table1", [f"runs_dir={tmp_path}"])
    cache = tmp_path / "timings.json"
    timings = plan.Timings(cache)
    assert {timings.seconds_per_eval(j.cfg, cpu) for j in jobs} == {0.25}
    assert len(calls) == 1  # one model, one input shape, one batch size
    again = plan.Timings(cache)
    assert again.seconds_per_eval(jobs[0].cfg, cpu) == 0.25 and len(calls) == 1 and again.measured == 0
    key = json.loads(next(iter(json.loads(cache.read_text()))))
    assert key["torch"] == torch.__version__ and key["batch"] == jobs[0].cfg.batch_size and key["model"]["name"]
    monkeypatch.setattr(torch, "__version__", "0.0-other")  # another torch: measured again
    assert again.seconds_per_eval(jobs[0].cfg, cpu) == 0.25 and len(calls) == 2


def test_a_timing_taken_on_a_busy_cpu_is_flagged_and_retime_measures_again(tmp_path, monkeypatch):
    """A CPU timing measured with a load average at or above the core count makes the plan say its hours are upper
    bounds; one from an idle machine does not; --retime ignores the cache; a legacy float entry still reads."""
    calls = []
    monkeypatch.setattr(plan, "measure_pass", lambda cfg, device: calls.append(1) or 0.25)
    monkeypatch.setattr(plan.os, "cpu_count", lambda: 2)
    cpu, cache = torch.device("cpu"), tmp_path / "timings.json"
    [job, *_] = plan.expand("quick/table1", [f"runs_dir={tmp_path}"])
    monkeypatch.setattr(plan.os, "getloadavg", lambda: (4.5, 4.0, 3.0))
    busy = plan.Timings(cache)
    busy.seconds_per_eval(job.cfg, cpu)
    assert "load average 4.5 on 2 cores" in busy.busy_note()

    monkeypatch.setattr(plan.os, "getloadavg", lambda: (0.3, 0.2, 0.1))
    assert plan.Timings(cache).seconds_per_eval(job.cfg, cpu) == 0.25 and len(calls) == 1
    idle = plan.Timings(cache, retime=True)
    idle.seconds_per_eval(job.cfg, cpu)
    assert len(calls) == 2 and idle.busy_note() is None
    after = plan.Timings(cache)  # the idle timing replaced the busy one in the cache
    after.seconds_per_eval(job.cfg, cpu)
    assert after.busy_note() is None and len(calls) == 2

    cache.write_text(json.dumps({plan.timing_key(job.cfg, cpu): 0.5}))
    legacy = plan.Timings(cache)
    assert legacy.seconds_per_eval(job.cfg, cpu) == 0.5 and legacy.busy_note() is None and len(calls) == 2


def test_measure_pass_is_a_median_of_several_passes(monkeypatch):
    """The median survives one pass slowed down by other load (a single sample would not)."""
    ticks = iter([0.0, 1.0] * plan.TIMING_WARMUP + [0.0, 100.0] + [0.0, 0.01] * 100)  # pass 1 after warm-up: slow
    monkeypatch.setattr(plan.time, "perf_counter", lambda: next(ticks))
    monkeypatch.setattr(plan, "TIMING_REPEATS", (5, 5))
    cfg = plan.expand("quick/table1", ["runs_dir=/nonexistent"])[0].cfg
    assert plan.measure_pass(cfg, torch.device("cpu")) == pytest.approx(0.01)


# ---- the question before a launch ------------------------------------------------------------------------

@pytest.fixture
def no_answers(monkeypatch):
    for var in ("YES", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked without a terminal"))


def test_long_cpu_launch_without_a_terminal_is_refused(no_answers, monkeypatch, capsys):
    monkeypatch.setattr(plan.sys.stdin, "isatty", lambda: False)
    cpu = torch.device("cpu")
    with pytest.raises(SystemExit) as refused:
        plan.confirm_launch(5.0, 84, cpu, max_cpu_hours=2)
    assert refused.value.code == plan.EXIT_REFUSED
    assert "84 pending runs need an estimated 5.0 hours" in capsys.readouterr().err
    plan.confirm_launch(1.5, 84, cpu, max_cpu_hours=2)  # under the threshold: no question
    plan.confirm_launch(500.0, 84, torch.device("cuda"), max_cpu_hours=2)  # not a CPU
    monkeypatch.setenv("YES", "1")
    plan.confirm_launch(5.0, 84, cpu, max_cpu_hours=2)


def test_ci_never_blocks_and_a_terminal_is_asked(no_answers, monkeypatch):
    monkeypatch.setattr(plan.sys.stdin, "isatty", lambda: True)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SystemExit):
        plan.confirm_launch(5.0, 3, torch.device("cpu"), max_cpu_hours=2)
    monkeypatch.delenv("CI")
    for answer, launches in (("y", True), ("", False), ("no", False)):
        monkeypatch.setattr("builtins.input", lambda prompt, a=answer: a)
        if launches:
            plan.confirm_launch(5.0, 3, torch.device("cpu"), max_cpu_hours=2)
        else:
            with pytest.raises(SystemExit):
                plan.confirm_launch(5.0, 3, torch.device("cpu"), max_cpu_hours=2)


# ---- the summary after a sweep ---------------------------------------------------------------------------

def test_summary_names_unfinished_runs_and_where_their_errors_are(tmp_path, capsys):
    extra = [f"runs_dir={tmp_path}"]
    jobs = plan.expand("quick/heatmap", extra)
    for job, status in zip(jobs, ["completed"] * 6 + ["diverged", "failed", "running"]):
        records.write_json(job.record / "summary.json", {"status": status})
    assert plan.unfinished_report("quick/heatmap", plan.expand("quick/heatmap", extra)) == (
        f"quick/heatmap: 2 of 9 runs did not finish; 1 failed, errors in {jobs[7].record / 'summary.json'}; "
        f"1 stopped while running (killed?), records {jobs[8].record}")
    assert plan.main(["--summary", "quick/heatmap", "--", *extra]) == 1
    assert "UNFINISHED quick/heatmap: 2 of 9" in capsys.readouterr().out
    for job in jobs[7:]:
        records.write_json(job.record / "summary.json", {"status": "completed"})
    assert plan.main(["--summary", "quick/heatmap", "--", *extra]) == 0
    assert "1 of 1 experiments finished every run" in capsys.readouterr().out
