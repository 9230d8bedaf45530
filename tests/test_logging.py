"""A run's log reads like a lab notebook outside a terminal too (issue 12, "Silent outside a terminal"): start,
per-epoch and end lines on stdout redirected to a file and in Hydra's train.log; the record names its Hydra
output folder and overrides; warm-up steps are timed apart from ``train_seconds``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import types
from pathlib import Path

from conftest import SMALL

import experiments.trainer as trainer
from experiments import records


def test_log_lines_with_stdout_redirected_to_a_file(small_cfg, runs_dir, tmp_path):
    args = [*SMALL, "optimizer=sgd", "experiment_name=unit/log", f"runs_dir={runs_dir}"]
    out = tmp_path / "job.out"
    with open(out, "w") as stdout:
        subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=tmp_path, stdout=stdout,
                       stderr=subprocess.PIPE, check=True)
    path = records.run_dir(records.to_container(small_cfg("optimizer=sgd", "experiment_name=unit/log")))
    summary = json.loads((path / "summary.json").read_text())
    [job] = json.loads((path / "invocations.json").read_text())
    assert job["overrides"] == args and job["job_name"] == "unit-log"
    expected = [
        rf"start unit/log sgd-synthetic-mlp-s0 \(run {summary['run_id']}\) on cpu; record {path}$",
        r"epoch 1/2 train_loss \d\.\d{4} val_acc \d\.\d{4} test_acc \d\.\d{4} grad_evals 3 elapsed \S+ eta \S+$",
        r"epoch 2/2 train_loss \d\.\d{4} val_acc \d\.\d{4} test_acc \d\.\d{4} grad_evals 6 elapsed \S+ eta \S+$",
        rf"end completed after 2\.00 epochs: test_acc {summary['final']['test_acc']:.4f} "
        rf"val_acc {summary['final']['val_acc']:.4f}; record {path}$",
    ]
    for log in (out, Path(job["output_dir"]) / "train.log"):
        lines = [line.split("] - ", 1)[-1] for line in log.read_text().splitlines() if "[experiments.trainer]" in line]
        assert len(lines) == len(expected) and all(re.match(e, line) for e, line in zip(expected, lines)), (log, lines)


def test_warmup_steps_are_timed_apart(small_cfg, monkeypatch):
    """A clock that advances one unit per gradient evaluation: the first WARMUP_STEPS steps (one evaluation each
    with SGD) land in warmup_seconds, the other steps in train_seconds, evaluation in neither."""
    clock = {"now": 0.0}
    call = trainer.Closure.__call__

    def counted(self, advance=False):
        clock["now"] += 1.0
        return call(self, advance)

    monkeypatch.setattr(trainer.Closure, "__call__", counted)
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"],
                                                               monotonic=time.monotonic))
    run = trainer.Trainer(small_cfg("optimizer=sgd", "batch_size=16", "log_every=50"))  # 2 epochs of 6 steps
    run.run()
    assert (run.counters["warmup_seconds"], run.counters["train_seconds"]) == (trainer.WARMUP_STEPS, 12 - 3)
    assert run.metrics[-1]["train_seconds"] == 9
