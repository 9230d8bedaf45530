"""SAM / ASAM (baselines/sam.py) against the formula of SPEC §2 computed by hand on a net with BatchNorm."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines import SAM
from rbo import DivergenceError

BATCHES = [(torch.randn(16, 5, generator=torch.Generator().manual_seed(i), dtype=torch.float64),
            torch.arange(16) % 3) for i in range(2)]


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()


def make_closure(model, batch):
    def closure():
        model.zero_grad()
        loss = F.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        return loss
    return closure


def two_groups(model, lrs=(0.1, 0.05), rhos=(0.05, 0.2)):
    """First Linear + BatchNorm in one group, last Linear in another, with their own lr and rho."""
    head = list(model[3].parameters())
    body = [p for p in model.parameters() if all(p is not h for h in head)]
    return [dict(params=body, lr=lrs[0], rho=rhos[0]), dict(params=head, lr=lrs[1], rho=rhos[1])]


def grad_at(model, params, batch):
    """∇f at ``params`` (a name → tensor dict) in train mode, leaving the model's running stats alone."""
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    loss = F.cross_entropy(functional_call(model, {**leaves, **buffers}, (batch[0],)), batch[1])
    return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))


def sam_by_hand(model, batches, *, adaptive, momentum, max_grad_norm=None, lrs=(0.1, 0.05), rhos=(0.05, 0.2)):
    theta = {k: v.detach().clone() for k, v in model.named_parameters()}
    lr = {k: lrs[k.startswith("3.")] for k in theta}
    rho = {k: rhos[k.startswith("3.")] for k in theta}
    buf = {}
    for batch in batches:
        g = grad_at(model, theta, batch)
        w = {k: theta[k].abs() if adaptive else torch.ones_like(theta[k]) for k in theta}
        norm = math.sqrt(sum(float((w[k] * g[k]).square().sum()) for k in theta))
        g2 = grad_at(model, {k: theta[k] + rho[k] * w[k] ** 2 * g[k] / norm for k in theta}, batch)
        if max_grad_norm is not None:
            norm2 = math.sqrt(sum(float(v.square().sum()) for v in g2.values()))
            g2 = {k: v * min(1.0, max_grad_norm / (norm2 + 1e-6)) for k, v in g2.items()}
        for k in theta:
            buf[k] = momentum * buf[k] + g2[k] if k in buf else g2[k]
            theta[k] = theta[k] - lr[k] * buf[k]
    return theta


@pytest.mark.parametrize("adaptive", [False, True], ids=["sam", "asam"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_two_steps_equal_the_formula(adaptive, momentum):
    model = make_net()
    expected = sam_by_hand(model, BATCHES, adaptive=adaptive, momentum=momentum)
    opt = SAM(two_groups(model), torch.optim.SGD, adaptive=adaptive, lr=0.1, momentum=momentum)
    for batch in BATCHES:
        opt.step(make_closure(model, batch))
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[k], atol=1e-6, rtol=0)
    assert opt.diagnostics["grad_evals"] == 2


def test_clipping_acts_on_the_second_gradient():
    model = make_net()
    expected = sam_by_hand(model, BATCHES, adaptive=False, momentum=0.0, max_grad_norm=0.05)
    unclipped = sam_by_hand(model, BATCHES, adaptive=False, momentum=0.0)
    opt = SAM(two_groups(model), torch.optim.SGD, max_grad_norm=0.05, lr=0.1)
    for batch in BATCHES:
        opt.step(make_closure(model, batch))
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[k], atol=1e-6, rtol=0)
    assert any(not torch.allclose(expected[k], unclipped[k], atol=1e-4) for k in expected)


def test_batchnorm_running_stats_updated_once_per_step():
    model, reference = make_net(), make_net()
    reference(BATCHES[0][0])  # one plain forward in train mode
    SAM(model.parameters(), torch.optim.SGD, lr=0.1).step(make_closure(model, BATCHES[0]))
    for name, buf in model.named_buffers():
        torch.testing.assert_close(buf, dict(reference.named_buffers())[name], atol=0, rtol=0)


def test_scheduler_on_sam_or_on_base_changes_the_base_lr():
    model = make_net()
    opt = SAM(model.parameters(), torch.optim.SGD, lr=0.1)
    on_sam = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    on_base = torch.optim.lr_scheduler.StepLR(opt.base_optimizer, step_size=1, gamma=0.1)
    opt.step(make_closure(model, BATCHES[0]))
    on_sam.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    on_base.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)


@pytest.mark.parametrize("base, kwargs", [(torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                          (torch.optim.AdamW, dict(lr=1e-2))], ids=["sgd", "adamw"])
def test_state_dict_round_trip_resumes_identically(base, kwargs):
    model = make_net()
    opt = SAM(model.parameters(), base, rho=0.5, adaptive=True, **kwargs)
    opt.step(make_closure(model, BATCHES[0]))
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    assert saved_opt["state"], "the base optimizer's buffers must be in SAM's state_dict"
    opt.step(make_closure(model, BATCHES[1]))

    resumed = make_net()
    resumed.load_state_dict(saved_model)
    opt2 = SAM(resumed.parameters(), base, **kwargs)
    opt2.load_state_dict(saved_opt)
    assert opt2.param_groups is opt2.base_optimizer.param_groups and opt2.state is opt2.base_optimizer.state
    assert opt2.param_groups[0]["rho"] == 0.5 and opt2.param_groups[0]["adaptive"]
    opt2.step(make_closure(resumed, BATCHES[1]))
    for a, b in zip(model.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("bad_call", [1, 2], ids=["first-evaluation", "perturbed-evaluation"])
def test_divergence_leaves_parameters_unchanged(bad_call):
    model = make_net()
    before = copy.deepcopy(model.state_dict())
    opt = SAM(model.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9)
    calls = []

    def closure():
        calls.append(1)
        model.zero_grad()
        loss = F.cross_entropy(model(BATCHES[0][0]), BATCHES[0][1])
        loss = loss * math.nan if len(calls) == bad_call else loss
        loss.backward()
        return loss

    with pytest.raises(DivergenceError):
        opt.step(closure)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[k], atol=0, rtol=0)
    assert not opt.state, "the base optimizer must not have stepped"


@pytest.mark.parametrize("kwargs, name", [
    (dict(rho=-0.1), "rho"), (dict(rho=math.nan), "rho"), (dict(adaptive=1), "adaptive"),
    (dict(max_grad_norm=0.0), "max_grad_norm"),
])
def test_bad_hyperparameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SAM(make_net().parameters(), torch.optim.SGD, lr=0.1, **kwargs)


def test_base_optimizer_must_be_a_class():
    model = make_net()
    with pytest.raises(ValueError, match="base_optimizer"):
        SAM(model.parameters(), torch.optim.SGD(model.parameters(), lr=0.1))


def test_step_needs_a_closure():
    with pytest.raises(ValueError, match="closure"):
        SAM(make_net().parameters(), torch.optim.SGD, lr=0.1).step()
