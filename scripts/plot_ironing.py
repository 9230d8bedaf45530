"""The 1-D ironing figures (issues 11, 21), drawn from the record of ``experiments.ironing`` alone (never recomputed).

:func:`draw_ironing` writes into one folder (``results/paper/ironing/``):

- ``ironing``: f with the exact ball's envelope u_ρ − ρ for each radius; where each ball goes at the authors'
  settings (the ideal ball (a), RBO with the exact projection (b), ``rbo.RBO``, the authors' demo, gradient
  descent on f); where each ends at every η;
- ``ablation``: the authors' 1-D demo as they drew it and its one-choice ablation toward ``rbo.RBO``
  (:func:`plot_ironing`);
- ``theory``: Lemma 1, Propositions 2 and 3 measured on the exact ball and on ``rbo.RBO``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

IRONING_KEYS = ("theta_grid", "f", "domain", "radii", "settings", "gd_final", "gd_reach", "runs")
RECORD_KEYS = ("settings", "landscape", "ablation", "ideal", "lemma1", "prop2", "prop3")
OUTCOME_COLOURS = {True: "tab:green", False: "tab:red"}
RUN_STYLES = {  # what each trajectory is drawn with: (label, colour, line style, marker)
    "envelope_descent": ("ideal ball (a), descending u_ρ", "black", "-", "o"),
    "exact_projection": ("RBO with the exact projection (b)", "tab:blue", "--", "s"),
    "rbo": ("rbo.RBO (K = 20, γ = 0.05)", "tab:red", "-", "x"),
    "authors": ("the authors' demo", "tab:purple", ":", "^"),
    "gd": ("gradient descent on f", "tab:orange", "-", "D"),
}
POSITION_LIMITS = (-0.4, 2.5)  # θ shown in the trajectory panels: the plotted domain [0, 2.1] and a margin


def _save(fig: Figure, stem: Path) -> list[Path]:
    from scripts.figures import save  # here, not at the top: scripts.figures imports this module

    return save(fig, stem)


def _require(data: dict, keys, what: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{what} lacks {missing}: expected the keys {list(keys)}")


def plot_ironing(data: dict, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf: one row per run of ``data`` (``rbo.ironing.ironing_demo()`` or the
    record's ``"ablation"``), one column per radius; each panel draws, with equal aspect as the authors did, the
    ball centre's path over f, the start and the final contact point, green where the run irons by
    :data:`rbo.ironing.IRONS`, red where it does not, and the band gradient descent on f wanders over."""
    from rbo.ironing import irons, wrinkled

    _require(data, IRONING_KEYS, "ironing data")
    grid, f = np.asarray(data["theta_grid"], dtype=float), np.asarray(data["f"], dtype=float)
    (lo, hi), radii, runs = data["domain"], list(data["radii"]), data["runs"]
    start, reach = float(data["settings"]["start"]), float(data["gd_reach"])
    ironed = irons(data)
    pad = 0.15
    xlim, ylim = (lo - pad, hi + pad), (f.min() - pad, f.max() + max(radii) + pad)

    fig = Figure(figsize=(2.9 * len(radii) + 1.6, 2.75 * len(runs) + 1.2), layout="constrained")
    axes = fig.subplots(len(runs), len(radii), squeeze=False, sharex=True, sharey=True)
    for row, (name, run) in zip(axes, runs.items()):
        centres, thetas = np.asarray(run["centre"], dtype=float), np.asarray(run["theta"], dtype=float)
        for j, (ax, radius) in enumerate(zip(row, radii)):
            centre, final, ok = centres[:, j], float(thetas[-1, j]), bool(ironed[name][j])
            ax.plot(grid, f, color="0.55", linewidth=0.6)
            ax.plot(centre[:, 0], centre[:, 1], ".", color="tab:blue", markersize=2.5, alpha=0.8)
            ax.axvspan(start - reach, start + reach, color="tab:orange", alpha=0.15, linewidth=0)
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
              Line2D([], [], marker=".", color="tab:blue", linestyle="", label="ball centre (sampled steps)"),
              Line2D([], [], marker="o", color="black", linestyle="", label=f"start θ₀ = {start:g}"),
              Line2D([], [], color="tab:orange", alpha=0.3, linewidth=8, label="where gradient descent on f wanders"),
              Line2D([], [], marker="*", color="tab:green", markeredgecolor="black", linestyle="", markersize=11,
                     label="final contact point, irons"),
              Line2D([], [], marker="*", color="tab:red", markeredgecolor="black", linestyle="", markersize=11,
                     label="final contact point, does not iron")]
    fig.legend(handles=legend, loc="outside lower center", ncol=3, fontsize="small")
    settings = data["settings"]
    fig.suptitle("Ironing on f(θ) = Σ sin(k²θ)/k² (k = 1..100): the authors' 1-D demo (top row, as they drew it) and "
                 "one of its choices switched at a time toward rbo.RBO\n"
                 f"{settings['steps']} steps, K = {settings['proj_steps']}, γ = {settings['proj_lr']:g}; irons = ends "
                 "in the plotted domain, farther than gradient descent on f ever gets, lower on f than at the start",
                 fontsize="medium")
    return _save(fig, stem)


def _landscape_panel(ax, record: dict) -> None:
    """f and u_ρ − ρ for each radius, the start and the band gradient descent wanders over."""
    from rbo.ironing import wrinkled

    land, radii = record["landscape"], record["settings"]["radii"]
    start, reach = record["ablation"]["settings"]["start"], record["ablation"]["gd_reach"]
    theta = np.asarray(land["theta"], dtype=float)
    ax.plot(theta, np.asarray(land["f"], dtype=float), color="0.5", linewidth=0.5, label="f(θ) = Σ sin(k²θ)/k²")
    colours = _radius_colours(radii)
    for radius, u, colour in zip(radii, land["envelope"], colours):
        ax.plot(theta, np.asarray(u, dtype=float) - radius, color=colour, linewidth=1.1,
                label=f"u_ρ − ρ, ρ = {radius:.3g}")
    ax.axvspan(start - reach, start + reach, color="tab:orange", alpha=0.15, linewidth=0)
    ax.plot(start, wrinkled(start), "o", color="black", markersize=5)
    ax.text(start, 0.02, f"dot: start θ₀ = {start:g}\nshaded: where gradient\ndescent on f wanders",
            transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize="small")
    lo, hi = record["settings"]["domain"]
    ax.axvline(lo, color="0.7", linewidth=0.8, linestyle=":")
    ax.axvline(hi, color="0.7", linewidth=0.8, linestyle=":")
    ax.set(xlim=(theta[0], theta[-1]), xlabel="θ", ylabel="height",
           title="f and the height of the exact ball's centre minus ρ, u_ρ − ρ (u_ρ: f dilated by a disc of "
                 "radius ρ); dotted: the plotted domain [0, 2.1]")
    ax.legend(fontsize="small", loc="lower center", ncol=2)


def _radius_colours(radii) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / max(len(radii) - 1, 1)) for i in range(len(radii))]


def _positions(record: dict, lr_index: int):
    """Per run of :data:`RUN_STYLES` at η = ``record["settings"]["lrs"][lr_index]``: (steps, θ per step and radius)
    of what the figure draws: the centres of the two exact balls, the contact points of the others."""
    ideal, ablation = record["ideal"], record["ablation"]
    steps = np.asarray(ideal["kept_steps"])
    out = {key: (steps, np.asarray(ideal[key]["centre"], dtype=float)[:, lr_index])
           for key in ("envelope_descent", "exact_projection")}
    out["gd"] = (steps, np.repeat(np.asarray(ideal["gd"]["theta"], dtype=float)[:, [lr_index]],
                                  len(record["settings"]["radii"]), axis=1))
    if record["settings"]["lrs"][lr_index] == ablation["settings"]["lr"]:
        for name in ("rbo", "authors"):
            out[name] = (np.asarray(ablation["kept_steps"]), np.asarray(ablation["runs"][name]["theta"], dtype=float))
    return out


def _final_contacts(record: dict, lr_index: int) -> dict[str, np.ndarray]:
    """Per run: the final contact point per radius (θ for gradient descent) at η index ``lr_index``."""
    ideal, ablation, radii = record["ideal"], record["ablation"], record["settings"]["radii"]
    out = {key: np.asarray(ideal[key]["final_contact"], dtype=float)[lr_index]
           for key in ("envelope_descent", "exact_projection")}
    out["gd"] = np.full(len(radii), ideal["gd"]["final"][lr_index], dtype=float)
    if record["settings"]["lrs"][lr_index] == ablation["settings"]["lr"]:
        for name in ("rbo", "authors"):
            out[name] = np.asarray(ablation["runs"][name]["theta"][-1], dtype=float)
    return out


def _clipped(values: np.ndarray, limits) -> tuple[np.ndarray, np.ndarray]:
    """``values`` clipped to ``limits`` (NaN stays NaN), and where they were clipped."""
    with np.errstate(invalid="ignore"):
        return np.clip(values, *limits), (values < limits[0]) | (values > limits[1])


def _ironing_zone(ax, record: dict, vertical: bool) -> None:
    """Shade where a run irons by position (inside the domain, beyond gradient descent's reach)."""
    (lo, hi), start, reach = (record["ablation"]["domain"], record["ablation"]["settings"]["start"],
                              record["ablation"]["gd_reach"])
    span = ax.axhspan if vertical else ax.axvspan
    for a, b in ((lo, start - reach), (start + reach, hi)):
        if b > a:
            span(a, b, color="tab:green", alpha=0.08, linewidth=0)


def ironing_figure(record: dict) -> Figure:
    """f and u_ρ; the trajectories at the authors' settings, one panel per radius; the final contact points at
    every η."""
    settings, radii = record["settings"], record["settings"]["radii"]
    lrs, authors = settings["lrs"], settings["lrs"].index(settings["authors"]["lr"])
    fig = Figure(figsize=(3.2 * len(radii), 12.5), layout="constrained")
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=[1.15, 1, 1])
    _landscape_panel(top.subplots(), record)

    axes = middle.subplots(1, len(radii), sharey=True)
    paths = _positions(record, authors)
    for j, (ax, radius) in enumerate(zip(axes, radii)):
        _ironing_zone(ax, record, vertical=True)
        off_axis = {True: 0, False: 0}  # labels already at the bottom / top edge of this panel
        for name, (steps, theta) in paths.items():
            label, colour, style, _ = RUN_STYLES[name]
            ax.plot(steps, theta[:, j], color=colour, linestyle=style, linewidth=1.2, label=label)
            final = theta[-1, j]
            if not POSITION_LIMITS[0] <= final <= POSITION_LIMITS[1]:
                below = bool(final < POSITION_LIMITS[0])
                ax.annotate(f"ends at {final:.3g}" if np.isfinite(final) else "diverged",
                            (steps[-1], np.clip(final, *POSITION_LIMITS)), fontsize="x-small", color=colour,
                            xytext=(-2, (3 + 9 * off_axis[below]) * (1 if below else -1)), textcoords="offset points",
                            ha="right", va="bottom" if below else "top")
                off_axis[below] += 1
        ax.set(ylim=POSITION_LIMITS, xlabel="step", title=f"ρ = {radius:.3g}")
    axes[0].set_ylabel("θ (centre for the exact balls,\ncontact point for the others)")
    handles, labels = axes[0].get_legend_handles_labels()
    middle.legend(handles, labels, loc="outside lower center", ncol=5, fontsize="small")
    middle.suptitle(f"At the authors' settings (η = {lrs[authors]:g}, {settings['authors']['steps']} steps): where "
                    "each ball goes; green: inside [0, 2.1] and farther than gradient descent on f ever gets",
                    fontsize="medium")

    axes = bottom.subplots(1, len(lrs), sharey=True)
    limits = (-1.0, 5.0)
    for ax, (i, lr) in zip(axes, enumerate(lrs)):
        _ironing_zone(ax, record, vertical=True)
        for name, finals in _final_contacts(record, i).items():
            label, colour, _, marker = RUN_STYLES[name]
            shown, clipped = _clipped(finals, limits)
            ax.plot(radii, shown, color=colour, marker=marker, linestyle="none", markersize=7, label=label,
                    markerfacecolor=colour if marker not in "x" else None)
            ax.plot(np.asarray(radii)[clipped], shown[clipped], color=colour, marker=marker, linestyle="none",
                    markersize=13, markerfacecolor="none", alpha=0.6)
        ax.set(xscale="log", ylim=limits, xlabel="radius ρ", title=f"η = {lr:g}")
    axes[0].set_ylabel("final contact point θ_T\n(θ for gradient descent)")
    handles, labels = axes[authors].get_legend_handles_labels()
    bottom.legend(handles, labels, loc="outside lower center", ncol=5, fontsize="small")
    bottom.suptitle(f"Where each run ends, per η (ringed: beyond the axis, drawn at its edge); irons = in the green "
                    f"band and lower on f than at the start; rbo.RBO and the demo only at η = {lrs[authors]:g}",
                    fontsize="medium")
    fig.suptitle("The ideal ball against the authors' 1-D demo and rbo.RBO on f(θ) = Σ sin(k²θ)/k² (k = 1..100), "
                 f"start θ₀ = {settings['authors']['start']:g}", fontsize="large")
    return fig


def theory_figure(record: dict) -> Figure:
    """Lemma 1, Propositions 2 and 3, each against the radius."""
    lemma, prop2, prop3 = record["lemma1"], record["prop2"], record["prop3"]
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    left, middle, right = fig.subplots(1, 3)

    left.plot(lemma["radii"], lemma["oscillation"], "o-", color="black", label="exact ball")
    left.set(xscale="log", yscale="log", xlabel="radius ρ", ylabel="max − min of u_ρ − ρ on [0, 2.1]",
             title="Lemma 1: the ball's height flattens\n(f = Σ sin(k²θ)/k², bounded)")
    left.legend(fontsize="small")

    limits = (-0.5, 2.0)
    for key, values, radii in (("envelope_descent", prop2["envelope_descent"], prop2["radii"]),
                               ("exact_projection", prop2["exact_projection"], prop2["radii"]),
                               ("rbo", prop2["rbo"], prop2["rbo_radii"])):
        label, colour, style, marker = RUN_STYLES[key]
        shown, clipped = _clipped(np.asarray(values, dtype=float), limits)
        middle.plot(radii, shown, color=colour, linestyle=style, marker=marker, label=label)
        for radius, value, was in zip(radii, values, clipped):
            if was:
                middle.annotate(f"{value:.3g}", (radius, np.clip(value, *limits)), fontsize="x-small", color=colour,
                                va="bottom" if value < limits[0] else "top", ha="right")
    middle.axhline(1, color="0.4", linestyle=":", linewidth=1)
    middle.axhline(prop2["gd"], color=RUN_STYLES["gd"][1], linestyle="-", linewidth=1,
                   label="gradient descent on f")
    middle.set(xscale="log", ylim=limits, xlabel="radius ρ", ylabel="slope followed / affine slope",
               title=f"Proposition 2: the ball follows the affine part\n(f = θ + 0.1 sin 10θ + 0.01 sin 100θ, "
                     f"η = {prop2['lr']:g}, {prop2['steps']} steps)")
    middle.legend(fontsize="small")

    rows = prop3["wrinkled"]
    radii = [r["radius"] for r in rows]
    right.plot(radii, [100 * r["unreachable_share"] for r in rows], "o-", color="0.4",
               label="unreachable share of [0, 2.1] (κ > 1/ρ)")
    right.plot(radii, [100 * r["contacts_unreachable"] / r["contacts"] for r in rows], "o-", color="black",
               label="exact ball's contact points in it")
    right.plot(radii, [100 * r["rbo_unreachable"] / max(r["rbo_steps"], 1) for r in rows], "x-", color="tab:red",
               label="rbo.RBO's steps landing in it")
    right.plot(radii, [100 * r["rbo_flagged_unreachable"] / max(r["rbo_unreachable"], 1) for r in rows], "x--",
               color="tab:pink", label="… of which contact_gap < 0")
    right.plot(radii, [100 * r["rbo_flagged_reachable"] / max(r["rbo_steps"] - r["rbo_unreachable"], 1)
                       for r in rows], "+:", color="tab:pink", label="contact_gap < 0 where it lands reachable")
    right.set(xscale="log", ylim=(-5, 105), xlabel="radius ρ", ylabel="%",
              title="Proposition 3: unreachable points are never touched\n(f = Σ sin(k²θ)/k², authors' settings)")
    right.legend(fontsize="small")
    fig.suptitle("The paper's theory, measured: the exact ball (rbo.ideal_ball) and rbo.RBO (K = 20, γ = 0.05)",
                 fontsize="medium")
    return fig


def draw_ironing(record: dict, out_dir: Path) -> list[Path]:
    """Write ``ironing``, ``ablation`` and ``theory`` (.png and .pdf) into ``out_dir`` from the record of
    ``experiments.ironing`` (a dict, as read from its JSON)."""
    _require(record, RECORD_KEYS, "the ironing record")
    out_dir = Path(out_dir)
    return (_save(ironing_figure(record), out_dir / "ironing") + plot_ironing(record["ablation"], out_dir / "ablation")
            + _save(theory_figure(record), out_dir / "theory"))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("record", help="the record's JSON (python -m experiments.ironing --out PATH)")
    parser.add_argument("--out", default="results/paper/ironing", help="folder for the figures")
    args = parser.parse_args(argv)
    written = draw_ironing(json.loads(Path(args.record).read_text()), Path(args.out))
    print("\n".join(f"wrote {path}" for path in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
