"""Entropy-SGD (Chaudhari et al., ICLR 2017), SPEC §2, as SGD on the local-entropy gradient.

One ``step(closure)`` from x (the parameters), with γ = γ₀(1 + γ₁)^t where t counts the outer steps taken
(γ₀ = ``gamma``, γ₁ = ``scoping``):

1. L Langevin (SGLD) steps from x′ = μ = x, each on a fresh gradient evaluation at x′:
   x′ ← x′ − η′·[∇f(x′) − γ(x − x′)] + √η′·ε·N(0, I);   μ ← (1 − α)·μ + α·x′
   (η′ = ``langevin_lr``, ε = ``noise``).
2. x is restored and takes one ``torch.optim.SGD`` step (``lr``, ``momentum``, ``nesterov``,
   ``weight_decay``) with the local-entropy gradient γ(x − μ) in place of ∇f(x).

α is the weight of the NEW sample in the running average: the PyTorch port's 0.25 on the new sample is
α = 0.25; our default α = 0.75 is an ASSUMPTION (SPEC §2). A step costs exactly L gradient evaluations: the
first, at x′ = x, is also the gradient at x.

Minibatches, ``fresh_batches``: False (the RBO authors' variant) runs all L evaluations on the closure's
current minibatch: ``closure()``. True (the original algorithm) calls ``closure()`` for the first evaluation
and ``closure(advance=True)`` for each of the other L − 1, which must move to the next minibatch before
evaluating; one step then consumes L minibatches. Only the first evaluation of a step updates BatchNorm
running statistics.

Noise comes from the optimizer's own ``torch.Generator`` seeded with ``seed``; its state and t travel in
``state_dict``, so a resumed run continues identically. After each step ``self.diagnostics`` holds
``grad_evals`` (L), ``grad_norm`` (‖∇f(x)‖, 0-dim tensor) and ``gamma`` (γ of the first group).
"""

from __future__ import annotations

import math

import torch
from torch.optim import SGD

from rbo.common import (
    Closure,
    DivergenceError,
    all_finite,
    check_hyper,
    evaluate,
    global_sq_norm,
    grads_of,
    groups_with_grad,
    require_closure,
    restore,
    snapshot,
)


class EntropySGD(SGD):
    """Entropy-SGD; ``gamma``, ``scoping``, ``langevin_lr``, ``noise`` and ``alpha`` may differ per param
    group, ``L``, ``fresh_batches`` and ``seed`` are global. See the module docstring for the algorithm."""

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, L: int = 20, gamma: float = 0.03, scoping: float = 0.0,
                 langevin_lr: float = 0.1, noise: float = 1e-4, alpha: float = 0.75,
                 fresh_batches: bool = False, seed: int = 0):
        check_hyper("lr", lr, lr > 0, "lr > 0")
        check_hyper("momentum", momentum, 0 <= momentum < 1, "0 <= momentum < 1")
        check_hyper("nesterov", nesterov, isinstance(nesterov, bool) and (momentum > 0 or not nesterov),
                    "True or False; True needs momentum > 0")
        check_hyper("weight_decay", weight_decay, weight_decay >= 0, "weight_decay >= 0")
        check_hyper("L", L, isinstance(L, int) and not isinstance(L, bool) and L >= 1, "an integer >= 1")
        check_hyper("gamma", gamma, gamma >= 0, "gamma >= 0")
        check_hyper("scoping", scoping, scoping >= 0, "scoping >= 0")
        check_hyper("langevin_lr", langevin_lr, langevin_lr > 0, "langevin_lr > 0")
        check_hyper("noise", noise, noise >= 0, "noise >= 0")
        check_hyper("alpha", alpha, 0 < alpha <= 1, "0 < alpha <= 1 (weight of the new sample)")
        check_hyper("fresh_batches", fresh_batches, isinstance(fresh_batches, bool), "True or False")
        check_hyper("seed", seed, isinstance(seed, int) and not isinstance(seed, bool), "an integer")
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
        langevin = dict(gamma=gamma, scoping=scoping, langevin_lr=langevin_lr, noise=noise, alpha=alpha)
        self.defaults.update(langevin)
        for group in self.param_groups:
            for key, value in langevin.items():
                group.setdefault(key, value)
        self.L, self.fresh_batches = L, fresh_batches
        self.generator = torch.Generator(self.param_groups[0]["params"][0].device).manual_seed(seed)
        self.state["scoping_steps"] = 0  # t; a non-parameter key, kept as is by state_dict
        self.diagnostics: dict[str, float | torch.Tensor] = {}

    def _gamma(self, group: dict) -> float:
        return group["gamma"] * (1 + group["scoping"]) ** self.state["scoping_steps"]

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        closure = require_closure(closure, "EntropySGD")
        loss = evaluate(closure, first=True)
        groups = groups_with_grad(self.param_groups)
        params = [p for _, ps in groups for p in ps]
        x = [snapshot(ps) for _, ps in groups]
        mu = [snapshot(ps) for _, ps in groups]
        finite = all_finite(loss, *grads_of(params))
        grad_norm = global_sq_norm(grads_of(params)).sqrt()
        for i in range(self.L):
            if i > 0:  # the first Langevin gradient, at x′ = x, is the one just computed
                f = evaluate(closure, first=False, **({"advance": True} if self.fresh_batches else {}))
                finite &= all_finite(f, *grads_of(params))
            for (group, ps), xs, mus in zip(groups, x, mu):
                lr = group["langevin_lr"]
                torch._foreach_lerp_(ps, xs, lr * self._gamma(group))  # x′ + η′γ(x − x′)
                torch._foreach_add_(ps, grads_of(ps), alpha=-lr)  # − η′∇f(x′)
                if group["noise"] > 0:
                    torch._foreach_add_(ps, self._normal_like(ps), alpha=math.sqrt(lr) * group["noise"])
                torch._foreach_lerp_(mus, ps, group["alpha"])  # μ ← (1 − α)μ + αx′

        restore(params, [t for xs in x for t in xs])
        if not finite:  # the step's one host sync
            raise DivergenceError(
                "EntropySGD: non-finite loss or gradient; parameters left at their last finite values")
        for (group, ps), xs, mus in zip(groups, x, mu):
            torch._foreach_sub_(mus, xs)
            torch._foreach_mul_(mus, -self._gamma(group))  # μ now holds γ(x − μ)
            for p, g in zip(ps, mus):
                p.grad = g
        super().step()
        self.diagnostics = {"grad_evals": self.L, "grad_norm": grad_norm,
                            "gamma": self._gamma(self.param_groups[0])}
        self.state["scoping_steps"] += 1
        return loss

    def _normal_like(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """N(0, I) for every tensor of ``params`` from one draw of the optimizer's generator."""
        flat = torch.randn(sum(p.numel() for p in params), generator=self.generator,
                           device=self.generator.device, dtype=params[0].dtype)
        return [n.view_as(p) for n, p in zip(flat.split([p.numel() for p in params]), params)]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.generator.set_state(state_dict.pop("generator").cpu())
        super().load_state_dict(state_dict)
