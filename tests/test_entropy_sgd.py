"""Entropy-SGD (baselines/entropy_sgd.py) against SPEC §2 computed by hand, plus scoping, seeding, batches."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines import EntropySGD
from rbo import DivergenceError

X = torch.randn(64, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
Y = torch.arange(64) % 3


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()


def make_closure(model, log=None):
    """Batch k of 16 rows; ``closure(advance=True)`` moves to the next one (the fresh_batches protocol)."""
    batch = [0]

    def closure(**kwargs):
        if log is not None:
            log.append(kwargs)
        batch[0] += kwargs.get("advance", False)
        rows = slice(16 * (batch[0] % 4), 16 * (batch[0] % 4 + 1))
        model.zero_grad()
        loss = F.cross_entropy(model(X[rows]), Y[rows])
        loss.backward()
        return loss
    return closure


def grads(model, params):
    """∇f on the first batch at ``params`` (a list matching model.parameters()), running stats untouched."""
    probe = copy.deepcopy(model)
    with torch.no_grad():
        for p, v in zip(probe.parameters(), params):
            p.copy_(v)
    make_closure(probe)()
    return [p.grad for p in probe.parameters()]


def test_one_step_with_L1_and_no_noise_equals_the_formula():
    lr, gamma, eta, alpha, wd, m = 0.5, 0.3, 0.1, 0.75, 1e-2, 0.9
    model = make_net()
    x = [p.detach().clone() for p in model.parameters()]
    # x′ = x − η′g;  μ = (1 − α)x + αx′;  outer gradient γ(x − μ) + wd·x; nesterov's first step: (1 + m)·that
    expected = [v - lr * (1 + m) * (gamma * alpha * eta * g + wd * v) for v, g in zip(x, grads(model, x))]
    opt = EntropySGD(model.parameters(), lr=lr, momentum=m, nesterov=True, weight_decay=wd, L=1, gamma=gamma,
                     langevin_lr=eta, noise=0.0, alpha=alpha)
    opt.step(make_closure(model))
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, atol=1e-6, rtol=0)
    assert opt.diagnostics["grad_evals"] == 1


def test_two_langevin_steps_equal_the_formula_per_param_group():
    gamma, eta, alpha = 2.0, 0.1, 0.6
    model = make_net()
    head = list(model[3].parameters())
    body = [p for p in model.parameters() if all(p is not h for h in head)]
    lrs = [1.0] * len(body) + [0.5] * len(head)
    x = [p.detach().clone() for p in body + head]
    x1 = [v - eta * g for v, g in zip(x, grads(model, x))]
    mu = [(1 - alpha) * v + alpha * v1 for v, v1 in zip(x, x1)]
    x2 = [v1 - eta * (g - gamma * (v - v1)) for v, v1, g in zip(x, x1, grads(model, x1))]
    mu = [(1 - alpha) * u + alpha * v2 for u, v2 in zip(mu, x2)]
    expected = [v - lr * gamma * (v - u) for v, u, lr in zip(x, mu, lrs)]
    opt = EntropySGD([dict(params=body), dict(params=head, lr=0.5)], lr=1.0, L=2, gamma=gamma,
                     langevin_lr=eta, noise=0.0, alpha=alpha)
    opt.step(make_closure(model))
    for p, e in zip(body + head, expected):
        torch.testing.assert_close(p.detach(), e, atol=1e-6, rtol=0)


def test_two_outer_steps_with_scoping_equal_the_formula():
    """γ_t = γ₀(1 + γ₁)^t in both places it enters: the Langevin coupling γ(x − x′) (seen from the second
    Langevin step on) and the outer gradient γ(x − μ)."""
    lr, gamma0, scoping, eta, alpha = 0.7, 0.5, 1.0, 0.1, 0.6
    model = make_net()

    def outer_step(x, gamma):
        x1 = [v - eta * g for v, g in zip(x, grads(model, x))]
        mu = [(1 - alpha) * v + alpha * v1 for v, v1 in zip(x, x1)]
        x2 = [v1 - eta * (g - gamma * (v - v1)) for v, v1, g in zip(x, x1, grads(model, x1))]
        mu = [(1 - alpha) * u + alpha * v2 for u, v2 in zip(mu, x2)]
        return [v - lr * gamma * (v - u) for v, u in zip(x, mu)]

    x = [p.detach().clone() for p in model.parameters()]
    expected = outer_step(outer_step(x, gamma0), gamma0 * (1 + scoping))
    opt = EntropySGD(model.parameters(), lr=lr, L=2, gamma=gamma0, scoping=scoping, langevin_lr=eta, noise=0.0,
                     alpha=alpha)
    closure = make_closure(model)
    opt.step(closure)
    opt.step(closure)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, atol=1e-12, rtol=0)
    assert opt.diagnostics["gamma"] == gamma0 * (1 + scoping)


@pytest.mark.parametrize("eta", [0.04, 0.5])
def test_langevin_noise_has_variance_eta_times_noise_squared(eta):
    """On a flat loss with L = 1: x′ = x + √η′·ε·ξ, μ = (1 − α)x + αx′, so the step is lr·γ·α·√η′·ε·ξ and its
    variance per coordinate (lr·γ·α)²·η′·ε² (SPEC §2)."""
    lr, gamma, alpha, noise, n = 2.0, 0.5, 0.75, 1e-2, 200_000
    theta = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = EntropySGD([theta], lr=lr, L=1, gamma=gamma, langevin_lr=eta, noise=noise, alpha=alpha, seed=1)

    def flat():
        opt.zero_grad()
        loss = 0.0 * theta.sum()
        loss.backward()
        return loss

    opt.step(flat)
    variance = (theta.detach() / (lr * gamma * alpha)).var().item()
    assert variance == pytest.approx(eta * noise**2, rel=0.02)  # the estimate's own error: √(2/n) = 0.3 %
    assert theta.detach().mean().abs().item() < 5 * math.sqrt(variance / n) * lr * gamma * alpha


def test_scoping_counter_survives_a_state_dict_round_trip():
    gamma, scoping, n = 0.1, 0.5, 3
    model = make_net()
    kwargs = dict(lr=0.5, momentum=0.9, L=3, gamma=gamma, scoping=scoping, noise=1e-2, seed=7)
    opt = EntropySGD(model.parameters(), **kwargs)
    closure = make_closure(model)
    for _ in range(n):
        opt.step(closure)
    assert opt.state["scoping_steps"] == n
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    opt.step(closure)
    assert opt.diagnostics["gamma"] == pytest.approx(gamma * (1 + scoping) ** n)

    resumed = make_net()
    resumed.load_state_dict(saved_model)
    opt2 = EntropySGD(resumed.parameters(), **{**kwargs, "seed": 0})
    opt2.load_state_dict(saved_opt)
    assert opt2.state["scoping_steps"] == n
    opt2.step(make_closure(resumed))
    assert opt2.diagnostics["gamma"] == pytest.approx(gamma * (1 + scoping) ** n)
    for a, b in zip(model.parameters(), resumed.parameters()):  # momentum and generator resumed too
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def run(seed, steps=3):
    model = make_net()
    opt = EntropySGD(model.parameters(), lr=0.5, L=4, noise=1e-2, seed=seed)
    for _ in range(steps):
        opt.step(make_closure(model))
    return [p.detach() for p in model.parameters()]


def test_same_seed_gives_identical_parameters():
    for a, b in zip(run(seed=3), run(seed=3)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert any(not torch.equal(a, b) for a, b in zip(run(seed=3), run(seed=4)))


@pytest.mark.parametrize("fresh", [True, False])
def test_fresh_batches_advance_the_closure_L_minus_1_times(fresh):
    model, log = make_net(), []
    opt = EntropySGD(model.parameters(), lr=0.5, L=5, fresh_batches=fresh)
    opt.step(make_closure(model, log))
    assert log == [{}] + [{"advance": True} if fresh else {}] * 4
    assert opt.diagnostics["grad_evals"] == 5


def test_batchnorm_running_stats_updated_once_per_step():
    model, reference = make_net(), make_net()
    reference(X[:16])  # one plain forward in train mode
    EntropySGD(model.parameters(), lr=0.5, L=4).step(make_closure(model))
    for name, buf in model.named_buffers():
        torch.testing.assert_close(buf, dict(reference.named_buffers())[name], atol=0, rtol=0)


def test_divergence_leaves_parameters_unchanged():
    model = make_net()
    before = copy.deepcopy(model.state_dict())
    opt = EntropySGD(model.parameters(), lr=0.5, momentum=0.9, L=4)
    closure, calls = make_closure(model), []

    def exploding():
        calls.append(1)
        return closure() * (math.nan if len(calls) == 3 else 1.0)

    with pytest.raises(DivergenceError):
        opt.step(exploding)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[k], atol=0, rtol=0)
    assert opt.state["scoping_steps"] == 0 and not any("momentum_buffer" in opt.state[p]
                                                       for p in model.parameters())


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=0.0), "lr"), (dict(momentum=-0.1), "momentum"), (dict(nesterov=True), "nesterov"),
    (dict(weight_decay=-1.0), "weight_decay"), (dict(L=0), "L"), (dict(L=2.0), "L"), (dict(gamma=-1.0), "gamma"),
    (dict(scoping=-0.1), "scoping"), (dict(langevin_lr=0.0), "langevin_lr"), (dict(noise=-1.0), "noise"),
    (dict(alpha=0.0), "alpha"), (dict(alpha=1.5), "alpha"), (dict(gamma=math.nan), "gamma"),
    (dict(fresh_batches=1), "fresh_batches"), (dict(seed=1.5), "seed"),
])
def test_bad_hyperparameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"invalid {name}="):
        EntropySGD(make_net().parameters(), **{"lr": 0.1, **kwargs})
