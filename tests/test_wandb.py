"""W&B offline, read back from its run files (issue 12, "W&B"): identity, names, tags, prefixes, the trigger, no NaN
in the summary; a killed and resumed run is one W&B run with every row once; WANDB_MODE is honoured."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import pytest
import torch
from conftest import SMALL, kill_at_first_checkpoint

import experiments.trainer as trainer
from experiments import records
from experiments.train import run
from experiments.wandb_logger import _records, offline_history, offline_runs

WANDB = ("optimizer=sgd", "logger=wandb", "log_every=1", "experiment_name=unit/wandb")


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)


def record_of(cfg) -> Path:
    return records.run_dir(records.to_container(cfg))


def rows_of(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def run_record(wandb_file: Path):
    """The run record (identity: id, name, group, tags) of an offline ``.wandb`` file; None when the file holds
    none (a job SIGKILLed before W&B's service wrote it)."""
    return next((r.run for r in _records(wandb_file) if r.WhichOneof("record_type") == "run"), None)


def summary_values(wandb_file: Path) -> dict:
    out = {}
    for r in _records(wandb_file):
        if r.WhichOneof("record_type") == "summary":
            out.update({"/".join(u.nested_key) or u.key: json.loads(u.value_json) for u in r.summary.update})
    return out


def test_offline_run_identity_series_and_summary(small_cfg):
    cfg = small_cfg(*WANDB, "budget_sgd_epochs=[1.5]", "logger.tags=[unit]")
    summary = run(cfg)
    path = record_of(cfg)
    [wandb_file] = offline_runs(path / ".wandb", summary["run_id"])
    identity = run_record(wandb_file)
    assert identity.run_id == summary["run_id"] and identity.display_name == "sgd-synthetic-mlp-s0"
    assert identity.run_group == "unit/wandb"
    assert set(identity.tags) == {"sgd", "synthetic", "mlp", "unit/wandb", "unit"}

    history = offline_history(path / ".wandb", summary["run_id"])
    evaluations = [h for h in history if "trigger" in h]
    metrics, steps = rows_of(path / "metrics.csv"), rows_of(path / "steps.csv")
    triggers = [r["trigger"] for r in metrics]
    assert [h["trigger"] for h in evaluations] == triggers == ["init", "epoch", "budget", "epoch"]
    assert [h["test/acc"] for h in evaluations] == [float(r["test_acc"]) for r in metrics]
    assert [h["val/loss"] for h in evaluations] == [float(r["val_loss"]) for r in metrics]
    assert "train/loss" not in evaluations[0] and evaluations[1]["train/loss"] == float(metrics[1]["train_loss"])
    assert [h["steps/loss"] for h in history if "steps/loss" in h] == [float(r["loss"]) for r in steps]
    assert not any(k.startswith("epoch/") for h in history for k in h)

    saved = summary_values(wandb_file)
    assert saved["status"] == "completed" and saved["final/test_acc"] == summary["final"]["test_acc"]
    assert all(math.isfinite(v) for v in saved.values() if isinstance(v, float)), saved


def test_killed_and_resumed_run_is_one_wandb_run_with_every_row_once(small_cfg, runs_dir, tmp_path):
    """SIGKILL to the whole job (its W&B service too, as SLURM does) once a checkpoint exists, then the same run
    again: every offline folder belongs to the one run id, and the rows of metrics.csv and steps.csv each appear
    exactly once, in order, with W&B steps 0, 1, 2, ..."""
    overrides = (*WANDB, "epochs=30", "budget_sgd_epochs=[1.5]")
    cfg = small_cfg(*overrides)
    path = record_of(cfg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    # a few more rows logged after the checkpoint (after=0.05): the resumed run computes them again
    killed = kill_at_first_checkpoint([*SMALL, *overrides, f"runs_dir={runs_dir}"], path, tmp_path, env=env, after=0.05)
    assert killed < 30

    summary = run(cfg)
    assert summary["status"] == "completed"
    files = offline_runs(path / ".wandb", summary["run_id"])
    written = [r for r in map(run_record, files) if r is not None]  # the killed job's may be empty
    assert len(files) == 2 and written and {r.run_id for r in written} == {summary["run_id"]}
    history = offline_history(path / ".wandb", summary["run_id"])
    metrics, steps = rows_of(path / "metrics.csv"), rows_of(path / "steps.csv")
    assert [h["_step"] for h in history] == list(range(len(metrics) + len(steps)))
    assert [h["step"] for h in history if "trigger" in h] == [int(r["step"]) for r in metrics]
    assert [h["steps/loss"] for h in history if "steps/loss" in h] == [float(r["loss"]) for r in steps]


def test_failed_and_resumed_run_logs_no_row_twice(small_cfg, monkeypatch):
    """A run that fails inside epoch 3 has logged rows past its last checkpoint (and its W&B files are complete):
    the resumed job skips every row the W&B run already holds, the replayed history and the recomputed steps."""
    call = trainer.Closure.__call__
    calls = {"n": 0}

    def crash_in_epoch_3(self, advance=False):
        calls["n"] += 1
        if calls["n"] > 2 * 3 + 1:  # SGD: one evaluation per step, 3 steps per epoch
            raise RuntimeError("boom")
        return call(self, advance)

    monkeypatch.setattr(trainer.Closure, "__call__", crash_in_epoch_3)
    cfg = small_cfg(*WANDB, "epochs=4")
    with pytest.raises(RuntimeError, match="boom"):
        run(cfg)
    path = record_of(cfg)
    run_id = json.loads((path / "summary.json").read_text())["run_id"]
    before = offline_history(path / ".wandb", run_id)
    checkpoint = torch.load(path / "checkpoint.pt", weights_only=True)
    assert before[-1]["step"] == 7 and checkpoint["steps"][-1]["step"] == 6  # a row the checkpoint does not hold

    monkeypatch.setattr(trainer.Closure, "__call__", call)
    assert run(cfg)["status"] == "completed"
    history = offline_history(path / ".wandb", run_id)
    metrics, steps = rows_of(path / "metrics.csv"), rows_of(path / "steps.csv")
    assert history[:len(before)] == before
    assert [h["_step"] for h in history] == list(range(len(metrics) + len(steps)))
    assert [h["steps/loss"] for h in history if "steps/loss" in h] == [float(r["loss"]) for r in steps]


def test_wandb_mode_env_is_honoured_unless_the_config_says(small_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = small_cfg(*WANDB, "epochs=1")
    assert run(cfg)["status"] == "completed"
    assert not (record_of(cfg) / ".wandb").exists()  # disabled: no run written

    cfg = small_cfg(*WANDB, "epochs=1", "logger.mode=offline", "seed=1")  # an explicit logger.mode wins
    summary = run(cfg)
    assert len(offline_runs(record_of(cfg) / ".wandb", summary["run_id"])) == 1


def test_unknown_wandb_mode_env_fails_before_any_work(small_cfg, runs_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "cloud")
    with pytest.raises(ValueError, match="WANDB_MODE='cloud' is unknown; allowed: online, offline, disabled"):
        run(small_cfg(*WANDB))
    assert not runs_dir.exists()


def test_offline_runs_of_jobs_started_in_the_same_second_are_all_found_in_order(tmp_path):
    """W&B names a second job started within the same second ``offline-run-<time>-<id>-1`` (then -2, ..., -10):
    those folders are this run's too, ordered by time then number; another run's folder is not."""
    names = ["offline-run-20261129_063019-abc", "offline-run-20261129_063019-abc-10",
             "offline-run-20261129_063019-abc-2", "offline-run-20261129_063019-abc-1",
             "offline-run-20261129_063020-abc", "offline-run-20261129_063019-abcd"]
    for name in names:
        run_id = name.rsplit("-", 1)[-1] if name.endswith("abcd") else "abc"
        (tmp_path / "wandb" / name).mkdir(parents=True)
        (tmp_path / "wandb" / name / f"run-{run_id}.wandb").write_bytes(b"")
    found = [p.parent.name for p in offline_runs(tmp_path, "abc")]
    assert found == [names[0], names[3], names[2], names[1], names[4]]
