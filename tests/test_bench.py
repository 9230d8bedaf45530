"""The benchmark scripts of ``make bench`` run (their timings are printed, never asserted): the trainer-vs-bare-loop
comparison drives the trainer's own epoch, so a change to the trainer that breaks it fails here, not in a user's
``make bench``."""

from __future__ import annotations

import torch

from scripts import bench_trainer


def test_trainer_vs_bare_loop_runs_the_trainers_epoch():
    result = bench_trainer.trainer_vs_bare(torch.device("cpu"), epochs=1, warmup=0)
    assert result["steps"] == 28 and result["examples"] == 7000  # mnist_subset: 7,000 training digits, batch 256
    assert result["trainer_ms"] > 0 and result["bare_ms"] > 0 and len(result["ratios"]) == 1
    print(bench_trainer.trainer_vs_bare_table(result))
