"""Every optimizer of the registry (tests/constants.py) lowers the loss of one toy classification problem, driven
as the trainer drives it (its protocol, the trainer's closure), in float32 and bf16 autocast; the suite's own give
each parameter group its own learning rate.

The toy problem: 512 points of 4 Gaussian blobs in 10-D (fixed seed), a 10-32-4 MLP, minibatches of 128
taken in turn; each optimizer gets its own number of steps (RBO pays K evaluations per step) and must end
below FACTOR × the initial full-data loss.
"""

from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from constants import OPTIMIZERS, TOY, optimizer_config
from torch import nn

from baselines import SAM, EntropySGD
from experiments.optim import StepDriver, evals_per_step, instantiate_optimizer
from experiments.trainer import Closure
from rbo import RBO

FACTOR = 0.25


def toy_problem():
    gen = torch.Generator().manual_seed(0)
    centres = 2.0 * torch.randn(4, 10, generator=gen)
    y = torch.arange(512) % 4
    x = centres[y] + torch.randn(512, 10, generator=gen)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))
    return model, x, y


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_lowers_the_loss(name, precision):
    overrides, steps = TOY.get(name, ((), 30))
    cfg = optimizer_config(name, *overrides)
    model, x, y = toy_problem()
    optimizer = instantiate_optimizer(cfg, list(model.parameters()), seed=0)
    driver = StepDriver(optimizer, cfg, closure_call=Closure.__call__)
    batches = ((x[rows], y[rows]) for rows in (slice(128 * (i % 4), 128 * (i % 4 + 1)) for i in range(10**6)))
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else nullcontext
    closure = Closure(model, batches, loss_scale=1.0, autocast=autocast,
                      counters={"grad_evals": 0, "diag_evals": 0, "examples": 0})

    with torch.no_grad():
        initial = F.cross_entropy(model(x), y).item()
    for _ in range(steps):
        closure.next_step()
        spent = driver(closure)
        assert spent == evals_per_step(cfg) or cfg.get("proj_tol"), (spent, evals_per_step(cfg))
    with torch.no_grad():
        final = F.cross_entropy(model(x), y).item()
    assert final < FACTOR * initial, f"{name} {precision}: loss {initial:.3f} -> {final:.3f}"


SECOND_GROUP_LR = 0.35
GROUP_FACTORIES = {  # name: build(param groups) -> optimizer; on an affine loss group g moves by −c·lr_g·a_g
    "sgd": (lambda gs: torch.optim.SGD(gs, lr=0.2), 1.0),
    "sam": (lambda gs: SAM(gs, torch.optim.SGD, rho=0.05, lr=0.2), 1.0),
    "asam": (lambda gs: SAM(gs, torch.optim.SGD, rho=0.5, adaptive=True, lr=0.2), 1.0),
    "entropy_sgd": (lambda gs: EntropySGD(gs, lr=1.0, L=5, gamma=1.0, langevin_lr=0.1, noise=0.0), None),
    # a converged projection (γ(1 + ‖a‖²) ≤ 0.7, 60 steps): the step is −η·a for every ρ (SPEC §1)
    "rbo": (lambda gs: RBO(gs, lr=0.5, radius=2.0, proj_steps=60, proj_lr=0.5), 1.0),
}


@pytest.mark.parametrize("name", list(GROUP_FACTORIES))
def test_each_param_group_takes_its_own_lr(name):
    """On the affine loss aᵀθ one step moves every coordinate of group g by −c·lr_g·a, with one c for all
    groups: c = 1 for SGD, SAM and RBO with a converged projection; for Entropy-SGD c = γ(x − μ)/a, the same
    number for every coordinate when the groups share γ, η′ and α."""
    build, c = GROUP_FACTORIES[name]
    gen = torch.Generator().manual_seed(0)
    slopes = [0.3 * torch.randn(n, generator=gen, dtype=torch.float64) for n in (6, 4)]
    params = [torch.randn(n, generator=gen, dtype=torch.float64).requires_grad_() for n in (6, 4)]
    opt = build([{"params": [params[0]]}, {"params": [params[1]], "lr": SECOND_GROUP_LR}])
    lrs = [group["lr"] for group in opt.param_groups]
    assert lrs[1] == SECOND_GROUP_LR != lrs[0]
    before = [p.detach().clone() for p in params]

    def closure(**_):
        opt.zero_grad()
        loss = sum((a * p).sum() for a, p in zip(slopes, params))
        loss.backward()
        return loss.detach()

    opt.step(closure)
    scale = torch.cat([(before[i] - params[i].detach()) / (lrs[i] * slopes[i]) for i in range(2)])
    torch.testing.assert_close(scale, torch.full_like(scale, c if c is not None else scale[0].item()),
                               rtol=1e-9, atol=0)
    assert scale[0] > 0
