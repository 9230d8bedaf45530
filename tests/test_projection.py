"""The converged projections of RBO (SPEC §1 step 4, issues 11 §3 and 17) against closed-form contact points.

The projection minimises F(x) = ½‖x − θ̃‖² + ½(f(x) − ỹ)² from x₀ = θ. For f(x) = ½ Σ aᵢxᵢ² its stationary
points are xᵢ = θ̃ᵢ / (1 + h·aᵢ) with h = f(x) − ỹ solving one scalar equation; in 1-D they are the real roots
of the cubic ½a²x³ + (1 − aỹ)x − θ̃ = 0. Below the curvature radius (ρ < 1/max a) the contact point is unique;
above it F has two local minima and each test states which one a descent from x₀ = θ reaches.
"""

import math

import numpy as np
import pytest
import torch

import rbo.optimizer as rbo_optimizer
from rbo import RBO

LR = 0.05
# Evaluations (HVPs included) Newton needs to a relative residual of 1e-12 on the problems below: 13 to 65 with
# exact curvature; 67 to 199 with the Gauss–Newton Hessian I + g gᵀ in its place.
MAX_EVALS = 70


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def rolled_centre(theta: np.ndarray, a: np.ndarray, lr: float, radius: float):
    """(θ̃, ỹ) of SPEC §1 steps 1-3 for f = ½ Σ aᵢθᵢ², written out independently of rbo."""
    g = a * theta
    s = math.sqrt(1 + g @ g)
    return theta - (radius / s + lr) * g, 0.5 * theta @ (a * theta) + radius / s - lr * (g @ g)


def projection_gradient(x, a, target, y_target):
    return (x - target) + (0.5 * x @ (a * x) - y_target) * (a * x)


def local_minima(a, target, y_target):
    """Every local minimum of F: x(h) = θ̃ / (1 + h·a) for each root h of φ(h) = f(x(h)) − ỹ − h, kept when
    the Hessian I + g gᵀ + h·diag(a) is positive definite. Roots by a scan and bisection in float64."""
    def phi(h):
        return 0.5 * np.sum(a * (target / (1 + np.multiply.outer(h, a))) ** 2, axis=-1) - y_target - h

    grid = np.linspace(-50.0, 50.0, 400_000)  # no grid point on a pole −1/aᵢ
    values = phi(grid)
    minima = []
    for lo, hi, v_lo, v_hi in zip(grid[:-1], grid[1:], values[:-1], values[1:]):
        if np.sign(v_lo) == np.sign(v_hi) or np.any((1 + lo * a) * (1 + hi * a) <= 0):  # no root, or a pole
            continue
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.sign(phi(mid)) == np.sign(v_lo) else (lo, mid)
        h = 0.5 * (lo + hi)
        x = target / (1 + h * a)
        g = a * x
        if np.linalg.eigvalsh(np.eye(len(a)) + np.outer(g, g) + h * np.diag(a)).min() > 0:
            minima.append(x)
    return minima


def descent_reaches(theta, a, target, y_target, steps=20_000, gamma=1e-2):
    """Where plain gradient descent on F from x₀ = θ ends (a discretised gradient flow)."""
    x = theta.copy()
    for _ in range(steps):
        x = x - gamma * projection_gradient(x, a, target, y_target)
    return x


def newton_step(theta, a, radius, **kwargs):
    """One RBO step with the Newton projection on f = ½ Σ aᵢθᵢ²; returns (new θ, optimizer, closure calls)."""
    x = torch.tensor(theta, requires_grad=True)
    curvature = torch.tensor(a)
    options = dict(proj_steps=200, projection="newton", proj_tol=1e-12) | kwargs
    opt = RBO([x], lr=LR, radius=radius, **options)
    calls = []

    def closure(advance=False, create_graph=False):
        calls.append(x.detach().clone())
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (curvature * x * x).sum()
        loss.backward(create_graph=create_graph)
        return loss

    opt.step(closure)
    return x.detach().numpy(), opt, calls


# θ = 0.3, a = 1, η = 0.05. ρ = 0.3 < 1/a: one contact point. ρ = 1.5 > 1/a: minima at −1.104 and 0.753 around a
# local maximum at 0.351; θ < 0.351 and F′(θ) > 0, so a descent from θ moves left and stops at −1.104.
@pytest.mark.parametrize("radius, expected", [(0.3, None), (1.5, -1.10407973)])
def test_newton_reaches_the_closed_form_contact_point_in_1d(radius, expected):
    a, theta = np.array([1.0]), np.array([0.3])
    target, y_target = rolled_centre(theta, a, LR, radius)
    roots = np.roots([0.5 * a[0] ** 2, 0.0, 1 - a[0] * y_target, -target[0]])
    roots = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
    slope = projection_gradient(theta, a, target, y_target)[0]
    if len(roots) == 1:
        reached = roots[0]
    else:  # roots: minimum, maximum, minimum; a descent goes against F′(θ) to the first minimum on that side
        assert len(roots) == 3 and abs(theta[0] - roots[1]) > 1e-2
        reached = roots[0] if slope > 0 else roots[2]
    if expected is not None:
        assert reached == pytest.approx(expected, abs=1e-8)
    assert descent_reaches(theta, a, target, y_target)[0] == pytest.approx(reached, abs=1e-6)
    got, opt, _ = newton_step(theta, a, radius)
    assert got[0] == pytest.approx(reached, abs=1e-8)
    assert int(opt.diagnostics["grad_evals"]) <= MAX_EVALS
    met = int(opt.diagnostics["negative_curvature"])
    assert met == 0 if len(roots) == 1 else met > 0  # F″(θ) < 0 between two minima: the solver meets it


# f = ½ Σ aᵢθᵢ², a = (0.5, 1, 2): curvature radii 2, 1 and 0.5 at the bottom. ρ = 0.2 is below all of them;
# ρ = 3 is above them all, and the minimum a descent from θ reaches is the one the test finds by descending.
@pytest.mark.parametrize("radius", [0.2, 3.0])
def test_newton_reaches_the_closed_form_contact_point_on_a_quadratic(radius):
    a, theta = np.array([0.5, 1.0, 2.0]), np.array([0.4, -0.3, 0.2])
    target, y_target = rolled_centre(theta, a, LR, radius)
    minima = local_minima(a, target, y_target)
    if radius < 1 / a.max():
        assert len(minima) == 1
    descended = descent_reaches(theta, a, target, y_target)
    reached = min(minima, key=lambda m: np.linalg.norm(m - descended))
    np.testing.assert_allclose(descended, reached, atol=1e-6)
    got, opt, _ = newton_step(theta, a, radius)
    np.testing.assert_allclose(got, reached, rtol=0, atol=1e-8)
    assert int(opt.diagnostics["grad_evals"]) <= MAX_EVALS
    assert float(opt.diagnostics["proj_residual"]) <= 1e-10
    g = a * reached  # the converged contact: the rolled centre lies on the normal at (x, f(x))
    distance = np.linalg.norm(np.append(reached - target, 0.5 * reached @ g - y_target))
    assert float(opt.diagnostics["centre_distance"]) == pytest.approx(distance, rel=1e-9)
    assert float(opt.diagnostics["contact_gap"]) == pytest.approx(distance - radius, abs=1e-9)


def test_evaluations_count_every_hessian_vector_product(monkeypatch):
    """grad_evals = closure calls + HVP_COST × HVPs (counted independently), and never above proj_steps."""
    products = []
    original = rbo_optimizer._hessian_product

    def counted(*args):
        products.append(1)
        return original(*args)

    monkeypatch.setattr(rbo_optimizer, "_hessian_product", counted)
    a, theta = np.array([0.5, 1.0, 2.0]), np.array([0.4, -0.3, 0.2])
    for cap in (4, 9, 200):  # 4 = θ, one HVP, one trial
        products.clear()
        _, opt, calls = newton_step(theta, a, 3.0, proj_steps=cap)
        evals = int(opt.diagnostics["grad_evals"])
        assert int(opt.diagnostics["hessian_vector_products"]) == len(products) > 0
        assert evals == len(calls) + rbo_optimizer.HVP_COST * len(products)
        assert evals <= cap


# ρ = 3 on a = (1, 4, 9): Gauss–Newton's 3rd, 4th, 6th and 10th trials and Newton's 2nd are rejected, so at
# these caps the last evaluated point is not the best one; at 200 Newton converges.
@pytest.mark.parametrize("projection, cap, last_rejected", [
    ("gauss_newton", 4, True), ("gauss_newton", 5, True), ("gauss_newton", 7, True), ("gauss_newton", 11, True),
    ("gauss_newton", 6, False), ("newton", 7, True), ("newton", 9, True), ("newton", 200, False)])
def test_returned_point_is_the_best_evaluated_one(projection, cap, last_rejected):
    """Capped or not, θ_new is a point the closure evaluated, the one closest to the rolled centre, and the
    diagnostics describe it."""
    a, theta = np.array([1.0, 4.0, 9.0]), np.array([0.4, -0.3, 0.2])
    target, y_target = rolled_centre(theta, a, LR, 3.0)
    got, opt, calls = newton_step(theta, a, 3.0, projection=projection, proj_steps=cap, proj_tol=1e-12)

    def distance(x):
        return np.linalg.norm(np.append(x - target, 0.5 * x @ (a * x) - y_target))

    evaluated = [c.numpy() for c in calls]
    assert np.array_equal(got, evaluated[-1]) != last_rejected  # the case this row is for
    assert any(np.array_equal(got, x) for x in evaluated)
    assert distance(got) == pytest.approx(min(distance(x) for x in evaluated), rel=1e-12)
    assert float(opt.diagnostics["centre_distance"]) == pytest.approx(distance(got), rel=1e-12)
    residual = np.linalg.norm(projection_gradient(got, a, target, y_target))
    assert float(opt.diagnostics["proj_residual"]) == pytest.approx(residual, rel=1e-9, abs=1e-14)
    assert int(opt.diagnostics["grad_evals"]) <= cap


@pytest.mark.parametrize("projection", ["gauss_newton", "newton"])
def test_a_non_finite_trial_is_never_accepted(projection):
    """The second evaluation returns NaN: it is rejected and the projection goes on from θ."""
    x = torch.tensor([0.4, -0.3, 0.2], requires_grad=True)
    opt = RBO([x], lr=LR, radius=0.2, proj_steps=30, projection=projection, proj_tol=1e-8)
    calls = []

    def closure(advance=False, create_graph=False):
        calls.append(1)
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (x * x).sum() * (float("nan") if len(calls) == 2 else 1.0)
        loss.backward(create_graph=create_graph)
        return loss

    opt.step(closure)
    assert torch.isfinite(x).all() and len(calls) > 2
    assert float(opt.diagnostics["proj_residual"]) <= 1e-8


def test_newton_needs_a_closure_that_can_build_the_graph():
    x = torch.tensor([0.4, -0.3], requires_grad=True)
    opt = RBO([x], lr=LR, radius=1.0, projection="newton", proj_tol=1e-8)

    def closure(advance=False):
        raise AssertionError("no evaluation may start")

    with pytest.raises(ValueError, match="create_graph"):
        opt.step(closure)
