"""Shared fixtures: Hydra-composed configs shrunk to CPU-test size."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import experiments.config  # noqa: F401  (registers the structured configs)

CONF = Path(__file__).resolve().parents[1] / "conf"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core (pytest-xdist): one thread each, inherited by the runs the tests
    # start, so that the workers do not oversubscribe the cores (OpenMP threads waiting on each other)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# Synthetic MNIST-shaped data (96 train, 32 validation, 64 test), 3 steps per epoch, no W&B, no progress bar.
SMALL = ("dataset=synthetic", "model=mlp", "logger=none", "epochs=2", "batch_size=32", "eval_batch_size=64",
         "log_every=2", "progress=false", "dataset.val_size=32", "dataset.synthetic_size=[128,64]")
# Per optimizer: the few inner evaluations that keep a step cheap.
FAST = {"optimizer=rbo": ("optimizer.proj_steps=2",), "optimizer=rbo_gauss_newton": ("optimizer.proj_steps=2",),
        "optimizer=entropy_sgd": ("optimizer.L=2",)}


def compose_config(*overrides: str):
    """The config ``python -m experiments.train <overrides>`` would run."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def small_cfg(runs_dir: Path):
    """``small_cfg("optimizer=sam", "epochs=3")``: a composed config, shrunk (:data:`SMALL`, :data:`FAST`)
    and writing into this test's temporary ``runs_dir``; later overrides win."""

    def make(*overrides: str):
        fast = [o for group in overrides for o in FAST.get(group, ())]
        return compose_config(*SMALL, f"runs_dir={runs_dir}", *fast, *overrides)

    return make


def kill_at_first_checkpoint(args: list[str], record: Path, cwd: Path, *, env: dict | None = None,
                             after: float = 0.0) -> int:
    """Run ``python -m experiments.train <args>``, SIGKILL its process group ``after`` seconds past the record's
    first checkpoint, and return the epoch that checkpoint holds (the record then says ``running``)."""
    import torch

    proc = subprocess.Popen([sys.executable, "-m", "experiments.train", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        while not (record / "checkpoint.pt").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.002)
        time.sleep(after)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert json.loads((record / "summary.json").read_text())["status"] == "running"
    return torch.load(record / "checkpoint.pt", weights_only=True)["epoch"]


def slurm_submission(launcher, monkeypatch):
    """``(executor, sbatch text)``: what Hydra's SlurmLauncher would submit with ``launcher`` (a composed
    ``hydra.launcher`` node), up to the sbatch file, without a cluster."""
    import submitit
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf
    from submitit.slurm import slurm as submitit_slurm

    params = dict(instantiate(launcher).params)
    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    return executor, executor._executor._make_submission_file_text("python -m experiments.train", "uid")
