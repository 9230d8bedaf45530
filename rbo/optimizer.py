"""Rolling Ball Optimizer (Belgoumri et al., arXiv 2505.19527) as a ``torch.optim.Optimizer``.

The step is the authors' (SPEC §1). θ are the parameters, f the loss on ONE minibatch, η = ``lr``,
ρ = ``radius``, K = ``proj_steps``, γ = ``proj_lr``:

1. f, g = f(θ), ∇f(θ);  s = √(1 + ‖g‖²)                          (one global norm over all groups)
2. ball centre c = (θ, f) + ρ·(−g, 1)/s                            (upward unit normal of the graph)
3. roll along the lifted gradient (g, ‖g‖²):  θ̃ = θ − (ρ/s + η)·g,  ỹ = f + ρ/s − η·‖g‖²
4. project (θ̃, ỹ) back onto the graph: minimise F(x) = ½‖x − θ̃‖² + ½(f(x) − ỹ)² from x₀ = θ, whose gradient
   is v(x) = (x − θ̃) + (f(x) − ỹ)·∇f(x) and whose Hessian is I + ∇f ∇fᵀ + (f(x) − ỹ)·∇²f:
   - ``projection="gd"`` (the authors'): K steps x ← x − γ·v(x), no tolerance; the last iterate is the new θ;
   - ``projection="gauss_newton"`` (beyond the paper): x ← x − (I + ∇f ∇fᵀ)⁻¹ v(x) by Sherman–Morrison;
   - ``projection="newton"`` (beyond the paper, issue 17): trust-region Newton–CG (Steihaug) with exact
     Hessian-vector products (double backward: the closure is called as ``closure(create_graph=True)`` and
     must then set each ``p.grad`` from ``torch.autograd.grad(loss, params, create_graph=True)``, rbo/common.py).
   The last two stop when ‖v‖ ≤ ``proj_tol``·‖v(θ)‖ or when K evaluations are spent, and return the best
   point they evaluated (the smallest F; a non-finite trial is never accepted).

Evaluations: the one at x₀ = θ is step 1's, so a step costs at most K (exactly K for gd; the authors' code pays
1 + K with identical numbers). A Hessian-vector product is charged as :data:`HVP_COST` evaluations. All
evaluations run on the closure's current minibatch; all but the first leave BatchNorm running statistics alone
(:func:`rbo.common.frozen_running_stats`).

Parameter groups share ρ, K, γ's loop and the projection (one ball, one inner loop); η and γ may differ per
group: θ̃ uses each group's η, ỹ (one number) uses Σ_groups η·‖g_group‖². Parameters narrower than float32
are refused: the projection's small steps (γ·v with γ = 1e-3) fall below bf16's resolution.
After a step every ``p.grad`` is ``None``: the last evaluation's gradient belongs to a projection iterate,
which in general is not the returned θ (:meth:`RBO.measure_contact` evaluates there).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

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

PROJECTIONS = ("gd", "gauss_newton", "newton")
HVP_COST = 2  # evaluations charged per Hessian-vector product: a backward pass through a gradient's graph
_SHARED_KEYS = ("radius", "proj_steps", "projection", "proj_tol")  # one ball and one inner loop for all groups


class RBO(Optimizer):
    """Rolling Ball Optimizer; ``step(closure)`` re-evaluates the loss up to K times on the same minibatch.

    After each step ``self.diagnostics`` holds 0-dim tensors: ``grad_evals`` (evaluations charged, HVPs
    included), ``grad_norm`` (‖g‖ at θ), ``step_norm`` (‖θ_new − θ‖), ``effective_step``
    (‖θ_new − θ‖ / (η‖g‖) with the first group's η; defined as 0 when ‖g‖ = 0), ``proj_residual`` (‖v‖),
    ``centre_distance`` (distance from (x, f(x)) to the rolled centre (θ̃, ỹ)) and ``contact_gap``
    (centre_distance − ρ: 0 when the ball touches the graph there, > 0 when it has lost contact, < 0 when the
    graph cuts into the ball, e.g. where the curvature exceeds 1/ρ). For gd these
    three describe the last evaluated iterate; for gauss_newton and newton the returned point. Newton adds
    ``hessian_vector_products`` and ``negative_curvature`` (CG directions with dᵀHd ≤ 0: the projection problem
    was indefinite). :meth:`measure_contact` measures the residual and distance at the returned point itself.
    ``self.step_evals`` is ``grad_evals`` as a Python int (no device sync): a trainer that counts closure calls
    charges it instead, so Newton's Hessian-vector products are paid for.
    """

    def __init__(self, params, lr: float, radius: float, proj_steps: int = 100, proj_lr: float = 1e-3,
                 projection: str = "gd", proj_tol: float | None = None):
        _check(lr=lr, radius=radius, proj_steps=proj_steps, proj_lr=proj_lr, projection=projection,
               proj_tol=proj_tol)
        defaults = dict(lr=lr, radius=radius, proj_steps=proj_steps, proj_lr=proj_lr, projection=projection,
                        proj_tol=proj_tol)
        super().__init__(params, defaults)
        self.diagnostics: dict[str, torch.Tensor] = {}
        self._target: tuple[list[torch.Tensor], torch.Tensor] | None = None

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group, lead = self.param_groups[-1], self.param_groups[0]
        _check(**{k: group[k] for k in self.defaults})
        _check_precision([group])
        for key in _SHARED_KEYS:
            check_hyper(key, group[key], group[key] == lead[key],
                        f"must be the same in every parameter group (first group: {lead[key]!r})")

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        closure = require_closure(closure, "RBO")
        lead = self.param_groups[0]
        _check_precision(self.param_groups)
        newton = lead["projection"] == "newton"
        if newton:
            _require_create_graph(closure)
        first_loss = evaluate(closure, first=True, **({"create_graph": True} if newton else {}))
        groups = groups_with_grad(self.param_groups)
        xs = _flat(ps for _, ps in groups)
        theta = snapshot(xs)

        # Steps 1-3: the normal at (θ, f), the ball centre, and the rolled centre (θ̃, ỹ).
        group_sq = [global_sq_norm([p.grad for p in ps]) for _, ps in groups]
        g_sq = torch.stack(group_sq).sum()
        s = torch.sqrt(1.0 + g_sq)
        radius = lead["radius"]
        targets = [torch._foreach_sub([p.detach() for p in ps], torch._foreach_mul(
            [p.grad for p in ps], radius / s + g["lr"])) for g, ps in groups]
        y_target = first_loss + radius / s - sum(g["lr"] * sq for (g, _), sq in zip(groups, group_sq))

        # Step 4: project (θ̃, ỹ) back onto the graph, warm-started at θ (whose evaluation is reused).
        problem = _Projection(closure, groups, targets, y_target, create_graph=newton)
        contact = _PROJECT[lead["projection"]](problem, first_loss)

        step_norm = global_sq_norm(torch._foreach_sub(xs, theta)).sqrt()
        for p in xs:
            p.grad = None  # a projection iterate's gradient (with its graph, for newton), not the new θ's
        if not torch.isfinite(contact.distance + step_norm):
            restore(xs, theta)
            raise DivergenceError(f"RBO: non-finite loss or gradient (distance to the rolled centre "
                                  f"{float(contact.distance):.4g}); parameters left at their values before this step")
        grad_norm = g_sq.sqrt()
        self._target = (_flat(targets), y_target)
        self.step_evals = problem.evals  # a Python int: what a trainer charges for this step (HVPs included)
        self.diagnostics = {
            "grad_evals": torch.tensor(problem.evals), "grad_norm": grad_norm, "step_norm": step_norm,
            "effective_step": torch.where(grad_norm > 0, step_norm / (lead["lr"] * grad_norm), 0.0),
            "proj_residual": contact.residual, "centre_distance": contact.distance,
            "contact_gap": contact.distance - radius, **contact.extra,
        }
        return first_loss

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


# ---- the projection problem and its three solvers (SPEC §1 step 4) ------------------------------------------

@dataclass
class _Contact:
    """What a projection reports about the point it returns (or, for gd, its last evaluated iterate)."""

    residual: torch.Tensor  # ‖v‖
    distance: torch.Tensor  # ‖(x, f(x)) − (θ̃, ỹ)‖ = √(2F)
    extra: dict


class _Projection:
    """min_x F(x) = ½‖x − θ̃‖² + ½(f(x) − ỹ)² on the closure's minibatch, and the evaluations spent on it."""

    def __init__(self, closure, groups, targets, y_target, *, create_graph: bool):
        lead = groups[0][0]
        self.closure, self.groups, self.targets, self.y_target = closure, groups, targets, y_target
        self.xs = _flat(ps for _, ps in groups)
        self.cap, self.tol, self.create_graph = lead["proj_steps"], lead["proj_tol"], create_graph
        self.evals = 1  # the evaluation at x₀ = θ is step 1's

    def evaluate(self) -> torch.Tensor:
        """f at the current parameters (their .grad set), BatchNorm statistics untouched."""
        self.evals += 1
        return evaluate(self.closure, first=False, **({"create_graph": True} if self.create_graph else {}))

    def gradient(self, loss):
        """v(x) per group and the distance ‖(x, f(x)) − (θ̃, ỹ)‖ at the current parameters."""
        height_gap = loss - self.y_target
        v = [torch._foreach_sub([p.detach() for p in ps], t) for (_, ps), t in zip(self.groups, self.targets)]
        distance = (global_sq_norm(_flat(v)) + height_gap.square()).sqrt()
        for (_, ps), v_group in zip(self.groups, v):
            torch._foreach_add_(v_group, torch._foreach_mul([p.grad.detach() for p in ps], height_gap))
        return v, distance

    def converged(self, residual, initial_residual) -> bool:
        return self.tol is not None and bool(residual <= self.tol * initial_residual)


def _project_gd(problem: _Projection, loss) -> _Contact:
    """The authors' projection: K steps x ← x − γ·v(x), no tolerance (SPEC §1 step 4).

    In place, without temporaries: x ← x + γ(θ̃ − x) (lerp), then x ← x − γ·(f(x) − ỹ)·∇f(x)
    (:func:`_descend_gradient`). The last step forms v explicitly, to report its norm and the distance.
    """
    minus_lrs = [[torch.tensor(-group["proj_lr"], dtype=p.dtype) for p in ps] for group, ps in problem.groups]
    for k in range(problem.cap):
        if k > 0:
            loss = problem.evaluate()
        if k == problem.cap - 1:
            break
        height_gap = loss - problem.y_target
        for (group, ps), t, minus_lr in zip(problem.groups, problem.targets, minus_lrs):
            torch._foreach_lerp_(ps, t, group["proj_lr"])
            _descend_gradient(ps, height_gap, group["proj_lr"], minus_lr)
    v, distance = problem.gradient(loss)
    for (group, ps), v_group in zip(problem.groups, v):
        torch._foreach_add_(ps, v_group, alpha=-group["proj_lr"])
    return _Contact(global_sq_norm(_flat(v)).sqrt(), distance, {})


def _descend_gradient(params: list[torch.Tensor], height_gap: torch.Tensor, proj_lr: float,
                      minus_lr: list[torch.Tensor]) -> None:
    """x ← x − γ·h·∇f(x) with h = f(x) − ỹ, rounded as the authors' step: h·∇f rounded, then one fused
    multiply-add with −γ (``minus_lr``: −γ as a 0-dim CPU tensor of each parameter's dtype, as ``alpha`` rounds it).

    On the CPU in one pass over the parameters: ``addcmul`` rounds ``value·t1`` and fuses ``·t2 + x`` (its CPU
    kernel at every CPU capability; tests/test_rbo.py holds it to the two-pass form bit for bit), with h read
    to the host, free there. Elsewhere that read would stall the device queue at every evaluation: the
    gradient (replaced by the next evaluation) is scaled in place, then added, two passes, the same numbers.
    """
    grads = [p.grad for p in params]
    if height_gap.device.type == "cpu":
        torch._foreach_addcmul_(params, grads, minus_lr, value=height_gap.item())
    else:
        torch._foreach_mul_(grads, height_gap)
        torch._foreach_add_(params, grads, alpha=-proj_lr)


def _project_gauss_newton(problem: _Projection, loss) -> _Contact:
    """Damped Gauss–Newton: δ = −(I + g gᵀ)⁻¹ v by Sherman–Morrison, one evaluation per iteration.

    A trial that does not lower F enough (:func:`_accepts`) is halved from the accepted point (Gauss–Newton drops
    the (f − ỹ)·∇²f term, which matters when ρ·‖∇²f‖ is not small). Returns the best evaluated point.
    """
    target = _vector(_flat(problem.targets))
    point = _evaluated_point(problem, loss, target)
    initial, step = point.residual, None
    while point.residual > 0 and not problem.converged(point.residual, initial) and problem.evals < problem.cap:
        if step is None:  # a full step from the accepted point
            step = -(point.v - point.g * (point.g @ point.v) / (1.0 + point.g @ point.g))
        _assign(problem.xs, point.x + step)
        trial = _evaluated_point(problem, problem.evaluate(), target)
        predicted = -(point.v @ step + 0.5 * (step @ step + (point.g @ step) ** 2))
        if _accepts(point, trial, predicted, *_drop(problem, point, trial, step, target)):
            point, step = trial, None
        else:
            step = 0.5 * step
    _assign(problem.xs, point.x)
    return _Contact(point.residual, point.distance, {})


@dataclass
class _Point:
    """An evaluated point of the Newton projection, as flat vectors; ``grads`` keep their graph for HVPs."""

    x: torch.Tensor
    loss: torch.Tensor
    grads: list[torch.Tensor]
    g: torch.Tensor  # the gradient as a flat vector, detached
    v: torch.Tensor
    distance: torch.Tensor

    @property
    def residual(self) -> torch.Tensor:
        return self.v.norm()


def _evaluated_point(problem: _Projection, loss, target: torch.Tensor) -> _Point:
    grads = [p.grad for p in problem.xs]
    x, g = _vector(problem.xs), _vector(grads)
    offset, height_gap = x - target, loss - problem.y_target
    return _Point(x, loss, grads, g, offset + height_gap * g, (offset.square().sum() + height_gap.square()).sqrt())


def _drop(problem: _Projection, point: _Point, trial: _Point, step, target):
    """F(point) − F(trial) for trial = point + δ, without cancellation: −(x − θ̃ + ½δ)ᵀδ + ½(f − f′)(f + f′ − 2ỹ),
    and its round-off (from f's)."""
    height_gaps = point.loss + trial.loss - 2 * problem.y_target
    drop = -((point.x - target + 0.5 * step) @ step) + 0.5 * (point.loss - trial.loss) * height_gaps
    return drop, 100 * torch.finfo(step.dtype).eps * point.loss.abs() * height_gaps.abs()


def _accepts(point: _Point, trial: _Point, predicted, drop, roundoff) -> bool:
    """F drops by at least 1e-4 of the predicted drop; when that is below round-off, ‖v‖ drops instead.
    A non-finite trial fails both (every comparison with NaN is False)."""
    if predicted <= roundoff:
        return bool(trial.residual < point.residual)
    return bool(drop >= 1e-4 * predicted)


def _hessian_product(problem: _Projection, point: _Point, u: torch.Tensor) -> torch.Tensor:
    """H u = u + g (gᵀu) + (f − ỹ)·∇²f u at ``point``, the last term by a backward through its gradients."""
    g = point.g
    live = [(grad, part) for grad, part in zip(point.grads, _split(u, problem.xs)) if grad.requires_grad]
    hu = u + g * (g @ u)
    if live:  # gradients that do not depend on x (an affine loss) contribute no curvature
        parts = torch.autograd.grad([grad for grad, _ in live], problem.xs, [part for _, part in live],
                                    retain_graph=True, materialize_grads=True)
        hu += (point.loss - problem.y_target) * _vector(parts)
    return hu


def _steihaug(hessian_product, v: torch.Tensor, trust_radius, tol, max_products: int):
    """Steihaug CG on min_p vᵀp + ½pᵀHp, ‖p‖ ≤ trust_radius, until ‖Hp + v‖ ≤ tol (Nocedal–Wright Alg. 7.2).

    Returns (p, Hp, products used, whether a direction of non-positive curvature was met).
    """
    p, hp, r = torch.zeros_like(v), torch.zeros_like(v), v.clone()
    d, rr = -r, r @ r
    for products in range(1, max_products + 1):
        hd = hessian_product(d)
        curvature = d @ hd
        alpha = rr / curvature
        if not curvature > 0 or (p + alpha * d).norm() >= trust_radius:
            tau = _to_boundary(p, d, trust_radius)
            return p + tau * d, hp + tau * hd, products, bool(curvature <= 0)
        p, hp, r = p + alpha * d, hp + alpha * hd, r + alpha * hd
        rr_next = r @ r
        if rr_next.sqrt() <= tol:
            break
        d, rr = -r + (rr_next / rr) * d, rr_next
    return p, hp, products, False


def _to_boundary(p, d, trust_radius):
    """τ ≥ 0 with ‖p + τd‖ = trust_radius."""
    a, b, c = d @ d, 2 * (p @ d), p @ p - trust_radius ** 2
    return (-b + (b * b - 4 * a * c).sqrt()) / (2 * a)


def _project_newton(problem: _Projection, loss) -> _Contact:
    """Trust-region Newton–CG (Steihaug) on F with exact Hessian-vector products (issue 17).

    Each iteration solves the trust-region model by CG (forcing term min(½, √(‖v‖/‖v₀‖))·‖v‖), evaluates
    the trial point, and accepts it when F drops by at least 1e-4 of the predicted drop (when the predicted
    drop is below the round-off of f, when ‖v‖ drops). A rejected trial shrinks the radius and costs one more
    evaluation to rebuild the accepted point's graph. Initial trust radius ‖v(θ)‖ (the whole Newton step of an
    affine loss, η‖g‖, is shorter). The accepted point is the best evaluated one and is returned.
    """
    xs, target = problem.xs, _vector(_flat(problem.targets))
    point = _evaluated_point(problem, loss, target)
    initial, trust_radius = point.residual, point.residual
    products = negative = 0
    stale = False  # the accepted point's graph was lost to a rejected trial
    while point.residual > 0 and not problem.converged(point.residual, initial):
        if stale and problem.cap - problem.evals >= 2 + HVP_COST:
            _assign(xs, point.x)
            point, stale = _evaluated_point(problem, problem.evaluate(), target), False
        affordable = (problem.cap - problem.evals - 1) // HVP_COST
        if stale or affordable < 1:
            break
        forcing = min(0.5, float((point.residual / initial).sqrt()))
        step, h_step, used, met = _steihaug(lambda u, pt=point: _hessian_product(problem, pt, u), point.v,
                                            trust_radius, forcing * point.residual, affordable)
        problem.evals += HVP_COST * used
        products, negative = products + used, negative + met
        predicted = -(point.v @ step + 0.5 * step @ h_step)
        _assign(xs, point.x + step)
        trial = _evaluated_point(problem, problem.evaluate(), target)
        drop, roundoff = _drop(problem, point, trial, step, target)
        if _accepts(point, trial, predicted, drop, roundoff):
            ratio = drop / predicted
            if ratio > 0.75 and step.norm() >= 0.99 * trust_radius:
                trust_radius = 2 * trust_radius
            elif ratio < 0.25:
                trust_radius = 0.25 * step.norm()
            point = trial
        else:  # not enough decrease, or a non-finite trial
            trust_radius, stale = 0.25 * step.norm(), True
    _assign(xs, point.x)
    extra = {"hessian_vector_products": torch.tensor(products), "negative_curvature": torch.tensor(negative)}
    return _Contact(point.residual, point.distance, extra)


_PROJECT = {"gd": _project_gd, "gauss_newton": _project_gauss_newton, "newton": _project_newton}


# ---- small helpers -----------------------------------------------------------------------------------------

def _flat(nested) -> list[torch.Tensor]:
    return [t for part in nested for t in part]


def _vector(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _split(vector: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    return [part.view_as(t) for part, t in zip(vector.split([t.numel() for t in like]), like)]


def _assign(params: list[torch.Tensor], vector: torch.Tensor) -> None:
    torch._foreach_copy_(params, _split(vector, params))


def _require_create_graph(closure) -> None:
    """projection='newton' calls ``closure(create_graph=True)``; refuse a closure that cannot take it."""
    try:
        inspect.signature(closure).bind(create_graph=True)
    except TypeError:
        raise ValueError("RBO(projection='newton') calls closure(create_graph=True) for Hessian-vector products; "
                         "the closure must accept create_graph and then set each p.grad from "
                         "torch.autograd.grad(loss, params, create_graph=True) (protocol: rbo/common.py)") from None


def _check_precision(param_groups) -> None:
    for index, p in enumerate(p for group in param_groups for p in group["params"]):
        check_hyper(f"parameter {index} (shape {tuple(p.shape)}) dtype", p.dtype,
                    not p.is_floating_point() or torch.finfo(p.dtype).bits >= 32,
                    "RBO needs float32 or float64 parameters: the projection's small steps fall below the "
                    "resolution of narrower types (keep float32 parameters and use bf16 autocast instead)")


def _check(*, lr, radius, proj_steps, proj_lr, projection, proj_tol) -> None:
    check_hyper("lr", lr, lr > 0, "the rolling step size η must be > 0")
    check_hyper("radius", radius, radius >= 0, "the ball radius ρ must be >= 0")
    check_hyper("proj_steps", proj_steps, isinstance(proj_steps, int) and proj_steps >= 1,
                "the number of projection steps K must be an integer >= 1")
    check_hyper("proj_lr", proj_lr, proj_lr > 0, "the projection step size γ must be > 0")
    check_hyper("projection", projection, projection in PROJECTIONS, f"must be one of {PROJECTIONS}")
    check_hyper("proj_tol", proj_tol, proj_tol is None or proj_tol > 0, "must be None or > 0")
