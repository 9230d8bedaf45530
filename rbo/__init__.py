"""Rolling Ball Optimizer (arXiv 2505.19527) for PyTorch: ``from rbo import RBO``."""

from rbo.common import DivergenceError, frozen_running_stats
from rbo.optimizer import RBO

__all__ = ["RBO", "DivergenceError", "frozen_running_stats"]
