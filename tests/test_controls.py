"""The control optimizers of issue 7 are what they claim to be."""

import json

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


def test_radius0_control_is_rbo_with_radius_zero_and_nothing_else_changed():
    from conftest import compose_config

    from experiments.config import REGISTRY_KEYS
    from experiments.optim import build_optimizer
    from rbo import RBO

    control = compose_config("optimizer=rbo_radius0").optimizer
    reference = compose_config("optimizer=rbo", "optimizer.radius=0").optimizer
    computes = [k for k in reference if k != "name" and f"optimizer.{k}" not in REGISTRY_KEYS]  # not how it is shown
    assert {k: control[k] for k in computes} == {k: reference[k] for k in computes} and set(control) == set(reference)
    model, x, y = _problem()
    twin, _, _ = _problem()
    steps = []
    for cfg, m in ((control, model), (reference, twin)):
        opt = build_optimizer(cfg, m)
        assert isinstance(opt, RBO) and opt.param_groups[0]["radius"] == 0.0
        opt.step(_closure(opt, m, x, y))
        steps.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    torch.testing.assert_close(steps[0], steps[1], rtol=0, atol=0)


def _closure(opt, model, x, y):
    def closure(advance=False):
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss
    return closure


def _summary(folder, name, optimizer, effective_step, lr, status="completed", dataset="synthetic", model="mlp"):
    path = folder / name
    path.mkdir(parents=True)
    summary = {"status": status, "optimizer": optimizer, "dataset": dataset, "model": model,
               "hyper": {"lr": lr}, "diagnostics": {"effective_step": effective_step}}
    (path / "summary.json").write_text(json.dumps(summary))


def test_effective_lr_comes_from_completed_reference_runs_of_the_same_row(tmp_path):
    from conftest import compose_config

    from experiments.controls import resolve_effective_lr

    folder = tmp_path / "quick" / "t"
    _summary(folder, "a", "rbo", effective_step=0.02, lr=2.0)   # η × effective step = 0.04
    _summary(folder, "b", "rbo", effective_step=0.01, lr=2.0)   # 0.02 → mean 0.03
    _summary(folder, "c", "rbo", effective_step=9.0, lr=1.0, status="diverged")  # not completed: ignored
    _summary(folder, "d", "rbo", effective_step=9.0, lr=1.0, model="vgg9")  # another row: ignored
    _summary(folder, "e", "sgd", effective_step=9.0, lr=1.0)  # not the reference: ignored
    cfg = compose_config("optimizer=sgd_effective_lr", "dataset=synthetic", "model=mlp",
                         f"runs_dir={tmp_path}", "experiment_name=quick/t")
    resolve_effective_lr(cfg)
    assert cfg.optimizer.lr == pytest.approx(0.03)

    empty = compose_config("optimizer=sgd_effective_lr", f"runs_dir={tmp_path}", "experiment_name=none")
    with pytest.raises(ValueError, match="optimizer.lr=null.*optimizer=rbo"):
        resolve_effective_lr(empty)
