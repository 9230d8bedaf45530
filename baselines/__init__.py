"""The paper's baselines and RBO's controls, all through the closure protocol of :mod:`rbo.common`."""

from baselines.entropy_sgd import EntropySGD
from baselines.k_step_sgd import KStepSGD
from baselines.sam import SAM

__all__ = ["SAM", "EntropySGD", "KStepSGD"]
