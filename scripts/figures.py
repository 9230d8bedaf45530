"""The figures step of the results pipeline (records → frame → tables → statistics → claims → **figures** → index):
PNG and PDF from a :class:`~scripts.frame.Frame`, with Matplotlib's object API (``Figure`` on the Agg canvas; no
pyplot, so no display and no global figure state).

Per (experiment, dataset, model), into ``results/<experiment>/figures/``:
- ``curves_<dataset>_<model>``: training loss and test accuracy against epochs (and against gradient evaluations
  when the optimizers spend different numbers per step and every curve has enough points); the mean over the
  completed seeds with a min–max band, diverged runs drawn up to where they stopped and marked ×. RBO is drawn
  above everything else, its controls below; curves that coincide are named in the legend;
- ``heatmap_<dataset>_<model>``: RBO's ρ × η grid (SPEC §3), final test accuracy and training loss, annotated
  cells, diverged cells hatched;
- ``cost_<dataset>_<model>``: gradient evaluations per step and per epoch, when the optimizers differ (the records'
  seconds were measured under varying load and are not drawn).
And ``results/paper/ironing/ironing`` from the 1-D record (:mod:`scripts.plot_ironing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize, to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from experiments.registry import optimizer_info
from scripts.frame import BLOCK, Frame, block_title
from scripts.records import atomic_write

MAX_LINES = 12  # more groups than this in one (experiment, dataset, model): curves are unreadable, skip them
LOG_SPAN = 10.0  # an axis is logarithmic only when its positive data span at least a decade (max / min >= 10)
MAX_MARKERS = 12  # more evaluations than this on a curve: markers on every len // 12-th point only
MIN_CURVE_POINTS = 4  # fewer evaluations per curve than this: no panel against gradient evaluations
EVALUATIONS = ("init", "epoch")  # metrics rows on the curves (budget rows sit at fractional epochs)
DIVERGED = "diverged"  # gid of the × marking where a diverged run stopped
COINCIDE = 1e-3  # two curves closer than this (relative to the panel's range) at every point coincide
ZORDER = {"RBO": 4, "baseline": 3, "control": 2}  # RBO above everything, its controls below (issue 25)


@dataclass(frozen=True)
class Style:
    """How one optimizer is drawn. Roles: RBO and its variants (warm, solid), baselines (cool, solid),
    controls of issue 7 (grey family, dashed, hollow markers)."""
    label: str
    role: str
    color: str
    marker: str
    linestyle: str | tuple = "-"


CONTROL_DASHES = ((0, (6, 2)), (0, (3, 1.5)), (0, (6, 2, 1, 2)), (0, (1, 1)))  # one per control, in registry order


def registry_styles() -> dict[str, Style]:
    """Per optimizer, its style from the registry (``conf/optimizer/*.yaml``: ``display_name``, ``colour``,
    ``marker``, ``role``): RBO and its variants warm and solid, the others solid, controls grey and dashed."""
    styles, controls = {}, 0
    for name, info in optimizer_info().items():
        if info.role == "control":
            role, dash = "control", CONTROL_DASHES[controls % len(CONTROL_DASHES)]
            controls += 1
        else:
            role, dash = ("RBO" if info.target == "rbo.RBO" else "baseline"), "-"
        styles[name] = Style(info.display_name, role, info.colour or "tab:gray", info.marker or "o", dash)
    return styles


STYLES = registry_styles()
SETTING_SYMBOLS = {"lr": "η", "radius": "ρ", "proj_steps": "K", "proj_lr": "γ"}
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


def setting_text(setting: str) -> str:
    """'lr=1, radius=2' -> 'η = 1, ρ = 2'; a measured step's reference by its display name ('reference=rbo_radius0'
    -> 'measured on RBO (ρ = 0)')."""
    if not setting:
        return ""
    pairs = (part.split("=", 1) for part in setting.split(", "))
    return ", ".join(f"measured on {STYLES[v].label if v in STYLES else v}" if k == "reference"
                     else f"{SETTING_SYMBOLS.get(k, k)} = {v}" for k, v in pairs)


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
                "zorder": ZORDER.get(base.role, 2),
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


def collect_series(frame: Frame, groups: pd.DataFrame, styles: dict, metrics: tuple[str, ...]) -> list[Series]:
    """The groups with something to draw (completed or diverged runs with evaluations) and their evaluations."""
    m = frame.records.metrics
    m = m[m["group"].isin(groups["group"]) & m["trigger"].isin(EVALUATIONS)]
    m = m.assign(test_acc=m["test_acc"] * 100.0).replace([np.inf, -np.inf], np.nan)
    runs = frame.records.runs.set_index("run_id")
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
    line, zorder = series.style["line"], series.style["zorder"]
    seeds = series.seeds[series.seeds[f"{y}_mean"].notna()]
    if len(seeds):  # long runs: a marker every tenth point, so 100 epochs stay a line, not a bar of markers
        ax.plot(seeds[x], seeds[f"{y}_mean"], **line, markevery=max(1, len(seeds) // MAX_MARKERS), zorder=zorder)
        if seeds["n"].max() > 1:
            ax.fill_between(seeds[x], seeds[f"{y}_min"], seeds[f"{y}_max"], color=line["color"], alpha=0.15,
                            linewidth=0, zorder=zorder - 1)
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


def coinciding(series: list[Series], metrics: tuple[str, ...]) -> dict[str, str]:
    """Per group id, the label of an earlier curve it lies on (every metric, every epoch within :data:`COINCIDE` of
    the panel's range): drawn on top of each other, the legend has to say so (issue 25)."""
    found: dict[str, str] = {}
    for i, s in enumerate(series):
        for other in series[:i]:
            a, b = s.seeds.set_index("epoch"), other.seeds.set_index("epoch")
            if not len(a) or list(a.index) != list(b.index):
                continue
            close = True
            for m in metrics:
                both = pd.concat([a[f"{m}_mean"], b[f"{m}_mean"]], axis=1).dropna()
                span = np.ptp(both.to_numpy()) if len(both) else 0.0
                close &= bool(len(both)) and bool((both.iloc[:, 0] - both.iloc[:, 1]).abs().max() <= COINCIDE * max(
                    span, 1e-12))
            if close:
                found[s.group["group"]] = other.style["label"]
                break
    return found


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


LEGEND_CHARS = 180  # characters of a small-font legend line across the 11.5-inch curves figure


def curves_figure(frame: Frame, groups: pd.DataFrame, title: str) -> Figure | None:
    """Training loss and test accuracy (columns) against epochs and, where it says something, gradient
    evaluations (rows); one legend outside the axes, naming the groups with nothing to draw. None when no group
    has a completed or diverged run with evaluations."""
    panels = (("train_loss", "training loss (epoch mean,\nso from epoch 1)"), ("test_acc", "test accuracy (%)"))
    styles = series_styles(groups)
    series = collect_series(frame, groups, styles, tuple(y for y, _ in panels))
    if not series:
        return None
    series.sort(key=lambda s: s.style["zorder"])  # controls first, RBO last: drawn on top
    same = coinciding(series, tuple(y for y, _ in panels))
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
    for s in sorted(series, key=lambda s: -s.style["zorder"]):  # the legend from RBO down to the controls
        g, label = s.group, s.style["label"]
        extra = [f"n = {g['n']}"] if several_n and g["n"] else []
        extra += [f"{g[f'n_{k}']} {k}" for k in ("diverged", "failed", "running") if g[f"n_{k}"]]
        extra += [f"on top of {same[g['group']]}: the same curve"] if g["group"] in same else []
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
    # below the axes, never over the title; as many columns as the longest label fits across the figure (a
    # clipped label loses its optimizer's name), and the figure grows by the rows beyond three
    longest = max(len(h.get_label()) for h in handles)
    ncols = min(len(handles), 3 if longest <= LEGEND_CHARS // 3 else 2 if longest <= LEGEND_CHARS // 2 else 1)
    rows = -(-len(handles) // ncols)
    fig.set_size_inches(11.5, 3.6 * len(xs) + 0.8 + 0.2 * max(0, rows - 3))
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize="small", frameon=False)
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
    """Bars of gradient evaluations per step and for the whole run per group (per optimizer when there are more
    than :data:`MAX_LINES`); None when every group spends the same gradient evaluations per step. Seconds are not
    drawn: the records were timed under varying machine load (``make bench`` times side by side)."""
    done = groups[groups["n"] > 0]
    if done["grad_evals_per_step"].round(6).nunique() < 2:
        return None
    styles = series_styles(groups)
    columns = ["grad_evals_per_step", "grad_evals"]
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
    names = ("gradient evaluations / step", "gradient evaluations / run")
    for ax, (column, label) in zip(axes[0], zip(columns, names)):
        values = bars[column].to_numpy(dtype=float)
        drawn = ax.bar(range(len(values)), values, color=colors, edgecolor="black", linewidth=0.6)
        for bar, role in zip(drawn, roles):
            if role == "control":  # a light grey face under black hatching
                bar.set_facecolor(0.4 * np.asarray(to_rgb(bar.get_facecolor())) + 0.6)
                bar.set_hatch("//")
        ax.bar_label(drawn, fmt="%.3g", fontsize="x-small")  # neighbouring equal bars: labels that do not touch
        ax.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize="small")
        if log_scale_fits(values):
            log_axis(ax, "y", values, nonpositive="clip")
            ax.set_ylim(bottom=values[values > 0].min() / 2)  # the shortest bar visible, its decade labelled
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
    hatched = "; hatched: controls" if "control" in roles else ""
    fig.suptitle(f"{title}: cost per optimizer in gradient evaluations\nmean over completed runs{hatched}",
                 fontsize="medium")
    return fig


def remove_stale(stem: Path) -> list[str]:
    """Delete ``stem``'s figure files left by an earlier run of this script (the records no longer give that
    figure: a figure that stays would show runs that are not what the tables now read); a note per file."""
    notes = []
    for path in (stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"):
        if path.is_file():
            path.unlink()
            notes.append(f"removed {path}: the records no longer give this figure")
    return notes


def draw_figures(frame: Frame, out_dir: str | Path) -> tuple[list[Path], list[str]]:
    """Every figure of the records; returns (written files, notes on what was skipped)."""
    out, written, notes = Path(out_dir), [], []
    blocks = frame.groups.groupby(BLOCK, sort=False) if len(frame.groups) else []
    for (experiment, dataset, model), groups in blocks:
        folder, title = out / experiment / "figures", block_title(experiment, dataset, model)
        drawable = groups[(groups["n"] > 0) | (groups["n_diverged"] > 0)]
        fig = None
        if len(drawable) > MAX_LINES:
            notes.append(f"{title}: {len(drawable)} settings > {MAX_LINES}, no curves (see the heat map and tables)")
        elif len(frame.records.metrics):
            fig = curves_figure(frame, groups, title)
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
        grid = frame.heatmaps.get((experiment, dataset, model))
        if grid is not None:
            written += save(heatmap_figure(grid, title), folder / f"heatmap_{dataset}_{model}")
    return written, notes


def draw_ironing_figure(record: dict | None, out_dir: str | Path) -> tuple[list[Path], str]:
    """The 1-D figure from its record (:mod:`scripts.plot_ironing`), or a note when there is no record."""
    if record is None:
        return [], "ironing: no 1-D record (results/records/paper/ironing/record.json; `make ironing` writes it)"
    from scripts.plot_ironing import draw_ironing

    return draw_ironing(record, Path(out_dir) / "paper" / "ironing"), ""
