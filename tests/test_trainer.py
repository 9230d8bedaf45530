"""The trainer end to end on CPU (issue 5, "Tests"): records, cost accounting, determinism, resume after a kill,
skip, divergence, failure, early validation, a real-digit accuracy floor, W&B offline."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, SMALL, compose_config, kill_at_first_checkpoint
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

import experiments.trainer as trainer
from experiments import records
from experiments.train import run

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 3  # SMALL: 96 training examples, batch 32
RECORD = ("config.yaml", "metrics.csv", "steps.csv", "summary.json", "checkpoint.pt")


def read_csv(path: Path, drop=records.WALL_CLOCK_COLUMNS) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def record_of(cfg) -> Path:
    return records.run_dir(records.to_container(cfg))


def comparable(summary: dict) -> dict:
    """A summary without wall-clock values, timestamps and the code version (other agents edit the tree)."""
    cost = {k: v for k, v in summary["cost"].items()
            if k not in ("train_seconds", "warmup_seconds", "seconds_per_epoch")}
    drop = ("cost", "started_at", "finished_at", "git_commit", "source_sha256")
    return {**{k: v for k, v in summary.items() if k not in drop}, "cost": cost}


# ---- end to end, per optimizer ---------------------------------------------------------------------------

EVALS_PER_STEP = {"sgd": 1, "sgd_momentum": 1, "adamw": 1, "sam": 2, "asam": 2, "entropy_sgd": 2, "rbo": 2,
                  "rbo_gauss_newton": 2}


@pytest.mark.parametrize("name", EVALS_PER_STEP)
def test_end_to_end_record_per_optimizer(small_cfg, name):
    cfg = small_cfg(f"optimizer={name}")
    summary = run(cfg)
    path = record_of(cfg)
    assert all((path / f).is_file() for f in RECORD)
    assert summary == json.loads((path / "summary.json").read_text())  # what was returned is what was saved
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2.0
    assert set(summary) == {"run_id", "experiment", "status", "epochs", "epochs_completed", "optimizer", "dataset",
                            "model", "seed", "hyper", "final", "cost", "diagnostics", "error", "diverged_at_epoch",
                            "versions", "git_commit", "device", "hardware", "source_sha256", "data_fingerprint",
                            "started_at", "finished_at"}
    assert summary["run_id"] == path.name and path.parent.name == "default"
    assert summary["hyper"]["name"] == name and summary["optimizer"] == name

    metrics = read_csv(path / "metrics.csv", drop=())
    assert [r["trigger"] for r in metrics] == ["init", "epoch", "epoch"]
    assert list(metrics[0])[:14] == list(records.METRICS_COLUMNS)
    assert [float(r["epoch"]) for r in metrics] == [0.0, 1.0, 2.0]
    assert math.isnan(float(metrics[0]["train_loss"])) and 0 <= float(metrics[-1]["train_acc"]) <= 1
    assert all(0 <= float(r[k]) <= 1 for r in metrics for k in ("val_acc", "test_acc"))

    cost, steps = summary["cost"], 2 * STEPS_PER_EPOCH
    per_step = EVALS_PER_STEP[name]
    if name == "rbo_gauss_newton":  # stops at its tolerance or after proj_steps evaluations
        assert steps <= cost["grad_evals"] <= steps * per_step
    else:
        assert cost["grad_evals"] == steps * per_step and cost["grad_evals_per_step"] == per_step
    assert int(metrics[-1]["grad_evals"]) == cost["grad_evals"] and int(metrics[-1]["step"]) == steps
    assert cost["examples"] == 2 * 96
    log_rows = read_csv(path / "steps.csv")
    assert [int(r["step"]) for r in log_rows] == [2, 4, 6]
    assert all(float(r["diag_grad_norm"]) > 0 for r in log_rows)
    is_rbo = name.startswith("rbo")
    assert cost["diag_evals"] == (3 if is_rbo else 0)  # measure_contact at each log step
    if is_rbo:
        assert {"diag_contact_centre_distance", "diag_step_norm"} <= set(log_rows[0])
        assert "diag_effective_step" in metrics[-1] and "step_norm" in summary["diagnostics"]

    state = torch.load(path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["run_id"] == path.name and len(state["metrics"]) == 3


def test_budget_rows_and_grad_eval_cap(small_cfg):
    """Budget rows at the last point at or below k × batches/epoch evaluations (0.5 epoch = 1.5 evaluations: after
    1 step); training stops at max_grad_evals."""
    cfg = small_cfg("optimizer=sgd", "epochs=4", "budget_sgd_epochs=[2,0.5]", "max_grad_evals=7")
    summary = run(cfg)
    metrics = read_csv(record_of(cfg) / "metrics.csv")
    got = [(r["trigger"], int(r["grad_evals"]), r["budget_sgd_epochs"]) for r in metrics]
    assert got == [("init", 0, "nan"), ("budget", 1, "0.5"), ("epoch", 3, "nan"), ("budget", 6, "2.0"),
                   ("epoch", 6, "nan"), ("epoch", 7, "nan")]
    assert [float(r["epoch"]) for r in metrics] == pytest.approx([0, 1 / 3, 1, 2, 2, 7 / 3])
    assert metrics[3]["test_loss"] == metrics[4]["test_loss"]  # same point, same evaluation
    assert summary["status"] == "completed" and summary["epochs_completed"] == pytest.approx(7 / 3)
    assert summary["cost"]["grad_evals"] == 7


def test_entropy_sgd_fresh_batches_advance_through_the_epoch(small_cfg):
    cfg = small_cfg("optimizer=entropy_sgd", "optimizer.fresh_batches=true", "epochs=1")
    summary = run(cfg)
    # 3 minibatches, L = 2: step 1 takes batches 1-2, step 2 takes batch 3 and stays on it (none left).
    assert summary["cost"] == summary["cost"] | {"grad_evals": 4, "examples": 96, "grad_evals_per_step": 2.0}


def test_bf16_and_cosine_schedule(small_cfg):
    cfg = small_cfg("optimizer=sgd", "precision=bf16", "scheduler=cosine")
    assert run(cfg)["status"] == "completed"
    lrs = [float(r["lr"]) for r in read_csv(record_of(cfg) / "metrics.csv")]
    assert lrs[0] == 0.01 and 0 < lrs[1] < 0.01 and lrs[2] == pytest.approx(0.0, abs=1e-12)


# ---- determinism and resume ------------------------------------------------------------------------------

def test_same_seed_same_metrics(small_cfg, tmp_path):
    overrides = ("optimizer=entropy_sgd", "optimizer.noise=0.01", "epochs=1")
    a, b = small_cfg(*overrides), small_cfg(*overrides, f"runs_dir={tmp_path / 'again'}")
    c = small_cfg(*overrides, "seed=1")
    for cfg in (a, b, c):
        run(cfg)
    assert read_csv(record_of(a) / "metrics.csv") == read_csv(record_of(b) / "metrics.csv")
    assert read_csv(record_of(a) / "steps.csv") == read_csv(record_of(b) / "steps.csv")
    assert read_csv(record_of(a) / "metrics.csv") != read_csv(record_of(c) / "metrics.csv")



def test_a_k_evaluation_step_is_never_taken_past_a_budget_or_the_cap(small_cfg):
    """RBO with K = 2 evaluations per step, 3 batches per epoch: the budget of 1.5 evaluations is read at init (one
    step would spend 2), that of 3 after one step (2), and a cap of 5 stops it at 4: no row and no run ever holds
    more evaluations than the budget or cap it names (the equal-compute comparison is at or below the budget)."""
    cfg = small_cfg("optimizer=rbo", "optimizer.proj_steps=2", "epochs=3", "budget_sgd_epochs=[0.5,1]",
                    "max_grad_evals=5")
    summary = run(cfg)
    metrics = read_csv(record_of(cfg) / "metrics.csv")
    got = [(r["trigger"], int(r["grad_evals"]), r["budget_sgd_epochs"]) for r in metrics]
    assert got == [("init", 0, "nan"), ("budget", 0, "0.5"), ("budget", 2, "1.0"), ("epoch", 4, "nan")]
    assert [float(r["epoch"]) for r in metrics] == pytest.approx([0, 0, 1 / 3, 2 / 3])
    assert summary["status"] == "completed" and summary["cost"]["grad_evals"] == 4

# Optimizer state (momentum, noise generator), scheduler state and budget rows on both sides of the restart.
RESUME = ("optimizer=entropy_sgd", "optimizer.momentum=0.9", "optimizer.noise=0.01", "scheduler=cosine",
          "budget_sgd_epochs=[1.5,4.5]", "epochs=4")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The record of the RESUME run trained in one go."""
    runs = tmp_path_factory.mktemp("uninterrupted")
    cfg = compose_config(*SMALL, *FAST["optimizer=entropy_sgd"], *RESUME, f"runs_dir={runs}")
    run(cfg)
    return record_of(cfg)


def assert_same_run(resumed: Path, reference: Path) -> None:
    for name in ("metrics.csv", "steps.csv"):
        assert read_csv(resumed / name) == read_csv(reference / name), name
    a, b = (json.loads((p / "summary.json").read_text()) for p in (resumed, reference))
    assert comparable(a) == comparable(b)


def test_resume_after_kill_equals_uninterrupted_run(small_cfg, runs_dir, tmp_path, capsys, uninterrupted):
    """A real SIGKILL once the first checkpoint exists, then the same command again."""
    args = [*SMALL, *FAST["optimizer=entropy_sgd"], *RESUME, f"runs_dir={runs_dir}"]
    cfg = small_cfg(*RESUME)
    path = record_of(cfg)
    killed = kill_at_first_checkpoint(args, path, tmp_path)
    assert killed < 4

    summary = run(cfg)
    assert f"resume: {path} from epoch {killed}" in capsys.readouterr().out
    assert summary["status"] == "completed"
    assert_same_run(path, uninterrupted)


class RecordingLogger:
    def __init__(self, *args, **kwargs):
        self.rows, self.finished = [], None

    def log(self, kind, row):
        self.rows.append((kind, row["step"]))

    def finish(self, summary):
        self.finished = summary["status"]


def test_failed_run_is_recorded_and_resumes(small_cfg, monkeypatch, uninterrupted):
    """Any exception but a divergence: status failed with the traceback, re-raised; the next run resumes
    (and its logger first receives the history written before the failure)."""
    loggers = []
    monkeypatch.setattr(trainer, "make_logger", lambda *a, **k: loggers.append(RecordingLogger()) or loggers[-1])
    calls = {"n": 0}
    closure = trainer.Closure.__call__

    def crash_in_epoch_3(self, advance=False):
        calls["n"] += 1
        if calls["n"] > 2 * 2 * STEPS_PER_EPOCH + 1:  # L = 2 evaluations per step; fail inside epoch 3
            raise RuntimeError("boom")
        return closure(self, advance)

    monkeypatch.setattr(trainer.Closure, "__call__", crash_in_epoch_3)
    cfg = small_cfg(*RESUME)
    with pytest.raises(RuntimeError, match="boom"):
        run(cfg)
    path = record_of(cfg)
    summary = json.loads((path / "summary.json").read_text())
    assert summary["status"] == "failed" and "Traceback" in summary["error"] and "boom" in summary["error"]
    # budgets 4.5 and 13.5 evaluations at 2 per step: read at 4 (epoch 1) and at 12 (the end of epoch 2)
    assert [r["trigger"] for r in read_csv(path / "metrics.csv")] == ["init", "budget", "epoch", "budget", "epoch"]

    monkeypatch.setattr(trainer.Closure, "__call__", closure)
    assert run(cfg)["status"] == "completed"
    assert_same_run(path, uninterrupted)
    first, second = loggers
    assert (first.finished, second.finished) == ("failed", "completed")
    metrics, steps = read_csv(path / "metrics.csv"), read_csv(path / "steps.csv")
    assert sorted(second.rows) == sorted([("epoch", int(r["step"])) for r in metrics]
                                         + [("steps", int(r["step"])) for r in steps])


def test_finished_runs_are_skipped_before_torch_is_imported(small_cfg, runs_dir, tmp_path, monkeypatch, capsys):
    cfg = small_cfg("optimizer=sgd", "epochs=1")
    run(cfg)
    monkeypatch.setattr(trainer, "train", lambda cfg: pytest.fail("a completed run was trained again"))
    assert run(cfg) is None
    assert capsys.readouterr().out.strip() == f"skip: {record_of(cfg)} completed"

    args = [*SMALL, "optimizer=sgd", "epochs=1", f"runs_dir={runs_dir}"]
    code = ("import runpy, sys\nsys.argv = ['train', *sys.argv[1:]]\n"
            "runpy.run_module('experiments.train', run_name='__main__')\n"
            "print('torch imported:', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    assert f"skip: {record_of(cfg)} completed" in out and "torch imported: False" in out


# ---- record identity: foreign and corrupt checkpoints, changed code or data, one owner ---------------------

def test_foreign_checkpoint_is_refused_and_nothing_is_overwritten(small_cfg, runs_dir):
    """A checkpoint of another config (seed 1) placed in this run's record: a clear error, the record untouched."""
    other = small_cfg("optimizer=sgd", "epochs=1", "seed=1")
    run(other)
    cfg = small_cfg("optimizer=sgd", "epochs=1")
    path = record_of(cfg)
    path.mkdir(parents=True)
    foreign = (record_of(other) / "checkpoint.pt").read_bytes()
    (path / "checkpoint.pt").write_bytes(foreign)
    with pytest.raises(records.CheckpointMismatch,
                       match=f"belongs to run_id {record_of(other).name}, not {path.name}.*refusing"):
        run(cfg)
    assert sorted(p.name for p in path.iterdir()) == [".lock", "checkpoint.pt"]  # no config, no summary written
    assert (path / "checkpoint.pt").read_bytes() == foreign


def test_corrupt_checkpoint_is_set_aside_and_the_run_restarts(small_cfg, capsys):
    cfg = small_cfg("optimizer=sgd")
    run(cfg)
    path = record_of(cfg)
    reference = read_csv(path / "metrics.csv")
    checkpoint = (path / "checkpoint.pt").read_bytes()
    (path / "checkpoint.pt").write_bytes(checkpoint[: len(checkpoint) // 2])  # truncated, as by a full disk
    summary = json.loads((path / "summary.json").read_text())
    records.write_json(path / "summary.json", {**summary, "status": "failed"})  # so that it is not skipped
    capsys.readouterr()
    assert run(cfg)["status"] == "completed"
    out = capsys.readouterr().out
    [aside] = path.glob("checkpoint.pt.corrupt-*")
    assert f"resume: {path / 'checkpoint.pt'} is unreadable" in out and f"moved to {aside.name}" in out
    assert "from scratch" in out and aside.read_bytes() == checkpoint[: len(checkpoint) // 2]
    assert read_csv(path / "metrics.csv") == reference  # trained again from the start, to the same numbers


def test_changed_code_or_data_is_said_on_skip_and_rerun_on_request(small_cfg, tmp_path, monkeypatch, capsys):
    cfg = small_cfg("optimizer=sgd", "epochs=1")
    summary = run(cfg)
    path = record_of(cfg)
    assert summary["source_sha256"] == records.source_sha256() and summary["data_fingerprint"] == {}
    data_file = tmp_path / "train-images-idx3-ubyte"
    data_file.write_bytes(b"digits" * 100)
    records.write_json(path / "summary.json", {**summary, "data_fingerprint": records.data_fingerprint([data_file])})
    capsys.readouterr()
    assert run(cfg) is None and capsys.readouterr().out.strip() == f"skip: {path} completed"  # nothing changed

    data_file.write_bytes(b"letters" * 100)
    monkeypatch.setattr(records, "source_sha256", lambda: "f" * 64)
    assert run(cfg) is None  # on_change=keep (the default): skipped, with the reasons
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"skip: {path} completed (code changed (source sha256 {summary['source_sha256'][:12]} "
                           "-> ffffffffffff")
    assert f"data changed ({data_file}: size, mtime or first MiB differ" in line and "on_change=rerun" in line

    rerun = small_cfg("optimizer=sgd", "epochs=1", "on_change=rerun")
    assert records.run_id(records.to_container(rerun)) == path.name  # on_change is not part of the identity
    again = run(rerun)
    assert again["status"] == "completed" and again["source_sha256"] == "f" * 64
    [old] = path.glob(".replaced-*")
    assert json.loads((old / "summary.json").read_text())["source_sha256"] == summary["source_sha256"]
    assert {p.name for p in old.iterdir()} >= {"summary.json", "metrics.csv", "checkpoint.pt", "config.yaml"}
    assert "rerun: " in capsys.readouterr().out


def test_second_launch_of_a_running_run_is_refused_at_once(runs_dir, tmp_path):
    """Two processes: the first trains (long), the second stops at once naming the first; after a kill -9 of
    the first the lock is free again."""
    args = [*SMALL, "optimizer=sgd", "epochs=100000", f"runs_dir={runs_dir}"]
    path = record_of(compose_config(*args))
    first = subprocess.Popen([sys.executable, "-m", "experiments.train", *args], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not (path / ".lock").is_file() or not (path / ".lock").read_text():
            assert first.poll() is None, first.stderr.read().decode()
            time.sleep(0.01)
        second = subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)
        assert first.poll() is None  # still training
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert second.returncode != 0
    assert f"{path} is being trained by pid {first.pid} on " in second.stderr, second.stderr[-2000:]
    assert json.loads((path / "summary.json").read_text())["status"] == "running"  # the second wrote nothing
    with records.record_lock(path):  # released by the OS when the first died
        pass


# ---- divergence, validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [("optimizer=sgd", "optimizer.lr=1e6"),  # non-finite loss at a log step
                                       ("optimizer=rbo", "optimizer.lr=1e8")])  # rbo.DivergenceError
def test_divergence_is_a_result_not_an_error(small_cfg, overrides):
    cfg = small_cfg(*overrides)
    summary = run(cfg)  # returns normally: the job exits 0 and a sweep goes on
    assert summary["status"] == "diverged" and 0 < summary["diverged_at_epoch"] <= 2
    assert summary == json.loads((record_of(cfg) / "summary.json").read_text())
    assert read_csv(record_of(cfg) / "metrics.csv")[0]["trigger"] == "init"
    assert run(cfg) is None  # a diverged run is finished: skipped


@pytest.mark.parametrize("override, words", [
    ("batch_size=0", ["batch_size=0", "allowed"]),
    ("epochs=0", ["epochs=0", "allowed"]),
    ("eval_batch_size=-1", ["eval_batch_size=-1"]),
    ("optimizer.name=nope", ["optimizer.name='nope'", "sgd", "rbo_gauss_newton"]),
    ("dataset.name=nope", ["dataset.name='nope'", "cifar10", "mnist_subset"]),
    ("model.name=nope", ["model.name='nope'", "vgg9", "wrn16_8"]),
    ("device=tpu", ["device='tpu'", "auto, cpu, cuda"]),
    ("loss_scale=0", ["loss_scale=0"]),
    ("max_grad_evals=0", ["max_grad_evals=0"]),
    ("budget_sgd_epochs=[1,0]", ["budget_sgd_epochs"]),
    ("+optimizer.lrr=1", ["optimizer.lrr", "optimizer.lr"]),
])
def test_invalid_values_fail_before_any_work(small_cfg, runs_dir, override, words):
    with pytest.raises(ValueError) as err:
        run(small_cfg(*override.split()))
    assert all(w in str(err.value) for w in words), str(err.value)
    assert not runs_dir.exists()  # no record, no data loaded


def test_batch_size_larger_than_the_training_split(small_cfg):
    cfg = small_cfg("batch_size=97")
    with pytest.raises(ValueError, match=r"batch_size=97 .* allowed: 1\.\.96"):
        run(cfg)
    assert json.loads((record_of(cfg) / "summary.json").read_text())["status"] == "failed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_a_config_error(small_cfg):
    with pytest.raises(ValueError, match="device='cuda' is not available here; allowed: cpu"):
        run(small_cfg("device=cuda"))


@pytest.mark.parametrize("override", ["optimizer.lrr=1", "epochs=abc", "optimizer.lr=fast", "optimizer=nope",
                                      "model.kernel_size=3", "optimizer=sgd optimizer.radius=1", "precision=fp16",
                                      "scheduler=step", "logger=wandb logger.mode=cloud", "on_change=overwrite"])
def test_misspelt_keys_and_wrong_types_fail_at_composition(small_cfg, override):
    with pytest.raises((HydraException, OmegaConfBaseException)):
        small_cfg(*override.split())


def test_optimizer_name_must_match_its_schema(small_cfg):
    with pytest.raises(ValueError, match="optimizer.name='rbo' needs the RBOConfig keys"):
        run(small_cfg("optimizer=sgd", "optimizer.name=rbo"))


# ---- accuracy on real digits, W&B ------------------------------------------------------------------------

def test_mnist_subset_mlp_sgd_momentum_reaches_90_percent(small_cfg):
    cfg = small_cfg("dataset=mnist_subset", "dataset.val_size=1000", "optimizer=sgd_momentum", "optimizer.lr=0.1",
                    "optimizer.momentum=0.9", "epochs=3", "batch_size=256", "eval_batch_size=1024", "log_every=50")
    summary = run(cfg)
    assert summary["final"]["test_acc"] >= 0.90, summary["final"]


def test_wandb_disabled_mode_runs(small_cfg, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = small_cfg("optimizer=sgd", "epochs=1", "logger=wandb", "logger.mode=disabled")
    assert run(cfg)["status"] == "completed"


def test_wandb_offline_writes_its_run_without_network(small_cfg, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = small_cfg("optimizer=sgd", "epochs=1", "logger=wandb", "logger.mode=offline", "logger.tags=[unit]")
    assert run(cfg)["status"] == "completed"
    offline = list((record_of(cfg) / ".wandb" / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("run-*.wandb"))


def test_wandb_online_without_credentials_fails_instead_of_prompting(small_cfg, tmp_path, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    cfg = small_cfg("optimizer=sgd", "logger=wandb", "logger.mode=online")
    with pytest.raises(ValueError, match="logger.mode='online' needs W&B credentials.*offline"):
        run(cfg)
    assert json.loads((record_of(cfg) / "summary.json").read_text())["status"] == "failed"


def test_newton_hessian_vector_products_are_charged(small_cfg, tmp_path):
    """The trainer charges RBO's step_evals: a Newton step's HVPs cost evaluations the closure never sees."""
    cfg = small_cfg("optimizer=rbo_newton", "optimizer.proj_steps=10", "epochs=1")
    calls = []
    original = trainer.Closure.__call__
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer.Closure, "__call__", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
        summary = trainer.train(cfg)
    assert summary["status"] == "completed"
    charged = summary["cost"]["grad_evals"]
    assert charged > len(calls)  # the HVPs are paid for, beyond the closure calls
    assert charged <= 10 * 3  # 3 steps, never beyond the cap of 10 per step


@pytest.mark.parametrize("shuffle", [True, False])
def test_dataset_shuffle_false_trains_in_the_same_order_every_epoch(small_cfg, shuffle):
    """dataset.shuffle=false is the authors' grain.SequentialSampler: the training split in its file order, every
    epoch; the default draws a new permutation per (seed, epoch)."""
    job = trainer.Trainer(small_cfg("optimizer=sgd", f"dataset.shuffle={str(shuffle).lower()}"))
    job._setup()  # data, loaders, model and optimizer, as run() builds them
    loader = job.train_loader
    first, second = ([y.tolist() for _, y in loader.batches(epoch)] for epoch in (0, 1))
    labels = loader.split.labels.tolist()
    assert (first == second) is not shuffle
    assert (sum(first, []) == labels) is not shuffle
