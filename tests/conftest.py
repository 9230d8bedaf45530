"""Shared fixtures: Hydra-composed configs shrunk to CPU-test size."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import experiments.config  # noqa: F401  (registers the structured configs)

CONF = Path(__file__).resolve().parents[1] / "conf"

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
