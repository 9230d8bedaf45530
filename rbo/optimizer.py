"""Rolling Ball Optimizer (Belgoumri et al., arXiv 2505.19527) as a ``torch.optim.Optimizer``.

The step is the authors' (SPEC §1). θ are the parameters, f the loss on ONE minibatch, η = ``lr``,
ρ = ``radius``, K = ``proj_steps``, γ = ``proj_lr``:

1. f, g = f(θ), ∇f(θ);  s = √(1 + ‖g‖²)                          (one global norm over all groups)
2. ball centre c = (θ, f) + ρ·(−g, 1)/s                            (upward unit normal of the graph)
3. roll along the lifted gradient (g, ‖g‖²):  θ̃ = θ − (ρ/s + η)·g,  ỹ = f + ρ/s − η·‖g‖²
4. project (θ̃, ỹ) back onto the graph: minimise ½‖x − θ̃‖² + ½(f(x) − ỹ)² from x₀ = θ, whose gradient is
   v(x) = (x − θ̃) + (f(x) − ỹ)·∇f(x):
   - ``projection="gd"`` (the authors'): K steps x ← x − γ·v(x), no tolerance;
   - ``projection="gauss_newton"`` (beyond the paper): x ← x − (I + ∇f ∇fᵀ)⁻¹ v(x), inverted in closed form
     by Sherman–Morrison, until ‖v‖ ≤ ``proj_tol``·‖v(x₀)‖ or K evaluations.
   The last iterate is the new θ.

The evaluation at x₀ = θ is step 1's, so a step costs exactly K gradient evaluations (the authors' code
pays 1 + K with identical numbers). All evaluations run on the closure's current minibatch; all but the
first leave BatchNorm running statistics alone (:func:`rbo.common.frozen_running_stats`).

With several parameter groups the θ-components use each group's ``lr``, ``radius`` and ``proj_lr``; the
height ỹ (one number) uses Σ_groups η·‖g_group‖² and the first group's radius.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from rbo.common import (
    Closure,
    DivergenceError,
    check_hyper,
    evaluate,
    global_sq_norm,
    groups_with_grad,
    params_with_grad,
    require_closure,
    restore,
    snapshot,
)

PROJECTIONS = ("gd", "gauss_newton")
_LOOP_KEYS = ("proj_steps", "projection", "proj_tol")  # one inner loop for all groups


class RBO(Optimizer):
    """Rolling Ball Optimizer; ``step(closure)`` re-evaluates the loss K times on the same minibatch.

    After each step ``self.diagnostics`` holds 0-dim tensors: ``grad_evals``, ``grad_norm`` (‖g‖ at θ),
    ``step_norm`` (‖θ_new − θ‖), ``effective_step`` (‖θ_new − θ‖ / (η‖g‖)), and, at the last evaluated
    iterate, ``proj_residual`` (‖v‖) and ``centre_distance`` (distance to (θ̃, ỹ): ρ for a converged
    projection on an affine loss, ρ + O(η²·curvature) otherwise). :meth:`measure_contact` measures the last
    two at the returned point itself, for one more evaluation.
    """

    def __init__(self, params, lr: float, radius: float, proj_steps: int = 100, proj_lr: float = 1e-3,
                 projection: str = "gd", proj_tol: float | None = None):
        _check(lr=lr, radius=radius, proj_steps=proj_steps, proj_lr=proj_lr, projection=projection,
               proj_tol=proj_tol)
        defaults = dict(lr=lr, radius=radius, proj_steps=proj_steps, proj_lr=proj_lr, projection=projection,
                        proj_tol=proj_tol)
        super().__init__(params, defaults)
        for group in self.param_groups:
            _check(**{k: group[k] for k in defaults})
            for key in _LOOP_KEYS:
                check_hyper(key, group[key], group[key] == self.param_groups[0][key],
                            f"must be the same in every parameter group (first group: {self.param_groups[0][key]!r})")
        self.diagnostics: dict[str, torch.Tensor] = {}
        self._target: tuple[list[torch.Tensor], torch.Tensor] | None = None

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        closure = require_closure(closure, "RBO")
        first_loss = evaluate(closure, first=True)
        groups = groups_with_grad(self.param_groups)
        xs = _flat(ps for _, ps in groups)
        theta = snapshot(xs)
        lead = groups[0][0]

        # Steps 1-3: the normal at (θ, f), the ball centre, and the rolled centre (θ̃, ỹ).
        group_sq = [global_sq_norm([p.grad for p in ps]) for _, ps in groups]
        g_sq = torch.stack(group_sq).sum()
        s = torch.sqrt(1.0 + g_sq)
        targets = [torch._foreach_sub([p.detach() for p in ps], torch._foreach_mul(
            [p.grad for p in ps], g["radius"] / s + g["lr"])) for g, ps in groups]
        y_target = first_loss + lead["radius"] / s - sum(g["lr"] * sq for (g, _), sq in zip(groups, group_sq))

        # Step 4: project (θ̃, ỹ) back onto the graph, warm-started at θ (whose evaluation is reused).
        project = self._project_gauss_newton if lead["projection"] == "gauss_newton" else self._project_gd
        evals, loss_sum, residual, distance = project(closure, groups, targets, y_target, first_loss)

        step_norm = global_sq_norm(torch._foreach_sub(xs, theta)).sqrt()
        if not torch.isfinite(loss_sum + step_norm):
            restore(xs, theta)
            raise DivergenceError(f"RBO: non-finite loss or gradient (sum of the step's losses {float(loss_sum):.4g});"
                                  " parameters left at their values before this step")
        grad_norm = g_sq.sqrt()
        self._target = ([t for ts in targets for t in ts], y_target)
        self.diagnostics = {
            "grad_evals": torch.tensor(evals), "grad_norm": grad_norm, "step_norm": step_norm,
            "effective_step": step_norm / (lead["lr"] * grad_norm), "proj_residual": residual,
            "centre_distance": distance,
        }
        return first_loss

    @staticmethod
    def _project_gd(closure, groups, targets, y_target, loss):
        """The authors' projection: K steps x ← x − γ·v(x), no tolerance (SPEC §1 step 4).

        In place, without temporaries: x ← x + γ(θ̃ − x), then x ← x − γ·(f(x) − ỹ)·∇f(x), scaling the gradient
        the next evaluation replaces. The last step forms v explicitly, to report its norm and the distance.
        """
        proj_steps = groups[0][0]["proj_steps"]
        loss_sum = loss.clone()
        for k in range(proj_steps):
            if k > 0:
                loss = _evaluate_again(closure, loss_sum)
            if k == proj_steps - 1:
                break
            for (group, ps), t in zip(groups, targets):
                grads = [p.grad for p in ps]
                torch._foreach_lerp_(ps, t, group["proj_lr"])
                torch._foreach_mul_(grads, loss - y_target)
                torch._foreach_add_(ps, grads, alpha=-group["proj_lr"])
        v, distance = _projection_gradient(groups, targets, loss - y_target)
        for (group, ps), v_group in zip(groups, v):
            torch._foreach_add_(ps, v_group, alpha=-group["proj_lr"])
        return proj_steps, loss_sum, global_sq_norm(_flat(v)).sqrt(), distance

    @staticmethod
    def _project_gauss_newton(closure, groups, targets, y_target, loss):
        """Damped Gauss–Newton: δ = −(I + g gᵀ)⁻¹ v by Sherman–Morrison, one evaluation per iteration.

        A step that raises the objective ½‖x − θ̃‖² + ½(f(x) − ỹ)² is halved from the last accepted point
        (Gauss–Newton drops the (f − ỹ)·∇²f term, which matters when ρ·‖∇²f‖ is not small). Stops when
        ‖v‖ ≤ proj_tol·‖v(θ)‖, returning that evaluated point, or after proj_steps evaluations.
        """
        proj_steps, proj_tol = groups[0][0]["proj_steps"], groups[0][0]["proj_tol"]
        xs = _flat(ps for _, ps in groups)
        loss_sum, accepted, scale = loss.clone(), None, 1.0
        direction = best_distance = residual = residual0 = None
        for k in range(proj_steps):
            if k > 0:
                loss = _evaluate_again(closure, loss_sum)
            v, distance = _projection_gradient(groups, targets, loss - y_target)
            if accepted is not None and distance > best_distance:
                scale *= 0.5
                torch._foreach_copy_(xs, accepted)
                torch._foreach_add_(xs, direction, alpha=scale)
                continue
            v = _flat(v)
            residual, best_distance, scale = global_sq_norm(v).sqrt(), distance, 1.0
            residual0 = residual if accepted is None else residual0
            if proj_tol is not None and residual <= proj_tol * residual0:
                return k + 1, loss_sum, residual, distance
            grads = [p.grad for p in xs]
            g_dot_v = torch.stack([(g * u).sum() for g, u in zip(grads, v)]).sum()
            direction = torch._foreach_add(v, torch._foreach_mul(grads, -g_dot_v / (1.0 + global_sq_norm(grads))))
            torch._foreach_neg_(direction)
            accepted = snapshot(xs)
            torch._foreach_add_(xs, direction)
        return proj_steps, loss_sum, residual, best_distance

    @torch.no_grad()
    def measure_contact(self, closure: Closure) -> dict[str, float]:
        """Distance from the returned point to the rolled centre and the projection residual there.

        Costs one evaluation on the closure's minibatch (BatchNorm statistics untouched); call it right
        after :meth:`step`, before the closure moves on. The residual is 0 for a converged projection.
        """
        if self._target is None:
            raise RuntimeError("RBO.measure_contact() needs a step() first")
        targets, y_target = self._target
        loss = evaluate(closure, first=False)
        xs = params_with_grad(self.param_groups)
        offsets = torch._foreach_sub(xs, targets)
        gap = loss - y_target
        distance = (global_sq_norm(offsets) + gap.square()).sqrt()
        torch._foreach_add_(offsets, torch._foreach_mul([p.grad for p in xs], gap))
        return {"centre_distance": float(distance), "proj_residual": float(global_sq_norm(offsets).sqrt())}


def _flat(nested) -> list[torch.Tensor]:
    return [t for part in nested for t in part]


def _evaluate_again(closure, loss_sum: torch.Tensor) -> torch.Tensor:
    """A projection evaluation (BatchNorm statistics untouched), its loss added to the step's running sum."""
    loss = evaluate(closure, first=False)
    loss_sum += loss
    return loss


def _projection_gradient(groups, targets, height_gap):
    """v(x) = (x − θ̃) + (f(x) − ỹ)·∇f(x) per group, and the distance ‖(x, f(x)) − (θ̃, ỹ)‖."""
    v = [torch._foreach_sub([p.detach() for p in ps], t) for (_, ps), t in zip(groups, targets)]
    distance = (global_sq_norm(_flat(v)) + height_gap.square()).sqrt()
    for (_, ps), v_group in zip(groups, v):
        torch._foreach_add_(v_group, torch._foreach_mul([p.grad for p in ps], height_gap))
    return v, distance


def _check(*, lr, radius, proj_steps, proj_lr, projection, proj_tol) -> None:
    check_hyper("lr", lr, lr > 0, "the rolling step size η must be > 0")
    check_hyper("radius", radius, radius >= 0, "the ball radius ρ must be >= 0")
    check_hyper("proj_steps", proj_steps, isinstance(proj_steps, int) and proj_steps >= 1,
                "the number of projection steps K must be an integer >= 1")
    check_hyper("proj_lr", proj_lr, proj_lr > 0, "the projection step size γ must be > 0")
    check_hyper("projection", projection, projection in PROJECTIONS, f"must be one of {PROJECTIONS}")
    check_hyper("proj_tol", proj_tol, proj_tol is None or proj_tol > 0, "must be None or > 0")
