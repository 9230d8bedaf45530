"""Optimizers from the registry: built by Hydra, checked before any work, driven by their protocol.

Every optimizer is a ``conf/optimizer/*.yaml`` (README "Adding an optimizer"): :func:`build_optimizer` instantiates
its ``_target_`` with the model's parameters (one group: BatchNorm and biases included, as in the authors' code)
and the config's other keys; :func:`check_optimizer_config` checks it first, on a stand-in parameter;
:class:`StepDriver` runs one step as its ``protocol`` says (:class:`experiments.config.Protocol`) and returns the
gradient evaluations it cost.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.optim import Optimizer

from baselines import SAM
from experiments import registry
from experiments.config import (
    REGISTRY_KEYS,
    AnyOptimizerConfig,
    EntropySGDConfig,
    Protocol,
    RBOConfig,
    Role,
    SAMConfig,
    SGDEffectiveLRConfig,
    SGDKStepsConfig,
)
from rbo.optimizer import HVP_COST

SAM_BASES = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
SAM_BASE_KEYS = {"sgd": ("lr", "momentum", "nesterov", "weight_decay"),  # the keys of SAMConfig each base takes
                 "adamw": ("lr", "betas", "eps", "weight_decay")}
_NOT_KWARGS = {key.split(".", 1)[1] for key in REGISTRY_KEYS} | {"kwargs"}


def sam(params, *, base: str, rho: float, adaptive: bool, max_grad_norm: float | None, **base_keys) -> SAM:
    """``baselines.SAM`` around the base optimizer named by ``base`` (the ``_target_`` of conf/optimizer/sam*.yaml):
    ``base_keys`` are SAMConfig's base keys, each passed on only if that base takes it (SGD: no betas)."""
    if base not in SAM_BASES:
        raise ValueError(f"optimizer.base={base!r} is unknown; allowed: {', '.join(SAM_BASES)}")
    kwargs = {k: tuple(v) if k == "betas" else v for k, v in base_keys.items() if k in SAM_BASE_KEYS[base]}
    return SAM(params, SAM_BASES[base], rho=rho, adaptive=adaptive, max_grad_norm=max_grad_norm, **kwargs)


def constructor_kwargs(cfg) -> dict:
    """What ``_target_`` is called with besides ``params`` (and ``seed``): every key of ``cfg`` but the registry keys
    and the schema's ``trainer_keys``, with ``kwargs`` (:class:`~experiments.config.AnyOptimizerConfig`) spread in."""
    values = OmegaConf.to_container(cfg, resolve=True)
    skip = _NOT_KWARGS | set(OmegaConf.get_type(cfg).trainer_keys)
    return {**{k: v for k, v in values.items() if k not in skip}, **values.get("kwargs", {})}


def instantiate_optimizer(cfg, params: list[nn.Parameter], *, seed: int) -> Optimizer:
    """Hydra instantiates ``cfg._target_`` (a partial: ``_partial_``) with :func:`constructor_kwargs`, nested
    ``_target_`` nodes included (a base optimizer class); the result is called with ``params``, and with the run's
    ``seed`` when the constructor takes one that the config does not set (Entropy-SGD's noise)."""
    from hydra.utils import instantiate

    build = instantiate({"_target_": cfg._target_, "_partial_": True, **constructor_kwargs(cfg)}, _convert_="all")
    takes_seed = "seed" in inspect.signature(build.func).parameters and "seed" not in build.keywords
    return build(params=params, **({"seed": seed} if takes_seed else {}))


def build_optimizer(cfg, model: nn.Module, *, seed: int = 0) -> Optimizer:
    """The optimizer of ``cfg`` for ``model.parameters()``; ``seed`` seeds optimizer noise (Entropy-SGD)."""
    check_optimizer_config(cfg)
    return instantiate_optimizer(cfg, list(model.parameters()), seed=seed)


def evals_per_step(cfg) -> int:
    """Gradient evaluations one step costs, for planning and for the evaluation caps before the first step (the
    trainer charges what it counts, and plans with the most a step has cost). An upper bound for a Gauss–Newton or
    Newton projection with a tolerance (Newton's cap counts each Hessian-vector product as ``HVP_COST``
    evaluations); Entropy-SGD with fresh batches spends one per batch. Another optimizer: one evaluation, one more
    for ``grad_then_closure`` (the SAM family's perturbed gradient), ``HVP_COST`` more with ``create_graph``."""
    schema = OmegaConf.get_type(cfg)
    if issubclass(schema, SAMConfig):
        return 2
    if issubclass(schema, EntropySGDConfig):
        return cfg.L
    if issubclass(schema, RBOConfig):
        return cfg.proj_steps
    if issubclass(schema, SGDKStepsConfig):
        return cfg.steps_per_batch
    return 1 + (cfg.protocol == Protocol.grad_then_closure) + HVP_COST * cfg.create_graph


# ---- checks before any work (issue 16) -----------------------------------------------------------------------

def _range_checks(values: dict) -> dict[str, tuple[Callable, str]]:
    """key: (test, what is allowed), for the keys torch's optimizers check loosely or not at all."""
    return {
        "lr": (lambda v: v is None or v > 0, "a number > 0"),
        "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
        "weight_decay": (lambda v: v >= 0, "a number >= 0"),
        "nesterov": (lambda v: not v or values.get("momentum", 0) > 0, "false, or true with momentum > 0"),
        "betas": (lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
        "eps": (lambda v: v > 0, "a number > 0"),
    }


def _numbers(value) -> list:
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, float)]


def _check_values(values: dict, prefix: str) -> None:
    """Every number finite; torch's keys in range (:func:`_range_checks`). Third-party ``kwargs``: betas may have
    three entries (Adan)."""
    for key, value in values.items():
        if any(not math.isfinite(v) for v in _numbers(value)):
            raise ValueError(f"{prefix}{key}={value!r} is not allowed; allowed: finite numbers")
    for key, (ok, allowed) in _range_checks(values).items():
        if key == "betas" and prefix.endswith("kwargs.") and key in values:
            ok, allowed = (lambda v: all(0 <= b < 1 for b in v)), "numbers in [0, 1)"
        if key in values and not ok(values[key]):
            raise ValueError(f"{prefix}{key}={values[key]!r} is not allowed; allowed: {allowed}")


def _keyword_names(target: Callable) -> str:
    names = [p.name for p in inspect.signature(target).parameters.values()
             if p.name not in ("self", "params") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    forwards = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(target).parameters.values())
    return ", ".join(names) + (" and those it passes on" if forwards else "")


def _check_nothing_ignored(cfg, kwargs: dict) -> None:
    """A class that takes ``**kwargs`` may keep a misspelt key without using it (pytorch-optimizer's do): ``lr``
    and every key of ``kwargs`` must be a named parameter of ``_target_`` or of a class it is given (a base
    optimizer, which gets the keys it passes on)."""
    from hydra.utils import get_object, instantiate

    given = [instantiate(v) for v in kwargs.values() if isinstance(v, dict) and "_target_" in v]
    classes = [get_object(cfg._target_), *(c for c in given if isinstance(c, type))]
    accepted = set().union(*(inspect.signature(c).parameters for c in classes))
    for key, value in {"lr": cfg.lr, **kwargs}.items():
        if key not in accepted:
            path = "optimizer.kwargs." if key in kwargs else "optimizer."
            raise ValueError(f"{path}{key}={value!r} is not allowed: {cfg._target_} takes no such argument (it "
                             f"would be ignored); allowed: {'; '.join(_keyword_names(c) for c in classes)}")


def _refusal(cfg, err: Exception) -> str:
    """One sentence for an optimizer that refused its arguments: the key, its value and what is allowed."""
    from hydra.utils import get_object

    message = " ".join(str(err).split())
    said = re.fullmatch(r"invalid (\w+)=(.*?): (.*)", message)  # rbo.common.check_hyper's wording
    if said:
        return f"optimizer.{said[1]}={said[2]} is not allowed; allowed: {said[3]}"
    if message.startswith("optimizer."):
        return message
    kwargs = OmegaConf.to_container(cfg.get("kwargs", {}), resolve=True)
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", message)
    if unexpected:
        key = unexpected[1]
        path = f"optimizer.kwargs.{key}" if key in kwargs else f"optimizer.{key}"
        return (f"{path} is not allowed: {cfg._target_} takes no argument {key!r}; allowed: "
                f"{_keyword_names(get_object(cfg._target_))}")
    named = next((k for k in kwargs if re.search(rf"\b{re.escape(k)}\b", message)), None)
    if named is not None:
        return f"optimizer.kwargs.{named}={kwargs[named]!r} is not allowed; allowed: what {cfg._target_} accepts " \
               f"({type(err).__name__}: {message})"
    return f"optimizer: {cfg._target_} refused its arguments ({type(err).__name__}: {message})"


def check_optimizer_config(cfg, *, lr_pending: bool = False) -> None:
    """Before any data or model (issue 16): ``cfg`` names an importable ``_target_`` and a ``name`` that fits it
    (the file it came from, or for ``custom`` its class), every number is finite and torch's keys are in range,
    and the optimizer builds on a stand-in parameter; else a one-line ``ValueError`` naming the key, its value and
    what is allowed. ``lr_pending``: an unresolved ``sgd_effective_lr`` lr (null until its reference runs finish)
    is accepted and nothing is built (``scripts.plan``)."""
    from hydra.errors import InstantiationException

    if OmegaConf.is_missing(cfg, "_target_"):
        raise ValueError("optimizer._target_ is missing; allowed: an importable optimizer class, e.g. "
                         "optimizer._target_=torch.optim.Adam")
    missing = sorted(key.removeprefix("optimizer.") for key in OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError(f"optimizer.{missing[0]} is missing; allowed: a value (set optimizer.{missing[0]}=...)")
    if not cfg._partial_:
        raise ValueError("optimizer._partial_=False is not allowed; allowed: true (the trainer passes the parameters)")
    schema = OmegaConf.get_type(cfg)
    if cfg.role != Role.custom:
        names = registry.option_names()
        if cfg.name not in names:
            raise ValueError(f"optimizer.name={cfg.name!r} is unknown; allowed: {', '.join(names)}")
        expected = registry.schema_of(cfg.name)
        if schema is not expected:
            raise ValueError(f"optimizer.name={cfg.name!r} needs the {expected.__name__} keys, but the optimizer "
                             f"config follows {schema.__name__}; select it with optimizer={cfg.name}")
    pending = lr_pending and cfg.lr is None and issubclass(schema, SGDEffectiveLRConfig)
    if cfg.lr is None and not pending:
        raise ValueError(f"optimizer.lr=None is not allowed for optimizer.name={cfg.name!r}; allowed: a number > 0"
                         " (only sgd_effective_lr derives its lr, from completed reference runs)")
    values = OmegaConf.to_container(cfg, resolve=True)
    kwargs = values.pop("kwargs", {})
    clash = sorted(set(kwargs) & set(values))
    if clash:
        raise ValueError(f"optimizer.kwargs.{clash[0]} is not allowed; allowed: optimizer.{clash[0]} (a key of "
                         f"{schema.__name__}, not in kwargs)")
    _check_values(values, "optimizer.")
    _check_values(kwargs, "optimizer.kwargs.")
    if pending:
        return
    try:
        instantiate_optimizer(cfg, [nn.Parameter(torch.zeros(1))], seed=0)
    except InstantiationException as err:
        cause = " ".join(str(err.__cause__ or err).split())
        raise ValueError(f"optimizer._target_={cfg._target_!r} cannot be built ({cause}); allowed: an importable "
                         "optimizer class or function (pytorch_optimizer.*: the zoo extra, pip install -e '.[zoo]')"
                         ) from None
    except (ValueError, TypeError) as err:
        raise ValueError(_refusal(cfg, err)) from None
    if issubclass(schema, AnyOptimizerConfig):
        _check_nothing_ignored(cfg, kwargs)


# ---- driving a step --------------------------------------------------------------------------------------------

def takes_create_graph(closure_call: Callable) -> bool:
    """Whether a closure's ``__call__`` (unbound) accepts ``create_graph`` (the protocol of :mod:`rbo.common`)."""
    try:
        inspect.signature(closure_call).bind(None, create_graph=True)
    except TypeError:
        return False
    return True


class StepDriver:
    """``driver(closure)``: one step of ``optimizer`` as ``cfg.protocol`` says; returns the gradient evaluations it
    cost (README "Adding an optimizer"):

    - ``plain``: ``closure()`` (forward and backward), then ``step()``;
    - ``closure``: ``step(closure)``, which calls the closure as often as it needs;
    - ``grad_then_closure``: ``closure()``, then ``step(closure)``, which perturbs along that gradient first.

    The cost is what the closure counted (every evaluation it ran, the trainer's own included), unless the
    optimizer reports ``step_evals`` (RBO: its Hessian-vector products included). With ``create_graph`` the
    gradients keep their graph (the closure's ``create_graph``, checked here, before any step) and every backward
    pass the step runs outside the closure (a Hessian-vector product) is charged ``HVP_COST`` evaluations; the
    gradients are detached after the step, which frees the graph. ``closure_call``: the ``__call__`` of what the
    optimizer will be given; ``graphed``: the fast path's :class:`experiments.fast_path.GraphedClosure`, whose step
    pre-hook also replays the trainer's own evaluation.
    """

    def __init__(self, optimizer: Optimizer, cfg, *, closure_call: Callable, graphed=None):
        self.optimizer, self.protocol, self.create_graph, self.graphed = (optimizer, Protocol(cfg.protocol),
                                                                            bool(cfg.create_graph), graphed)
        self.params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        self.backward_passes = 0
        if self.create_graph:
            if not takes_create_graph(closure_call):
                raise ValueError(f"optimizer.create_graph=True (optimizer={cfg.name}: Hessian-vector products) needs "
                                 f"a closure that takes create_graph, and {closure_call.__qualname__} does not; "
                                 "allowed: cuda_graphs=false with this optimizer")
            self.params[0].register_hook(self._count_backward)

    def _count_backward(self, grad: torch.Tensor) -> None:
        self.backward_passes += 1

    def _own_evaluation(self, closure) -> Callable:
        """What the trainer evaluates before ``step``: the closure, or its CUDA-graph replay on the fast path."""
        swapped = self.graphed.pre_step(self.optimizer, (self.optimizer, closure), {}) if self.graphed else None
        return closure if swapped is None else swapped[0][1]

    def __call__(self, closure) -> int:
        evals_before, passes_before = closure.counters["grad_evals"], self.backward_passes
        if self.protocol == Protocol.closure:
            self.optimizer.step(closure)
        else:
            evaluate = self._own_evaluation(closure)
            if self.create_graph:
                evaluate(create_graph=True)
            else:
                evaluate()
            if self.protocol == Protocol.plain:
                self.optimizer.step()
            else:
                self.optimizer.step(closure)
        evaluations = closure.counters["grad_evals"] - evals_before
        if self.create_graph:
            for p in self.params:
                if p.grad is not None:
                    p.grad = p.grad.detach()
            evaluations += HVP_COST * (self.backward_passes - passes_before - evaluations)
        reported = getattr(self.optimizer, "step_evals", None)
        return evaluations if reported is None else reported
