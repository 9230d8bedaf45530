"""The control optimizers of issue 7 are what they claim to be."""

import pytest
import torch
from torch import nn

from baselines import KStepSGD


def _problem(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    return model, x, y


def test_k_step_sgd_takes_k_sgd_steps_on_one_batch_and_counts_k_evaluations():
    model, x, y = _problem()
    twin, _, _ = _problem()
    opt = KStepSGD(model.parameters(), lr=0.05, steps_per_batch=7)
    calls = []

    def closure(advance=False):
        calls.append(advance)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss
    opt.step(closure)
    assert len(calls) == 7 and not any(calls) and int(opt.diagnostics["grad_evals"]) == 7

    sgd = torch.optim.SGD(twin.parameters(), lr=0.05)
    for k in range(7):  # the same steps by hand; BN running stats only from the first pass
        sgd.zero_grad()
        twin[1].momentum = 0.1 if k == 0 else 0.0
        nn.functional.cross_entropy(twin(x), y).backward()
        sgd.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q)
    torch.testing.assert_close(model[1].running_mean, twin[1].running_mean)
    assert int(model[1].num_batches_tracked) == 1


def test_k_step_sgd_rejects_bad_step_count():
    model, _, _ = _problem()
    with pytest.raises(ValueError, match="steps_per_batch=0"):
        KStepSGD(model.parameters(), lr=0.1, steps_per_batch=0)
