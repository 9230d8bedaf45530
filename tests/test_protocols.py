"""Protocols, declared and checked (issue 22): every file of ``conf/optimizer/`` declares how the trainer drives its
step (``protocol``, ``create_graph``), and the class behind it behaves that way on a toy problem; the trainer drives
each correctly, counts every evaluation, and keeps no gradient graph alive (README "Adding an optimizer")."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from constants import OPTIMIZERS, optimizer_config
from torch import nn

from experiments.config import Protocol
from experiments.optim import StepDriver, instantiate_optimizer
from experiments.trainer import Closure, Trainer

ROOT = Path(__file__).resolve().parents[1]
LEAK = r"Using backward\(\) with create_graph=True will create a reference cycle"


# ---- the contract: declared protocol against observed behaviour --------------------------------------------

def toy_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))  # smooth: Hessian-vector products exist


def toy_batch(offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(offset)
    return torch.randn(16, 6, generator=gen), torch.arange(offset, offset + 16) % 3


def one_step(cfg, *, given: str | None, call_with_closure: bool, graphs: bool):
    """Parameters after one step from the same start, and how often ``step`` called the closure; None if the step
    raised. ``given``: the gradient in ``p.grad`` before ``step``: of this minibatch (``"this"``: what the trainer
    leaves after its own evaluation), of another one (``"stale"``: the previous step's), or none. ``graphs``:
    whether the closure takes ``create_graph`` and that gradient keeps its graph."""
    model = toy_model()
    optimizer = instantiate_optimizer(cfg, list(model.parameters()), seed=0)
    params = list(model.parameters())
    x, y = toy_batch(0)
    calls = []

    def gradient(inputs, labels):
        loss = F.cross_entropy(model(inputs), labels)
        for p, g in zip(params, torch.autograd.grad(loss, params, create_graph=graphs)):
            p.grad = g
        return loss.detach()

    def closure_with_graphs(create_graph=False):
        calls.append(create_graph)
        optimizer.zero_grad(set_to_none=True)
        return gradient(x, y)

    def closure_without_graphs():
        calls.append(False)
        optimizer.zero_grad(set_to_none=True)
        return gradient(x, y)

    if given is not None:
        gradient(*((x, y) if given == "this" else toy_batch(1)))
    torch.manual_seed(1)  # optimizers that draw noise from the global generator draw the same in every run
    try:
        with torch.enable_grad():
            if call_with_closure:
                optimizer.step(closure_with_graphs if graphs else closure_without_graphs)
            else:
                optimizer.step()
    except Exception:  # the optimizer refused this way of stepping (no closure, no graph, ...)
        return None
    return torch.cat([p.detach().reshape(-1) for p in params]), len(calls)


def behaviour(cfg) -> dict[str, bool]:
    """What the class does, observed on the toy problem, each question asked with ``cfg``'s own create_graph."""
    graphs = bool(cfg.create_graph)
    plain = [one_step(cfg, given=given, call_with_closure=False, graphs=graphs) for given in ("this", "stale")]
    driven = [one_step(cfg, given=given, call_with_closure=True, graphs=graphs) for given in ("this", "stale")]
    without_graphs = [one_step(cfg, given="this", call_with_closure=call, graphs=False) for call in (False, True)]
    return {
        # step() alone works and follows the gradient it finds in p.grad
        "steps_on_given_gradient": None not in plain and not torch.equal(plain[0][0], plain[1][0]),
        # step(closure) works and calls the closure
        "calls_the_closure": driven[0] is not None and driven[0][1] >= 1,
        # step(closure) moves differently when p.grad held another minibatch's gradient before the call
        "reads_gradient_before_closure": None not in driven and not torch.equal(driven[0][0], driven[1][0]),
        # neither way of stepping works when gradients carry no graph and the closure cannot be asked for one
        "needs_graph": all(result is None for result in without_graphs),
    }


def violations(cfg) -> list[str]:
    """How ``cfg``'s declared protocol and create_graph disagree with the class's behaviour ([] when they agree)."""
    seen = behaviour(cfg)
    expected = {
        Protocol.plain: {"steps_on_given_gradient": True},
        Protocol.closure: {"calls_the_closure": True, "reads_gradient_before_closure": False},
        Protocol.grad_then_closure: {"calls_the_closure": True, "reads_gradient_before_closure": True},
    }[Protocol(cfg.protocol)] | {"needs_graph": bool(cfg.create_graph)}
    return [f"{cfg.name} declares protocol={cfg.protocol}, create_graph={cfg.create_graph}, but {question} is "
            f"{seen[question]}" for question, value in expected.items() if seen[question] != value]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_behaves_as_its_protocol_says(name):
    assert violations(optimizer_config(name)) == []


@pytest.mark.parametrize("name, wrong", [
    ("sam", ("optimizer.protocol=plain",)),  # the suite's SAM needs its closure
    ("sam", ("optimizer.protocol=grad_then_closure",)),  # it computes its own first gradient: one wasted
    ("sam_po", ("optimizer.protocol=plain",)),
    ("sam_po", ("optimizer.protocol=closure",)),  # it would perturb along the previous step's gradient
    ("friendly_sam", ("optimizer.protocol=closure",)),
    ("adahessian", ("optimizer.create_graph=false",)),
    ("sgd", ("optimizer.create_graph=true",)),
])
def test_a_misdeclared_protocol_fails_the_contract(name, wrong):
    assert violations(optimizer_config(name, *wrong)), f"{name} with {wrong} passed the contract"


# ---- through the trainer ------------------------------------------------------------------------------------

def trained(small_cfg, *overrides: str) -> Trainer:
    trainer = Trainer(small_cfg(*overrides))
    assert trainer.run()["status"] == "completed"
    return trainer


def parameters(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_sgd_driven_plain_equals_sgd_driven_by_its_closure_bit_for_bit(small_cfg, tmp_path):
    plain = trained(small_cfg, "optimizer=sgd")
    assert plain.cfg.optimizer.protocol == Protocol.plain
    closure = trained(small_cfg, "optimizer=sgd", "optimizer.protocol=closure", f"runs_dir={tmp_path / 'closure'}")
    assert plain.run_id == closure.run_id  # the protocol says how it is driven, not what it computes
    for a, b in zip(parameters(plain), parameters(closure)):
        assert torch.equal(a, b)
    assert [{k: v for k, v in row.items() if k != "train_seconds"} for row in plain.metrics] == \
        [{k: v for k, v in row.items() if k != "train_seconds"} for row in closure.metrics]
    assert plain.counters["grad_evals"] == closure.counters["grad_evals"] == plain.counters["step"]


def test_pytorch_optimizers_sam_through_the_trainer_equals_the_suites_sam_step_for_step(small_cfg, tmp_path):
    """pytorch-optimizer's SAM, driven grad_then_closure (its first gradient from the trainer's own evaluation),
    against baselines.SAM driven by its closure: the same steps, losses, evaluations and weights."""
    pytest.importorskip("pytorch_optimizer")
    same = ("optimizer.lr=0.05", "log_every=1")
    ours = trained(small_cfg, "optimizer=sam_momentum", *same)
    theirs = trained(small_cfg, "optimizer=sam_po", *same, f"runs_dir={tmp_path / 'po'}")
    assert theirs.cfg.optimizer.protocol == Protocol.grad_then_closure
    assert (theirs.cfg.optimizer.kwargs.rho, theirs.cfg.optimizer.kwargs.momentum) == \
        (ours.cfg.optimizer.rho, ours.cfg.optimizer.momentum)
    assert [r["grad_evals"] for r in theirs.steps] == [r["grad_evals"] for r in ours.steps] == \
        [2 * r["step"] for r in ours.steps]
    assert [r["loss"] for r in theirs.steps] == pytest.approx([r["loss"] for r in ours.steps], rel=1e-5)
    for a, b in zip(parameters(theirs), parameters(ours)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings(f"error:{LEAK}")
@pytest.mark.parametrize("overrides, per_step", [
    (("optimizer=rbo_newton", "optimizer.proj_steps=6"), None),  # RBO charges its own (step_evals)
    (("optimizer=adahessian",), 3),  # the trainer's evaluation + one Hessian-vector product (HVP_COST = 2)
])
def test_create_graph_steps_leave_no_reference_cycle_and_pay_their_hessian_vector_products(small_cfg, overrides,
                                                                                          per_step):
    if "optimizer=adahessian" in overrides:
        pytest.importorskip("pytorch_optimizer")
    trainer = trained(small_cfg, *overrides)
    assert trainer.cfg.optimizer.create_graph
    assert all(p.grad is None or p.grad.grad_fn is None for p in trainer.model.parameters())  # no graph kept
    if per_step is not None:
        assert trainer.counters["grad_evals"] == per_step * trainer.counters["step"]


def test_a_closure_that_cannot_keep_the_graph_is_refused_when_the_optimizer_is_built():
    """Before any step: the optimizer and the closure it would get (here the fast path's graphed closure)."""
    from experiments.fast_path import GraphedClosure

    cfg = optimizer_config("rbo_newton")
    optimizer = instantiate_optimizer(cfg, list(toy_model().parameters()), seed=0)
    with pytest.raises(ValueError, match=r"optimizer.create_graph=True .* GraphedClosure.__call__ does not; "
                                         r"allowed: cuda_graphs=false"):
        StepDriver(optimizer, cfg, closure_call=GraphedClosure.__call__)
    StepDriver(optimizer, cfg, closure_call=Closure.__call__)


def test_the_readme_rbo_closure_keeps_the_graph_without_a_reference_cycle():
    """README "Using RBO in your own training loop": its closure, asked for create_graph by projection="newton"."""
    from rbo import RBO

    readme = (ROOT / "README.md").read_text().split("## Using RBO in your own training loop", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", readme, re.S)[1]
    model = toy_model()
    x, y = toy_batch(0)
    namespace = {"model": model, "criterion": F.cross_entropy, "x": x, "y": y}
    exec(snippet, namespace)  # the README's step, as written
    namespace["optimizer"] = RBO(model.parameters(), lr=1.0, radius=2.0, proj_steps=6, projection="newton")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=LEAK)
        namespace["closure"](create_graph=True)
        assert all(p.grad.grad_fn is not None for p in model.parameters())  # the graph for the products is there
        namespace["optimizer"].step(namespace["closure"])


@pytest.mark.parametrize("name", ["sgd", "sam_po"])
def test_the_trainers_own_evaluation_replays_from_cuda_graphs_on_the_fast_path(small_cfg, monkeypatch, tmp_path, name):
    """plain and grad_then_closure: the evaluation the trainer runs before ``step`` goes through the fast path's
    graphed closure too (replayed eagerly here, tests/test_fast_path.py), with the eager path's numbers."""
    from test_fast_path import BN_RUN, _install_eager_replay

    from experiments import fast_path

    optimizer_config(name)  # skips an optimizer whose package is not installed
    eager = trained(small_cfg, *BN_RUN, f"optimizer={name}")
    monkeypatch.setattr(fast_path, "install", _install_eager_replay)
    graphed = trained(small_cfg, *BN_RUN, f"optimizer={name}", f"runs_dir={tmp_path / 'graphed'}")
    assert graphed.graphed_closure._staged is not None  # a batch was replayed (sgd: only the trainer's evaluation)
    for a, b in zip(parameters(eager), parameters(graphed)):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert graphed.counters["grad_evals"] == eager.counters["grad_evals"]
