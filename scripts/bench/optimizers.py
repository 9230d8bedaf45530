"""Cost of one optimizer step, measured side by side in one run (issues 3 and 24).

MLP 784-512-512-10, batch 256, float32: for K ∈ {1, 10, 100}, :data:`PAIRS` interleaved pairs of one RBO step and
K SGD steps (alternating which goes first), each on the same batch; the ratio RBO / (K · SGD) is the ratio of
their minima, the times least disturbed by other load (the authors' code pays 1 + K evaluations plus a logging
forward). Then (issue 17) how many evaluations each projection needs to reach a relative residual of 1e-6
against ρ, on the MLP 784-128-128-10 in float64 and one batch of 256 real digits: the authors' GD, Gauss–Newton
and Newton (a Hessian-vector product counted as ``rbo.optimizer.HVP_COST`` evaluations), capped, with the
residual reached. ``python -m scripts.bench.optimizers [--device cuda]``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from rbo import RBO
from rbo.common import backward
from rbo.optimizer import HVP_COST

K_VALUES = (1, 10, 100)
PROJECTION_RADII = (1e-4, 1e-2, 0.1, 1.0, 2.0, 5.0)
PROJECTION_CAP = 500  # evaluations per projection, HVPs included
PROJECTION_TOL = 1e-6  # relative residual ‖v‖ / ‖v(θ)‖
PROJECTION_LR = 1.0  # η: SPEC §3's default (ASSUMPTION)
PAIRS = 15  # interleaved (RBO step, K SGD steps) pairs per K


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cross_entropy_closure(model, optimizer, x, y, autocast: bool = False):
    """The closure every benchmark and check steps with: zero-grad, forward (bf16 autocast if asked), mean
    cross-entropy, backward (keeping the gradient's graph when RBO's Newton projection asks), return the loss."""
    def closure(advance: bool = False, create_graph: bool = False):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        loss = nn.functional.cross_entropy(logits.float(), y)
        backward(loss, list(model.parameters()), create_graph=create_graph)
        return loss
    return closure


def step_costs(device: torch.device, pairs: int = PAIRS, k_values: tuple[int, ...] = K_VALUES) -> list[dict]:
    """Per K, ``pairs`` interleaved pairs (one RBO step, K SGD steps; which goes first alternates) after one
    warm-up pair, both stepping one model on one batch. Rows ``{k, sgd_ms, rbo_ms, ratio, sgd_evals, rbo_evals}``:
    the minima over the pairs of the K SGD steps and of the RBO step, their ratio, and the closure calls of each
    side in the last pair (both K: the same evaluations)."""
    if not (isinstance(pairs, int) and pairs >= 1):
        raise ValueError(f"invalid pairs={pairs!r}: the number of timed pairs must be an integer >= 1")
    torch.manual_seed(0)
    x = torch.rand(256, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (256,), device=device)
    model = mlp().to(device)
    rows = []
    for k in k_values:
        sides = {"sgd": _Side(torch.optim.SGD(model.parameters(), lr=1e-3), model, x, y, steps=k),
                 "rbo": _Side(RBO(model.parameters(), lr=1e-3, radius=2.0, proj_steps=k), model, x, y, steps=1)}
        times = {"sgd": [], "rbo": []}
        for pair in range(pairs + 1):  # pair 0 warms up
            for name in ("sgd", "rbo") if pair % 2 else ("rbo", "sgd"):
                seconds = sides[name].seconds(device)
                if pair:
                    times[name].append(seconds)
        sgd_ms, rbo_ms = 1e3 * min(times["sgd"]), 1e3 * min(times["rbo"])
        rows.append({"k": k, "sgd_ms": sgd_ms, "rbo_ms": rbo_ms, "ratio": rbo_ms / sgd_ms,
                     "sgd_evals": sides["sgd"].calls, "rbo_evals": sides["rbo"].calls})
    return rows


class _Side:
    """``steps`` optimizer steps with :func:`cross_entropy_closure`, timed; ``calls``: closure calls of the last run."""

    def __init__(self, optimizer, model, x, y, steps: int) -> None:
        self.optimizer, self.steps, self.calls = optimizer, steps, 0
        self.closure = cross_entropy_closure(model, optimizer, x, y)

    def counted(self, *args, **kwargs):
        self.calls += 1
        return self.closure(*args, **kwargs)

    def seconds(self, device: torch.device) -> float:
        self.calls = 0
        sync(device)
        start = time.perf_counter()
        for _ in range(self.steps):
            self.optimizer.step(self.counted)
        sync(device)
        return time.perf_counter() - start


def step_cost_table(rows: list[dict]) -> str:
    return "\n".join(["| K | K SGD steps, ms | one RBO step, ms | RBO / (K · SGD) |", "|---:|---:|---:|---:|",
                      *(f"| {r['k']} | {r['sgd_ms']:.2f} | {r['rbo_ms']:.2f} | {r['ratio']:.3f} |" for r in rows)])


def projection_convergence(device: torch.device, activation: type[nn.Module] = nn.ReLU):
    """Rows (ρ, projection, evaluations or None when capped, relative residual at the returned point,
    distance to the rolled centre / ρ, negative-curvature directions met) of one RBO step on one batch."""
    from experiments.data import load_dataset

    train = load_dataset("mnist_subset", val_size=0, download=False).train
    x = train.images[:256].to(device, torch.float64) / 255
    y = train.labels[:256].to(device)
    arms = (("GD, γ = 1e-3 (authors')", dict(projection="gd", proj_lr=1e-3)),
            ("Gauss–Newton", dict(projection="gauss_newton", proj_tol=PROJECTION_TOL)),
            ("Newton (trust-region CG)", dict(projection="newton", proj_tol=PROJECTION_TOL)))
    rows = []
    for radius in PROJECTION_RADII:
        for label, kwargs in arms:
            torch.manual_seed(0)
            model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), activation(), nn.Linear(128, 128), activation(),
                                  nn.Linear(128, 10)).to(device, torch.float64)
            opt = RBO(model.parameters(), lr=PROJECTION_LR, radius=radius, proj_steps=PROJECTION_CAP, **kwargs)
            closure = cross_entropy_closure(model, opt, x, y)
            closure()
            g_sq = sum(float(p.grad.square().sum()) for p in model.parameters())
            initial = PROJECTION_LR * (1 + g_sq) * g_sq ** 0.5  # ‖v(θ)‖ = η(1 + ‖g‖²)‖g‖
            opt.step(closure)
            contact = opt.measure_contact(closure)
            residual = contact["proj_residual"] / initial
            evals = int(opt.diagnostics["grad_evals"])
            reached = residual <= PROJECTION_TOL  # gd has no tolerance: it always spends the whole cap
            negative = int(opt.diagnostics["negative_curvature"]) if "negative_curvature" in opt.diagnostics else None
            rows.append((radius, label, evals if reached else None, residual, contact["centre_distance"] / radius,
                         negative))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda | cuda:N")
    parser.add_argument("--pairs", type=int, default=PAIRS, help="interleaved (RBO step, K SGD steps) pairs per K")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error(f"invalid --pairs={args.pairs}: the number of timed pairs must be >= 1")
    from experiments.trainer import resolve_device  # the trainer's rule for "auto"

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"## Optimizer step cost: MLP 784-512-512-10, batch 256, float32, {name}, torch {torch.__version__}\n")
    print(f"{args.pairs} interleaved pairs per K (one RBO step, K SGD steps), minima over the pairs\n")
    print(step_cost_table(step_costs(device, pairs=args.pairs)), flush=True)
    for activation, why in ((nn.ReLU, "the paper's activation"),
                            (nn.Tanh, "a smooth control: ReLU's kinks make ∇f jump, which no solver's model sees")):
        print(f"\n## Projection: evaluations to a relative residual of {PROJECTION_TOL:g} (at most {PROJECTION_CAP}; "
              f"one HVP = {HVP_COST} evaluations), MLP 784-128-128-10 with {activation.__name__} ({why}), float64, "
              f"one batch of 256 digits (mnist_subset), η = {PROJECTION_LR:g}\n")
        print("| ρ | projection | evaluations | relative residual at the returned point | distance to centre / ρ "
              "| negative curvature met |\n|---:|---|---:|---:|---:|---:|")
        for radius, label, evals, residual, distance, negative in projection_convergence(device, activation):
            count = f"> {PROJECTION_CAP} (capped)" if evals is None else str(evals)
            print(f"| {radius:g} | {label} | {count} | {residual:.2e} | {distance:.3g} | "
                  f"{'' if negative is None else negative} |")


if __name__ == "__main__":
    main()
