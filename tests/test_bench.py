"""The benchmark scripts of ``make bench`` and the GPU check (``scripts/bench/``) run; their timings are printed,
never asserted. What is asserted is what makes a timing mean what it says: the trainer-vs-bare-loop comparison
drives the trainer's own epoch, both sides of the RBO / (K · SGD) ratio spend K evaluations, and the GPU check's
command line and throughput file are what ``scripts/plan.py`` reads."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scripts import plan
from scripts.bench import gpu_check, optimizers, trainer

ROOT = Path(__file__).resolve().parents[1]


def test_trainer_vs_bare_loop_runs_the_trainers_epoch():
    result = trainer.trainer_vs_bare(torch.device("cpu"), epochs=1, warmup=0)
    assert result["steps"] == 28 and result["examples"] == 7000  # mnist_subset: 7,000 training digits, batch 256
    assert result["trainer_ms"] > 0 and result["bare_ms"] > 0 and len(result["ratios"]) == 1
    print(trainer.trainer_vs_bare_table(result))


def test_one_rbo_step_is_timed_against_k_sgd_steps_of_as_many_evaluations():
    rows = optimizers.step_costs(torch.device("cpu"), pairs=1, k_values=(1, 3))
    assert [r["k"] for r in rows] == [1, 3]
    for r in rows:
        assert r["sgd_evals"] == r["rbo_evals"] == r["k"]
        assert r["sgd_ms"] > 0 and r["rbo_ms"] > 0 and r["ratio"] == r["rbo_ms"] / r["sgd_ms"]
    print(optimizers.step_cost_table(rows))


def test_step_costs_refuses_no_pairs():
    with pytest.raises(ValueError, match=r"pairs=0: the number of timed pairs must be an integer >= 1"):
        optimizers.step_costs(torch.device("cpu"), pairs=0)


# ---- the GPU check, without a GPU ---------------------------------------------------------------------------

def test_gpu_check_command_line_defaults():
    args = gpu_check.parse_args([])
    assert args.device == torch.device("cuda") and args.jobs == (1, 2, 4, 8) and not args.smoke
    assert args.seconds == 4.0 and args.budget == 330.0 and args.out is None


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "1,0,4"], r"invalid --jobs='1,0,4': allowed: comma-separated integers >= 1"),
    (["--jobs", "two"], r"invalid --jobs='two'"),
    (["--seconds", "0"], r"invalid --seconds=0.0: allowed: a number of seconds > 0"),
    (["--budget", "-1"], r"invalid --budget=-1.0: allowed: a number of seconds >= 0"),
    (["--device", "gpu"], r"invalid --device='gpu': allowed: cuda, cuda:N or cpu"),
])
def test_gpu_check_refuses_bad_options_before_any_work(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.parse_args(argv)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_gpu_check_runs_as_a_file_in_a_checkout_that_is_not_installed(tmp_path):
    """``python scripts/bench/gpu_check.py`` where the suite is not installed (a GPU machine given the checkout): the
    script puts the repository on the path itself. The editable install's import finder is removed, and the
    script started from elsewhere, to stand for that machine."""
    code = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
            "getattr(f, '__module__', '')]; sys.argv = [sys.argv[1], '--help']; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "scripts" / "bench" / "gpu_check.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "--jobs" in result.stdout and "--out" in result.stdout


def _measurement(model, channels, size, graphs, **fields) -> dict:
    return {"model": model, "in_channels": channels, "image_size": size, "batch_size": 256, "precision": "fp32",
            "cuda_graphs": graphs, "tf32": False, "channels_last": False, **fields}


def test_throughput_file_is_what_the_plan_reads(tmp_path):
    """(h)'s aggregate rows first; a single-run row of (f) or (g) only for a setting (h) did not measure alone."""
    results = {
        "concurrent": [_measurement("mlp", 1, 28, True, jobs_per_gpu=n, evals_per_s=rate, evals_per_s_per_job=[])
                       for n, rate in ((1, 900.0), (2, 1500.0))],
        "per_eval": [_measurement("mlp", 1, 28, True, seconds_per_eval=1 / 800),  # (h) measured it with one run
                     _measurement("resnet6", 1, 28, False, seconds_per_eval=1 / 250),
                     _measurement("vgg9", 3, 32, True, tf32=True, seconds_per_eval=1 / 500)],
    }
    rows = gpu_check.throughput_rows(results)
    assert [(r["model"], r["input"], r["path"], r["tf32"], r["runs_per_gpu"], r["evals_per_second"]) for r in rows] == [
        ("mlp", [1, 28, 28], "cuda_graphs", False, 1, 900.0), ("mlp", [1, 28, 28], "cuda_graphs", False, 2, 1500.0),
        ("resnet6", [1, 28, 28], "eager", False, 1, 250.0), ("vgg9", [3, 32, 32], "cuda_graphs", True, 1, 500.0)]
    path = tmp_path / "gpu" / "throughput.json"
    gpu_check.write_throughput(path, "NVIDIA H100 80GB HBM3", rows)
    read = plan.read_gpu_throughput(path)  # the plan's own check of the format
    assert read["rows"] == rows and read["device"] == "NVIDIA H100 80GB HBM3" and read["torch"] == torch.__version__
    measured_at = datetime.datetime.fromisoformat(read["measured_at"])
    assert measured_at.utcoffset() == datetime.timedelta(0)
    assert sorted(p.name for p in path.parent.iterdir()) == ["throughput.json"]  # no temporary file left


@pytest.mark.slow
def test_gpu_check_worker_measures_an_aggregate_rate_on_cpu():
    """(h)'s protocol end to end: one worker process started as a file, timed over a window, on the CPU."""
    row = gpu_check.concurrent_rate(torch.device("cpu"), "mlp", "mnist", 1, graphs=False, seconds=0.2, smoke=True)
    assert row["jobs_per_gpu"] == 1 and row["evals_per_s"] > 0 and len(row["evals_per_s_per_job"]) == 1
    assert gpu_check.throughput_rows({"concurrent": [row], "per_eval": []})[0]["batch"] == 8
