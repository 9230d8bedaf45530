"""A run's log reads like a lab notebook outside a terminal too (issue 12, "Silent outside a terminal"; issue 25,
"Logs at a glance"): start, progress, per-epoch and end lines on stdout redirected to a file and in Hydra's
train.log; progress at least every minute or every tenth of an epoch (a fake clock: no wall-clock asserts); the end
line's wall time, evaluations and W&B files; the record names its Hydra output folder and overrides; warm-up steps
are timed apart from ``train_seconds``."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
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
    timing = r"grad_evals {} elapsed \S+ eta \S+$"
    progress = r"epoch {}/2 {}% \({}/3 batches\) train_loss \d\.\d{{4}} train_acc \d\.\d{{4}} " + timing
    epoch = r"epoch {}/2 train_loss \d\.\d{{4}} val_acc \d\.\d{{4}} test_acc \d\.\d{{4}} " + timing
    expected = [
        rf"start unit/log sgd-synthetic-mlp-s0 \(run {summary['run_id']}\) on cpu; record {path}$",
        progress.format(1, 33, 1, 1), progress.format(1, 66, 2, 2), epoch.format(1, 3),
        progress.format(2, 33, 1, 4), progress.format(2, 66, 2, 5), epoch.format(2, 6),
        rf"end completed after 2\.00 epochs: test_acc {summary['final']['test_acc']:.4f} "
        rf"val_acc {summary['final']['val_acc']:.4f}; wall \S+, grad_evals 6; W&B not logged \(logger=none\); "
        rf"record {path}$",
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


def progress_batches(small_cfg, monkeypatch, caplog, seconds_per_eval: float, *overrides: str) -> list[tuple]:
    """``(epoch, batch)`` of every progress line of an SGD run whose clock advances ``seconds_per_eval`` per
    gradient evaluation (and stands still otherwise): 96 training examples in batches of 4, 24 per epoch."""
    clock = {"now": 0.0}
    call = trainer.Closure.__call__

    def timed(self, *args, **kwargs):
        clock["now"] += seconds_per_eval
        return call(self, *args, **kwargs)

    monkeypatch.setattr(trainer.Closure, "__call__", timed)
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"],
                                                               monotonic=lambda: clock["now"]))
    caplog.set_level(logging.INFO, logger="experiments.trainer")
    trainer.Trainer(small_cfg("optimizer=sgd", "batch_size=4", "log_every=1000", *overrides)).run()
    pattern = re.compile(r"epoch (\d+)/\d+ \d+% \((\d+)/24 batches\)")
    return [tuple(map(int, m.groups())) for r in caplog.records if (m := pattern.match(r.getMessage()))]


def test_progress_every_tenth_of_an_epoch_on_a_fast_machine(small_cfg, monkeypatch, caplog):
    """No time passes: a line at each tenth of the epoch's 24 batches (2.4, 4.8, ... rounded up), in every epoch;
    none at the last batch (the epoch line follows)."""
    tenths = [3, 5, 8, 10, 12, 15, 17, 20, 22]
    assert progress_batches(small_cfg, monkeypatch, caplog, 0.0) == [(e, b) for e in (1, 2) for b in tenths]


def test_progress_every_minute_on_a_slow_machine(small_cfg, monkeypatch, caplog):
    """61 seconds per evaluation: a minute passes at every batch, so every batch but the last has its line."""
    assert progress_batches(small_cfg, monkeypatch, caplog, 61.0, "epochs=1") == [(1, b) for b in range(1, 24)]


@pytest.mark.parametrize("seconds_per_eval", [7.0, 25.0])
def test_progress_never_waits_past_a_minute_or_a_tenth(small_cfg, monkeypatch, caplog, seconds_per_eval):
    """Between two lines (the epoch's start and end included) no more than a minute plus one step passes, and no
    more than ceil(24 / 10) = 3 batches; and no line comes without one of the two reasons."""
    lines = [(1, 0), *progress_batches(small_cfg, monkeypatch, caplog, seconds_per_eval, "epochs=1"), (1, 24)]
    batches = [b for _, b in lines]
    for before, after in zip(batches, batches[1:]):
        assert after - before <= 3 and (after - before) * seconds_per_eval <= 60 + seconds_per_eval, batches
        assert after * 10 // 24 > before * 10 // 24 or (after - before) * seconds_per_eval >= 60, batches


def test_end_line_says_where_the_wandb_files_went(small_cfg, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    run = trainer.Trainer(small_cfg("logger=wandb", "logger.mode=offline"))
    assert run._wandb_destination() == f"W&B offline in {run.dir / '.wandb'} (upload: wandb sync {run.dir / '.wandb'})"
    job = run.dir / ".wandb" / "wandb" / f"offline-run-20250101_000000-{run.run_id}"
    job.mkdir(parents=True)
    (job / f"run-{run.run_id}.wandb").write_bytes(b"")
    assert run._wandb_destination() == f"W&B offline in {job} (upload: wandb sync {job})"
    online = trainer.Trainer(small_cfg("logger=wandb", "logger.mode=online", "logger.project=p"))
    assert online._wandb_destination() == (f"W&B online: run {online.run_id} of project p (local files in "
                                           f"{online.dir / '.wandb'})")
    assert trainer.Trainer(small_cfg("logger=wandb", "logger.mode=disabled"))._wandb_destination() == \
        "W&B not logged (logger.mode=disabled)"
    assert trainer.Trainer(small_cfg())._wandb_destination() == "W&B not logged (logger=none)"
