"""scripts/plan.py (issues 12 and 16): sweeps expanded by Hydra's own parser (range, choice, glob, a search
space), each job composed as Hydra composes it, cached median timings, the question before a long CPU launch,
and the summary after a sweep."""

from __future__ import annotations

import json
import math
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
        fast = plan.compose_jobs(jobs)
        for i in (0, 1, len(jobs) // 2, len(jobs) - 1):
            slow = compose("config", overrides=jobs[i])
            assert OmegaConf.to_container(fast[i], resolve=True) == OmegaConf.to_container(slow, resolve=True)
            assert OmegaConf.get_type(fast[i].optimizer) is OmegaConf.get_type(slow.optimizer)
    assert len({records.run_id(records.to_container(c)) for c in fast}) == len(jobs)


# ---- timings --------------------------------------------------------------------------------------------

@pytest.fixture
def load(monkeypatch):
    """Set the 1-minute load average the plan sees on a 2-core machine: ``load(4.5)``."""
    monkeypatch.setattr(plan.os, "cpu_count", lambda: 2)

    def set_load(value: float) -> None:
        monkeypatch.setattr(plan.os, "getloadavg", lambda: (value, value, value))

    set_load(0.3)
    return set_load


@pytest.fixture
def passes(monkeypatch):
    """measure_pass replaced by a stub returning ``passes.seconds`` and recording what it timed."""

    class Passes:
        seconds, timed = 0.25, []

    def fake(cfg, device, *, busy=False):
        Passes.timed.append(plan.describe(cfg))
        Passes.busy.append(busy)
        return Passes.seconds

    Passes.timed, Passes.busy = [], []
    monkeypatch.setattr(plan, "measure_pass", fake)
    return Passes


def test_timings_are_measured_once_and_cached(tmp_path, load, passes):
    cpu = torch.device("cpu")
    jobs = plan.expand("quick/table1", [f"runs_dir={tmp_path}"])
    torch_init = plan.expand("quick/table1_torch_init", [f"runs_dir={tmp_path}"])  # same arithmetic, other init
    cache = tmp_path / "timings.json"
    timings = plan.Timings(cache)
    assert {timings.seconds_per_eval(j.cfg, cpu) for j in jobs + torch_init} == {0.25}
    assert len(passes.timed) == 1  # one model, one input shape, one batch size
    again = plan.Timings(cache)
    assert again.seconds_per_eval(jobs[0].cfg, cpu) == 0.25 and len(passes.timed) == 1 and not again.measured
    key = json.loads(next(iter(json.loads(cache.read_text()))))
    assert key["torch"] == torch.__version__ and key["batch"] == jobs[0].cfg.batch_size and key["model"]["name"]
    with pytest.MonkeyPatch.context() as other:
        other.setattr(torch, "__version__", "0.0-other")  # another torch: measured again
        assert again.seconds_per_eval(jobs[0].cfg, cpu) == 0.25 and len(passes.timed) == 2


def test_a_busy_timing_is_one_threads_cpu_time_named_then_replaced_by_an_idle_one(tmp_path, load, passes):
    """Measured at load 4.5 on 2 cores: timed on one thread by CPU time (``busy=True``), served as is and named;
    served again while the machine is busy; measured again once it is idle, and the idle timing replaces the busy
    one; a busy retime keeps the idle one."""
    cpu, cache = torch.device("cpu"), tmp_path / "timings.json"
    [job, *_] = plan.expand("quick/table1", [f"runs_dir={tmp_path}"])
    load(4.5)
    busy = plan.Timings(cache)
    assert busy.seconds_per_eval(job.cfg, cpu) == 0.25 and passes.busy == [True]
    assert "250.0 ms of one thread's CPU time per pass, at load 4.5 on 2 cores" in busy.busy_note()
    still_busy = plan.Timings(cache)
    assert still_busy.seconds_per_eval(job.cfg, cpu) == 0.25 and len(passes.timed) == 1
    assert still_busy.busy_note() is not None

    load(0.5)
    passes.seconds = 0.1
    idle = plan.Timings(cache)
    assert idle.seconds_per_eval(job.cfg, cpu) == 0.1 and len(passes.timed) == 2 and idle.busy_note() is None
    assert passes.busy == [True, False]
    load(3.0)
    passes.seconds = 0.3
    retimed = plan.Timings(cache, retime=True)  # measured again, busy: the idle timing stays
    assert retimed.seconds_per_eval(job.cfg, cpu) == 0.1 and len(passes.timed) == 3 and retimed.busy_note() is None
    assert plan.Timings(cache).seconds_per_eval(job.cfg, cpu) == 0.1 and len(passes.timed) == 3


def test_a_cached_timing_without_its_load_is_measured_again(tmp_path, load, passes):
    cpu, cache = torch.device("cpu"), tmp_path / "timings.json"
    [job, *_] = plan.expand("quick/table1", [f"runs_dir={tmp_path}"])
    cache.write_text(json.dumps({plan.timing_key(job.cfg, cpu): 0.5}))
    assert plan.Timings(cache).seconds_per_eval(job.cfg, cpu) == 0.25 and len(passes.timed) == 1


def test_a_busy_wall_clock_timing_in_the_cache_is_measured_again(tmp_path, load, passes):
    """A busy timing from before the CPU-time clock (no ``clock``: a wall clock) is never served."""
    cpu, cache = torch.device("cpu"), tmp_path / "timings.json"
    [job, *_] = plan.expand("quick/table1", [f"runs_dir={tmp_path}"])
    cache.write_text(json.dumps({plan.timing_key(job.cfg, cpu): {"seconds": 0.245, "load": 3.0, "cores": 2}}))
    load(3.0)
    assert plan.Timings(cache).seconds_per_eval(job.cfg, cpu) == 0.25 and passes.busy == [True]


def fake_clock(monkeypatch, durations: list[float]):
    """perf_counter for measure_pass: pass i (the warm-up is pass 0) lasts ``durations[i]``; returns a function
    giving the number of passes run so far (each reads the clock twice)."""
    reads: list[None] = []

    def perf_counter() -> float:
        reads.append(None)
        i = (len(reads) - 1) // 2
        return sum(durations[:i]) + (durations[i] if len(reads) % 2 == 0 else 0.0)

    monkeypatch.setattr(plan.time, "perf_counter", perf_counter)
    return lambda: len(reads) // 2


def test_measure_pass_is_a_median_within_a_budget(monkeypatch):
    """Fast passes: a median of :data:`plan.TIMING_PASSES` passes, which one slow pass does not move. Slow passes:
    none started past :data:`plan.TIMING_BUDGET_S`. A model whose warm-up pass alone spends the budget is timed by
    that pass: a few seconds per model, not minutes."""
    monkeypatch.setattr(plan, "TIMING_PASSES", 9)
    monkeypatch.setattr("experiments.models.build_model",  # cheap real passes: the clock is what is tested
                        lambda name, **options: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
    cfg = plan.expand("quick/heatmap", ["runs_dir=/nonexistent", "batch_size=8"])[0].cfg
    cpu = torch.device("cpu")
    passes_run = fake_clock(monkeypatch, [0.05, 2.0] + [0.01] * 100)  # warm-up, one pass slowed by load, then fast
    assert plan.measure_pass(cfg, cpu) == pytest.approx(0.01) and passes_run() == 1 + plan.TIMING_PASSES
    passes_run = fake_clock(monkeypatch, [0.5] + [1.0] * 100)
    assert plan.measure_pass(cfg, cpu) == pytest.approx(1.0)
    assert passes_run() == 1 + math.ceil(plan.TIMING_BUDGET_S - 0.5)
    passes_run = fake_clock(monkeypatch, [plan.TIMING_BUDGET_S * 3] + [1.0] * 10)
    assert plan.measure_pass(cfg, cpu) == pytest.approx(plan.TIMING_BUDGET_S * 3) and passes_run() == 1


def test_a_busy_pass_is_timed_on_one_thread_by_cpu_time(monkeypatch):
    """Waiting for a core is not the pass's time: the busy clock is the process's CPU time, on one thread, and
    the thread count is restored."""
    monkeypatch.setattr("experiments.models.build_model",
                        lambda name, **options: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
    cfg = plan.expand("quick/heatmap", ["runs_dir=/nonexistent", "batch_size=8"])[0].cfg
    threads, seen = torch.get_num_threads(), []
    monkeypatch.setattr(plan.time, "perf_counter", lambda: pytest.fail("a wall clock on a busy CPU"))
    monkeypatch.setattr(plan.time, "process_time", lambda: seen.append(torch.get_num_threads()) or 0.0)
    assert plan.measure_pass(cfg, torch.device("cpu"), busy=True) == 0.0
    assert seen and set(seen) == {1} and torch.get_num_threads() == threads


def test_plan_times_only_the_models_of_the_asked_experiments_and_marks_busy_estimates(tmp_path, load, passes,
                                                                                       capsys, monkeypatch):
    runs = f"runs_dir={tmp_path / 'runs'}"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "idle"))
    assert plan.main(["--device", "cpu", "quick/table1", "quick/heatmap", "--", runs]) == 0
    out, err = capsys.readouterr()
    assert passes.timed == ["mlp (1×28×28→10, batch 256, fp32)"]
    assert "plan: timing mlp (1×28×28→10, batch 256, fp32) on cpu ..." in err
    rows = [line for line in out.splitlines() if line.startswith("| quick/")]
    assert len(rows) == 2 and not any("*" in row for row in rows) and "busy" not in out

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "busy"))
    load(4.0)
    assert plan.main(["--device", "cpu", "quick/table1", "--", runs]) == 0
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if line.startswith("| quick/table1 ")]
    assert row.endswith("* |")
    assert "mlp (1×28×28→10, batch 256, fp32): 250.0 ms of one thread's CPU time per pass, at load 4.0" in out


# ---- the question before a launch ------------------------------------------------------------------------

@pytest.fixture
def no_answers(monkeypatch):
    for var in ("YES", "CI", plan.MAKE_COMMAND_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked without a terminal"))


def test_without_a_terminal_a_launch_within_budget_goes_ahead_and_one_above_names_the_override(
        no_answers, monkeypatch, capsys):
    monkeypatch.setattr(plan.sys.stdin, "isatty", lambda: False)
    cpu = torch.device("cpu")
    plan.confirm_launch(1.5, 84, cpu, max_cpu_hours=2)
    assert "84 pending runs need an estimated 1.50 hours on this CPU, within the budget of 2 hours" in \
        capsys.readouterr().out
    monkeypatch.setenv(plan.MAKE_COMMAND_ENV, "make quick ARGS='epochs=1'")
    with pytest.raises(SystemExit) as refused:
        plan.confirm_launch(4.2, 84, cpu, max_cpu_hours=2)
    assert refused.value.code == plan.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "84 pending runs need an estimated 4.20 hours on this CPU, above the budget of 2 hours" in err
    assert "`make quick ARGS='epochs=1' YES=1`" in err and "`make quick ARGS='epochs=1' MAX_CPU_HOURS=5`" in err
    monkeypatch.delenv(plan.MAKE_COMMAND_ENV)
    with pytest.raises(SystemExit):
        plan.confirm_launch(4.2, 84, cpu, max_cpu_hours=2)
    assert "YES=1 in the environment, or raise the budget: --max-cpu-hours 5" in capsys.readouterr().err
    plan.confirm_launch(500.0, 84, torch.device("cuda"), max_cpu_hours=2)  # not a CPU
    monkeypatch.setenv("YES", "1")
    plan.confirm_launch(5.0, 84, cpu, max_cpu_hours=2)


def test_ci_never_blocks_and_a_terminal_is_asked(no_answers, monkeypatch):
    monkeypatch.setattr(plan.sys.stdin, "isatty", lambda: True)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SystemExit):
        plan.confirm_launch(5.0, 3, torch.device("cpu"), max_cpu_hours=2)
    plan.confirm_launch(1.0, 3, torch.device("cpu"), max_cpu_hours=2)  # within the budget: CI goes ahead
    monkeypatch.delenv("CI")
    for answer, launches in (("y", True), ("", False), ("no", False)):
        monkeypatch.setattr("builtins.input", lambda prompt, a=answer: a)
        if launches:
            plan.confirm_launch(5.0, 3, torch.device("cpu"), max_cpu_hours=2)
        else:
            with pytest.raises(SystemExit):
                plan.confirm_launch(5.0, 3, torch.device("cpu"), max_cpu_hours=2)


def test_the_budget_applies_to_the_estimate_of_the_whole_plan(tmp_path, load, passes, no_answers, monkeypatch,
                                                              capsys):
    """main --confirm: the sum over the experiments, busy timings included, against --max-cpu-hours."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(plan.sys.stdin, "isatty", lambda: False)
    load(5.0)
    argv = ["--device", "cpu", "--confirm", "quick/heatmap", "quick/controls_effective_lr", "--",
            f"runs_dir={tmp_path}"]
    evals = sum(plan.grad_evals(j.cfg) for e in argv[3:5] for j in plan.expand(e, argv[-1:]))
    hours = evals * 0.25 / 3600
    assert plan.main([*argv[:2], "--max-cpu-hours", f"{hours * 1.01}", *argv[2:]]) == 0
    assert f"an estimated {hours:,.2f} hours on this CPU, within the budget" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        plan.main([*argv[:2], "--max-cpu-hours", f"{hours * 0.99}", *argv[2:]])
    assert refused.value.code == plan.EXIT_REFUSED


# ---- cost on a GPU, from the measured throughput ------------------------------------------------------------

GPU = "NVIDIA Test GPU 80GB"


def throughput_row(**changes) -> dict:
    return {"model": "mlp", "input": [1, 28, 28], "batch": 256, "precision": "fp32", "path": "eager", "tf32": False,
            "channels_last": False, "runs_per_gpu": 1, "evals_per_second": 1000.0, **changes}


def write_throughput(path: Path, rows: list[dict], **top) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": GPU, "torch": "2.14.1", "measured_at": "2025-01-01T00:00:00Z",
                                "rows": rows, **top}))
    return path


MEASURED = [throughput_row(), throughput_row(runs_per_gpu=2, evals_per_second=1800.0),
            throughput_row(runs_per_gpu=4, evals_per_second=1500.0),
            throughput_row(model="vgg9", input=[3, 32, 32], evals_per_second=300.0),
            throughput_row(model="vgg9", input=[3, 32, 32], runs_per_gpu=4, evals_per_second=200.0)]


def test_gpu_hours_come_from_the_best_measured_rate_and_name_the_measurement(tmp_path, capsys):
    measured = write_throughput(tmp_path / "gpu" / "throughput.json", MEASURED)
    runs = f"runs_dir={tmp_path / 'runs'}"
    assert plan.main(["--device", "cpu", "--no-timing", "--gpu-throughput", str(measured), "quick/table1",
                      "quick/heatmap", "--", runs]) == 0
    out = capsys.readouterr().out
    assert f"| est. hours on {GPU} (measured) |" in out.splitlines()[0]
    for experiment in ("quick/table1", "quick/heatmap"):
        hours = sum(plan.grad_evals(j.cfg) for j in plan.expand(experiment, [runs])) / 1800.0 / 3600
        [row] = [line for line in out.splitlines() if line.startswith(f"| {experiment} ")]
        assert row.endswith(f"| {hours:.2f} |"), row
    assert f"hours on {GPU}: measured by the GPU check ({measured}, torch 2.14.1, 2025-01-01T00:00:00Z)" in out
    assert "mlp 1×28×28 batch 256 fp32 eager, 2 runs per GPU: 1,800 evaluations/s" in out and "vgg9" not in out

    assert plan.main(["--device", "cpu", "--no-timing", "--gpu-throughput", str(measured), "quick/table1", "--",
                      runs, "batch_size=128"]) == 0
    out = capsys.readouterr().out
    assert "| not measured |" in out and "mlp 1×28×28 batch 128 fp32 eager: not measured" in out


def test_without_a_measurement_the_plan_says_gpu_cost_is_not_measured(tmp_path, capsys):
    assert plan.main(["--device", "cpu", "--no-timing", "--gpu-throughput", str(tmp_path / "none.json"),
                      "quick/table1", "--", f"runs_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "GPU: not measured" in out and "(measured)" not in out


@pytest.mark.parametrize(("change", "message"), [
    ({"rows": [throughput_row(path="graphs")]}, "rows[0].path='graphs' is not allowed; allowed: eager or cuda_graphs"),
    ({"rows": [throughput_row(evals_per_second=0)]}, "rows[0].evals_per_second=0 is not allowed; allowed: a number"),
    ({"rows": [throughput_row(runs_per_gpu=True)]}, "rows[0].runs_per_gpu=True is not allowed"),
    ({"rows": [throughput_row(input=[28, 28])]}, "rows[0].input=[28, 28] is not allowed; allowed: [channels, height"),
    ({"rows": [throughput_row(), {"model": "mlp"}]}, "rows[1].input=None is not allowed"),
    ({"rows": []}, "rows=[] is not allowed; allowed: a non-empty list"),
    ({"device": ""}, "device='' is not allowed; allowed: a non-empty string"),
])
def test_a_malformed_throughput_file_is_refused_before_planning(tmp_path, capsys, change, message):
    path = write_throughput(tmp_path / "throughput.json", **{"rows": MEASURED, **change})
    assert plan.main(["--no-timing", "--gpu-throughput", str(path), "quick/table1", "--",
                      f"runs_dir={tmp_path}"]) == plan.EXIT_PREFLIGHT
    assert f"plan: {path}: {message}" in capsys.readouterr().err


def test_jobs_per_gpu_default_is_the_measured_best_on_that_gpu(tmp_path, monkeypatch):
    """The smallest of the measured settings' best runs per GPU (mlp: 2, vgg9: 1); another GPU or no file: none,
    and then fast_path's default stays; $RBO_JOBS_PER_GPU still wins."""
    from experiments import fast_path

    path = write_throughput(tmp_path / plan.GPU_THROUGHPUT, MEASURED)
    assert plan.measured_jobs_per_gpu(GPU, path) == 1
    assert plan.measured_jobs_per_gpu(GPU, write_throughput(tmp_path / "mlp.json", MEASURED[:3])) == 2
    assert plan.measured_jobs_per_gpu("NVIDIA Other GPU", path) is None
    assert plan.measured_jobs_per_gpu(GPU, tmp_path / "none.json") is None

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(fast_path.JOBS_PER_GPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: GPU)
    write_throughput(tmp_path / plan.GPU_THROUGHPUT, [throughput_row(), throughput_row(runs_per_gpu=4,
                                                                                         evals_per_second=2500.0)])
    assert fast_path.jobs_per_gpu() == 4 != fast_path.DEFAULT_JOBS_PER_GPU and fast_path.parallel_jobs() == 8
    monkeypatch.setenv(fast_path.JOBS_PER_GPU_ENV, "3")
    assert fast_path.jobs_per_gpu() == 3
    monkeypatch.delenv(fast_path.JOBS_PER_GPU_ENV)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA Other GPU")
    assert fast_path.jobs_per_gpu() == fast_path.DEFAULT_JOBS_PER_GPU


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
