"""The paper's ironing figure: RBO and gradient descent on a wrinkled 1-D loss (SPEC §3).

f(θ) = Σ_{k=1}^{100} sin(k²θ)/k² on [0, 2.1]; its derivative Σ cos(k²θ) is what autograd computes here, so
the trajectories come from :class:`rbo.RBO` itself, not from a re-implementation.
"""

from __future__ import annotations

import numpy as np
import torch

from rbo.optimizer import RBO

RADII = (0.01, 0.03, 0.1, 0.3, 1.0)
DOMAIN = (0.0, 2.1)


def wrinkled(theta: torch.Tensor, terms: int = 100) -> torch.Tensor:
    """f(θ) = Σ_{k=1}^{terms} sin(k²θ)/k², elementwise."""
    k2 = torch.arange(1, terms + 1, dtype=theta.dtype, device=theta.device).square()
    return (torch.sin(theta.unsqueeze(-1) * k2) / k2).sum(-1)


def wrinkled_grad(theta: torch.Tensor, terms: int = 100) -> torch.Tensor:
    """f′(θ) = Σ_{k=1}^{terms} cos(k²θ), the exact derivative."""
    k2 = torch.arange(1, terms + 1, dtype=theta.dtype, device=theta.device).square()
    return torch.cos(theta.unsqueeze(-1) * k2).sum(-1)


def _trajectory(optimizer_factory, start: float, steps: int) -> np.ndarray:
    theta = torch.tensor([start], dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_factory([theta])

    def closure(advance: bool = False):
        optimizer.zero_grad(set_to_none=True)
        loss = wrinkled(theta).sum()
        loss.backward()
        return loss

    path = [start]
    for _ in range(steps):
        optimizer.step(closure)
        path.append(theta.item())
    return np.asarray(path)


def ironing_demo(radii=RADII, start: float = 2.0, lr: float = 1e-3, steps: int = 2000, proj_steps: int = 20,
                 proj_lr: float = 0.05, grid_points: int = 4000) -> dict:
    """RBO (one run per radius) and GD from the same start, with the authors' demo settings.

    Returns ``{"theta_grid", "f", "radii", "gd": {"theta"}, "rbo": {radius: {"theta", "centre_theta",
    "centre_y", "final"}}}``; the centre is the ball's centre (θ, f) + ρ·(−f′, 1)/√(1 + f′²) at each contact
    point.
    """
    grid = torch.linspace(*DOMAIN, grid_points, dtype=torch.float64)
    out = {"theta_grid": grid.numpy(), "f": wrinkled(grid).numpy(), "radii": list(radii),
           "gd": {"theta": _trajectory(lambda p: torch.optim.SGD(p, lr=lr), start, steps)}, "rbo": {}}
    for radius in radii:
        theta = _trajectory(lambda p, r=radius: RBO(p, lr=lr, radius=r, proj_steps=proj_steps, proj_lr=proj_lr),
                            start, steps)
        t = torch.from_numpy(theta)
        slope = wrinkled_grad(t)
        norm = torch.sqrt(1.0 + slope.square())
        out["rbo"][radius] = {"theta": theta, "centre_theta": (t - radius * slope / norm).numpy(),
                              "centre_y": (wrinkled(t) + radius / norm).numpy(), "final": float(theta[-1])}
    return out
