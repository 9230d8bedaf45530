"""Sharpness-Aware Minimization (Foret et al., ICLR 2021) and Adaptive SAM (Kwon et al., ICML 2021), SPEC §2.

In the style of davda54/sam: SAM wraps any ``torch.optim`` class and shares its ``param_groups`` and
``state``, so a scheduler attached to either object acts on both and ``state_dict`` carries the base
optimizer's buffers (momentum, Adam moments). One ``step(closure)`` on ONE minibatch:

1. g = ∇f(θ)                                            (first evaluation, updates BatchNorm running stats)
2. ε = ρ·g/‖g‖, or for ASAM ε = ρ·|θ|²⊙g/‖|θ|⊙g‖       (one global ℓ2 norm over every group)
3. g′ = ∇f(θ + ε)                                       (second evaluation, BatchNorm running stats frozen)
4. θ restored; g′ clipped to ``max_grad_norm`` if given (clipping g would do nothing: ε is normalised)
5. base-optimizer step with g′.

Two gradient evaluations per step.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer

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


class SAM(Optimizer):
    """SAM/ASAM around ``base_optimizer`` (a class, e.g. ``torch.optim.SGD``) built with ``**base_kwargs``.

    ``rho`` and ``adaptive`` live in the param groups; ``max_grad_norm`` is global (one norm over all groups,
    as ``torch.nn.utils.clip_grad_norm_``). After each step ``self.diagnostics`` holds ``grad_evals`` (2),
    ``grad_norm`` (‖g‖ at θ) and ``perturbed_loss`` (f(θ + ε)), the last two as 0-dim tensors.
    """

    def __init__(self, params, base_optimizer: type[Optimizer], rho: float = 0.05, adaptive: bool = False,
                 max_grad_norm: float | None = None, **base_kwargs):
        check_hyper("base_optimizer", base_optimizer, callable(base_optimizer),
                    "a torch.optim.Optimizer class such as torch.optim.SGD (not an instance)")
        check_hyper("rho", rho, rho >= 0, "rho >= 0")
        check_hyper("adaptive", adaptive, isinstance(adaptive, bool), "True or False")
        check_hyper("max_grad_norm", max_grad_norm, max_grad_norm is None or max_grad_norm > 0,
                    "None (no clipping) or a number > 0")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **base_kwargs))
        self.max_grad_norm = max_grad_norm
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self._share_base()
        self.defaults.update(self.base_optimizer.defaults)
        self.diagnostics: dict[str, float | torch.Tensor] = {}

    def _share_base(self) -> None:
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        closure = require_closure(closure, "SAM")
        loss = evaluate(closure, first=True)
        groups = groups_with_grad(self.param_groups)
        params = [p for _, ps in groups for p in ps]
        grads = grads_of(params)
        finite = all_finite(loss, *grads)
        grad_norm = global_sq_norm(grads).sqrt()

        # weighted = g (SAM) or |θ|⊙g (ASAM); ε = ρ·weighted/‖weighted‖, times |θ| once more for ASAM.
        abs_params = [torch._foreach_abs(ps) if group["adaptive"] else None for group, ps in groups]
        weighted = [grads_of(ps) if a is None else torch._foreach_mul(grads_of(ps), a)
                    for (_, ps), a in zip(groups, abs_params)]
        scale = 1.0 / (global_sq_norm([t for w in weighted for t in w]).sqrt() + 1e-12)
        saved = snapshot(params)
        for (group, ps), a, w in zip(groups, abs_params, weighted):
            eps = torch._foreach_mul(w, scale * group["rho"])
            if a is not None:
                torch._foreach_mul_(eps, a)
            torch._foreach_add_(ps, eps)

        perturbed_loss = evaluate(closure, first=False)
        finite &= all_finite(perturbed_loss, *grads_of(params))
        restore(params, saved)
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm, foreach=True)
        if not finite:  # the step's one host sync
            raise DivergenceError(
                "SAM: non-finite loss or gradient; parameters left at their last finite values")
        self.base_optimizer.step()
        self.diagnostics = {"grad_evals": 2, "grad_norm": grad_norm, "perturbed_loss": perturbed_loss}
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """Load through the base optimizer (its own casting rules), then share its groups and state again."""
        self.base_optimizer.load_state_dict(state_dict)
        self._share_base()
