"""``build_optimizer(cfg.optimizer, model, seed=...)``: the optimizer named by ``cfg.name`` (SPEC §1, §2).

Every optimizer is a ``torch.optim.Optimizer`` driven by ``step(closure)``. All parameters form one group
(BatchNorm and biases included, as in the authors' code). To add an optimizer: write its schema in
``experiments/config.py``, a builder here, an entry in :data:`OPTIMIZERS` and a ``conf/optimizer/*.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim import Optimizer

from baselines import SAM, EntropySGD, KStepSGD
from experiments.config import (
    AdamWConfig,
    EntropySGDConfig,
    OptimizerConfig,
    RBOConfig,
    SAMConfig,
    SGDConfig,
    SGDEffectiveLRConfig,
    SGDKStepsConfig,
)
from rbo import RBO

Builder = Callable[[OptimizerConfig, list[nn.Parameter], int], Optimizer]


def _sgd_kwargs(cfg) -> dict:
    return dict(lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)


def _adamw_kwargs(cfg) -> dict:
    return dict(lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


SAM_BASES = {"sgd": (torch.optim.SGD, _sgd_kwargs), "adamw": (torch.optim.AdamW, _adamw_kwargs)}


def _sgd(cfg, params, seed):
    return torch.optim.SGD(params, **_sgd_kwargs(cfg))


def _sgd_k_steps(cfg, params, seed):
    return KStepSGD(params, steps_per_batch=cfg.steps_per_batch, **_sgd_kwargs(cfg))


def _adamw(cfg, params, seed):
    return torch.optim.AdamW(params, **_adamw_kwargs(cfg))


def _sam(cfg, params, seed):
    if cfg.base not in SAM_BASES:
        raise ValueError(f"optimizer.base={cfg.base!r} is unknown; allowed: {', '.join(SAM_BASES)}")
    base, kwargs = SAM_BASES[cfg.base]
    return SAM(params, base, rho=cfg.rho, adaptive=cfg.adaptive, max_grad_norm=cfg.max_grad_norm, **kwargs(cfg))


def _entropy_sgd(cfg, params, seed):
    return EntropySGD(params, **_sgd_kwargs(cfg), L=cfg.L, gamma=cfg.gamma, scoping=cfg.scoping,
                      langevin_lr=cfg.langevin_lr, noise=cfg.noise, alpha=cfg.alpha,
                      fresh_batches=cfg.fresh_batches, seed=seed)


def _rbo(cfg, params, seed):
    return RBO(params, lr=cfg.lr, radius=cfg.radius, proj_steps=cfg.proj_steps, proj_lr=cfg.proj_lr,
               projection=cfg.projection, proj_tol=cfg.proj_tol)


# name -> (the schema its config must follow, builder)
OPTIMIZERS: dict[str, tuple[type, Builder]] = {
    "sgd": (SGDConfig, _sgd),
    "sgd_momentum": (SGDConfig, _sgd),
    "sgd_k_steps": (SGDKStepsConfig, _sgd_k_steps),
    "sgd_effective_lr": (SGDEffectiveLRConfig, _sgd),
    "adamw": (AdamWConfig, _adamw),
    "sam": (SAMConfig, _sam),
    "asam": (SAMConfig, _sam),
    "sam_momentum": (SAMConfig, _sam),
    "entropy_sgd": (EntropySGDConfig, _entropy_sgd),
    "rbo": (RBOConfig, _rbo),
    "rbo_gauss_newton": (RBOConfig, _rbo),
    "rbo_newton": (RBOConfig, _rbo),
    "rbo_radius0": (RBOConfig, _rbo),
}


def evals_per_step(cfg) -> int:
    """Gradient evaluations one step costs (the trainer counts the real number; this is for planning). An upper
    bound for a Gauss–Newton or Newton projection with a tolerance (Newton's cap counts each Hessian-vector
    product as ``rbo.optimizer.HVP_COST`` evaluations); Entropy-SGD with fresh batches spends one per batch."""
    schema = OPTIMIZERS[cfg.name][0]
    if issubclass(schema, SAMConfig):
        return 2
    if issubclass(schema, EntropySGDConfig):
        return cfg.L
    if issubclass(schema, RBOConfig):
        return cfg.proj_steps
    if issubclass(schema, SGDKStepsConfig):
        return cfg.steps_per_batch
    return 1


def check_optimizer_config(cfg, *, lr_pending: bool = False) -> None:
    """Before any data or model (issue 16): ``cfg.name`` is known, ``cfg`` follows that optimizer's schema and
    every hyperparameter is in range, else a one-line ``ValueError`` naming the key, its value and what is
    allowed. Every number must be finite; torch's SGD/AdamW keys (which torch checks loosely or not at all)
    are checked here; the suite's own optimizers then check theirs in their constructors, built on a
    stand-in parameter. ``lr_pending``: an unresolved ``sgd_effective_lr`` lr (null until its reference
    runs finish) is accepted (``scripts.plan``)."""
    import math
    import re

    from omegaconf import OmegaConf

    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name={cfg.name!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
    schema = OPTIMIZERS[cfg.name][0]
    found = OmegaConf.get_type(cfg)
    if not (isinstance(found, type) and issubclass(found, schema)):
        raise ValueError(f"optimizer.name={cfg.name!r} needs the {schema.__name__} keys, but the optimizer "
                         f"config follows {getattr(found, '__name__', found)}; select it with optimizer={cfg.name}")
    pending = lr_pending and cfg.lr is None and issubclass(schema, SGDEffectiveLRConfig)
    if cfg.lr is None and not pending:
        raise ValueError(f"optimizer.lr=None is not allowed for optimizer.name={cfg.name!r}; allowed: a number > 0"
                         " (only sgd_effective_lr derives its lr, from completed reference runs)")
    values = OmegaConf.to_container(cfg, resolve=True)
    for key, value in values.items():
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, list) else [value])):
            raise ValueError(f"optimizer.{key}={value!r} is not allowed; allowed: finite numbers")
    torch_keys = {  # key: (test, what is allowed)
        "lr": (lambda v: v is None or v > 0, "a number > 0"),
        "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
        "weight_decay": (lambda v: v >= 0, "a number >= 0"),
        "nesterov": (lambda v: not v or values.get("momentum", 0) > 0, "false, or true with momentum > 0"),
        "betas": (lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
        "eps": (lambda v: v > 0, "a number > 0"),
    }
    for key, (ok, allowed) in torch_keys.items():
        if key in values and not ok(values[key]):
            raise ValueError(f"optimizer.{key}={values[key]!r} is not allowed; allowed: {allowed}")
    if pending:
        return
    try:
        OPTIMIZERS[cfg.name][1](cfg, [nn.Parameter(torch.zeros(1))], 0)
    except ValueError as err:
        said = re.fullmatch(r"invalid (\w+)=(.*?): (.*)", str(err))  # rbo.common.check_hyper's wording
        raise ValueError(f"optimizer.{said[1]}={said[2]} is not allowed; allowed: {said[3]}" if said
                         else str(err) if str(err).startswith("optimizer.") else f"optimizer: {err}") from None


def build_optimizer(cfg, model: nn.Module, *, seed: int = 0) -> Optimizer:
    """The optimizer for ``model.parameters()``; ``seed`` seeds optimizer noise (Entropy-SGD)."""
    check_optimizer_config(cfg)
    return OPTIMIZERS[cfg.name][1](cfg, list(model.parameters()), seed)
