"""The paper's ironing figure, reproduced and taken apart (SPEC §3 "The authors' code"; issue 11 §1).

The landscape is f(θ) = Σ_{k=1}^{100} sin(k²θ)/k² on [0, 2.1]; its derivative is f′(θ) = Σ cos(k²θ).
The authors' 1-D demo (``examples/weirstrass.py`` with ``rolling_ball_trajectory``) is not the update they use
for networks (:class:`rbo.RBO`); it differs in three choices, each a field of :class:`Variant`:

- ``slope``: ``"authors"`` feeds the ball Σ cos(k²θ)/k² (the derivative of the smoother Σ sin(k²θ)/k⁴), in
  the rolling move and in the projection; ``"true"`` feeds f′;
- ``normal``: ``"authors"`` takes n = (1, −slope)/√(1 + slope²), not normal to the graph, and the centre
  point − ρ·n; ``"graph"`` takes the upward normal (−slope, 1)/√(1 + slope²) and the centre point + ρ·normal;
- ``warm_start``: ``"centre"`` starts the projection at the centre's θ-coordinate; ``"contact"`` at θ.

Either way one step is: centre c from the contact point (θ, f(θ)); rolled centre c̃ = c − η·(slope, slope²);
K steps x ← x − γ·[(x − c̃_θ) + slope(x)·(f(x) − c̃_y)] from the warm start; the last x is the new θ.
With all three switched this is :class:`rbo.RBO`'s step (SPEC §1), which :func:`ironing_demo` runs itself.

:func:`ironing_demo` runs, at the authors' settings (:data:`SETTINGS`, radii :data:`RADII`): the authors'
demo, the three one-choice switches from it toward RBO, ``rbo.RBO`` with the true slope, and a control, the
authors' demo with η = 0 (no rolling move at all). :func:`ironing_claim` states the rule that turns these
runs into a verdict on the authors' demo and ``rbo.RBO``; the ideal ball they are measured against is
:mod:`rbo.ideal_ball` on :func:`wrinkled_landscape` (issue 21, ``experiments/ironing.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from rbo.common import DivergenceError
from rbo.ideal_ball import Landscape
from rbo.optimizer import RBO

TERMS = 100
K2 = np.arange(1, TERMS + 1, dtype=float) ** 2
DOMAIN = (0.0, 2.1)
RADII = tuple(float(r) for r in np.logspace(-2, 0, 5))
SETTINGS = {"start": 2.0, "lr": 1e-3, "steps": 2000, "proj_steps": 20, "proj_lr": 0.05}  # examples/weirstrass.py
GRID_POINTS = 2**20  # per period 2π: step 6.0e-6; halving it moves u_ρ by < 2e-5 (tests/test_ideal_ball.py)


def _series(theta, trig, power: int) -> np.ndarray:
    """Σ_{k=1}^{TERMS} trig(k²θ)/k^power, elementwise over ``theta``."""
    terms = trig(np.multiply.outer(np.asarray(theta, dtype=float), K2))
    return (terms / K2 ** (power // 2)).sum(-1) if power else terms.sum(-1)


def wrinkled(theta) -> np.ndarray:
    """f(θ) = Σ sin(k²θ)/k²."""
    return _series(theta, np.sin, 2)


def wrinkled_grad(theta) -> np.ndarray:
    """f′(θ) = Σ cos(k²θ), the exact derivative."""
    return _series(theta, np.cos, 0)


def wrinkled_second(theta) -> np.ndarray:
    """f″(θ) = −Σ k²·sin(k²θ)."""
    return -(np.sin(np.multiply.outer(np.asarray(theta, dtype=float), K2)) * K2).sum(-1)


def wrinkled_landscape(points: int = GRID_POINTS) -> Landscape:
    """f, f′ and f″ exactly on ``points`` grid points of one period [0, 2π) (f is 2π-periodic: k² are integers)."""
    return Landscape.sine_series({int(k2): 1 / k2 for k2 in K2}, points)


def authors_slope(theta) -> np.ndarray:
    """Σ cos(k²θ)/k², the demo's ``grad_fn``: the derivative of Σ sin(k²θ)/k⁴, not of f."""
    return _series(theta, np.cos, 2)


SLOPES = {"authors": authors_slope, "true": wrinkled_grad}
NORMALS = ("authors", "graph")
WARM_STARTS = ("centre", "contact")


@dataclass(frozen=True)
class Variant:
    """The three choices that separate the authors' 1-D demo from RBO (module docstring)."""

    slope: str = "authors"
    normal: str = "authors"
    warm_start: str = "centre"

    def __post_init__(self):
        for name, value, allowed in (("slope", self.slope, tuple(SLOPES)), ("normal", self.normal, NORMALS),
                                     ("warm_start", self.warm_start, WARM_STARTS)):
            if value not in allowed:
                raise ValueError(f"Variant.{name}={value!r} is unknown; allowed: {', '.join(allowed)}")


AUTHORS = Variant()
RBO_CHOICES = Variant(slope="true", normal="graph", warm_start="contact")
# name -> (label, variant): the authors' demo and each single switch from it toward RBO
ABLATION = {
    "authors": ("the authors' demo", AUTHORS),
    "true_slope": ("only the slope → f′", Variant(slope="true")),
    "graph_normal": ("only the normal → graph's normal", Variant(normal="graph")),
    "warm_start_theta": ("only the warm start → θ", Variant(warm_start="contact")),
}


def _switched(variant: Variant) -> str:
    """The names of the choices in which ``variant`` differs from the authors' demo."""
    return " and ".join(f.name.replace("_", " ") for f in fields(Variant)
                        if getattr(variant, f.name) != getattr(AUTHORS, f.name))


def _centre(graph_normal, theta, value, slope, radius):
    """The ball centre (θ-coordinate, height) from the contact point: by the graph's normal where ``graph_normal``
    (point + ρ·(−slope, 1)/s), else by the authors' (point − ρ·(1, −slope)/s)."""
    s = np.sqrt(1.0 + slope * slope)
    return (np.where(graph_normal, theta - radius * slope / s, theta - radius / s),
            np.where(graph_normal, value + radius / s, value + radius * slope / s))


def demo_trajectories(runs: list[tuple[Variant, float]], radii=RADII, *, start: float, steps: int,
                      proj_steps: int, proj_lr: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 1-D rolling ball of the module docstring, one run per (variant, η) of ``runs`` and radius, all in one
    vectorised loop. Per run: the contact points θ, shape (steps + 1, len(radii)), and the ball centres at the
    start of each step, shape (steps, len(radii), 2) as (θ, height): the arrays ``rolling_ball_trajectory``
    returns (``params``, ``centers``) for ``AUTHORS``. Runs that blow up carry inf/NaN from then on."""
    radii = np.asarray(radii, dtype=float)
    columns = [(variant, lr, radius) for variant, lr in runs for radius in radii]
    true_slope, graph_normal, warm_at_theta = (np.array([choice(v) for v, _, _ in columns]) for choice in (
        lambda v: v.slope == "true", lambda v: v.normal == "graph", lambda v: v.warm_start == "contact"))
    lr, radius = (np.array([c[i] for c in columns]) for i in (1, 2))

    def slope_at(x):
        return np.where(true_slope, wrinkled_grad(x), authors_slope(x))

    theta = np.full(len(columns), float(start))
    thetas, centres = [theta], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            slope = slope_at(theta)
            centre = _centre(graph_normal, theta, wrinkled(theta), slope, radius)
            centres.append(np.stack(centre, axis=-1))
            target_theta, target_y = centre[0] - lr * slope, centre[1] - lr * slope * slope
            x = np.where(warm_at_theta, theta, centre[0])
            for _ in range(proj_steps):
                x = x - proj_lr * ((x - target_theta) + slope_at(x) * (wrinkled(x) - target_y))
            theta = x
            thetas.append(theta)
    thetas, centres, n = np.stack(thetas), np.stack(centres), len(radii)
    return [(thetas[:, i * n:(i + 1) * n], centres[:, i * n:(i + 1) * n]) for i in range(len(runs))]


def demo_trajectory(variant: Variant, radii=RADII, *, start: float, lr: float, steps: int, proj_steps: int,
                    proj_lr: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`demo_trajectories` for one variant at one η."""
    return demo_trajectories([(variant, lr)], radii, start=start, steps=steps, proj_steps=proj_steps,
                             proj_lr=proj_lr)[0]


def rbo_path(f, slope, radius: float, *, start: float, lr: float, steps: int, proj_steps: int, proj_lr: float,
             measure: bool = False) -> dict[str, np.ndarray]:
    """:class:`rbo.RBO` (the authors' GD projection) on a 1-D loss ``f`` with derivative ``slope`` (numpy
    callables): ``theta`` (steps + 1 contact points) and ``diagnostics["contact_gap"]`` per step, NaN after a
    :class:`DivergenceError` (the run keeps its last finite θ before it); with ``measure``, also
    :meth:`RBO.measure_contact`'s ``proj_residual`` and ``centre_distance`` after the last step."""
    theta = torch.tensor([float(start)], dtype=torch.float64, requires_grad=True)
    optimizer = RBO([theta], lr=lr, radius=radius, proj_steps=proj_steps, proj_lr=proj_lr)

    def closure() -> torch.Tensor:
        x = theta.detach().numpy()
        theta.grad = torch.from_numpy(slope(x))
        return torch.from_numpy(f(x)).sum()

    path, gaps = np.full(steps + 1, np.nan), np.full(steps, np.nan)
    path[0] = start
    for t in range(steps):
        try:
            optimizer.step(closure)
        except DivergenceError:
            break
        path[t + 1], gaps[t] = theta.item(), optimizer.diagnostics["contact_gap"].item()
    out = {"theta": path, "contact_gap": gaps}
    if measure and np.isfinite(path[-1]):
        out.update(optimizer.measure_contact(closure))
    return out


def rbo_trajectory(radii=RADII, **settings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:class:`rbo.RBO` itself on f, one run per radius, ``settings`` as :data:`SETTINGS`: the contact points and
    centres as :func:`demo_trajectory` returns them (the centre by the graph's normal), then
    ``diagnostics["contact_gap"]`` per step, shape (steps, radii)."""
    runs = [rbo_path(wrinkled, wrinkled_grad, float(radius), **settings) for radius in radii]
    thetas = np.stack([run["theta"] for run in runs], axis=-1)
    with np.errstate(over="ignore", invalid="ignore"):
        centre = _centre(True, thetas[:-1], wrinkled(thetas[:-1]), wrinkled_grad(thetas[:-1]),
                         np.asarray(radii, dtype=float))
    return thetas, np.stack(centre, axis=-1), np.stack([run["contact_gap"] for run in runs], axis=-1)


def gradient_descent_path(start: float, lrs, steps: int, slope=wrinkled_grad) -> np.ndarray:
    """Plain gradient descent θ ← θ − η·slope(θ) (default f′), one run per η of ``lrs``: shape
    (steps + 1, len(lrs))."""
    theta = np.full(len(lrs), float(start))
    path = [theta]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            theta = theta - np.asarray(lrs, dtype=float) * slope(theta)
            path.append(theta)
    return np.stack(path)


def gradient_descent(start: float, lr: float, steps: int) -> float:
    """The last iterate of plain gradient descent on f: where the wrinkles stop a ball of radius 0."""
    return float(gradient_descent_path(start, [lr], steps)[-1, 0])


def stall_reach(gd_path: np.ndarray, start: float) -> float:
    """How far from the start gradient descent on f ever gets: at η = 1e-3 it does not stop on a point but wanders
    over a band of wrinkles (η·|f″| ≫ 2), so its last iterate alone is not where it stalls."""
    return float(np.nanmax(np.abs(np.asarray(gd_path, dtype=float) - start)))


def ironing_demo(radii=RADII, grid_points: int = 2000, **settings) -> dict:
    """Every run of the figure at the authors' settings (``settings`` overrides :data:`SETTINGS`).

    Returns ``{"theta_grid", "f", "domain", "radii", "settings", "gd_final", "gd_reach", "runs"}``: ``gd_reach`` is
    :func:`stall_reach`; ``runs`` maps a name (the keys of :data:`ABLATION`, then ``"rbo"`` and ``"authors_no_roll"``)
    to ``{"label", "choices" (slope, normal, warm_start), "lr", "theta" (steps + 1, radii), "centre" (steps, radii,
    2)}``, and ``"contact_gap"`` (steps, radii) for ``"rbo"``.
    """
    settings = {**SETTINGS, **settings}
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"ironing_demo: unknown setting(s) {unknown}; allowed: {', '.join(SETTINGS)}")
    radii = [float(r) for r in radii]
    grid = np.linspace(*DOMAIN, grid_points)
    runs = {}
    shared = {k: settings[k] for k in ("start", "steps", "proj_steps", "proj_lr")}
    batch = [(variant, settings["lr"]) for _, variant in ABLATION.values()] + [(AUTHORS, 0.0)]
    demos = demo_trajectories(batch, radii, **shared)
    for (name, (label, variant)), (theta, centre) in zip(ABLATION.items(), demos):
        runs[name] = {"label": label, "choices": asdict(variant), "lr": settings["lr"], "theta": theta,
                      "centre": centre}
    theta, centre, gap = rbo_trajectory(radii, **settings)
    runs["rbo"] = {"label": "rbo.RBO (all three switched)", "choices": asdict(RBO_CHOICES), "lr": settings["lr"],
                   "theta": theta, "centre": centre, "contact_gap": gap}
    theta, centre = demos[-1]
    runs["authors_no_roll"] = {"label": "control: the authors' demo with η = 0", "choices": asdict(AUTHORS),
                               "lr": 0.0, "theta": theta, "centre": centre}
    gd = gradient_descent_path(settings["start"], [settings["lr"]], settings["steps"])[:, 0]
    return {"theta_grid": grid, "f": wrinkled(grid), "domain": DOMAIN, "radii": radii, "settings": settings,
            "gd_final": float(gd[-1]), "gd_reach": stall_reach(gd, settings["start"]), "runs": runs}


IRONS = (
    "A run irons at radius ρ if the point it ends on (its contact point; θ for gradient descent) lies inside the "
    "plotted domain [0, 2.1], farther from the start than gradient descent on f at the authors' η ever gets (it "
    "wanders over a band of wrinkles, so its last iterate is not its stall), and lower on f than the start."
)
IRONING_RULE = IRONS + (
    " The authors' demo and rbo.RBO: supported if rbo.RBO irons at most radii, not supported if the authors' demo "
    "does but rbo.RBO does not (the ablation then names the demo choices whose single switch stops the ironing), "
    "inconclusive otherwise."
)


def irons_at(final, *, domain, start: float, reach: float) -> np.ndarray:
    """Per final point (NaN: diverged), does the run iron (:data:`IRONS`)?"""
    lo, hi = domain
    final = np.asarray(final, dtype=float)
    with np.errstate(invalid="ignore"):
        return ((final >= lo) & (final <= hi) & (np.abs(final - start) > reach)
                & (wrinkled(final) < wrinkled(start)))


def irons(data: dict) -> dict[str, np.ndarray]:
    """Per run of ``data`` (from :func:`ironing_demo`, or its JSON form), one bool per radius (:data:`IRONS`)."""
    where = {"domain": data["domain"], "start": data["settings"]["start"], "reach": data["gd_reach"]}
    return {name: irons_at(np.asarray(run["theta"], dtype=float)[-1], **where) for name, run in data["runs"].items()}


def ablation_lines(data: dict) -> tuple[dict[str, bool], list[str]]:
    """Whether each run of ``data`` irons at most radii, and the evidence lines: where each run ends, the chaos of
    the true-slope projection, and which single switch stops the demo's ironing."""
    ironed = irons(data)
    runs, n = data["runs"], len(data["radii"])
    most = {name: int(ok.sum()) > n / 2 for name, ok in ironed.items()}

    def summary(name: str) -> str:
        final = np.asarray(runs[name]["theta"], dtype=float)[-1]
        with np.errstate(invalid="ignore"):
            f_final = wrinkled(final)
        return (f"{runs[name]['label']}: irons at {int(ironed[name].sum())}/{n} radii, final θ "
                + ", ".join(f"{t:.3g}" for t in final) + " (f " + ", ".join(f"{v:.2f}" for v in f_final) + ")")

    start = data["settings"]["start"]
    lines = [f"Start θ = {start:g} (f = {float(wrinkled(start)):.2f}); gradient descent on f (η = "
             f"{data['settings']['lr']:g}) wanders up to {data['gd_reach']:.3f} from it and ends at "
             f"θ = {data['gd_final']:.3f}; radii " + ", ".join(f"{r:.3g}" for r in data["radii"]) + "."]
    lines.append("Per run: " + "; ".join(summary(name) for name in runs) + ".")
    unstable = np.sqrt(max(2 / data["settings"]["proj_lr"] - 1, 0.0))
    lines.append(f"(With the true slope the projection's step γ·(1 + f′²) exceeds 2 wherever |f′| > {unstable:.2g}, "
                 "so those runs are chaotic: their final θ depend on rounding, not whether they iron.)")
    if not most["rbo"] and most["authors"]:
        causes = [f"the {_switched(variant)}" for name, (_, variant) in ABLATION.items()
                  if variant != AUTHORS and not most[name]]
        lines.append("Switching " + (" or ".join(causes) or "no single choice") + " alone stops the demo's ironing; "
                     "rbo.RBO does not iron.")
        if most["authors_no_roll"]:
            lines.append("With η = 0 the authors' demo irons all the same: its travel comes from its centre "
                         "construction, not from rolling down the loss.")
    return most, lines


def ironing_claim(data: dict | None = None) -> dict:
    """The verdict on the authors' demo and ``rbo.RBO`` from the ablation (:data:`IRONING_RULE`):
    ``{"verdict", "evidence", "rule"}``. Runs :func:`ironing_demo` unless given its result (or its JSON form)."""
    data = ironing_demo() if data is None else data
    most, lines = ablation_lines(data)
    if most["rbo"]:
        verdict = "supported"
    elif most["authors"]:
        verdict = "not supported"
    else:
        verdict = "inconclusive"
        lines.append("The authors' demo itself does not iron at most radii here, and neither does rbo.RBO.")
    return {"verdict": verdict, "evidence": " ".join(lines), "rule": IRONING_RULE}
