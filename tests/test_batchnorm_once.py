"""BatchNorm running statistics move exactly once per step, from the step's first evaluation, for every optimizer
of the registry (tests/constants.py), through the trainer (issue 11 §4; SPEC §1 "BatchNorm in the authors' code", §2).

One training step of ResNet-6 (BatchNorm after every convolution) on the tiny synthetic data of conftest, with a
log row at that step (RBO's contact measurement is one more evaluation). Every optimizer's first evaluation is
a forward pass at the same initial weights on the same first minibatch, so after the step every BatchNorm buffer
must equal plain SGD's, which evaluates once per step.
"""

from __future__ import annotations

import pytest
import torch
from constants import OPTIMIZERS, cheap, optimizer_config

from experiments.optim import evals_per_step
from experiments.trainer import Trainer

REFERENCE: dict[str, torch.Tensor] = {}  # SGD's buffers after one step, computed once


def buffers_after_one_step(small_cfg, name: str) -> dict[str, torch.Tensor]:
    cfg = small_cfg(f"optimizer={name}", "model=resnet6", "epochs=1", "batch_size=8", "log_every=1",
                    "dataset.synthetic_size=[16,8]", "dataset.val_size=8", *cheap(name))
    cfg.max_grad_evals = evals_per_step(cfg.optimizer)  # one step's evaluations: the trainer stops after one step
    trainer = Trainer(cfg)
    assert trainer.run()["status"] == "completed"
    assert trainer.counters["step"] == 1
    return {k: v.detach().clone() for k, v in trainer.model.named_buffers()}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_batchnorm_statistics_move_once_per_step(small_cfg, name):
    optimizer_config(name)  # skips an optimizer whose package is not installed
    if not REFERENCE:
        REFERENCE.update(buffers_after_one_step(small_cfg, "sgd"))
    buffers = buffers_after_one_step(small_cfg, name)
    counts = {k: int(v) for k, v in buffers.items() if k.endswith("num_batches_tracked")}
    assert len(counts) >= 5 and set(counts.values()) == {1}, counts
    assert buffers.keys() == REFERENCE.keys()
    for key, value in buffers.items():
        torch.testing.assert_close(value, REFERENCE[key], rtol=0, atol=0, msg=f"{name}: {key}")
