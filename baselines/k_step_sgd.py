"""A control for RBO (issue 7): plain SGD that takes K steps on each minibatch before moving on.

It spends exactly RBO's K gradient evaluations per minibatch, on the same data order, with no ball: if it
matches RBO, the radius is not what RBO's numbers come from. With RBO's authors' settings the natural
learning rate is γ·η (RBO's inner step on a flat loss, SPEC §1: K = 1 gives θ − γη(1 + ‖g‖²)g).
"""

from __future__ import annotations

import torch

from rbo.common import Closure, DivergenceError, check_hyper, evaluate, require_closure


class KStepSGD(torch.optim.SGD):
    """``torch.optim.SGD`` whose ``step(closure)`` takes ``steps_per_batch`` steps on the closure's minibatch.

    Every evaluation after the first leaves BatchNorm running statistics alone, as in RBO.
    """

    def __init__(self, params, lr: float, steps_per_batch: int = 100, **sgd_kwargs):
        check_hyper("steps_per_batch", steps_per_batch, isinstance(steps_per_batch, int) and steps_per_batch >= 1,
                    "must be an integer >= 1")
        super().__init__(params, lr=lr, **sgd_kwargs)
        self.steps_per_batch = steps_per_batch
        self.diagnostics: dict[str, torch.Tensor] = {}

    def step(self, closure: Closure | None = None) -> torch.Tensor:
        closure = require_closure(closure, "KStepSGD")
        first_loss = loss_sum = None
        for k in range(self.steps_per_batch):
            loss = evaluate(closure, first=k == 0)
            if first_loss is None:
                first_loss, loss_sum = loss, loss.clone()
            else:
                loss_sum += loss
            super().step()
        if not torch.isfinite(loss_sum):
            raise DivergenceError("KStepSGD: non-finite loss")
        self.diagnostics = {"grad_evals": torch.tensor(self.steps_per_batch)}
        return first_loss
