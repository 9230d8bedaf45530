"""Figures of ``results/`` from the run records (issue 6 "plots", issue 12 "figures"), PNG and PDF, and
``results/index.md``. Matplotlib's object API (``Figure``, rendered by the Agg canvas; no pyplot, so no display and
no global figure state).

    python -m scripts.plot --runs runs --out results

Per (experiment, dataset, model), into ``results/<experiment>/figures/``:
- ``curves_<dataset>_<model>``: training loss and test accuracy against epochs (and against gradient evaluations
  when the optimizers spend different numbers per step and every curve has enough points); the mean over the
  completed seeds with a min–max band, diverged runs drawn up to where they stopped and marked ×;
- ``heatmap_<dataset>_<model>``: RBO's ρ × η grid (SPEC §3), final test accuracy and training loss, annotated
  cells, diverged cells hatched;
- ``cost_<dataset>_<model>``: gradient evaluations per step and seconds per epoch, when the optimizers differ.
And ``results/paper/ironing/ironing`` (:mod:`scripts.plot_ironing`), then ``results/index.md``: every table, figure
and ``claims.md`` found under ``results/``, one line each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize, to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from scripts.aggregate import BLOCK, DATASETS, Aggregate, build, cli
from scripts.records import PAPER_SCALE, TIER_OF_DATASET, atomic_write, atomic_write_text

MAX_LINES = 12  # more groups than this in one (experiment, dataset, model): curves are unreadable, skip them
LOG_SPAN = 10.0  # an axis is logarithmic only when its positive data span at least a decade (max / min >= 10)
MAX_MARKERS = 12  # more evaluations than this on a curve: markers on every len // 12-th point only
MIN_CURVE_POINTS = 4  # fewer evaluations per curve than this: no panel against gradient evaluations
EVALUATIONS = ("init", "epoch")  # metrics rows on the curves (budget rows sit at fractional epochs)
DIVERGED = "diverged"  # gid of the × marking where a diverged run stopped
INDEX_FIRST = (".md", ".png", ".csv", ".tex", ".pdf")  # the format an index line links first, then the others


@dataclass(frozen=True)
class Style:
    """How one optimizer is drawn. Roles: RBO and its variants (warm, solid), baselines (cool, solid),
    controls of issue 7 (grey family, dashed, hollow markers)."""
    label: str
    role: str
    color: str
    marker: str
    linestyle: str | tuple = "-"


STYLES = {
    "rbo": Style("RBO", "RBO", "tab:red", "o"),
    "rbo_gauss_newton": Style("RBO (Gauss–Newton projection)", "RBO", "tab:orange", "D"),
    "rbo_newton": Style("RBO (Newton projection)", "RBO", "darkred", "p"),
    "sgd": Style("SGD", "baseline", "tab:blue", "s"),
    "entropy_sgd": Style("Entropy-SGD", "baseline", "tab:purple", "v"),
    "sam": Style("SAM", "baseline", "tab:green", "^"),
    "sgd_momentum": Style("SGD + momentum", "baseline", "tab:cyan", "P"),
    "sam_momentum": Style("SAM + momentum", "baseline", "tab:olive", "*"),
    "asam": Style("ASAM", "baseline", "tab:pink", "h"),
    "adamw": Style("AdamW", "baseline", "tab:brown", "X"),
    "rbo_radius0": Style("RBO (ρ = 0)", "control", "0.15", "o", (0, (6, 2))),
    "sgd_k_steps": Style("SGD × K steps", "control", "0.4", "s", (0, (3, 1.5))),
    "sgd_effective_lr": Style("SGD at RBO's step", "control", "0.6", "D", (0, (6, 2, 1, 2))),
}
SETTING_SYMBOLS = {"lr": "η", "radius": "ρ", "proj_steps": "K", "proj_lr": "γ"}
DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                 "mnist_subset": "MNIST subset", "synthetic": "synthetic"}
MODEL_NAMES = {"mlp": "MLP", "resnet6": "ResNet-6", "resnet8": "ResNet-8", "vgg9": "VGG-9", "resnet18": "ResNet-18",
               "wrn16_8": "WRN-16-8"}
PALETTE = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan", "navy", "gold", "teal")  # several settings of one optimizer (a ρ × η sweep)
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "h", "*", "<", ">", "p")


def save(fig, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf, each written atomically."""
    def write(fmt):
        metadata = {"CreationDate": None} if fmt == "pdf" else None  # reproducible PDF bytes
        return atomic_write(stem.parent / f"{stem.name}.{fmt}",
                            lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, metadata=metadata))

    return [write("png"), write("pdf")]


def block_title(experiment: str, dataset: str, model: str) -> str:
    """'quick/table1: MNIST subset / MLP (CPU-scale subset)': readable names and the evidence tier of the dataset
    (``scripts.records.TIER_OF_DATASET``) where it is not the paper's scale."""
    tier = TIER_OF_DATASET.get(dataset, "synthetic data, not evidence")
    title = f"{experiment}: {DATASET_NAMES.get(dataset, dataset)} / {MODEL_NAMES.get(model, model)}"
    return title if tier == PAPER_SCALE else f"{title} ({tier})"


def setting_text(setting: str) -> str:
    """'lr=1, radius=2' -> 'η = 1, ρ = 2'."""
    if not setting:
        return ""
    pairs = (part.split("=", 1) for part in setting.split(", "))
    return ", ".join(f"{SETTING_SYMBOLS.get(k, k)} = {v}" for k, v in pairs)


def series_styles(groups: pd.DataFrame) -> dict[str, dict]:
    """Per group id: the plot keywords and legend label. One group per optimizer: its :data:`STYLES` entry;
    several (a sweep): one colour and marker each, the optimizer's line style, the setting in the label. Markers
    and lines shrink in drawing order, so a curve drawn over an identical one leaves it visible around it."""
    styles, order = {}, 0
    several_optimizers = groups["optimizer"].nunique() > 1
    for optimizer, block in groups.groupby("optimizer", sort=False):
        base = STYLES.get(optimizer, Style(optimizer, "baseline", "tab:gray", "o"))
        greys = np.linspace(0.1, 0.65, len(block))
        tints = np.linspace(0.0, 0.6, len(block))  # toward white: the optimizer's colour stays recognisable
        for i, g in enumerate(block.itertuples()):
            if len(block) == 1:
                color, marker = base.color, base.marker
            else:
                if base.role == "control":
                    color = str(round(greys[i], 2))
                elif several_optimizers:
                    color = to_hex((1 - tints[i]) * np.array(to_rgb(base.color)) + tints[i])
                else:
                    color = PALETTE[i % len(PALETTE)]
                marker = MARKERS[i % len(MARKERS)]
            setting = setting_text(g.setting)
            shrink = 0.6 ** (order / max(len(groups) - 1, 1))  # drawn later, smaller: a curve on another shows
            styles[g.group] = {
                "label": f"{base.label} ({setting})" if setting else base.label, "role": base.role,
                "line": {"color": color, "marker": marker, "linestyle": base.linestyle, "markersize": 8 * shrink,
                         "linewidth": 2.6 * shrink, "markerfacecolor": "white" if base.role == "control" else color},
            }
            order += 1
    return styles


def log_axis(ax, which: str, values, nonpositive: str = "mask") -> None:
    """``ax``'s x or y axis logarithmic, labelled in plain numbers: at 1, 2 and 5 per decade when ``values`` span
    at most two decades, else at the powers of ten. Bars need ``nonpositive="clip"`` (they start at 0)."""
    getattr(ax, f"set_{which}scale")("log", nonpositive=nonpositive)
    v = np.asarray([x for x in values if np.isfinite(x) and x > 0], dtype=float)
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if v.max() / v.min() <= 100 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def log_scale_fits(values) -> bool:
    """True when every value is positive and they span at least a decade (:data:`LOG_SPAN`)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() >= LOG_SPAN


def seeds_text(ns, what: str = "curve") -> str:
    """What a curve (or a heat-map cell) shows, from the numbers of completed seeds behind each."""
    ns = sorted(set(int(n) for n in ns if n > 0))
    if not ns:
        return "no completed run"
    if ns == [1]:
        return f"one seed per {what} (n = 1)"
    band = ", min–max" if what == "curve" else ""
    if len(ns) == 1:
        return f"mean{band} over {ns[0]} seeds"
    return f"mean{band} over the n seeds given in the {'legend' if what == 'curve' else 'cell'}"


# ---------------------------------------------------------------- curves


@dataclass
class Series:
    """One group's curves: its completed seeds per evaluation and its diverged runs, each on its own."""
    group: pd.Series
    style: dict
    seeds: pd.DataFrame  # per epoch: grad_evals (mean), <metric>_mean / _min / _max, n
    diverged: list[tuple[pd.DataFrame, float]]  # (evaluation rows, diverged_at_epoch) per diverged run


def seed_band(rows: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per epoch over the completed seeds: mean gradient evaluations, mean, min and max of each metric, n."""
    stats = {"grad_evals": ("grad_evals", "mean"), "n": ("run_id", "nunique")}
    stats |= {f"{m}_{f}": (m, f) for m in metrics for f in ("mean", "min", "max")}
    return rows.groupby("epoch", as_index=False).agg(**stats).sort_values("epoch")


def collect_series(agg: Aggregate, groups: pd.DataFrame, styles: dict, metrics: tuple[str, ...]) -> list[Series]:
    """The groups with something to draw (completed or diverged runs with evaluations) and their evaluations."""
    m = agg.records.metrics
    m = m[m["group"].isin(groups["group"]) & m["trigger"].isin(EVALUATIONS)]
    m = m.assign(test_acc=m["test_acc"] * 100.0).replace([np.inf, -np.inf], np.nan)
    runs = agg.records.runs.set_index("run_id")
    out = []
    for _, g in groups.iterrows():
        rows = m[m["group"] == g["group"]]
        done = rows[rows["status"] == "completed"]
        diverged = [(r.sort_values("epoch"), float(runs.loc[rid, "diverged_at_epoch"]))
                    for rid, r in rows[rows["status"] == "diverged"].groupby("run_id")]
        if len(done) or diverged:
            out.append(Series(g, styles[g["group"]], seed_band(done, metrics), diverged))
    return out


def _draw(ax, series: Series, x: str, y: str) -> None:
    """One group on one panel: mean line and min–max band of the completed seeds, each diverged run as a thin
    line ending in × at its last finite evaluation (at the top edge if it has none, at the epoch it stopped)."""
    line = series.style["line"]
    seeds = series.seeds[series.seeds[f"{y}_mean"].notna()]
    if len(seeds):  # long runs: a marker every tenth point, so 100 epochs stay a line, not a bar of markers
        ax.plot(seeds[x], seeds[f"{y}_mean"], **line, markevery=max(1, len(seeds) // MAX_MARKERS))
        if seeds["n"].max() > 1:
            ax.fill_between(seeds[x], seeds[f"{y}_min"], seeds[f"{y}_max"], color=line["color"], alpha=0.15,
                            linewidth=0)
    for rows, stopped_at in series.diverged:
        finite = rows[rows[y].notna()]
        if len(finite):
            ax.plot(finite[x], finite[y], color=line["color"], linestyle=line["linestyle"], linewidth=0.9,
                    alpha=0.7)
            ax.plot(finite[x].iloc[-1], finite[y].iloc[-1], "x", color=line["color"], markersize=10,
                    markeredgewidth=2.5, gid=DIVERGED, zorder=5)
        elif x == "epoch" and np.isfinite(stopped_at):
            ax.plot(stopped_at, 1.0, "x", color=line["color"], markersize=10, markeredgewidth=2.5, gid=DIVERGED,
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=5)


def _panel_values(series: list[Series], x: str, y: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for s in series:
        seeds = s.seeds[s.seeds[f"{y}_mean"].notna()]
        xs += list(seeds[x])
        ys += list(seeds[f"{y}_min"]) + list(seeds[f"{y}_max"])
        for rows, _ in s.diverged:
            finite = rows[rows[y].notna()]
            xs += list(finite[x])
            ys += list(finite[y])
    return xs, ys


def evals_panel_fits(series: list[Series], groups: pd.DataFrame) -> bool:
    """A row of panels against gradient evaluations says something only when the optimizers spend different
    numbers per step and every completed curve has :data:`MIN_CURVE_POINTS` evaluations after the start."""
    if groups["grad_evals_per_step"].dropna().nunique() < 2:
        return False
    counts = [int((s.seeds["grad_evals"] > 0).sum()) for s in series if len(s.seeds)]
    return bool(counts) and min(counts) >= MIN_CURVE_POINTS


def curves_figure(agg: Aggregate, groups: pd.DataFrame, title: str) -> Figure | None:
    """Training loss and test accuracy (columns) against epochs and, where it says something, gradient
    evaluations (rows); one legend outside the axes, naming the groups with nothing to draw. None when no group
    has a completed or diverged run with evaluations."""
    panels = (("train_loss", "training loss (epoch mean,\nso from epoch 1)"), ("test_acc", "test accuracy (%)"))
    styles = series_styles(groups)
    series = collect_series(agg, groups, styles, tuple(y for y, _ in panels))
    if not series:
        return None
    xs = [("epoch", "epoch")]
    if evals_panel_fits(series, groups):
        xs.append(("grad_evals", "gradient evaluations"))
    fig = Figure(figsize=(11.5, 3.6 * len(xs) + 0.8), layout="constrained")
    axes = fig.subplots(len(xs), len(panels), squeeze=False)
    for i, (x, x_label) in enumerate(xs):
        for j, (y, y_label) in enumerate(panels):
            ax = axes[i, j]
            for s in series:
                _draw(ax, s, x, y)
            x_values, y_values = _panel_values(series, x, y)
            if y != "test_acc" and log_scale_fits(y_values):  # accuracy is read in points: always linear
                log_axis(ax, "y", y_values)
            else:
                ax.ticklabel_format(axis="y", useOffset=False)  # 2.2926, not 0.0006 under a '+2.292'
            if x == "epoch":
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_xlim(-0.05 * max(x_values + [1]), 1.05 * max(x_values + [1]))
            elif log_scale_fits([v for v in x_values if v > 0]):
                log_axis(ax, "x", x_values)
            ax.set(xlabel=x_label, ylabel=y_label)
            ax.grid(alpha=0.3)
    ns = [s.group["n"] for s in series]
    several_n = len({n for n in ns if n > 0}) > 1
    handles = []
    for s in series:
        g, label = s.group, s.style["label"]
        extra = [f"n = {g['n']}"] if several_n and g["n"] else []
        extra += [f"{g[f'n_{k}']} {k}" for k in ("diverged", "failed", "running") if g[f"n_{k}"]]
        label += f" [{', '.join(extra)}]" if extra else ""
        handles.append(Line2D([], [], **s.style["line"], label=label))
    if any(n > 1 for n in ns):
        handles.append(Patch(color="0.5", alpha=0.3, label="min–max over seeds"))
    if any(s.diverged for s in series):
        handles.append(Line2D([], [], marker="x", color="black", linestyle="none", markersize=9, markeredgewidth=2,
                              label="diverged run: where it stopped"))
    drawn = {s.group["group"] for s in series}
    for _, g in groups[~groups["group"].isin(drawn)].iterrows():
        label = f"not drawn: {styles[g['group']]['label']} ({g['status']})"
        handles.append(Line2D([], [], linestyle="none", label=label))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), fontsize="small",
               frameon=False)  # below the axes: never over the title, however long the labels
    fig.suptitle(f"{title}\n{seeds_text(ns)}", fontsize="medium")
    return fig


# ---------------------------------------------------------------- heat map and cost


def heatmap_figure(grid: pd.DataFrame, title: str) -> Figure:
    """ρ (rows) × η (columns) of final test accuracy and training loss, mean over the completed seeds; every
    cell annotated; cells where every run diverged hatched and marked 'diverged', partly diverged ones
    '(k/n div)'."""
    radii, lrs = sorted(grid["radius"].unique()), sorted(grid["lr"].unique())
    several_n = grid.loc[grid["n"] > 0, "n"].nunique() > 1
    fig = Figure(figsize=(3 + 2.2 * len(lrs), 1.9 + 0.75 * len(radii)), layout="constrained")
    axes = fig.subplots(1, 2, squeeze=False)
    for ax, (value, label, cmap) in zip(axes[0], (("test_acc_mean", "final test accuracy (%)", "viridis"),
                                                    ("train_loss_mean", "final training loss", "viridis_r"))):
        values = np.full((len(radii), len(lrs)), np.nan)
        for r in grid.itertuples():
            values[radii.index(r.radius), lrs.index(r.lr)] = getattr(r, value) if r.n else np.nan
        finite = values[np.isfinite(values)]
        limits = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)  # (0, 1): every cell diverged
        norm = LogNorm(*limits) if value == "train_loss_mean" and log_scale_fits(finite) else Normalize(*limits)
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto", origin="lower")
        fig.colorbar(image, ax=ax, label=label)
        for r in grid.itertuples():
            i, j = radii.index(r.radius), lrs.index(r.lr)
            if r.n == 0:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="tab:red",
                                       gid=DIVERGED if r.n_diverged else r.status))
                ax.text(j, i, "diverged" if r.n_diverged else r.status, ha="center", va="center", color="tab:red",
                        fontweight="bold", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
                continue
            text = (f"{values[i, j]:.1f}" if value == "test_acc_mean" else f"{values[i, j]:.3g}")
            text += f"\nn = {r.n}" if several_n else ""
            text += f"\n({r.n_diverged}/{r.n_runs} div)" if r.n_diverged else ""
            red, green, blue = to_rgb(image.cmap(image.norm(values[i, j])))
            ink = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize="small", color=ink)
        filled = {(radii.index(r.radius), lrs.index(r.lr)) for r in grid.itertuples()}
        for i, j in np.ndindex(values.shape):
            if (i, j) not in filled:
                ax.text(j, i, "no run", ha="center", va="center", fontsize="small", color="0.4")
        ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
        ax.set_yticks(range(len(radii)), [f"{v:g}" for v in radii])
        ax.set(xlabel="learning rate η", ylabel="radius ρ", title=label)
    hatched = "; hatched: every run diverged" if ((grid["n"] == 0) & (grid["n_diverged"] > 0)).any() else ""
    fig.suptitle(f"{title}\nRBO over ρ × η, {seeds_text(grid['n'], 'cell')}{hatched}", fontsize="medium")
    return fig


def cost_figure(groups: pd.DataFrame, title: str) -> Figure | None:
    """Bars of gradient evaluations per step and seconds per epoch per group (per optimizer when there are more
    than :data:`MAX_LINES`); None when every group spends the same gradient evaluations per step."""
    done = groups[groups["n"] > 0]
    if done["grad_evals_per_step"].round(6).nunique() < 2:
        return None
    styles = series_styles(groups)
    columns = ["grad_evals_per_step", "seconds_per_epoch"]
    if len(done) > MAX_LINES:
        bars = done.groupby("optimizer", sort=False)[columns].mean()
        labels = [STYLES[o].label if o in STYLES else o for o in bars.index]
        colors = [STYLES[o].color if o in STYLES else "tab:gray" for o in bars.index]
        roles = [STYLES[o].role if o in STYLES else "baseline" for o in bars.index]
    else:
        bars = done[columns]
        labels = [styles[g]["label"] for g in done["group"]]
        colors = [styles[g]["line"]["color"] for g in done["group"]]
        roles = [styles[g]["role"] for g in done["group"]]
    fig = Figure(figsize=(max(8.0, 1.1 * len(bars) + 3), 4.5), layout="constrained")
    axes = fig.subplots(1, 2, squeeze=False)
    for ax, (column, label) in zip(axes[0], zip(columns, ("gradient evaluations / step", "seconds / epoch"))):
        values = bars[column].to_numpy(dtype=float)
        drawn = ax.bar(range(len(values)), values, color=colors, edgecolor="black", linewidth=0.6)
        for bar, role in zip(drawn, roles):
            if role == "control":  # a light grey face under black hatching
                bar.set_facecolor(0.4 * np.asarray(to_rgb(bar.get_facecolor())) + 0.6)
                bar.set_hatch("//")
        ax.bar_label(drawn, fmt="%.3g", fontsize="small")
        ax.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize="small")
        if log_scale_fits(values):
            log_axis(ax, "y", values, nonpositive="clip")
            ax.set_ylim(bottom=values[values > 0].min() / 2)  # the shortest bar visible, its decade labelled
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
    hardware = ", ".join(sorted(set(done["hardware"])))
    hatched = "; hatched: controls" if "control" in roles else ""
    fig.suptitle(f"{title}: cost per optimizer\nmean over completed runs on {hardware}{hatched}", fontsize="medium")
    return fig


# ---------------------------------------------------------------- all figures, ironing, index


def ironing_data() -> dict | None:
    """``rbo.ironing.ironing_demo()`` when the package provides it, else None."""
    try:
        from rbo.ironing import ironing_demo
    except ImportError:
        return None
    return ironing_demo()


def ironing_plotter():
    """:func:`scripts.plot_ironing.plot_ironing`, or None while that module does not exist (imported here, not at
    the top, so that module may import from this one)."""
    try:
        from scripts.plot_ironing import plot_ironing
    except ModuleNotFoundError as err:
        if err.name != "scripts.plot_ironing":
            raise
        return None
    return plot_ironing


def remove_stale(stem: Path) -> list[str]:
    """Delete ``stem``'s figure files left by an earlier run of this script (the records no longer give that
    figure: a figure that stays would show runs that are not what the tables now read); a note per file."""
    notes = []
    for path in (stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"):
        if path.is_file():
            path.unlink()
            notes.append(f"removed {path}: the records no longer give this figure")
    return notes


def plot_all(agg: Aggregate, out_dir: str | Path) -> tuple[list[Path], list[str]]:
    """Every figure of the records; returns (written files, notes on what was skipped)."""
    out, written, notes = Path(out_dir), [], []
    blocks = agg.groups.groupby(BLOCK, sort=False) if len(agg.groups) else []
    for (experiment, dataset, model), groups in blocks:
        folder, title = out / experiment / "figures", block_title(experiment, dataset, model)
        drawable = groups[(groups["n"] > 0) | (groups["n_diverged"] > 0)]
        fig = None
        if len(drawable) > MAX_LINES:
            notes.append(f"{title}: {len(drawable)} settings > {MAX_LINES}, no curves (see the heat map and tables)")
        elif len(agg.records.metrics):
            fig = curves_figure(agg, groups, title)
        if fig is None and len(drawable) <= MAX_LINES:
            notes.append(f"{title}: no completed or diverged run with evaluations, no curves")
        if fig is not None:
            written += save(fig, folder / f"curves_{dataset}_{model}")
        else:
            notes += remove_stale(folder / f"curves_{dataset}_{model}")
        completed = (groups["n"] > 0).any()
        fig = cost_figure(groups, title) if completed else None
        if fig is None:
            if completed:
                notes.append(f"{title}: every optimizer spends the same gradient evaluations per step, no cost bars")
            notes += remove_stale(folder / f"cost_{dataset}_{model}")
        else:
            written += save(fig, folder / f"cost_{dataset}_{model}")
        grid = agg.heatmaps.get((experiment, dataset, model))
        if grid is not None:
            written += save(heatmap_figure(grid, title), folder / f"heatmap_{dataset}_{model}")
    return written, notes


FIXED_FILES = {  # stem under results/ -> (section of the index, what it is)
    "claims": ("Claims", "the paper's claims against our runs: verdict, evidence, runs behind it, how to reproduce"),
    "README": ("Other files", "what this folder holds and where each part came from"),
    "runs": ("Tables", "one row per run record (status, final metrics, cost, hardware)"),
    "paper/README": ("Other files", "where the paper's numbers come from"),
    "paper/table1": ("Tables", "the paper's Table 1 (arXiv 2505.19527v3), copied by hand"),
    "paper/ironing/ironing": ("Figures", "the 1-D ironing demo, RBO against GD (rbo.ironing, SPEC §3)"),
}
EXPERIMENT_FILES = {  # name under results/<experiment>/ (then _<dataset>_<model>) -> (section, what it is)
    "table": ("Tables", "final metrics per optimizer and setting"),
    "equal_compute": ("Tables", "test accuracy at equal epochs and at equal gradient evaluations"),
    "table1_view": ("Tables", "test accuracy in the shape of the paper's Table 1"),
    "figures/curves": ("Figures", "training loss and test accuracy against epochs"),
    "figures/cost": ("Figures", "gradient evaluations per step and seconds per epoch"),
    "figures/heatmap": ("Figures", "RBO's ρ × η heat map of final test accuracy and training loss"),
    "heatmap": ("Tables", "RBO's final test accuracy over ρ × η"),
}
INDEX_SECTIONS = ("Claims", "Tables", "Figures", "Other files")


def describe(stem: str, suffixes=()) -> tuple[str, str]:
    """(section of the index, one line on what it is) for ``results/<stem>.*``, from its name as the scripts
    write it; a file of another name goes to the figures or other files by its ``suffixes``."""
    if stem in FIXED_FILES:
        return FIXED_FILES[stem]
    for name, (section, text) in EXPERIMENT_FILES.items():
        found = re.fullmatch(rf"(.+)/{name}(?:_(.+))?", stem)
        if found:
            experiment, block = found[1], found[2] or ""
            dataset = next((d for d in sorted(DATASETS, key=len, reverse=True) if block.startswith(f"{d}_")), None)
            where = block_title(experiment, dataset, block.removeprefix(f"{dataset}_")) if dataset else experiment
            return section, f"{text}, {where}"
    return ("Figures" if {".png", ".pdf"} & set(suffixes) else "Other files"), "written by the results scripts"


def write_index(results_dir: str | Path, records: str | None = None) -> Path:
    """``results/index.md``: every file under ``results_dir`` (but the index), in sections (claims, tables,
    figures, other files); one line per table or figure with its formats linked together."""
    root = Path(results_dir)
    stems: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "index.md" and not path.name.endswith(".tmp"):
            stems.setdefault(path.relative_to(root).with_suffix("").as_posix(), []).append(path.suffix)
    sections: dict[str, list[str]] = {name: [] for name in INDEX_SECTIONS}
    for stem, suffixes in stems.items():
        suffixes.sort(key=lambda s: (INDEX_FIRST.index(s) if s in INDEX_FIRST else len(INDEX_FIRST), s))
        first, *more = [f"{stem}{s}" for s in suffixes]
        section, text = describe(stem, suffixes)
        links = f" ({' · '.join(f'[{Path(p).suffix[1:]}]({p})' for p in more)})" if more else ""
        sections[section].append(f"- [`{first}`]({first}){links}: {text}")
    lines = ["# Results index", "", "Generated by `python -m scripts.plot` (after `python -m scripts.aggregate`) "
             "from the files it finds under `results/`; do not edit.", ""]
    if records:
        lines += ["```", records, "```", ""]
    for section, entries in sections.items():
        if entries:
            lines += [f"## {section}", "", *entries, ""]
    return atomic_write_text(root / "index.md", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = cli(__doc__.split("\n\n")[0])
    parser.add_argument("--skip-ironing", action="store_true", help="do not draw the ironing figure")
    args = parser.parse_args(argv)
    agg = build(args.runs, args.paper, args.experiments)
    written, notes = plot_all(agg, args.out)
    if not args.skip_ironing:
        plot_ironing = ironing_plotter()
        data = ironing_data() if plot_ironing else None
        if plot_ironing is None:
            notes.append("ironing: scripts.plot_ironing not available, figure skipped")
        elif data is None:
            notes.append("ironing: rbo.ironing.ironing_demo() not available, figure skipped")
        else:
            written += plot_ironing(data, Path(args.out) / "paper" / "ironing" / "ironing")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    index = write_index(args.out, agg.records.describe())
    print(agg.records.describe())
    print("\n".join(notes + [f"wrote {len(written)} figure files and {index} under {args.out}/"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
