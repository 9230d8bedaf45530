"""Faults end in one clear sentence with nothing lost (issue 23, "Every refusal is one sentence", "Pre-flight inside
Hydra", "Disk faults", "Records that check themselves"): the suite's refusals print their message alone on stderr and
exit 2, under Hydra too, without a traceback (``HYDRA_FULL_ERROR=1`` still shows one); a multirun checks every job
before the first starts; a refused job of a running sweep fails alone; a full disk is found before training, and a
checkpoint the disk refuses keeps the previous one and every metrics row."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import yaml
from conftest import SMALL, compose_config

import experiments.preflight as preflight
from experiments import data, records
from experiments.errors import EXIT_REFUSED
from experiments.train import run

REPO = Path(__file__).resolve().parents[1]


def train_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m experiments.train <args>`` as a user types it."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=600)


def assert_one_sentence(proc: subprocess.CompletedProcess, start: str) -> str:
    """Exit 2, no traceback anywhere, stderr one line that starts with ``start``; returns that line."""
    assert proc.returncode == EXIT_REFUSED, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr and "Error executing job" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(start), proc.stderr
    return proc.stderr


def record_of(*args: str) -> Path:
    return records.run_dir(records.to_container(compose_config(*args)))


def read_rows(path: Path) -> list[dict]:
    """metrics.csv without its wall-clock columns (the only ones two identical runs differ in)."""
    import csv

    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in records.WALL_CLOCK_COLUMNS} for row in csv.DictReader(f)]


# ---- the command line: one sentence, exit 2 --------------------------------------------------------------------

def test_an_invalid_value_is_one_sentence_and_a_full_error_keeps_its_traceback(runs_dir, tmp_path):
    args = [*SMALL, "optimizer=sgd", "optimizer.lr=-1", f"runs_dir={runs_dir}"]
    assert_one_sentence(train_cli(*args, cwd=tmp_path), "optimizer.lr=-1.0 is not allowed; allowed: a number > 0")
    full = train_cli(*args, cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode != 0 and "Traceback" in full.stderr and "optimizer.lr=-1.0 is not allowed" in full.stderr
    assert not runs_dir.exists()


def test_a_multirun_checks_every_job_before_the_first_starts(runs_dir, tmp_path):
    """``-m optimizer.lr=0.1,-1,nan``: job 0 (lr 0.1) would train; nothing does, every problem in one message."""
    proc = train_cli("-m", *SMALL, "optimizer=sgd", "optimizer.lr=0.1,-1,nan", f"runs_dir={runs_dir}", cwd=tmp_path)
    assert proc.returncode == EXIT_REFUSED and "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.splitlines() == [
        "pre-flight: 2 problem(s), nothing was launched and no record written:",
        "- optimizer.lr=-1.0 is not allowed; allowed: a number > 0 (1 job)",
        "- optimizer.lr=nan is not allowed; allowed: finite numbers (1 job)"]
    assert not runs_dir.exists() and not (tmp_path / "multirun").exists()


def test_a_finished_multirun_is_skipped_without_importing_torch(runs_dir, tmp_path):
    """The pre-flight checks only jobs that will train: a sweep whose records are all finished skips each job
    before torch is imported, the callback included."""
    args = [*SMALL, "optimizer=sgd", "epochs=1", f"runs_dir={runs_dir}"]
    for seed in (0, 1):
        run(compose_config(*args, f"seed={seed}"))
    code = ("import runpy, sys\nsys.argv = ['train', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('experiments.train', run_name='__main__')\n"
            "finally:\n    print('torch imported:', 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, "-m", *args, "seed=0,1"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert proc.stdout.count("skip: ") == 2 and "torch imported: False" in proc.stdout, proc.stdout + proc.stderr


def test_missing_data_is_one_sentence(runs_dir, tmp_path):
    empty = tmp_path / "data"
    proc = train_cli(*SMALL, "dataset=mnist", f"data_dir={empty}", "dataset.download=false", f"runs_dir={runs_dir}",
                     cwd=tmp_path)
    assert "Put these files there" in assert_one_sentence(proc, f"MNIST is not in {empty / 'MNIST' / 'raw'} ")
    assert not runs_dir.exists()


def test_the_shipped_subset_renamed_as_fashion_mnist_is_refused_before_any_record(runs_dir, tmp_path):
    folder = tmp_path / "data" / "FashionMNIST"
    folder.mkdir(parents=True)
    for split in ("train", "t10k"):
        for stem in data.IDX_SHAPES["mnist_subset"]:
            shutil.copy(data.ASSETS / f"{stem}.gz", folder / f"{split}-{stem}.gz")
    proc = train_cli(*SMALL, "dataset=fashion_mnist", f"data_dir={folder.parent}", f"runs_dir={runs_dir}", cwd=tmp_path)
    assert "mnist_subset's file (by its MD5), but dataset='fashion_mnist' was asked for" in assert_one_sentence(
        proc, f"{folder / 'train-images-idx3-ubyte.gz'} is ")
    assert not runs_dir.exists()


def test_a_locked_record_is_one_sentence(runs_dir, tmp_path):
    args = [*SMALL, "optimizer=sgd", f"runs_dir={runs_dir}"]
    path = record_of(*args)
    path.mkdir(parents=True)
    with records.record_lock(path):  # this test's process trains it
        proc = train_cli(*args, cwd=tmp_path)
    assert_one_sentence(proc, f"{path} is being trained by pid {os.getpid()} on ")
    assert sorted(p.name for p in path.iterdir()) == [".lock"]


def test_a_foreign_checkpoint_is_one_sentence_and_stays(runs_dir, tmp_path):
    args = [*SMALL, "optimizer=sgd", f"runs_dir={runs_dir}"]
    path = record_of(*args)
    records.save_checkpoint(path / "checkpoint.pt", {**dict.fromkeys(records.CHECKPOINT_KEYS), "run_id": "0" * 12})
    foreign = (path / "checkpoint.pt").read_bytes()
    assert_one_sentence(train_cli(*args, cwd=tmp_path),
                        f"{path / 'checkpoint.pt'} belongs to run_id {'0' * 12}, not {path.name}")
    assert (path / "checkpoint.pt").read_bytes() == foreign and not (path / "summary.json").exists()


def test_a_refused_job_of_a_running_sweep_fails_alone(runs_dir, tmp_path):
    """Job 1's record is locked by another process: job 0 trains, job 1 logs its refusal, and the sweep ends with
    Hydra's report of it, the message alone (exit 1, no traceback)."""
    args = [*SMALL, "optimizer=sgd", "epochs=1", f"runs_dir={runs_dir}"]
    locked = record_of(*args, "seed=1")
    locked.mkdir(parents=True)
    with records.record_lock(locked):
        proc = train_cli("-m", *args, "seed=0,1", cwd=tmp_path)
    refusal = f"{locked} is being trained by pid {os.getpid()} on "
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert f"refused: {refusal}" in proc.stdout
    [header, message, *_] = proc.stderr.splitlines()
    assert header.startswith("Error executing job with overrides:") and "seed=1" in header and \
        message.startswith(refusal)
    assert json.loads((record_of(*args, "seed=0") / "summary.json").read_text())["status"] == "completed"


# ---- disk faults --------------------------------------------------------------------------------------------------

def test_too_little_free_space_is_refused_before_anything_is_written(small_cfg, monkeypatch):
    cfg = small_cfg("optimizer=adamw")
    needed = preflight.SPACE_MARGIN * preflight.checkpoint_bytes(cfg)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: usage(10 * needed, 10 * needed - 1000, 1000))
    path = records.run_dir(records.to_container(cfg))
    with pytest.raises(preflight.DiskFull) as err:
        run(cfg)
    assert str(err.value).startswith(f"{path} is on a disk with 0.0 MiB free, but this run needs about "
                                     f"{needed / 2**20:.1f} MiB there (2 x a checkpoint of ")
    assert sorted(p.name for p in path.iterdir()) == [".lock"]
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: usage(10 * needed, 9 * needed, needed))
    assert run(cfg)["status"] == "completed"


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adamw"])
def test_the_checkpoint_estimate_is_an_upper_bound(small_cfg, optimizer):
    """The estimate from parameter and state sizes is at least what a checkpoint of one epoch takes on disk."""
    cfg = small_cfg(f"optimizer={optimizer}", "epochs=1")
    run(cfg)
    size = (records.run_dir(records.to_container(cfg)) / "checkpoint.pt").stat().st_size
    assert size <= preflight.checkpoint_bytes(cfg) < 2 * size


@pytest.mark.parametrize("code, stays_full", [(errno.ENOSPC, True), (errno.EIO, False)])
def test_a_checkpoint_the_disk_refuses_keeps_the_previous_one_and_every_row(small_cfg, tmp_path, monkeypatch, code,
                                                                             stays_full):
    """Epoch 2's checkpoint fails in ``os.replace`` (and, on a disk that stays full, every write after it): epoch 1's
    checkpoint stays, no temporary file is left, metrics.csv has epoch 2's row, the refusal is what the run ends
    with, and the rerun resumes to the numbers of an uninterrupted run."""
    reference = small_cfg("optimizer=sgd", f"runs_dir={tmp_path / 'reference'}")
    run(reference)
    cfg = small_cfg("optimizer=sgd")
    path = records.run_dir(records.to_container(cfg))
    replace, checkpoints = os.replace, []

    def refusing_disk(src, dst):
        checkpoints.extend([dst] if Path(dst).name == "checkpoint.pt" else [])
        if len(checkpoints) == 2 and (stays_full or Path(dst).name == "checkpoint.pt"):
            raise OSError(code, os.strerror(code))
        return replace(src, dst)

    monkeypatch.setattr(records.os, "replace", refusing_disk)
    with pytest.raises(records.CheckpointNotWritten) as err:
        run(cfg)
    assert str(err.value) == (
        f"{path / 'checkpoint.pt'} could not be written after epoch 2 ({os.strerror(code)}): the checkpoint of epoch 1 "
        "is kept, and metrics.csv holds every row up to epoch 2; free space on that disk (or fix it) and run the same "
        "command again to resume")
    assert torch.load(path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not list(path.glob(".*.tmp"))
    assert [r["trigger"] for r in read_rows(path / "metrics.csv")] == ["init", "epoch", "epoch"]
    status = json.loads((path / "summary.json").read_text())["status"]
    assert status == ("running" if stays_full else "failed")  # a full disk takes no failure record either
    monkeypatch.setattr(records.os, "replace", replace)
    assert run(cfg)["status"] == "completed"
    expected = read_rows(records.run_dir(records.to_container(reference)) / "metrics.csv")
    assert read_rows(path / "metrics.csv") == expected


# ---- records that check themselves ------------------------------------------------------------------------------

def test_a_damaged_summary_is_set_aside_and_trained_again(small_cfg, capsys):
    cfg = small_cfg("optimizer=sgd", "epochs=1")
    summary = run(cfg)
    path = records.run_dir(records.to_container(cfg))
    damaged = {**summary, "final": {**summary["final"], "test_acc": 7.5},
               "cost": {**summary["cost"], "grad_evals": -5}}
    records.write_json(path / "summary.json", damaged)
    capsys.readouterr()
    again = run(cfg)
    assert again["status"] == "completed" and again["final"] == summary["final"]
    assert capsys.readouterr().out.startswith(f"damaged: {path} says completed but its summary.json holds final "
                                              "test_acc 7.5 (allowed: [0, 1]); cost grad_evals -5 (allowed: a number")
    [aside] = path.glob(".damaged-*")
    assert json.loads((aside / "summary.json").read_text())["final"]["test_acc"] == 7.5  # kept, not overwritten
    assert {p.name for p in aside.iterdir()} >= {"summary.json", "metrics.csv", "checkpoint.pt", "config.yaml"}


def test_a_finished_record_without_its_config_gets_it_back(small_cfg, capsys):
    cfg = small_cfg("optimizer=sgd", "epochs=1")
    run(cfg)
    path = records.run_dir(records.to_container(cfg))
    config = yaml.safe_load((path / "config.yaml").read_text())
    (path / "config.yaml").unlink()
    capsys.readouterr()
    assert run(cfg) is None
    assert capsys.readouterr().out.strip() == (f"skip: {path} completed; config.yaml was missing: restored from this "
                                               f"run's config (run_id {path.name})")
    assert yaml.safe_load((path / "config.yaml").read_text()) == config
