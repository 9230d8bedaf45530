"""Cost of one optimizer step, measured side by side in one run (issue 3's benchmark).

MLP 784-512-512-10, batch 256, float32: ms per SGD step and per RBO step for K ∈ {1, 10, 100}, and the
ratio RBO / (K · SGD) (the authors' code pays 1 + K evaluations plus a logging forward). Then how many
evaluations Gauss–Newton needs to reach a relative projection residual of 1e-6, against the residual the
authors' K = 100 GD projection leaves. ``python -m scripts.bench_optimizers [--device cuda]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rbo import RBO

K_VALUES = (1, 10, 100)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(optimizer, closure, device, steps: int) -> float:
    """Median milliseconds per step over ``steps`` steps after two warm-up steps."""
    for _ in range(2):
        optimizer.step(closure)
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        optimizer.step(closure)
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def step_costs(device: torch.device, rounds: int = 3) -> list[tuple[str, float, float]]:
    torch.manual_seed(0)
    x = torch.rand(256, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (256,), device=device)
    model = mlp().to(device)

    def make(optimizer):
        def closure(advance=False):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss
        return closure

    sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
    rbos = {k: RBO(model.parameters(), lr=1e-3, radius=2.0, proj_steps=k) for k in K_VALUES}
    sgd_ms, rbo_ms = [], {k: [] for k in K_VALUES}
    for _ in range(rounds):  # interleaved, so machine noise hits every variant alike
        sgd_ms.append(time_steps(sgd, make(sgd), device, steps=50))
        for k, opt in rbos.items():
            rbo_ms[k].append(time_steps(opt, make(opt), device, steps=max(3, 300 // k)))
    sgd_median = statistics.median(sgd_ms)
    rows = [("SGD", sgd_median, 1.0)]
    for k in K_VALUES:
        ms = statistics.median(rbo_ms[k])
        rows.append((f"RBO K={k}", ms, ms / (k * sgd_median)))
    return rows


def projection_quality(device: torch.device) -> tuple[int, float, float]:
    """(GN evaluations to 1e-6, GN relative residual, GD K=100 relative residual) on one MLP minibatch."""
    torch.manual_seed(1)
    x = torch.rand(256, 1, 28, 28, device=device, dtype=torch.float64)
    y = torch.randint(0, 10, (256,), device=device)
    results = []
    for kwargs in (dict(projection="gauss_newton", proj_steps=50, proj_tol=1e-6), dict(proj_steps=100)):
        torch.manual_seed(2)
        model = mlp().to(device, torch.float64)
        opt = RBO(model.parameters(), lr=0.05, radius=0.01, **kwargs)

        def closure(advance=False, opt=opt, model=model):
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss
        closure()
        g_sq = sum(float(p.grad.square().sum()) for p in model.parameters())
        initial = 0.05 * (1 + g_sq) * g_sq ** 0.5  # ‖v(θ)‖ = η(1 + ‖g‖²)‖g‖
        opt.step(closure)
        results.append((int(opt.diagnostics["grad_evals"]), opt.measure_contact(closure)["proj_residual"] / initial))
    (gn_evals, gn_rel), (_, gd_rel) = results
    return gn_evals, gn_rel, gd_rel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda | cuda:N")
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"## Optimizer step cost: MLP 784-512-512-10, batch 256, float32, {name}, torch {torch.__version__}\n")
    print("| optimizer | ms / step | RBO / (K · SGD) |\n|---|---:|---:|")
    for label, ms, ratio in step_costs(device):
        print(f"| {label} | {ms:.2f} | {ratio:.3f} |")
    gn_evals, gn_rel, gd_rel = projection_quality(device)
    print("\n## Projection quality on one MLP minibatch (η = 0.05, ρ = 0.01, float64)\n")
    print("| projection | evaluations | relative residual at the returned point |\n|---|---:|---:|")
    print(f"| Gauss–Newton, tol 1e-6 | {gn_evals} | {gn_rel:.2e} |")
    print(f"| GD, K = 100, γ = 1e-3 (authors') | 100 | {gd_rel:.2e} |")


if __name__ == "__main__":
    main()
