"""The ironing figure (issue 11 §1): the authors' 1-D demo as they drew it, and its ablation beside it.

    python -m scripts.plot_ironing --out results

One row per run of :func:`rbo.ironing.ironing_demo` (the authors' demo first, then one choice switched at a
time toward RBO, ``rbo.RBO`` itself and the η = 0 control), one column per radius. Each panel draws, with
equal aspect as the authors did, the ball centre's path over the landscape f, the start and the final contact
point, green where the run irons by :data:`rbo.ironing.IRONING_RULE`, red where it does not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

IRONING_KEYS = ("theta_grid", "f", "domain", "radii", "settings", "gd_final", "runs")
OUTCOME_COLOURS = {True: "tab:green", False: "tab:red"}


def plot_ironing(data: dict, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf from ``data`` as returned by ``rbo.ironing.ironing_demo()``."""
    from rbo.ironing import irons, wrinkled
    from scripts.plot import save  # here, not at the top: scripts.plot imports this module

    missing = [k for k in IRONING_KEYS if k not in data]
    if missing:
        raise ValueError(f"ironing data lacks {missing}: expected the keys of rbo.ironing.ironing_demo(), "
                         f"{list(IRONING_KEYS)}")
    grid, f = np.asarray(data["theta_grid"], dtype=float), np.asarray(data["f"], dtype=float)
    (lo, hi), radii, runs = data["domain"], list(data["radii"]), data["runs"]
    start = float(data["settings"]["start"])
    ironed = irons(data)
    pad = 0.15
    xlim, ylim = (lo - pad, hi + pad), (f.min() - pad, f.max() + max(radii) + pad)

    fig = Figure(figsize=(2.9 * len(radii) + 1.6, 2.75 * len(runs) + 1.2), layout="constrained")
    axes = fig.subplots(len(runs), len(radii), squeeze=False, sharex=True, sharey=True)
    for row, (name, run) in zip(axes, runs.items()):
        for j, (ax, radius) in enumerate(zip(row, radii)):
            centre, final, ok = run["centre"][:, j], float(run["theta"][-1, j]), bool(ironed[name][j])
            ax.plot(grid, f, color="0.55", linewidth=0.6)
            ax.plot(centre[:, 0], centre[:, 1], color="tab:blue", linewidth=0.7, alpha=0.8)
            ax.axvline(data["gd_final"], color="tab:orange", linestyle=":", linewidth=1)
            ax.plot(start, wrinkled(start), "o", color="black", markersize=4)
            if lo <= final <= hi:
                ax.plot(final, wrinkled(final), "*", color=OUTCOME_COLOURS[ok], markersize=11,
                        markeredgecolor="black", markeredgewidth=0.4)
                where = f"θ_T = {final:.3g}"
            else:
                where = f"θ_T = {final:.3g}\nleft the domain" if np.isfinite(final) else "diverged"
            ax.text(0.03, 0.97, ("irons" if ok else "does not iron") + "\n" + where, transform=ax.transAxes,
                    va="top", fontsize="small", color=OUTCOME_COLOURS[ok])
            ax.set(xlim=xlim, ylim=ylim, aspect="equal")
            ax.tick_params(labelsize="small")
            if name == "authors":
                ax.set_title(f"ρ = {radius:.3g}")
                ax.set_facecolor("#f3f3fb")
        row[0].set_ylabel(f"{run['label']}\nη = {run['lr']:g}; irons at {int(ironed[name].sum())}/{len(radii)}"
                          "\n\nloss", fontsize="small")
    for ax in axes[-1]:
        ax.set_xlabel("parameter θ")

    legend = [Line2D([], [], color="0.55", linewidth=0.8, label="f(θ) = Σ sin(k²θ)/k²"),
              Line2D([], [], color="tab:blue", linewidth=1, label="ball centre, every step"),
              Line2D([], [], marker="o", color="black", linestyle="", label=f"start θ₀ = {start:g}"),
              Line2D([], [], color="tab:orange", linestyle=":", label="where gradient descent on f stalls"),
              Line2D([], [], marker="*", color="tab:green", markeredgecolor="black", linestyle="", markersize=11,
                     label="final contact point, irons"),
              Line2D([], [], marker="*", color="tab:red", markeredgecolor="black", linestyle="", markersize=11,
                     label="final contact point, does not iron")]
    fig.legend(handles=legend, loc="outside lower center", ncol=3, fontsize="small")
    settings = data["settings"]
    fig.suptitle("Ironing on f(θ) = Σ sin(k²θ)/k² (k = 1..100): the authors' 1-D demo (top row, as they drew it) and "
                 "one of its choices switched at a time toward rbo.RBO\n"
                 f"{settings['steps']} steps, K = {settings['proj_steps']}, γ = {settings['proj_lr']:g}; "
                 "irons = ends in the plotted domain, past the stall of gradient descent, lower on f than at the start",
                 fontsize="medium")
    return save(fig, stem)


def main(argv: list[str] | None = None) -> int:
    from rbo.ironing import ironing_demo

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results", help="results folder (writes paper/ironing/ironing.*)")
    args = parser.parse_args(argv)
    written = plot_ironing(ironing_demo(), Path(args.out) / "paper" / "ironing" / "ironing")
    print("\n".join(f"wrote {path}" for path in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
