"""The 1-D ironing record (issue 21; SPEC "The ideal ball"): claim 8 with the ideal ball beside the authors' demo,
and the paper's Lemma 1 and Propositions 2 and 3 checked numerically.

    python -m experiments.ironing --out results/records/paper/ironing/record.json

:func:`make_record` runs everything once, deterministically, without training: the authors' demo and its ablation
(:func:`rbo.ironing.ironing_demo`), the exact ball of :mod:`rbo.ideal_ball` ((a) the centre descending u_ρ, (b) RBO's
update with the global closest point as its projection) and plain gradient descent on f at each η of :data:`LRS`,
then the measurements of each theory check, on the exact ball and on ``rbo.RBO`` at the authors' 1-D K = 20 and
γ = 0.05. The pure functions :func:`claim_rows` (and one per row) turn that record into verdicts; the figure is
``scripts/plot_ironing.py``'s :func:`draw_ironing`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from experiments.records import git_commit, now, source_sha256, write_json
from rbo import RBO
from rbo.common import backward
from rbo.ideal_ball import Landscape, roll_envelope, roll_exact_projection
from rbo.ironing import (
    DOMAIN,
    GRID_POINTS,
    IRONS,
    K2,
    RADII,
    SETTINGS,
    ablation_lines,
    gradient_descent_path,
    ironing_demo,
    irons_at,
    rbo_path,
    stall_reach,
    wrinkled,
    wrinkled_grad,
    wrinkled_landscape,
    wrinkled_second,
)

LRS = (1e-3, 1e-2, 1e-1)  # ASSUMPTION: the authors' η, then two larger ones (ours)
SAMPLES = 101  # points kept per stored trajectory (the first and the last among them)
PLOT_POINTS = 1051  # f and u_ρ stored for the figure on [−0.2, 2.3]
ON_ENVELOPE = 1e-3  # ASSUMPTION: a centre this close to u_ρ rests on it (the grid moves u_ρ by < 2e-5)
LEMMA1 = {"radii": [float(r) for r in np.logspace(-2, 2, 9)], "centres": 421}  # ASSUMPTION (ours), as below
PROP2 = {"tilt": 1.0, "wrinkles": [[0.1, 10.0], [0.01, 100.0]],  # f = tilt·θ + Σ amplitude·sin(frequency·θ)
         "radii": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], "rbo_radii": [0.01, 0.1, 1.0, 10.0],
         "start": 2.0, "lr": 1e-2, "steps": 200, "grid": [-25.0, 25.0], "grid_points": 625 * 4096}
PROP3 = {"centres": 2101, "cos_radii": [0.5, 2.0], "cos_start": 2.5, "cos_lr": 0.1, "cos_steps": 100,
         "cos_grid": [-2.0, 8.0], "cos_grid_points": 128 * 4096}
LOCAL = {"radii": [0.01, 0.1, 1.0], "starts": 12, "lr": 1e-3, "proj_steps": 100, "proj_tol": 1e-6,
         "moved": 1e-3, "farther": 1e-5}


# ---- helpers ---------------------------------------------------------------------------------------------------

def _kept(steps: int) -> np.ndarray:
    """The step indices a stored trajectory keeps: :data:`SAMPLES` of 0 … steps, both ends included."""
    return np.unique(np.linspace(0, steps, min(SAMPLES, steps + 1)).round().astype(int))


def _compact(values) -> list:
    """Plotted numbers as JSON lists, to 6 decimals (NaN becomes null when written)."""
    return np.round(np.asarray(values, dtype=float), 6).tolist()


def _exact(values) -> list:
    return np.asarray(values, dtype=float).tolist()


def _on_envelope(land: Landscape, centres: np.ndarray, radius) -> np.ndarray:
    """Per centre (θ-coordinate, height), whether it lies on u_ρ within :data:`ON_ENVELOPE`; NaN rows are not."""
    finite = np.isfinite(centres).all(-1)
    on = np.zeros(centres.shape[:-1], dtype=bool)
    radius = np.broadcast_to(radius, centres.shape[:-1])
    height, _ = land.contact(centres[finite][:, 0], radius[finite])
    on[finite] = np.abs(height - centres[finite][:, 1]) <= ON_ENVELOPE
    return on


# ---- claim 8: the runs -----------------------------------------------------------------------------------------

def ideal_runs(land: Landscape, radii, steps: int) -> dict:
    """The ideal ball (a), RBO with the exact projection (b) and gradient descent on f at each η of :data:`LRS` and
    radius, from the authors' start: the balls' centres (θ-coordinate) and gradient descent's θ at :func:`_kept`
    steps, and every final contact point and centre exactly."""
    start = SETTINGS["start"]
    radius, lr = np.meshgrid(radii, LRS)  # (lrs, radii)
    envelope = roll_envelope(land, start, radius, lr, steps)
    projection = roll_exact_projection(land, start, radius, lr, steps)
    gd = gradient_descent_path(start, LRS, steps)
    keep, shape = _kept(steps), (steps + 1, len(LRS), len(radii))
    on_surface = _on_envelope(land, projection["centre"], radius.ravel()).reshape(shape)
    return {
        "kept_steps": keep.tolist(),
        "envelope_descent": {
            "label": "ideal ball (a)", "centre": _compact(envelope["centre"].reshape(shape)[keep]),
            "final_contact": _exact(envelope["contact"][-1].reshape(shape[1:])),
            "final_centre": _exact(envelope["centre"][-1].reshape(shape[1:])),
        },
        "exact_projection": {
            "label": "RBO with the exact projection (b)",
            "centre": _compact(projection["centre"][..., 0].reshape(shape)[keep]),
            "final_contact": _exact(projection["theta"][-1].reshape(shape[1:])),
            "final_centre": _exact(projection["centre"][-1, :, 0].reshape(shape[1:])),
            "centre_on_envelope": _exact(on_surface.mean(0)),
        },
        "gd": {"label": "gradient descent on f", "theta": _compact(gd[keep]), "final": _exact(gd[-1]),
               "reach": [stall_reach(gd[:, j], start) for j in range(len(LRS))]},
    }


def grid_check(land: Landscape, plot_theta: np.ndarray, envelopes: list[np.ndarray], radii, steps: int) -> dict:
    """The claim-8 answers again on a grid of half the step: u_ρ at the plotted centres, and the ideal ball (a) and
    RBO with the exact projection (b) at the authors' settings (final contact point and centre per radius)."""
    fine = wrinkled_landscape(2 * land.size)
    change = [float(np.abs(fine.contact(plot_theta, r)[0] - u).max()) for r, u in zip(radii, envelopes)]
    args = (SETTINGS["start"], np.asarray(radii), SETTINGS["lr"], steps)
    envelope, projection = roll_envelope(fine, *args), roll_exact_projection(fine, *args)
    return {"grid_points_per_period": fine.size, "envelope_change": change,
            "envelope_descent": {"final_contact": _exact(envelope["contact"][-1]),
                                 "final_centre": _exact(envelope["centre"][-1])},
            "exact_projection": {"final_contact": _exact(projection["theta"][-1]),
                                 "final_centre": _exact(projection["centre"][-1, :, 0])}}


def _stored_ablation(data: dict) -> dict:
    """:func:`rbo.ironing.ironing_demo`'s result as JSON: trajectories at :func:`_kept` steps, the last θ exact."""
    keep = _kept(data["settings"]["steps"])
    runs = {}
    for name, run in data["runs"].items():
        theta = np.asarray(run["theta"])
        runs[name] = {"label": run["label"], "choices": run["choices"], "lr": run["lr"],
                      "theta": [*_compact(theta[keep[:-1]]), _exact(theta[-1])],
                      "centre": _compact(run["centre"][np.minimum(keep, len(run["centre"]) - 1)])}
    return {"theta_grid": _compact(data["theta_grid"]), "f": _compact(data["f"]), "domain": list(data["domain"]),
            "radii": data["radii"], "settings": data["settings"], "gd_final": data["gd_final"],
            "gd_reach": data["gd_reach"], "kept_steps": keep.tolist(), "runs": runs}


# ---- the theory ------------------------------------------------------------------------------------------------

def lemma1_measurements(land: Landscape, radii, rbo_centres: np.ndarray, projection_on_envelope) -> dict:
    """Lemma 1: the oscillation max − min of u_ρ − ρ over the window :data:`DOMAIN`, per radius of
    :data:`LEMMA1`; and how often rbo.RBO's centre (θ − ρf′/s, f + ρ/s), shape (steps, radii), rests on u_ρ."""
    centres = np.linspace(*DOMAIN, LEMMA1["centres"])
    oscillation = []
    for radius in LEMMA1["radii"]:
        height, _ = land.contact(centres, radius)
        oscillation.append(float(np.ptp(height - radius)))
    return {"radii": LEMMA1["radii"], "window": list(DOMAIN), "centres": LEMMA1["centres"],
            "oscillation": oscillation, "on_envelope_tolerance": ON_ENVELOPE, "rbo_radii": list(radii),
            "rbo_on_envelope": _exact(_on_envelope(land, rbo_centres, np.asarray(radii)).mean(0)),
            "exact_projection_on_envelope": _exact(projection_on_envelope)}


def _prop2_landscape() -> tuple[Landscape, callable, callable]:
    tilt, wrinkles = PROP2["tilt"], PROP2["wrinkles"]

    def f(x):
        return tilt * x + sum(a * np.sin(w * x) for a, w in wrinkles)

    def slope(x):
        return tilt + sum(a * w * np.cos(w * x) for a, w in wrinkles)

    def second(x):
        return -sum(a * w * w * np.sin(w * x) for a, w in wrinkles)

    return Landscape.sampled(f, slope, second, *PROP2["grid"], PROP2["grid_points"]), f, slope


def prop2_measurements() -> dict:
    """Proposition 2 on f = tilt·θ + bounded wrinkles (:data:`PROP2`): the slope each ball follows, −(travel)/(η·T),
    as a fraction of the tilt, for the exact ball (a), RBO with the exact projection (b) and rbo.RBO."""
    land, f, slope = _prop2_landscape()
    start, lr, steps, tilt = PROP2["start"], PROP2["lr"], PROP2["steps"], PROP2["tilt"]

    def ratio(path):
        return float(-(path[-1] - path[0]) / (lr * steps * tilt))

    envelope = roll_envelope(land, start, PROP2["radii"], lr, steps)
    projection = roll_exact_projection(land, start, PROP2["radii"], lr, steps)
    authors = {"proj_steps": SETTINGS["proj_steps"], "proj_lr": SETTINGS["proj_lr"]}
    rbo = [rbo_path(f, slope, r, start=start, lr=lr, steps=steps, **authors)["theta"] for r in PROP2["rbo_radii"]]
    gd = gradient_descent_path(start, [lr], steps, slope)[:, 0]
    return {**PROP2, "envelope_descent": [ratio(envelope["centre"][:, j]) for j in range(len(PROP2["radii"]))],
            "exact_projection": [ratio(projection["theta"][:, j]) for j in range(len(PROP2["radii"]))],
            "rbo": [ratio(path) for path in rbo], "gd": ratio(gd)}


def _contacts_deep_inside(land: Landscape, index: np.ndarray, radius) -> np.ndarray:
    """Per contact grid index, whether it and both grid neighbours have curvature above 1/ρ (the contact lies more
    than one grid step inside the unreachable set: f″ moves by ~10³ per step here, so one step is the tolerance)."""
    radius = np.broadcast_to(radius, index.shape)
    return np.all([land.curvature(index + d) > 1 / radius for d in (-1, 0, 1)], axis=0)


def prop3_measurements(land: Landscape, radii, rbo_theta: np.ndarray, rbo_gap: np.ndarray) -> dict:
    """Proposition 3: the exact ball's contact points against the unreachable set {κ > 1/ρ} on f (``radii``)
    and on cos θ (κ = 1 at its minimum π); whether rbo.RBO lands on unreachable points and whether its
    ``contact_gap`` < 0 (the graph cutting into the ball) or ``measure_contact`` flags them."""
    centres = np.linspace(*DOMAIN, PROP3["centres"])
    window = land.index(np.linspace(*DOMAIN, 20001))
    wrinkled_rows = []
    for j, radius in enumerate(radii):
        _, index = land.contact(centres, radius)
        theta, gap = rbo_theta[1:, j], rbo_gap[:, j]
        landed = np.isfinite(theta) & np.isfinite(gap)
        with np.errstate(over="ignore", invalid="ignore"):
            kappa = wrinkled_second(theta[landed]) / (1 + wrinkled_grad(theta[landed]) ** 2) ** 1.5
        unreachable, flagged = kappa > 1 / radius, gap[landed] < 0
        wrinkled_rows.append({
            "radius": radius, "unreachable_share": float(np.mean(land.curvature(window) > 1 / radius)),
            "contacts": len(centres), "contacts_unreachable": int(_contacts_deep_inside(land, index, radius).sum()),
            "rbo_steps": int(landed.sum()), "rbo_unreachable": int(unreachable.sum()),
            "rbo_flagged_unreachable": int((flagged & unreachable).sum()),
            "rbo_flagged_reachable": int((flagged & ~unreachable).sum())})
    cos_land = Landscape.sampled(np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), *PROP3["cos_grid"],
                                 PROP3["cos_grid_points"])
    cos_rows, cos_centres = [], np.linspace(np.pi - 1, np.pi + 1, 401)
    for radius in PROP3["cos_radii"]:
        _, index = cos_land.contact(cos_centres, radius)
        run = rbo_path(np.cos, lambda x: -np.sin(x), radius, start=PROP3["cos_start"], lr=PROP3["cos_lr"],
                       steps=PROP3["cos_steps"], proj_steps=SETTINGS["proj_steps"], proj_lr=SETTINGS["proj_lr"],
                       measure=True)
        final = float(run["theta"][-1])
        cos_rows.append({
            "radius": radius, "contacts": len(cos_centres),
            "contacts_unreachable": int(_contacts_deep_inside(cos_land, index, radius).sum()),
            "contact_nearest_minimum": float(np.abs(cos_land.x(index) - np.pi).min()),
            "rbo_final": final, "rbo_final_curvature": float(-np.cos(final) / (1 + np.sin(final) ** 2) ** 1.5),
            "rbo_contact_gap": float(run["contact_gap"][-1]), "rbo_proj_residual": run.get("proj_residual"),
            "rbo_centre_distance": run.get("centre_distance")})
    return {"wrinkled": wrinkled_rows, "cos": cos_rows, "cos_settings": {k: v for k, v in PROP3.items()
                                                                         if k.startswith("cos_")}}


def _newton_foot(theta0: float, radius: float) -> float:
    """θ after one ``rbo.RBO(projection="newton")`` step on f from θ₀ (:data:`LOCAL`'s η, cap and tolerance)."""
    theta = torch.tensor([theta0], dtype=torch.float64, requires_grad=True)
    optimizer = RBO([theta], lr=LOCAL["lr"], radius=radius, proj_steps=LOCAL["proj_steps"], projection="newton",
                    proj_tol=LOCAL["proj_tol"])
    k2 = torch.tensor(K2, dtype=torch.float64)

    def closure(create_graph: bool = False) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = (torch.sin(k2 * theta) / k2).sum()
        backward(loss, [theta], create_graph=create_graph)
        return loss

    optimizer.step(closure)
    return theta.item()


def local_vs_global_measurements(land: Landscape) -> dict:
    """One Newton-projection step of rbo.RBO against the global closest point of f's graph to the same rolled centre
    (SPEC §1 steps 1–3 from θ₀), from θ₀ spread over the domain and from θ₀ that are contact points of the ideal
    ball (reachable): how often the local solver stops elsewhere (farther from the rolled centre), and f there."""
    rows = []
    for radius in LOCAL["radii"]:
        spread = np.linspace(DOMAIN[0] + 0.05, DOMAIN[1] - 0.05, LOCAL["starts"])
        reachable = land.x(land.contact(spread, radius)[1])
        for kind, starts in (("spread", spread), ("reachable", reachable)):
            g, f = wrinkled_grad(starts), wrinkled(starts)
            s = np.sqrt(1 + g * g)
            target, height = starts - (radius / s + LOCAL["lr"]) * g, f + radius / s - LOCAL["lr"] * g * g
            best = land.x(land.closest(target, height))
            local = np.array([_newton_foot(float(t), radius) for t in starts])

            def distance(x, target=target, height=height):
                return np.hypot(x - target, wrinkled(x) - height)

            elsewhere = (np.abs(local - best) > LOCAL["moved"]) & (distance(local) > distance(best) + LOCAL["farther"])
            excess = wrinkled(local) - wrinkled(best)
            rows.append({"radius": radius, "starts": kind, "n": len(starts), "elsewhere": int(elsewhere.sum()),
                         "f_excess_median": float(np.median(excess[elsewhere])) if elsewhere.any() else None,
                         "f_excess_max": float(excess[elsewhere].max()) if elsewhere.any() else None,
                         "distance_excess_median": float(np.median((distance(local) - distance(best))[elsewhere]))
                         if elsewhere.any() else None})
    return {**LOCAL, "rows": rows}


# ---- the record ------------------------------------------------------------------------------------------------

def make_record(grid_points: int = GRID_POINTS, steps: int = SETTINGS["steps"], radii=RADII) -> dict:
    """Every run and measurement of the 1-D ironing record (deterministic); ``steps`` and ``radii`` of the
    authors' settings can be cut for a quick record (tests)."""
    radii = [float(r) for r in radii]
    land = wrinkled_landscape(grid_points)
    demo = ironing_demo(radii, grid_points=PLOT_POINTS, steps=steps)
    ideal = ideal_runs(land, radii, steps)
    rbo = demo["runs"]["rbo"]
    plot_theta = np.linspace(-0.2, 2.3, PLOT_POINTS)
    envelopes = [land.contact(plot_theta, radius)[0] for radius in radii]
    authors_lr = LRS.index(SETTINGS["lr"])
    return {
        "what": "the 1-D ironing record (issue 21): claim 8 with the ideal ball, Lemma 1, Propositions 2 and 3",
        "command": "python -m experiments.ironing --out PATH", "created": now(), "git_commit": git_commit(),
        "source_sha256": source_sha256(),
        "settings": {"authors": {**SETTINGS, "steps": steps}, "radii": radii, "lrs": list(LRS), "domain": list(DOMAIN),
                     "grid_points_per_period": grid_points, "grid_step": land.step,
                     "ideal_start": "the ball dropped onto the graph above θ₀: centre (θ₀, u_ρ(θ₀)), foot x*(θ₀); "
                                    "the demo, rbo.RBO and gradient descent start at the contact point θ₀"},
        "landscape": {"theta": _compact(plot_theta), "f": _compact(wrinkled(plot_theta)),
                      "envelope": [_compact(u) for u in envelopes]},
        "ablation": _stored_ablation(demo),
        "ideal": ideal,
        "grid_check": grid_check(land, plot_theta, envelopes, radii, steps),
        "lemma1": lemma1_measurements(land, radii, np.asarray(rbo["centre"]),
                                      np.asarray(ideal["exact_projection"]["centre_on_envelope"])[authors_lr]),
        "prop2": prop2_measurements(),
        "prop3": prop3_measurements(land, radii, np.asarray(rbo["theta"]), np.asarray(rbo["contact_gap"])),
        "local_vs_global": local_vs_global_measurements(land),
    }


# ---- the verdicts (pure functions of the record) ---------------------------------------------------------------

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


def _f_at(final) -> np.ndarray:
    """f at final points (NaN where a run diverged)."""
    with np.errstate(invalid="ignore"):
        return wrinkled(np.asarray(final, dtype=float))


def _verdict(supported: bool, against: bool) -> str:
    """A rule's verdict: supported if its condition holds, not supported if the opposite one does, else
    inconclusive."""
    return SUPPORTED if supported else NOT_SUPPORTED if against else INCONCLUSIVE


def _radii_text(values, fmt="{:.3g}") -> str:
    return ", ".join("—" if v is None or not np.isfinite(v) else fmt.format(v) for v in values)


IDEAL_RULE = (
    "The verdict is on the idea, the ideal ball (a): a ball of radius ρ whose centre descends its envelope u_ρ "
    "exactly (rbo.ideal_ball, 2^20 grid points per period), dropped onto the graph above θ = 2, at the authors' "
    "η = 1e-3, 2000 steps and radii. Supported if it irons at most radii on that grid and on one of half the step, "
    "not supported if it irons at fewer than half on both, inconclusive otherwise. Beside it: RBO with the exact "
    "(global) projection (b) from the same ball, gradient descent on f, both balls and gradient descent at η = 1e-2 "
    "and 1e-1, and at η = 1e-3 the authors' demo, its one-choice ablation, rbo.RBO (K = 20, γ = 0.05) and the "
    "η = 0 control. rbo.RBO shares the ideal ball's behaviour if its most frequent outcome over the radii (irons; "
    "stays in the domain without ironing; leaves the domain; diverges) is the ideal ball's."
)
OUTCOMES = ("irons", "stays", "leaves", "diverges")


def outcomes(final, where: dict) -> list[str]:
    """Per final point: ``irons`` (:data:`rbo.ironing.IRONS`), ``stays`` in the domain without ironing, ``leaves``
    the domain, or ``diverges`` (NaN)."""
    final = np.asarray(final, dtype=float)
    lo, hi = where["domain"]
    ironed = irons_at(final, **where)
    return ["diverges" if not np.isfinite(x) else "irons" if ok else "stays" if lo <= x <= hi else "leaves"
            for x, ok in zip(final, ironed)]


def _count(kinds: list[str]) -> str:
    return ", ".join(f"{kind} {kinds.count(kind)}" for kind in OUTCOMES if kind in kinds)


def _most(kinds: list[str]) -> str:
    return max(OUTCOMES, key=kinds.count)


def ironing_row(record: dict) -> dict:
    """Claim 8 (the ball irons out wrinkles smaller than ρ), by :data:`IDEAL_RULE` on :data:`rbo.ironing.IRONS`."""
    ablation, ideal, settings, fine = record["ablation"], record["ideal"], record["settings"], record["grid_check"]
    start = ablation["settings"]["start"]
    where = {"domain": ablation["domain"], "start": start, "reach": ablation["gd_reach"]}
    n, at = len(settings["radii"]), settings["lrs"].index(settings["authors"]["lr"])

    def finals(run, key="final_contact", row=at):
        return np.asarray(run[key], dtype=float)[row] if row is not None else np.asarray(run[key], dtype=float)

    a, b = ideal["envelope_descent"], ideal["exact_projection"]
    a_kinds, b_kinds = outcomes(finals(a), where), outcomes(finals(b), where)
    a_fine = outcomes(finals(fine["envelope_descent"], row=None), where)
    b_fine = outcomes(finals(fine["exact_projection"], row=None), where)
    ironed = (a_kinds.count("irons"), a_fine.count("irons"))
    verdict = _verdict(all(k > n / 2 for k in ironed), all(k < n / 2 for k in ironed))
    centre_a, centre_b = finals(a, "final_centre"), finals(b, "final_centre")
    moved = {key: np.abs(finals(ideal[key], "final_centre") - finals(fine[key], "final_centre", None))
             for key in ("envelope_descent", "exact_projection")}
    sensitive = sorted({settings["radii"][j] for m in moved.values() for j in np.flatnonzero(~(m < 0.01))})
    lines = [
        f"The ideal ball (a) irons at {ironed[0]}/{n} radii at the authors' settings ({_count(a_kinds)}): its "
        f"centre ends {_radii_text(np.abs(centre_a - start))} from the start θ = {start:g} (ρ = "
        f"{_radii_text(settings['radii'])}; gradient descent on f gets {where['reach']:.3g} away) and its contact "
        f"point at θ = {_radii_text(finals(a))} (f {_radii_text(_f_at(finals(a)), '{:.2f}')}; f = "
        f"{float(wrinkled(start)):.2f} at the start).",
        "Where it stays, its centre rests at a local minimum of u_ρ, a dip between two wrinkle tops it touches."
        if "stays" in a_kinds else "",
        f"RBO with the exact projection (b) irons at {b_kinds.count('irons')}/{n} ({_count(b_kinds)}); its centre "
        f"ends within 0.01 of (a)'s at {int((np.abs(centre_a - centre_b) < 0.01).sum())}/{n} radii, contact point "
        f"θ = {_radii_text(finals(b))}.",
        f"On a grid of half the step (a) irons at {ironed[1]}/{n} and (b) at {b_fine.count('irons')}/{n}; the final "
        f"centres move by at most {moved['envelope_descent'].max():.2g} (a) and {moved['exact_projection'].max():.2g}"
        f" (b)" + (f"; grid-sensitive (moves ≥ 0.01: chaotic) at ρ = {_radii_text(sensitive)}." if sensitive
                   else "."),
    ]
    most, ablation_text = ablation_lines(ablation)
    rbo_kinds = outcomes(np.asarray(ablation["runs"]["rbo"]["theta"][-1], dtype=float), where)
    demo_kinds = outcomes(np.asarray(ablation["runs"]["authors"]["theta"][-1], dtype=float), where)
    shares = _most(rbo_kinds) == _most(a_kinds)
    lines.append(f"rbo.RBO (K = 20, γ = 0.05): {_count(rbo_kinds)}; it {'shares' if shares else 'does not share'} "
                 f"the ideal ball's behaviour. The authors' demo: {_count(demo_kinds)}.")
    for j, lr in enumerate(settings["lrs"]):
        if j == at:
            continue
        gd = ideal["gd"]["final"][j]
        lines.append(f"At η = {lr:g}: (a) {_count(outcomes(finals(a, row=j), where))}, contact θ = "
                     f"{_radii_text(finals(a, row=j))}; (b) {_count(outcomes(finals(b, row=j), where))}, θ = "
                     f"{_radii_text(finals(b, row=j))}; gradient descent on f ends at θ = {gd:.3g} "
                     f"(f {float(wrinkled(gd)):.2f}), η·|f″| far above 2: at this η steps jump wrinkles whatever "
                     "the ball.")
    return {"verdict": verdict, "evidence": " ".join(line for line in [*lines, *ablation_text] if line),
            "rule": IRONS + " " + IDEAL_RULE}


LEMMA1_RULE = (
    "Lemma 1 (bounded f: u_ρ − ρ flattens as ρ grows), on f = Σ sin(k²θ)/k²: the oscillation max − min of "
    "u_ρ − ρ over the window [0, 2.1], at ρ = 0.01 … 100. Supported if it is below 10 % of its value at the "
    "smallest radius at the largest, and falls (by more than the grid's 1e-4) over the three largest radii; not "
    "supported if it is at or above 50 % there, or rises over them; inconclusive otherwise. rbo.RBO (K = 20, "
    "γ = 0.05, the authors' 1-D settings) has the property if its ball rests on u_ρ — its centre "
    "(θ − ρf′/s, f + ρ/s) within 1e-3 of u_ρ — at 90 % of its steps or more at every radius; otherwise its "
    "centre moves on another surface, to which the lemma does not apply."
)


def lemma1_row(record: dict) -> dict:
    """Lemma 1 by :data:`LEMMA1_RULE`."""
    m = record["lemma1"]
    osc = np.asarray(m["oscillation"], dtype=float)
    ratio, tail = osc[-1] / osc[0], np.diff(osc[-3:])
    verdict = _verdict(ratio < 0.1 and (tail < -1e-4).all(), ratio >= 0.5 or (tail > 1e-4).any())
    on = np.asarray(m["rbo_on_envelope"], dtype=float)
    has = bool((on >= 0.9).all())
    evidence = (f"Oscillation of u_ρ − ρ on [0, 2.1] at ρ = {_radii_text(m['radii'])}: "
                f"{_radii_text(osc, '{:.3g}')} (largest/smallest {ratio:.3g}). rbo.RBO's centre rests on u_ρ at "
                f"{_radii_text(100 * on, '{:.0f}')} % of its steps (ρ = {_radii_text(m['rbo_radii'])}): it "
                f"{'has' if has else 'does not have'} the property. RBO with the exact projection at η = 1e-3: "
                f"{_radii_text(100 * np.asarray(m['exact_projection_on_envelope']), '{:.0f}')} %.")
    return {"verdict": verdict, "evidence": evidence, "rule": LEMMA1_RULE}


PROP2_RULE = (
    "Proposition 2 (f = affine + bounded: the ball follows the affine part as ρ grows), on "
    "f = θ + 0.1·sin(10θ) + 0.01·sin(100θ): the slope a ball follows, −(travel)/(η·steps) from θ = 2 with η = 1e-2 "
    "and 200 steps, as a fraction of the affine slope 1 (gradient descent on the affine part: 1). Supported if the "
    "ideal ball (a) follows within 10 % of 1 at the largest radius and closer to 1 there than at the smallest; not "
    "supported if it is farther from 1 at the largest radius than at the smallest; inconclusive otherwise. rbo.RBO "
    "(K = 20, γ = 0.05) has the property if it follows within 10 % of 1 at its largest radius."
)


def prop2_row(record: dict) -> dict:
    """Proposition 2 by :data:`PROP2_RULE`."""
    m = record["prop2"]
    ideal = np.asarray(m["envelope_descent"], dtype=float)
    gap = np.abs(ideal - 1)
    verdict = _verdict(gap[-1] <= 0.1 and gap[-1] < gap[0], gap[-1] > gap[0])
    rbo = np.asarray(m["rbo"], dtype=float)
    has = bool(np.isfinite(rbo[-1]) and abs(rbo[-1] - 1) <= 0.1)
    evidence = (f"Slope followed / affine slope at ρ = {_radii_text(m['radii'])}: ideal ball (a) "
                f"{_radii_text(ideal, '{:.2f}')}; RBO with the exact projection (b) "
                f"{_radii_text(m['exact_projection'], '{:.2f}')}. rbo.RBO at ρ = {_radii_text(m['rbo_radii'])}: "
                f"{_radii_text(rbo, '{:.2f}')}: it {'has' if has else 'does not have'} the property. Gradient "
                f"descent on f: {m['gd']:.2f}.")
    return {"verdict": verdict, "evidence": evidence, "rule": PROP2_RULE}


PROP3_RULE = (
    "Proposition 3 (a point whose curvature exceeds 1/ρ is never a contact point): the exact ball's contact points "
    "for 2101 centres on [0, 2.1] of f = Σ sin(k²θ)/k² at the authors' radii, and for 401 centres around the "
    "minimum of cos θ (curvature 1 there) at ρ = 0.5 and 2, counted where they lie more than one grid step inside "
    "{κ > 1/ρ}. Supported if none does while that set is not empty; not supported if any does. rbo.RBO (K = 20, "
    "γ = 0.05) sees unreachable points if its diagnostics tell them apart: contact_gap < 0 at 90 % or more of its "
    "landings on f with κ > 1/ρ and at 10 % or fewer of the others, and where it ends on cos θ at ρ = 2 (from "
    "θ = 2.5, η = 0.1, 100 steps) |contact_gap| or the measure_contact residual above 1e-6."
)


def prop3_row(record: dict) -> dict:
    """Proposition 3 by :data:`PROP3_RULE`."""
    m = record["prop3"]
    wrinkled_rows, cos_rows = m["wrinkled"], m["cos"]
    inside = sum(r["contacts_unreachable"] for r in wrinkled_rows + cos_rows)
    nonempty = all(r["unreachable_share"] > 0 for r in wrinkled_rows)
    verdict = _verdict(not inside and nonempty, bool(inside))
    unreachable = sum(r["rbo_unreachable"] for r in wrinkled_rows)
    reachable = sum(r["rbo_steps"] - r["rbo_unreachable"] for r in wrinkled_rows)
    hit = sum(r["rbo_flagged_unreachable"] for r in wrinkled_rows) / max(unreachable, 1)
    false = sum(r["rbo_flagged_reachable"] for r in wrinkled_rows) / max(reachable, 1)
    reach, deep = min(cos_rows, key=lambda r: r["radius"]), max(cos_rows, key=lambda r: r["radius"])

    def flags(row):
        return abs(row["rbo_contact_gap"]) > 1e-6 or (row["rbo_proj_residual"] or 0) > 1e-6

    sees = bool(unreachable and hit >= 0.9 and false <= 0.1 and flags(deep))
    on_f, on_cos = (sum(r["contacts_unreachable"] for r in rows) for rows in (wrinkled_rows, cos_rows))
    evidence = (
        f"Unreachable share of [0, 2.1] at ρ = {_radii_text([r['radius'] for r in wrinkled_rows])}: "
        f"{_radii_text([100 * r['unreachable_share'] for r in wrinkled_rows], '{:.0f}')} %; exact contact points "
        f"inside it: {on_f} of {sum(r['contacts'] for r in wrinkled_rows)} on f and {on_cos} of "
        f"{sum(r['contacts'] for r in cos_rows)} on cos θ (nearest contact to its minimum at ρ = {deep['radius']:g}: "
        f"{deep['contact_nearest_minimum']:.3f} away). rbo.RBO lands on an unreachable point at {unreachable} of "
        f"{unreachable + reachable} steps on f; its contact_gap is negative at {100 * hit:.0f} % of those and "
        f"{100 * false:.0f} % of the others. On cos θ from θ = 2.5 it ends at θ = {deep['rbo_final']:.4f} at "
        f"ρ = {deep['radius']:g} (curvature {deep['rbo_final_curvature']:.3f} > 1/ρ) with contact_gap "
        f"{deep['rbo_contact_gap']:.1e} and measure_contact residual {deep['rbo_proj_residual'] or 0:.1e} (at "
        f"ρ = {reach['radius']:g}, where the minimum is reachable: θ = {reach['rbo_final']:.4f}, "
        f"{reach['rbo_contact_gap']:.1e}, {reach['rbo_proj_residual'] or 0:.1e}): its diagnostics "
        f"{'see' if sees else 'do not see'} unreachable points.")
    return {"verdict": verdict, "evidence": evidence, "rule": PROP3_RULE}


def local_vs_global_line(record: dict) -> str:
    """One evidence line for claim 11: how often the Newton projection's foot is not the global closest point."""
    m = record["local_vs_global"]

    def part(kind):
        rows = [r for r in m["rows"] if r["starts"] == kind]
        return ", ".join(f"{r['elsewhere']}/{r['n']} at ρ = {r['radius']:g}" + (
            f" (f(local) − f(global) median {r['f_excess_median']:.2g}, max {r['f_excess_max']:.2g})"
            if r["elsewhere"] else "") for r in rows)

    return (f"In 1-D (f = Σ sin(k²θ)/k², one rbo.RBO step with projection=\"newton\", {m['proj_steps']} evaluations, "
            f"tolerance {m['proj_tol']:g}, η = {m['lr']:g}), the Newton foot point is not the global closest point "
            f"of the graph to the rolled centre (more than {m['moved']:g} away and farther from the centre) from "
            f"θ₀ spread over [0, 2.1]: {part('spread')}; from θ₀ the ideal ball touches: {part('reachable')}.")


def claim_rows(record: dict) -> dict[str, dict]:
    """The record's claim results: ``"ironing"`` (claim 8), ``"lemma1"``, ``"prop2"``, ``"prop3"`` as
    ``{"verdict", "evidence", "rule"}``, and ``"local_vs_global"`` as ``{"evidence"}`` (one line for claim 11)."""
    return {"ironing": ironing_row(record), "lemma1": lemma1_row(record), "prop2": prop2_row(record),
            "prop3": prop3_row(record), "local_vs_global": {"evidence": local_vs_global_line(record)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the record's path (JSON), e.g. "
                                                     "results/records/paper/ironing/record.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise SystemExit(f"--out={out} is a folder; give the path of the JSON file to write")
    record = make_record()
    write_json(out, record)
    for name, row in claim_rows(record).items():
        print(f"{name}: {row.get('verdict', '')} {row['evidence']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
