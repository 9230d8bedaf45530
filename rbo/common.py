"""What every optimizer of the suite shares: the closure protocol, BatchNorm statistics, errors, checks.

The closure protocol (same as ``torch.optim.LBFGS``): ``closure()`` zero-grads, recomputes the loss on the
current minibatch, back-propagates and returns the loss. An optimizer that needs a *new* minibatch (the
original Entropy-SGD) calls ``closure(advance=True)``; one that needs Hessian-vector products (RBO with
``projection="newton"``) calls ``closure(create_graph=True)``, and the closure must then set every ``p.grad`` to a
gradient that keeps its graph: ``torch.autograd.grad(loss, params, create_graph=True)``, assigned (not
``loss.backward(create_graph=True)``, whose parameter-to-gradient reference cycle PyTorch warns leaks memory).
Closures that never serve such an optimizer may ignore these arguments.

BatchNorm: an optimizer that evaluates the loss several times per step wraps every evaluation but the first
in :func:`frozen_running_stats`, so each step updates running statistics exactly once while every evaluation
still normalises with batch statistics (the RBO authors' code, SPEC §1; the SAM pitfall, SPEC §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

Closure = Callable[..., torch.Tensor]


class DivergenceError(FloatingPointError):
    """The loss or a gradient became non-finite; the optimizer left the parameters at their last finite values."""


@contextmanager
def frozen_running_stats() -> Iterator[None]:
    """Inside this block no BatchNorm layer of any model updates its running statistics (batch statistics
    are still used). A global forward pre-hook, so it needs no reference to the model: BatchNorm.forward in
    train mode with ``track_running_stats=False`` normalises with batch statistics and passes no running
    buffers to ``F.batch_norm``, so nothing is updated and nothing is copied; the flag is restored on exit."""
    frozen: list[_BatchNorm] = []

    def skip_running_stats(module: nn.Module, _inputs) -> None:
        if isinstance(module, _BatchNorm) and module.training and module.track_running_stats:
            module.track_running_stats = False
            frozen.append(module)

    hook = nn.modules.module.register_module_forward_pre_hook(skip_running_stats)
    try:
        yield
    finally:
        hook.remove()
        for module in frozen:
            module.track_running_stats = True


def evaluate(closure: Closure, *, first: bool, **kwargs) -> torch.Tensor:
    """One loss-and-gradient evaluation with grad enabled; all but the first of a step leave BN stats alone."""
    with torch.enable_grad():
        if first:
            return closure(**kwargs).detach()
        with frozen_running_stats():
            return closure(**kwargs).detach()


def backward(loss: torch.Tensor, params: list[torch.Tensor], *, create_graph: bool = False) -> None:
    """A closure's backward pass (module docstring): ``loss.backward()``, or with ``create_graph`` each ``p.grad``
    assigned from ``torch.autograd.grad(..., create_graph=True)`` (a gradient that keeps its graph for
    Hessian-vector products, without the reference cycle ``backward(create_graph=True)`` makes)."""
    if not create_graph:
        loss.backward()
        return
    for p, grad in zip(params, torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)):
        p.grad = grad


def require_closure(closure: Closure | None, name: str) -> Closure:
    if closure is None:
        raise ValueError(
            f"{name}.step() needs a closure: a function that zero-grads, recomputes the loss on the current "
            "minibatch, calls backward() and returns the loss (as for torch.optim.LBFGS)."
        )
    return closure


def check_hyper(name: str, value, ok: bool, allowed: str) -> None:
    """Raise ``ValueError`` naming the hyperparameter, its value and what is allowed."""
    if not ok or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"invalid {name}={value!r}: {allowed}")


def params_with_grad(param_groups: Iterable[dict]) -> list[torch.Tensor]:
    return [p for group in param_groups for p in group["params"] if p.grad is not None]


def groups_with_grad(param_groups: Iterable[dict]) -> list[tuple[dict, list[torch.Tensor]]]:
    """(group, its parameters that have a gradient) for every group that has any: what a step updates."""
    return [(group, params) for group in param_groups if (params := params_with_grad([group]))]


def grads_of(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.grad for p in params]


def global_sq_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Squared ℓ2 norm over every tensor of every group, as a 0-dim tensor of at least float32 (no host sync)."""
    if not tensors:
        return torch.zeros(())
    norms = torch._foreach_norm(tensors)
    dtype = torch.promote_types(torch.float32, norms[0].dtype)
    return torch.stack([n.to(dtype) for n in norms]).square().sum()


def all_finite(*tensors: torch.Tensor) -> torch.Tensor:
    """0-dim bool tensor: every given tensor is finite (no host sync)."""
    return torch.stack([torch.isfinite(t).all() for t in tensors]).all()


def snapshot(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def restore(params: list[torch.Tensor], saved: list[torch.Tensor]) -> None:
    torch._foreach_copy_(params, saved)
