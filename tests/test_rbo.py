"""RBO against SPEC §1: the exact identities, an independent 1 + K re-implementation, Gauss–Newton, plumbing."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import rbo.optimizer as rbo_optimizer
from rbo import RBO, DivergenceError


@pytest.fixture(autouse=True)
def _float64():
    """Identities to tight tolerances in float64; users' float32 is restored after each test."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def make_closure(optimizer, loss_fn):
    def closure(advance=False):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return loss
    return closure


def affine_problem(d=5, seed=0, sq_norm=None):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, generator=gen)
    if sq_norm is not None:
        a = a * math.sqrt(sq_norm) / a.norm()
    theta = torch.randn(d, generator=gen).requires_grad_()
    return a, theta


# --- SPEC §1 identities ------------------------------------------------------------------------------

@pytest.mark.parametrize("radius", [0.0, 0.5, 2.0, 10.0])
def test_one_projection_step_is_scaled_gradient_step(radius):
    """K = 1: θ − γ·η·(1 + ‖g‖²)·g for every ρ (the ρ terms cancel at x₀ = θ)."""
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    lr, gamma = 0.7, 0.03
    opt = RBO(model.parameters(), lr=lr, radius=radius, proj_steps=1, proj_lr=gamma)
    closure = make_closure(opt, lambda: nn.functional.mse_loss(model(x), y))
    closure()
    theta = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    g_sq = sum(g.square().sum() for g in grads)
    opt.step(closure)
    for p, t, g in zip(model.parameters(), theta, grads):
        torch.testing.assert_close(p.detach(), t - gamma * lr * (1 + g_sq) * g, rtol=0, atol=1e-12)


@pytest.mark.parametrize("radius", [0.0, 0.3, 3.0])
def test_affine_converged_projection_is_gradient_step(radius):
    """Affine f = aᵀθ, converged projection: θ − η·a for every ρ."""
    a, theta = affine_problem()
    start = theta.detach().clone()
    lr = 0.4
    opt = RBO([theta], lr=lr, radius=radius, proj_steps=20, projection="gauss_newton", proj_tol=1e-12)
    opt.step(make_closure(opt, lambda: a @ theta))
    torch.testing.assert_close(theta.detach(), start - lr * a, rtol=0, atol=1e-10)


def test_affine_after_k_steps_has_closed_form_factor():
    """Affine f after K GD steps: η·[1 − (1 − γ(1 + ‖a‖²))^K]·a; factor 0.1463 for γ=1e-3, K=100, ‖a‖²=0.58."""
    a, theta = affine_problem(sq_norm=0.58)
    start = theta.detach().clone()
    lr, gamma, k = 1.0, 1e-3, 100
    factor = 1 - (1 - gamma * (1 + 0.58)) ** k
    assert factor == pytest.approx(0.1463, abs=5e-5)
    opt = RBO([theta], lr=lr, radius=2.0, proj_steps=k, proj_lr=gamma)
    opt.step(make_closure(opt, lambda: a @ theta))
    torch.testing.assert_close(start - theta.detach(), lr * factor * a, rtol=1e-10, atol=1e-12)


def test_small_radius_converged_is_gradient_descent_to_second_order():
    """ρ → 0 with a converged projection: the step differs from η·g by O(η²), not O(η)."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    errors = []
    for lr in (1e-2, 5e-3):
        m = copy.deepcopy(model)
        opt = RBO(m.parameters(), lr=lr, radius=0.0, proj_steps=50, projection="gauss_newton", proj_tol=1e-13)
        closure = make_closure(opt, lambda m=m: nn.functional.mse_loss(m(x), y))
        closure()
        gd = [p.detach() - lr * p.grad for p in m.parameters()]
        opt.step(closure)
        errors.append(sum((p.detach() - q).norm() for p, q in zip(m.parameters(), gd)).item())
    assert errors[0] > 0
    assert errors[1] / errors[0] == pytest.approx(0.25, abs=0.05)  # halving η quarters the gap: O(η²)


# --- an independent 1 + K re-implementation ---------------------------------------------------------

def naive_rbo_step(model, loss_of_params, lr, radius, k, gamma):
    """SPEC §1 steps 1–4 on the flattened parameter vector, paying 1 + K evaluations; ``lr`` and ``gamma`` may
    be per-coordinate vectors (parameter groups)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]

    def f_and_grad(flat):
        flat = flat.detach().requires_grad_()
        params = dict(zip(names, [c.view(s) for c, s in zip(flat.split(sizes), shapes)]))
        value = loss_of_params(params)
        (grad,) = torch.autograd.grad(value, flat)
        return value.detach(), grad

    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    f, g = f_and_grad(theta)
    s = torch.sqrt(1 + g @ g)
    theta_t = theta - (radius / s + lr) * g
    y_t = f + radius / s - (lr * g) @ g
    x = theta.clone()
    for _ in range(k):
        fx, gx = f_and_grad(x)
        x = x - gamma * ((x - theta_t) + (fx - y_t) * gx)
    return x


def test_step_matches_independent_reimplementation_on_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    loss_of_params = lambda params: nn.functional.cross_entropy(functional_call(model, params, (x,)), y)  # noqa: E731
    expected = naive_rbo_step(model, loss_of_params, lr=1.0, radius=2.0, k=100, gamma=1e-3)
    opt = RBO(model.parameters(), lr=1.0, radius=2.0)
    opt.step(make_closure(opt, lambda: nn.functional.cross_entropy(model(x), y)))
    got = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)  # they agree to ~4e-16
    assert int(opt.diagnostics["grad_evals"]) == 100


def test_groups_with_different_lr_and_proj_lr_match_reimplementation():
    """θ̃ uses each group's η, ỹ the sum Σ η_group‖g_group‖², each group projects with its own γ."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3))
    x, y = torch.randn(24, 5), torch.randint(0, 3, (24,))
    loss_of_params = lambda params: nn.functional.cross_entropy(functional_call(model, params, (x,)), y)  # noqa: E731
    sizes = [p.numel() for p in model.parameters()]
    lr = torch.cat([torch.full((n,), 0.3 if i < 2 else 1.5) for i, n in enumerate(sizes)])
    gamma = torch.cat([torch.full((n,), 0.02 if i < 2 else 0.005) for i, n in enumerate(sizes)])
    expected = naive_rbo_step(model, loss_of_params, lr=lr, radius=1.0, k=20, gamma=gamma)
    opt = RBO([{"params": model[0].parameters(), "lr": 0.3, "proj_lr": 0.02},
               {"params": model[2].parameters(), "lr": 1.5, "proj_lr": 0.005}], lr=1.0, radius=1.0, proj_steps=20)
    opt.step(make_closure(opt, lambda: nn.functional.cross_entropy(model(x), y)))
    got = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_per_group_values_and_float32():
    """Two groups with equal settings give the single-group update (float32, default dtype of users)."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 2))
    twin = copy.deepcopy(model)
    x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
    one = RBO(model.parameters(), lr=0.5, radius=1.0, proj_steps=10, proj_lr=0.01)
    two = RBO([{"params": twin[0].parameters()}, {"params": twin[2].parameters()}], lr=0.5, radius=1.0,
              proj_steps=10, proj_lr=0.01)
    for opt, m in ((one, model), (two, twin)):
        opt.step(make_closure(opt, lambda m=m: nn.functional.cross_entropy(m(x), y)))
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


# --- Gauss–Newton: the converged projection ----------------------------------------------------------

def long_gd_projection(model, loss_fn, lr, radius):
    opt = RBO(model.parameters(), lr=lr, radius=radius, proj_steps=20_000, proj_lr=2e-3)
    opt.step(make_closure(opt, loss_fn))
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _quadratic():
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(6, 6, generator=gen)
    hess = q @ q.T / 6 + 0.1 * torch.eye(6)
    return torch.randn(6, generator=gen), lambda t: 0.5 * t @ hess @ t


def _problem(name):
    """Two identical copies of a problem: (model, loss_fn) pairs."""
    if name == "quadratic":
        start, quad = _quadratic()
        copies = [nn.ParameterList([nn.Parameter(start.clone())]) for _ in range(2)]
        return [(m, lambda m=m: quad(m[0])) for m in copies]
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    return [(m, lambda m=m: nn.functional.mse_loss(m(x), y)) for m in (model, copy.deepcopy(model))]


@pytest.mark.parametrize("problem, lr, radius", [("quadratic", 0.05, 0.1), ("mlp", 0.05, 0.01)])
def test_gauss_newton_agrees_with_long_gd_projection(problem, lr, radius):
    """Converged projection: agrees with 20,000 tiny GD steps, relative residual 1e-6 in ≤ 5 evaluations.

    Gauss–Newton converges linearly at a rate of about ρ·‖∇²f‖ (the term it drops), so ρ is chosen below the
    curvature scale of each problem; the rolled centre then sits at ≈ ρ from the graph (exactly ρ for affine f).
    """
    (model, loss_fn), (twin, twin_loss) = _problem(problem)
    reference = long_gd_projection(twin, twin_loss, lr, radius)
    opt = RBO(model.parameters(), lr=lr, radius=radius, proj_steps=5, projection="gauss_newton", proj_tol=1e-6)
    closure = make_closure(opt, loss_fn)
    closure()
    g = torch.cat([p.grad.flatten() for p in model.parameters()])
    initial_residual = float(lr * (1 + g @ g) * g.norm())  # ‖v(x₀)‖ at x₀ = θ
    opt.step(closure)
    got = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(got, reference, rtol=0, atol=1e-5)
    assert int(opt.diagnostics["grad_evals"]) <= 5
    assert float(opt.diagnostics["proj_residual"]) <= 1e-6 * initial_residual
    contact = opt.measure_contact(closure)
    assert contact["proj_residual"] <= 1e-6 * initial_residual
    assert contact["centre_distance"] == pytest.approx(radius, rel=0.2 if problem == "quadratic" else 0.025)


def test_converged_centre_is_at_distance_radius_on_affine_loss():
    a, theta = affine_problem()
    opt = RBO([theta], lr=0.4, radius=0.7, proj_steps=10, projection="gauss_newton", proj_tol=1e-12)
    closure = make_closure(opt, lambda: a @ theta)
    opt.step(closure)
    assert opt.measure_contact(closure)["centre_distance"] == pytest.approx(0.7, rel=1e-9)


def test_gd_projection_leaves_a_residual_gauss_newton_does_not():
    """With the authors' K=100, γ=1e-3 the contact point is far from converged: the suite measures it."""
    start, quad = _quadratic()
    theta = nn.Parameter(start.clone())
    loss_fn = lambda: quad(theta)  # noqa: E731
    gd = RBO([theta], lr=0.05, radius=0.1)
    gd.step(make_closure(gd, loss_fn))
    theta.data.copy_(start)
    gn = RBO([theta], lr=0.05, radius=0.1, proj_steps=10, projection="gauss_newton", proj_tol=1e-8)
    gn.step(make_closure(gn, loss_fn))
    assert float(gn.diagnostics["proj_residual"]) < 1e-6 * float(gd.diagnostics["proj_residual"])
    converged = float(gn.diagnostics["centre_distance"])
    assert abs(float(gd.diagnostics["centre_distance"]) - converged) > 0.1 * converged


@pytest.mark.parametrize("projection", ["gauss_newton", "newton"])
@pytest.mark.parametrize("radius", [0.05, 0.4])
def test_converged_contact_on_a_parabola_is_the_closed_form_root(projection, radius):
    """f(θ) = ½aθ²: the converged contact point is the real root of ½a²x³ + (1 − aỹ)x − θ̃ = 0 (one real root
    below the curvature radius 1/a), with (θ̃, ỹ) written out from SPEC §1. It moves with ρ and with the side
    of the normal: a ball under the graph (ν → −ν) lands elsewhere."""
    a, start, lr = 1.0, 0.6, 0.1
    g = a * start
    s = math.sqrt(1 + g * g)
    target = start - (radius / s + lr) * g
    y_target = 0.5 * a * start ** 2 + radius / s - lr * g * g
    roots = [r.real for r in np.roots([0.5 * a * a, 0.0, 1 - a * y_target, -target]) if abs(r.imag) < 1e-12]
    assert len(roots) == 1
    theta = torch.tensor([start], requires_grad=True)
    opt = RBO([theta], lr=lr, radius=radius, proj_steps=60, projection=projection, proj_tol=1e-13)

    def closure(advance=False, create_graph=False):
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * a * theta.square().sum()
        loss.backward(create_graph=create_graph)
        return loss
    opt.step(closure)
    assert float(theta) == pytest.approx(roots[0], abs=1e-11)


# --- the GD projection's passes (issue 24): fewer passes over the parameters, not one number changed --------

def three_pass_project_gd(problem, loss):
    """The GD projection as it was before issue 24, kept as the reference: per evaluation a lerp towards θ̃, the
    gradient scaled in place by f(x) − ỹ, then added with alpha −γ (three passes over the parameters)."""
    for k in range(problem.cap):
        if k > 0:
            loss = problem.evaluate()
        if k == problem.cap - 1:
            break
        for (group, ps), t in zip(problem.groups, problem.targets):
            grads = [p.grad for p in ps]
            torch._foreach_lerp_(ps, t, group["proj_lr"])
            torch._foreach_mul_(grads, loss - problem.y_target)
            torch._foreach_add_(ps, grads, alpha=-group["proj_lr"])
    v, distance = problem.gradient(loss)
    for (group, ps), v_group in zip(problem.groups, v):
        torch._foreach_add_(ps, v_group, alpha=-group["proj_lr"])
    return rbo_optimizer._Contact(rbo_optimizer.global_sq_norm(rbo_optimizer._flat(v)).sqrt(), distance, {})


def _rbo_on_mlp(model, groups, steps, batches):
    """``steps`` RBO steps (K = 12) of ``model``, one per batch; the parameters and diagnostics after each."""
    params = list(model.parameters())
    param_groups = [{"params": params[start:stop], **hyper} for (start, stop), hyper in groups]
    opt = RBO(param_groups, lr=1.0, radius=2.0, proj_steps=12)
    after = []
    for x, y in batches[:steps]:
        opt.step(make_closure(opt, lambda x=x, y=y: nn.functional.cross_entropy(model(x), y)))
        after.append(([p.detach().clone() for p in params], dict(opt.diagnostics)))
    return after


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("groups", [
    [((0, 6), {})],
    [((0, 2), {"lr": 0.4, "proj_lr": 3e-3}), ((2, 4), {"lr": 1.7, "proj_lr": 7e-4}), ((4, 6), {"proj_lr": 0.0123})],
], ids=["one group", "three groups, different eta and gamma"])
def test_gd_projection_is_bit_identical_to_the_three_pass_form(monkeypatch, dtype, groups):
    """Three RBO steps of an MLP whose tensors take PyTorch's CPU kernels through every path (a weight above the
    parallel grain of 32,768 elements, sizes that leave a scalar tail): every parameter and diagnostic equal bit
    for bit to :func:`three_pass_project_gd`'s."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(784, 48), nn.ReLU(), nn.Linear(48, 37), nn.ReLU(), nn.Linear(37, 10)).to(dtype)
    twin = copy.deepcopy(model)
    start = [p.detach().clone() for p in model.parameters()]
    batches = [(torch.rand(64, 784, dtype=dtype), torch.randint(0, 10, (64,))) for _ in range(3)]
    fused = _rbo_on_mlp(model, groups, 3, batches)
    monkeypatch.setitem(rbo_optimizer._PROJECT, "gd", three_pass_project_gd)
    reference = _rbo_on_mlp(twin, groups, 3, batches)
    assert not any(torch.equal(p, s) for p, s in zip(fused[0][0], start))  # the first step moved every tensor
    for (params, diagnostics), (expected, expected_diagnostics) in zip(fused, reference):
        assert all(torch.equal(p, e) for p, e in zip(params, expected))
        assert diagnostics.keys() == expected_diagnostics.keys()
        assert all(torch.equal(diagnostics[k], v) for k, v in expected_diagnostics.items())


@pytest.mark.parametrize("dtype, loss_dtype", [(torch.float32, torch.float32), (torch.float64, torch.float64),
                                               (torch.float32, torch.float64)])
def test_one_pass_descent_rounds_as_scale_then_add(dtype, loss_dtype):
    """The CPU pass of ``_descend_gradient`` against the two it replaces (the gradient scaled in place by h, then
    added with alpha −γ), bit for bit: gradients over 12 orders of magnitude, heights of both signs, sizes with
    and without a scalar tail and above the parallel grain."""
    gen = torch.Generator().manual_seed(0)
    for size in (1, 10, 33, 1000, 40_007):
        for proj_lr in (1e-3, 0.0123, 0.3):
            x = torch.randn(size, dtype=dtype, generator=gen)
            scale = 10.0 ** torch.randint(-6, 6, (size,), generator=gen)
            grad = (torch.randn(size, generator=gen) * scale).to(dtype)
            height_gap = torch.randn((), dtype=loss_dtype, generator=gen) * 10.0 ** float(torch.randint(-4, 3, ()))
            expected, scaled = x.clone(), grad.clone()
            torch._foreach_mul_([scaled], height_gap)
            torch._foreach_add_([expected], [scaled], alpha=-proj_lr)
            got = x.clone().requires_grad_()
            got.grad = grad.clone()
            with torch.no_grad():
                rbo_optimizer._descend_gradient([got], height_gap, proj_lr, [torch.tensor(-proj_lr, dtype=dtype)])
            assert torch.equal(got.detach(), expected), (size, proj_lr)


# --- plumbing ----------------------------------------------------------------------------------------

def test_parameters_narrower_than_float32_are_refused():
    """bf16 parameters: refused at construction and, if cast later, at step() before any evaluation."""
    with pytest.raises(ValueError, match=r"dtype=torch.bfloat16.*float32"):
        RBO([torch.zeros(3, dtype=torch.bfloat16, requires_grad=True)], lr=1.0, radius=1.0)
    model = nn.Linear(3, 1)
    opt = RBO(model.parameters(), lr=1.0, radius=1.0)
    model.to(torch.bfloat16)

    def closure(advance=False):
        raise AssertionError("no evaluation may start")
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(1, 3\)\) dtype=torch.bfloat16"):
        opt.step(closure)


def test_groups_with_different_radii_are_refused():
    with pytest.raises(ValueError, match=r"radius=0.5: must be the same in every parameter group"):
        RBO([{"params": [torch.zeros(2, requires_grad=True)]},
             {"params": [torch.zeros(2, requires_grad=True)], "radius": 0.5}], lr=1.0, radius=1.0)


@pytest.mark.parametrize("projection", ["gd", "gauss_newton", "newton"])
def test_effective_step_is_zero_at_a_stationary_point(projection):
    """‖g‖ = 0: θ̃ = θ, and the step and the effective step are 0 (not 0/0)."""
    theta = torch.zeros(3, requires_grad=True)
    opt = RBO([theta], lr=1.0, radius=1.0, proj_steps=5, projection=projection)

    def closure(advance=False, create_graph=False):
        opt.zero_grad(set_to_none=True)
        loss = (theta * theta).sum()
        loss.backward(create_graph=create_graph)
        return loss
    opt.step(closure)
    assert float(opt.diagnostics["grad_norm"]) == 0 and float(opt.diagnostics["step_norm"]) == 0
    assert float(opt.diagnostics["effective_step"]) == 0


@pytest.mark.parametrize("projection", ["gd", "gauss_newton", "newton"])
def test_grad_is_cleared_after_a_step(projection):
    """The last evaluation's gradient belongs to a projection iterate, not to the returned θ."""
    a, theta = affine_problem()
    opt = RBO([theta], lr=0.1, radius=1.0, proj_steps=5, projection=projection)

    def closure(advance=False, create_graph=False):
        opt.zero_grad(set_to_none=True)
        loss = a @ theta + theta.pow(4).sum()
        loss.backward(create_graph=create_graph)
        return loss
    opt.step(closure)
    assert theta.grad is None

def test_evaluations_per_step_equal_k():
    a, theta = affine_problem()
    calls = []
    opt = RBO([theta], lr=0.1, radius=1.0, proj_steps=7, proj_lr=1e-2)
    inner = make_closure(opt, lambda: a @ theta + (theta ** 2).sum())

    def closure(advance=False):
        calls.append(advance)
        return inner()
    for _ in range(3):
        opt.step(closure)
    assert len(calls) == 21 and not any(calls)


def test_batchnorm_running_stats_updated_once_per_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    reference = _bn_reference(model)
    x, y = torch.randn(32, 4) * 3 + 1, torch.randint(0, 2, (32,))
    opt = RBO(model.parameters(), lr=0.1, radius=1.0, proj_steps=10, proj_lr=1e-2)
    opt.step(make_closure(opt, lambda: nn.functional.cross_entropy(model(x), y)))
    reference(x)  # one plain forward in train mode from the same initial statistics
    bn, ref_bn = model[1], reference.bn
    assert int(bn.num_batches_tracked) == 1
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var)
    assert bn.track_running_stats  # the freeze is undone


class _bn_reference(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.lin = nn.Linear(4, 6)
        self.lin.load_state_dict(model[0].state_dict())
        self.bn = nn.BatchNorm1d(6)

    def forward(self, x):
        return self.bn(self.lin(x))


def test_scheduler_changes_lr_and_state_dict_round_trip():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    opt = RBO(model.parameters(), lr=1.0, radius=0.5, proj_steps=5, proj_lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    closure = make_closure(opt, lambda: nn.functional.mse_loss(model(x), y))
    opt.step(closure)
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.5
    twin = copy.deepcopy(model)
    twin_opt = RBO(twin.parameters(), lr=9.0, radius=9.0)
    twin_opt.load_state_dict(opt.state_dict())
    assert twin_opt.param_groups[0]["lr"] == 0.5 and twin_opt.param_groups[0]["proj_steps"] == 5
    opt.step(closure)
    twin_opt.step(make_closure(twin_opt, lambda: nn.functional.mse_loss(twin(x), y)))
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_bf16_autocast_lowers_loss():
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    x = torch.randn(128, 10)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    opt = RBO(model.parameters(), lr=1.0, radius=1.0, proj_steps=10, proj_lr=0.05)

    def closure(advance=False):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss
    first = float(opt.step(closure))
    for _ in range(15):
        last = float(opt.step(closure))
    assert last < 0.7 * first


def test_divergence_raises_and_keeps_last_finite_parameters():
    a, theta = affine_problem()
    start = theta.detach().clone()
    opt = RBO([theta], lr=0.1, radius=1.0, proj_steps=3, proj_lr=1e-2)
    calls = {"n": 0}

    def closure(advance=False):
        calls["n"] += 1
        opt.zero_grad(set_to_none=True)
        loss = a @ theta * (float("nan") if calls["n"] == 2 else 1.0)
        loss.backward()
        return loss
    with pytest.raises(DivergenceError):
        opt.step(closure)
    torch.testing.assert_close(theta.detach(), start, rtol=0, atol=0)


def test_missing_closure_is_a_clear_error():
    _, theta = affine_problem()
    with pytest.raises(ValueError, match="closure"):
        RBO([theta], lr=1.0, radius=1.0).step()


@pytest.mark.parametrize("kwargs, name", [
    ({"radius": -1.0}, "radius"), ({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"), ({"proj_steps": 0}, "proj_steps"),
    ({"proj_lr": 0.0}, "proj_lr"), ({"proj_tol": 0.0}, "proj_tol"), ({"projection": "lbfgs"}, "projection"),
])
def test_hyperparameter_errors_name_parameter_value_and_range(kwargs, name):
    _, theta = affine_problem()
    args = {"lr": 1.0, "radius": 1.0, **kwargs}
    with pytest.raises(ValueError, match=rf"{name}=") as info:
        RBO([theta], **args)
    assert repr(kwargs[name]) in str(info.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_step_matches_cpu_step():
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    results = []
    for device in ("cpu", "cuda"):
        m = copy.deepcopy(model).to(device)
        opt = RBO(m.parameters(), lr=1.0, radius=2.0, proj_steps=20)
        xd, yd = x.to(device), y.to(device)
        opt.step(make_closure(opt, lambda m=m, xd=xd, yd=yd: nn.functional.cross_entropy(m(xd), yd)))
        results.append(torch.cat([p.detach().cpu().flatten() for p in m.parameters()]))
        assert int(m[1].num_batches_tracked) == 1
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-5)
