"""The one table of optimizers every contract runs over (as kozistr/pytorch_optimizer's tests/constants.py): every
file of ``conf/optimizer/``, composed as a run would compose it, with what keeps its step cheap on a toy problem."""

from __future__ import annotations

import copy
import functools
import importlib.util

import pytest
from conftest import compose_config

from experiments.config import EntropySGDConfig, RBOConfig, SGDEffectiveLRConfig, SGDKStepsConfig
from experiments.registry import option_names, schema_of

OPTIMIZERS = option_names()  # every conf/optimizer/*.yaml, custom included
CUSTOM = ("optimizer._target_=torch.optim.Adam", "optimizer.lr=0.001")  # the class optimizer=custom stands for
CHEAP = ((RBOConfig, ("optimizer.proj_steps=2",)), (EntropySGDConfig, ("optimizer.L=2",)),
         (SGDKStepsConfig, ("optimizer.steps_per_batch=3",)), (SGDEffectiveLRConfig, ("optimizer.lr=0.01",)))
# Toy settings for the convergence contract (tests/test_optimizers_common.py): optimizer: (overrides, steps), where
# the config's own values would not lower the toy loss fourfold; every other optimizer runs 30 steps as configured.
TOY = {
    "sgd": (("optimizer.lr=0.2",), 30), "sgd_effective_lr": (("optimizer.lr=0.2",), 30),
    "sgd_momentum": (("optimizer.lr=0.05",), 30), "adamw": (("optimizer.lr=0.02",), 30),
    "sam": (("optimizer.lr=0.2",), 30), "asam": (("optimizer.lr=0.2",), 30),
    "sgd_k_steps": (("optimizer.lr=0.05", "optimizer.steps_per_batch=5"), 10),
    "entropy_sgd": (("optimizer.L=5", "optimizer.gamma=1.0", "optimizer.langevin_lr=0.1"), 15),
    "rbo": (("optimizer.lr=0.5", "optimizer.proj_steps=10", "optimizer.proj_lr=0.1"), 10),
    "rbo_radius0": (("optimizer.lr=0.5", "optimizer.proj_steps=10", "optimizer.proj_lr=0.1"), 10),
    "rbo_gauss_newton": (("optimizer.lr=0.5",), 10),
    "rbo_newton": (("optimizer.lr=0.5", "optimizer.proj_steps=20"), 10),
    "lion": (("optimizer.lr=0.01",), 30), "custom": (("optimizer.lr=0.02",), 30),
}


def cheap(name: str) -> tuple[str, ...]:
    """Overrides that keep one step of optimizer ``name`` cheap (and give ``sgd_effective_lr`` the lr it derives)."""
    schema = schema_of(name)
    return sum((overrides for kind, overrides in CHEAP if issubclass(schema, kind)), CUSTOM if name == "custom" else ())


def optimizer_config(name: str, *overrides: str):
    """The composed ``optimizer`` node of ``name`` with :func:`cheap` and ``overrides``; skips the test when its
    ``_target_`` lives in a package that is not installed (pytorch-optimizer: the zoo extra)."""
    cfg = copy.deepcopy(_composed(name, overrides))
    module = cfg._target_.split(".")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{cfg._target_}: {module} is not installed (pip install -e '.[zoo]')")
    return cfg


@functools.cache
def _composed(name: str, overrides: tuple[str, ...]):
    return compose_config(f"optimizer={name}", *cheap(name), *overrides).optimizer
