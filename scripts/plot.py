"""Figures of ``results/`` from the run records (issue 6 "plots"), PNG and PDF. Matplotlib's object API
(``Figure``, rendered by the Agg canvas; no pyplot, so no display and no global figure state).

    python -m scripts.plot --runs runs --out results

Per (experiment, dataset, model), into ``results/<experiment>/figures/``:
- ``curves_<dataset>_<model>``: training loss and test accuracy against epochs, gradient evaluations and
  training wall-clock; mean over completed seeds with a ±1 std band (x at the seeds' mean);
- ``heatmap_<dataset>_<model>``: RBO's ρ × η grid (SPEC §3), final test accuracy and training loss, diverged
  cells hatched and marked "div";
- ``cost_<dataset>_<model>``: gradient evaluations per step and seconds per epoch per optimizer.
And ``results/paper/ironing/ironing``: the 1-D figure (SPEC §3) from ``rbo.ironing.ironing_demo()``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.patheffects import withStroke

from scripts.aggregate import BLOCK, Aggregate, build, cli
from scripts.records import atomic_write

MAX_LINES = 12  # more groups than this in one (experiment, dataset, model): curves are unreadable, skip them
IRONING_KEYS = ("theta_grid", "f", "radii", "gd", "rbo")


def save(fig, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf, each written atomically."""
    def write(fmt):
        metadata = {"CreationDate": None} if fmt == "pdf" else None  # reproducible PDF bytes
        return atomic_write(stem.parent / f"{stem.name}.{fmt}",
                            lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, metadata=metadata))

    return [write("png"), write("pdf")]


def _label(group) -> str:
    return f"{group['optimizer']} ({group['setting']})" if group["setting"] else group["optimizer"]


def plot_curves(curves: pd.DataFrame, groups: pd.DataFrame, stem: Path, title: str) -> list[Path]:
    """2 × 3 panels: (training loss, test accuracy) × (epochs, gradient evaluations, wall-clock)."""
    fig = Figure(figsize=(15, 8))
    axes = fig.subplots(2, 3, squeeze=False)
    xs = (("epoch", "epoch", "linear"), ("grad_evals", "gradient evaluations", "log"),
          ("train_seconds", "training seconds", "log"))
    ys = (("train_loss", "training loss (epoch mean)"), ("test_acc", "test accuracy %"))
    for _, group in groups.iterrows():
        curve = curves[curves["group"] == group["group"]]
        for i, (y, y_label) in enumerate(ys):
            c = curve[curve[f"{y}_mean"].notna()]
            mean, std = c[f"{y}_mean"].to_numpy(), c[f"{y}_std"].fillna(0).to_numpy()
            for j, (x, x_label, scale) in enumerate(xs):
                ax = axes[i, j]
                line, = ax.plot(c[x], mean, marker=".", label=_label(group) if i == j == 0 else None)
                ax.fill_between(c[x], mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
                ax.set_xscale(scale, **({"nonpositive": "mask"} if scale == "log" else {}))
                ax.set(xlabel=x_label, ylabel=y_label)
                ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle(f"{title} (mean ± std over seeds)")
    fig.tight_layout()
    return save(fig, stem)


def plot_heatmap(grid: pd.DataFrame, stem: Path, title: str) -> list[Path]:
    """ρ (rows) × η (columns) of final test accuracy and training loss; diverged cells hatched, 'div'."""
    radii, lrs = sorted(grid["radius"].unique()), sorted(grid["lr"].unique())
    fig = Figure(figsize=(2 + 1.1 * len(lrs) * 2, 1.5 + 0.6 * len(radii)))
    axes = fig.subplots(1, 2, squeeze=False)
    for ax, (value, label, cmap) in zip(axes[0], (("test_acc_mean", "test accuracy %", "viridis"),
                                                    ("train_loss_mean", "training loss", "viridis_r"))):
        values = np.full((len(radii), len(lrs)), np.nan)
        for r in grid.itertuples():
            values[radii.index(r.radius), lrs.index(r.lr)] = getattr(r, value) if r.n else np.nan
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto", origin="lower")
        fig.colorbar(image, ax=ax, label=label)
        for r in grid.itertuples():
            i, j = radii.index(r.radius), lrs.index(r.lr)
            if r.n == 0:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="red"))
                ax.text(j, i, "div" if r.n_diverged else r.status, ha="center", va="center", color="red",
                        path_effects=[withStroke(linewidth=2, foreground="white")])
            else:
                text = f"{values[i, j]:.3g}" + (f"\n{r.n_diverged} div" if r.n_diverged else "")
                ax.text(j, i, text, ha="center", va="center", fontsize="small",
                        path_effects=[withStroke(linewidth=2, foreground="white")])
        ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
        ax.set_yticks(range(len(radii)), [f"{v:g}" for v in radii])
        ax.set(xlabel="η (lr)", ylabel="ρ (radius)", title=label)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, stem)


def plot_cost(groups: pd.DataFrame, stem: Path, title: str) -> list[Path]:
    """Bars of gradient evaluations per step and seconds per epoch, per group (per optimizer if too many)."""
    done = groups[groups["n"] > 0]
    if len(done) > MAX_LINES:
        bars = done.groupby("optimizer", sort=False)[["grad_evals_per_step", "seconds_per_epoch"]].mean()
    else:
        bars = done.set_index(done.apply(_label, axis=1))[["grad_evals_per_step", "seconds_per_epoch"]]
    fig = Figure(figsize=(max(8, 1.2 * len(bars)), 4.5))
    axes = fig.subplots(1, 2, squeeze=False)
    for ax, (column, label, scale) in zip(axes[0], (("grad_evals_per_step", "gradient evaluations / step", "log"),
                                                    ("seconds_per_epoch", "seconds / epoch", "linear"))):
        ax.bar_label(ax.bar(range(len(bars)), bars[column].to_numpy()), fmt="%.3g", fontsize="small")
        ax.set_xticks(range(len(bars)), bars.index, rotation=45, ha="right", fontsize="small")
        ax.set_yscale(scale)
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{title}: cost (mean over completed runs; {', '.join(sorted(set(done['hardware'])))})",
                 fontsize="medium")
    fig.tight_layout()
    return save(fig, stem)


def plot_ironing(data: dict, stem: Path) -> list[Path]:
    """The 1-D ironing figure: one panel per radius with f, GD's iterates and RBO's contact points, ball-centre
    path and final point. ``data`` as returned by ``rbo.ironing.ironing_demo()``:
    ``{"theta_grid": array, "f": array, "radii": [...], "gd": {"theta": iterates},
    "rbo": {radius: {"theta": iterates, "centre_theta": array, "centre_y": array, "final": float}}}``."""
    missing = [k for k in IRONING_KEYS if k not in data]
    if missing:
        raise ValueError(f"ironing data lacks {missing}: expected keys {list(IRONING_KEYS)}")
    grid, f = np.asarray(data["theta_grid"], dtype=float), np.asarray(data["f"], dtype=float)
    lo, hi, span = grid.min(), grid.max(), f.max() - f.min()

    def on_f(theta):  # points of the graph; NaN outside the plotted domain (f is known on the grid only)
        theta = np.atleast_1d(np.asarray(theta, dtype=float))
        return theta, np.interp(theta, grid, f, left=np.nan, right=np.nan)

    radii = list(data["radii"])
    cols = min(3, len(radii))
    rows = -(-len(radii) // cols)
    fig = Figure(figsize=(5 * cols, 3.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    gd = np.asarray(data["gd"]["theta"], dtype=float)
    for ax, radius in zip(axes.flat, radii):
        rbo = data["rbo"][radius]
        ax.plot(grid, f, color="0.5", linewidth=0.8, label="f(θ)")
        ax.plot(rbo["centre_theta"], rbo["centre_y"], ".", color="tab:cyan", markersize=1.5, alpha=0.5,
                label="ball centre")
        ax.plot(*on_f(gd), "x", color="tab:orange", markersize=4, label="GD iterates")
        ax.plot(*on_f(rbo["theta"]), ".", color="tab:blue", markersize=3, label="RBO contact points")
        ax.plot(*on_f(gd[-1]), "X", color="tab:orange", markersize=9, label="GD final")
        ax.plot(*on_f(rbo["final"]), "*", color="tab:red", markersize=12, label="RBO final")
        outside = [f"{name} final θ = {v:.3g}" for name, v in (("GD", gd[-1]), ("RBO", rbo["final"]))
                   if not lo <= v <= hi]
        if outside:
            ax.text(0.02, 0.02, "outside the domain: " + ", ".join(outside), transform=ax.transAxes,
                    fontsize="x-small", color="tab:red")
        ax.set(title=f"ρ = {radius:g}", xlabel="θ", ylabel="f(θ)", xlim=(lo, hi),
               ylim=(f.min() - 0.1 * span, f.max() + radius + 0.1 * span))
    for ax in list(axes.flat)[len(radii):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="x-small")
    fig.suptitle(r"Ironing: RBO against GD on $f(\theta) = \sum_{k=1}^{100} \sin(k^2\theta)/k^2$")
    fig.tight_layout()
    return save(fig, stem)


def ironing_data() -> dict | None:
    """``rbo.ironing.ironing_demo()`` when the package provides it, else None."""
    try:
        from rbo.ironing import ironing_demo
    except ImportError:
        return None
    return ironing_demo()


def plot_all(agg: Aggregate, out_dir: str | Path) -> tuple[list[Path], list[str]]:
    """Every figure of the records; returns (written files, notes on what was skipped)."""
    out, written, notes = Path(out_dir), [], []
    blocks = agg.groups.groupby(BLOCK, sort=False) if len(agg.groups) else []
    for (experiment, dataset, model), groups in blocks:
        folder, title = out / experiment / "figures", f"{experiment}: {dataset}/{model}"
        done = groups[groups["n"] > 0]
        if not len(done) or not len(agg.curves):
            notes.append(f"{title}: no completed run with metrics, no curves")
        elif len(done) > MAX_LINES:
            notes.append(f"{title}: {len(done)} settings > {MAX_LINES}, no curves (see the heat map and tables)")
        else:
            written += plot_curves(agg.curves, done, folder / f"curves_{dataset}_{model}", title)
        if len(done):
            written += plot_cost(groups, folder / f"cost_{dataset}_{model}", title)
        grid = agg.heatmaps.get((experiment, dataset, model))
        if grid is not None:
            written += plot_heatmap(grid, folder / f"heatmap_{dataset}_{model}", f"{title}: RBO ρ × η")
    return written, notes


def main(argv: list[str] | None = None) -> int:
    parser = cli(__doc__.split("\n\n")[0])
    parser.add_argument("--skip-ironing", action="store_true", help="do not draw the ironing figure")
    args = parser.parse_args(argv)
    agg = build(args.runs, args.paper)
    written, notes = plot_all(agg, args.out)
    if not args.skip_ironing:
        data = ironing_data()
        if data is None:
            notes.append("ironing: rbo.ironing.ironing_demo() not available, figure skipped")
        else:
            written += plot_ironing(data, Path(args.out) / "paper" / "ironing" / "ironing")
    print(agg.records.describe())
    print("\n".join(notes + [f"wrote {len(written)} figure files under {args.out}/"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
