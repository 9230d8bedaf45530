"""Tables of ``results/`` from the run records under ``runs/`` (issue 6 "Aggregation", issue 7 "equal compute").

    python -m scripts.aggregate --runs runs --out results [--experiments paper/table1 paper/heatmap ...]

Only the experiments asked for are read (issue 10): by default the suite's own, the ``experiment_name`` of every
file under ``conf/experiment/``; records of any other experiment (an ad-hoc sweep) are counted in ``index.md``
and never reach a table or a verdict. For every experiment ``results/<experiment>/`` gets, as Markdown, CSV and
LaTeX:
- ``table``: one row per group of seeds (dataset, model, optimizer, setting): mean ± sample std (ddof = 1) of the
  final metrics over the completed seeds and n, status counts (diverged / failed runs appear as such), the paper's
  Table 1 value beside ours with ``diff = ours − paper`` (SPEC §3, ``results/paper/table1.csv``) and the cost
  columns (gradient evaluations, training seconds, seconds per epoch);
- ``equal_compute`` (experiments with at least two optimizers): each group's test accuracy at equal epochs next to
  its accuracy at two fixed budgets of gradient evaluations, (a) SGD's budget for all the epochs (capped by
  ``max_sgd_epochs``) and (b) RBO's full budget (SPEC §4): the last evaluation at or below the budget, with the
  evaluations it had actually spent;
- ``table1_view``: the same accuracies in the shape of the paper's Table 1, ours beside the paper's;
- ``heatmap_<dataset>_<model>`` when the experiment runs RBO on a ρ × η grid (SPEC §3).
Titles name the evidence tier of the experiment's datasets (``scripts.records.TIER_OF_DATASET``) and every table
says whether a validation split was held out of the training split.
Plus ``results/runs.csv`` (one row per run), ``results/claims.md`` (:mod:`scripts.claims`) and
``results/index.md`` (every file under ``results/`` and what was read and skipped, :func:`scripts.plot.write_index`).
CSV files hold the numbers; Markdown and LaTeX the formatted table.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from experiments.config import CONF_DIR
from scripts.claims import write_claims
from scripts.records import (
    STATUSES,
    TIER_OF_DATASET,
    TIERS,
    Records,
    atomic_write,
    atomic_write_text,
    load_records,
    num,
    number,
    pm,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER_TABLE = ROOT / "results" / "paper" / "table1.csv"
EXPERIMENT_CONF = CONF_DIR / "experiment"  # a checkout's conf/, or the copy a wheel ships
# Row order: the paper's Table 1 columns, then RBO's variants and controls beside it, then the tuned baselines.
OPTIMIZERS = ("sgd", "entropy_sgd", "sam", "rbo", "rbo_radius0", "rbo_gauss_newton", "sgd_k_steps",
              "sgd_effective_lr", "sgd_momentum", "adamw", "asam")
DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "mnist_subset", "synthetic")
MODELS = ("mlp", "resnet6", "resnet8", "vgg9", "resnet18", "wrn16_8")
BLOCK = ["experiment", "dataset", "model"]
# Optimizers whose optimizer steps per epoch may differ from the number of minibatches (Entropy-SGD with fresh
# batches, SGD taking K steps per batch): not used to count minibatches per epoch.
NOT_ONE_BATCH_PER_STEP = ("entropy_sgd", "sgd_k_steps")
METRICS = ("test_acc", "val_acc", "train_acc", "train_loss", "test_loss")
COSTS = ("grad_evals", "grad_evals_per_step", "train_seconds", "seconds_per_epoch")


@dataclass
class Aggregate:
    records: Records
    groups: pd.DataFrame  # one row per group of seeds
    equal: pd.DataFrame  # equal-compute table, one row per group
    curves: pd.DataFrame  # mean ± std over completed seeds per (group, epoch)
    heatmaps: dict[tuple[str, str, str], pd.DataFrame]  # (experiment, dataset, model) -> rbo groups on a ρ×η grid
    paper: dict = field(default_factory=dict)  # load_paper(): the paper's Table 1


def suite_experiments(conf_dir: str | Path = EXPERIMENT_CONF) -> list[str]:
    """The ``experiment_name`` of every experiment file under ``conf_dir`` (what the suite's Make targets run)."""
    names = set()
    for path in sorted(Path(conf_dir).rglob("*.yaml")):
        name = (yaml.safe_load(path.read_text()) or {}).get("experiment_name")
        if name:
            names.add(str(name))
    return sorted(names)


def _rank(values, order) -> list[int]:
    return [order.index(v) if v in order else len(order) for v in values]


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    keys = {"dataset": DATASETS, "model": MODELS, "optimizer": OPTIMIZERS}
    return frame.sort_values(
        ["experiment", "dataset", "model", "optimizer", "radius", "lr", "setting"],
        key=lambda col: pd.Series(_rank(list(col), keys[col.name]), index=col.index) if col.name in keys else col,
        kind="stable", ignore_index=True,
    )


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Per group: the config values that differ between the groups of the same experiment, dataset, model and
    optimizer (e.g. ``lr=1, radius=2`` in a heat map), '' when there is only one."""
    labels = {}
    for _, block in runs.drop_duplicates("group").groupby(BLOCK + ["optimizer"]):
        params = {row.group: row.params for row in block.itertuples()}
        keys = sorted({k for p in params.values() for k in p})
        varying = [k for k in keys if len({_fmt(p.get(k)) for p in params.values()}) > 1]
        for gid, p in params.items():
            labels[gid] = ", ".join(f"{k.removeprefix('optimizer.')}={_fmt(p.get(k))}" for k in varying)
    return labels


def load_paper(path: str | Path = PAPER_TABLE) -> dict[tuple[str, str, str, float], float]:
    """(dataset, model, optimizer, float epochs) -> the paper's accuracy in percent."""
    table = pd.read_csv(path)
    return {(r.dataset, r.model, r.optimizer, float(r.epochs)): float(r.test_acc_percent) for r in table.itertuples()}


def _status(counts: pd.Series) -> str:
    present = [s for s in STATUSES if counts.get(s, 0)]
    return present[0] if len(present) == 1 else ", ".join(f"{counts[s]} {s}" for s in present)


def _seeds(runs: pd.DataFrame) -> str:
    return ",".join(str(int(s)) for s in sorted(runs["seed"].dropna().unique()))


def group_table(runs: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """One row per group of seeds; statistics over its completed runs, with the seeds that diverged or failed."""
    labels = setting_labels(runs)
    rows = []
    for gid, g in runs.groupby("group", sort=False):
        first, done = g.iloc[0], g[g["status"] == "completed"]
        counts = g["status"].value_counts()
        epochs, params = first["epochs"], first["params"]
        row = {
            **{k: first[k] for k in BLOCK + ["optimizer"]}, "setting": labels[gid], "group": gid,
            "epochs": epochs, "n": len(done), "n_runs": len(g),
            **{f"n_{s}": int(counts.get(s, 0)) for s in ("diverged", "failed", "running")},
            "status": _status(counts),
            "seeds": _seeds(g), "diverged_seeds": _seeds(g[g["status"] == "diverged"]),
            "failed_seeds": _seeds(g[g["status"] == "failed"]),
            "lr": number(first.get("hyper_lr")), "radius": number(first.get("hyper_radius")),
            "projection": params.get("optimizer.projection"), "proj_steps": number(params.get("optimizer.proj_steps")),
            "proj_lr": number(params.get("optimizer.proj_lr")), "reference": params.get("optimizer.reference"),
            "loss_scale": number(params.get("loss_scale", 1.0)), "val_size": number(params.get("dataset.val_size")),
            "max_sgd_epochs": number(params.get("max_sgd_epochs")),
            "max_grad_evals": number(params.get("max_grad_evals")),
            "hyper": first["hyper"], "hardware": "; ".join(sorted(set(g["hardware"]))),
            "tier": TIER_OF_DATASET.get(first["dataset"]),
        }
        for key in METRICS:
            values = done[f"final_{key}"] * (100.0 if key.endswith("acc") else 1.0)
            row[f"{key}_mean"], row[f"{key}_std"] = values.mean(), values.std(ddof=1)
        row |= {key: done[f"cost_{key}"].mean() for key in COSTS}
        paper_key = (first["dataset"], first["model"], first["optimizer"], epochs)
        row["paper_test_acc"] = paper.get(paper_key, math.nan)
        row["diff_test_acc"] = row["test_acc_mean"] - row["paper_test_acc"]
        rows.append(row)
    return _sort(pd.DataFrame(rows)) if rows else pd.DataFrame()


def mean_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over completed seeds of each group's init and per-epoch evaluation rows."""
    m = metrics[(metrics["status"] == "completed") & metrics["trigger"].isin(["init", "epoch"])]
    m = m.assign(test_acc=m["test_acc"] * 100.0)
    stats = {f"{c}_{f}": (c, f) for c in ("train_loss", "test_acc") for f in ("mean", "std")}
    stats |= {"grad_evals": ("grad_evals", "mean"), "train_seconds": ("train_seconds", "mean"),
              "n": ("run_id", "nunique")}
    return m.groupby(["group", "epoch"], as_index=False).agg(**stats).sort_values(["group", "epoch"])


def batches_per_epoch(metrics: pd.DataFrame) -> float:
    """Minibatches per epoch = optimizer steps per epoch of the runs that take one minibatch per step."""
    if not len(metrics) or "step" not in metrics:
        return math.nan
    rows = metrics[(metrics["trigger"] == "epoch") & (metrics["epoch"] >= 1)
                   & ~metrics["optimizer"].isin(NOT_ONE_BATCH_PER_STEP)]
    return float((rows["step"] / rows["epoch"]).median()) if len(rows) else math.nan


def at_budget(run: pd.DataFrame, budget: float) -> tuple[float, float, float, float]:
    """(test accuracy %, validation accuracy %, grad evals spent, epoch) of one run at a budget of gradient
    evaluations: its last evaluation row (any trigger) at or below the budget, never one beyond it."""
    if math.isnan(budget) or not len(run):
        return math.nan, math.nan, math.nan, math.nan
    within = run[run["grad_evals"] <= budget * (1 + 1e-9)].sort_values(["grad_evals", "epoch"], kind="stable")
    if not len(within):
        return math.nan, math.nan, math.nan, math.nan
    row = within.iloc[-1]
    return (float(row["test_acc"]) * 100.0, number(row.get("val_acc")) * 100.0, float(row["grad_evals"]),
            float(row["epoch"]))


def sgd_budget(block: pd.DataFrame, per_epoch: float) -> float:
    """What SGD spends on the block's training: its longest run (epochs, capped by ``max_sgd_epochs``) × minibatches
    per epoch, capped by ``max_grad_evals``."""
    epochs = np.fmin(block["epochs"], block["max_sgd_epochs"]).max() if "max_sgd_epochs" in block else \
        block["epochs"].max()
    cap = block["max_grad_evals"].min() if "max_grad_evals" in block else math.nan
    return float(np.fmin(epochs * per_epoch, cap))


def equal_compute_table(groups: pd.DataFrame, runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Accuracy at equal epochs and at (a) SGD's budget (:func:`sgd_budget`) and (b) RBO's full budget = the
    largest mean gradient-evaluation count of a completed ``rbo`` group, per (experiment, dataset, model), each
    at the last evaluation at or below the budget (:func:`at_budget`). Statistics over completed runs."""
    rows, empty = [], metrics.iloc[0:0]
    per_run = dict(tuple(metrics.groupby("run_id"))) if len(metrics) else {}
    for key, block in groups.groupby(BLOCK, sort=False):
        in_block = (metrics[BLOCK] == pd.Series(key, index=BLOCK)).all(axis=1)
        bpe = batches_per_epoch(metrics[in_block])
        budgets = {"sgd": sgd_budget(block, bpe),
                   "rbo": block.loc[(block["optimizer"] == "rbo") & (block["n"] > 0), "grad_evals"].max()}
        for g in block.itertuples():
            done = runs.loc[(runs["group"] == g.group) & (runs["status"] == "completed"), ["run_id", "cost_grad_evals"]]
            row = {k: getattr(g, k) for k in BLOCK + ["optimizer", "setting", "group", "n", "epochs",
                                                           "test_acc_mean", "test_acc_std", "grad_evals"]}
            for name, budget in budgets.items():
                hits = pd.DataFrame([at_budget(per_run.get(r, empty), budget) for r in done["run_id"]],
                                    columns=["acc", "val", "evals", "epoch"], dtype=float)
                row |= {f"{name}_budget": budget, f"acc_{name}_budget_mean": hits["acc"].mean(),
                        f"acc_{name}_budget_std": hits["acc"].std(), f"acc_{name}_budget_n": int(hits["acc"].count()),
                        f"val_{name}_budget_mean": hits["val"].mean(), f"epoch_{name}_budget": hits["epoch"].mean(),
                        f"evals_{name}_budget": hits["evals"].mean(),
                        f"reached_{name}_budget": int((done["cost_grad_evals"] >= budget * (1 - 1e-9)).sum())}
            rows.append(row)
    return pd.DataFrame(rows)


def heatmaps(groups: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """The ``rbo`` groups of each (experiment, dataset, model) that form a ρ × η grid (≥ 2 radii, ≥ 2 learning
    rates, one group per cell)."""
    if not len(groups):
        return {}
    rbo = groups[(groups["optimizer"] == "rbo") & groups["radius"].notna() & groups["lr"].notna()]
    return {key: g for key, g in rbo.groupby(BLOCK)
            if g["radius"].nunique() > 1 and g["lr"].nunique() > 1 and not g.duplicated(["radius", "lr"]).any()}


def build(runs_dir: str | Path, paper_path: str | Path = PAPER_TABLE, experiments=None) -> Aggregate:
    """Everything ``results/`` is made of, from the records of ``experiments`` (default: :func:`suite_experiments`)."""
    records = load_records(runs_dir).select(suite_experiments() if experiments is None else experiments)
    paper = load_paper(paper_path)
    groups = group_table(records.runs, paper) if len(records.runs) else pd.DataFrame()
    empty = not len(groups)
    equal = pd.DataFrame() if empty else equal_compute_table(groups, records.runs, records.metrics)
    curves = pd.DataFrame() if empty or not len(records.metrics) else mean_curves(records.metrics)
    return Aggregate(records, groups, equal, curves, heatmaps(groups), paper)


# ---------------------------------------------------------------- formatting and writing


def _display_table(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": rows["dataset"], "model": rows["model"], "optimizer": rows["optimizer"], "setting": rows["setting"],
        "epochs": rows["epochs"].map(lambda v: num(v, "g")), "n": rows["n"].astype(str), "status": rows["status"],
        "test acc %": [pm(m, s) for m, s in zip(rows["test_acc_mean"], rows["test_acc_std"])],
        "paper %": rows["paper_test_acc"].map(lambda v: num(v, ".2f")),
        "diff pp": rows["diff_test_acc"].map(lambda v: num(v, "+.2f")),
        "train loss": [pm(m, s, 4) for m, s in zip(rows["train_loss_mean"], rows["train_loss_std"])],
        "grad evals": rows["grad_evals"].map(num),
        "evals/step": rows["grad_evals_per_step"].map(lambda v: num(v, ".4g")),
        "train s": rows["train_seconds"].map(lambda v: num(v, ",.1f")),
        "s/epoch": rows["seconds_per_epoch"].map(lambda v: num(v, ",.2f")),
    })


def _display_equal(rows: pd.DataFrame) -> pd.DataFrame:
    def acc(name):
        return [pm(m, s) for m, s in zip(rows[f"acc_{name}_budget_mean"], rows[f"acc_{name}_budget_std"])]

    return pd.DataFrame({
        "dataset": rows["dataset"], "model": rows["model"], "optimizer": rows["optimizer"], "setting": rows["setting"],
        "n": rows["n"].astype(str),
        "acc % @ equal epochs": [pm(m, s) for m, s in zip(rows["test_acc_mean"], rows["test_acc_std"])],
        "grad evals": rows["grad_evals"].map(num),
        "SGD budget": rows["sgd_budget"].map(num), "acc % @ SGD budget": acc("sgd"),
        "evals @ SGD budget": rows["evals_sgd_budget"].map(num),
        "at epoch": rows["epoch_sgd_budget"].map(lambda v: num(v, ".3g")),
        "RBO budget": rows["rbo_budget"].map(num), "acc % @ RBO budget": acc("rbo"),
        "evals @ RBO budget": rows["evals_rbo_budget"].map(num),
        "reached RBO budget": [f"{r}/{n}" for r, n in zip(rows["reached_rbo_budget"], rows["n"])],
    })


def paper_view(rows: pd.DataFrame) -> pd.DataFrame | None:
    """Table 1's shape: (dataset, model) rows × optimizer columns, 'ours (paper X)'; None when the experiment
    has no group comparable with the paper (or several per cell)."""
    matched = rows[rows["paper_test_acc"].notna()]
    if not len(matched) or matched.duplicated(["dataset", "model", "optimizer"]).any():
        return None
    ours = [pm(r.test_acc_mean, r.test_acc_std) if r.n else r.status for r in matched.itertuples()]
    cells = matched.assign(cell=[f"{o} (paper {p:.2f})" for o, p in zip(ours, matched["paper_test_acc"])])
    table = cells.pivot(index=["dataset", "model"], columns="optimizer", values="cell").fillna("")
    table = table[[o for o in OPTIMIZERS if o in table.columns]]
    return table.reset_index().rename(columns=lambda c: c if c in ("dataset", "model") else f"{c} %")


def heatmap_cells(grid: pd.DataFrame, value: str = "test_acc_mean", digits: int = 2) -> pd.DataFrame:
    """ρ (rows) × η (columns) of formatted cells: the value, 'div' when every run diverged, '(k div)' if some did."""
    def cell(r):
        if r.n == 0:
            return "div" if r.n_diverged else r.status
        text = f"{getattr(r, value):.{digits}f}"
        return f"{text} ({r.n_diverged} div)" if r.n_diverged else text

    table = grid.assign(cell=[cell(r) for r in grid.itertuples()]).pivot(index="radius", columns="lr", values="cell")
    table = table.sort_index().sort_index(axis=1).fillna("")
    table.index = [f"ρ={v:g}" for v in table.index]
    table.columns = [f"η={v:g}" for v in table.columns]
    return table


def to_markdown(frame: pd.DataFrame, index: bool = False) -> str:
    return frame.to_markdown(index=index, disable_numparse=True) + "\n"


TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{",
       "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "ρ": r"$\rho$",
       "η": r"$\eta$", "—": "--"}


def _tex(text) -> str:
    return re.sub("|".join(map(re.escape, TEX)), lambda m: TEX[m.group()], str(text))


def to_latex(frame: pd.DataFrame, index: bool = False) -> str:
    """A booktabs ``tabular`` (no jinja2 needed)."""
    if index:
        frame = frame.reset_index(names="")
    lines = [f"\\begin{{tabular}}{{{'l' * len(frame.columns)}}}", r"\toprule",
             " & ".join(_tex(c) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


def write_table(stem: Path, numbers: pd.DataFrame, shown: pd.DataFrame, title: str, note: str,
                index: bool = False) -> list[Path]:
    """``stem``.csv (numbers), .md and .tex (formatted), each written atomically."""
    return [
        atomic_write(stem.with_suffix(".csv"), lambda tmp: numbers.to_csv(tmp, index=False)),
        atomic_write_text(stem.with_suffix(".md"), f"# {title}\n\n{note}\n\n{to_markdown(shown, index)}"),
        atomic_write_text(stem.with_suffix(".tex"), f"% {title}. {note}\n{to_latex(shown, index)}"),
    ]


TABLE_NOTE = ("Generated by `python -m scripts.aggregate` from the run records; do not edit. Mean ± sample std "
              "(ddof = 1) over the n completed seeds; diverged, failed and running runs are counted in `status`, "
              "not averaged. `paper %` = arXiv 2505.19527v3 Table 1 (`results/paper/table1.csv`), shown for "
              "groups trained for the paper's 10 epochs; `diff pp` = ours − paper in percentage points. Costs are "
              "means over completed runs: training gradient evaluations, training seconds (excluding evaluation).")
EQUAL_NOTE = ("Test accuracy at equal epochs and at equal gradient evaluations. SGD budget = epochs (capped by "
              "`max_sgd_epochs`) × minibatches per epoch, what SGD spends on the whole run; RBO budget = the full "
              "budget of the `rbo` runs. The accuracy at a budget is the run's last evaluation at or below it, "
              "never one beyond it: `evals @ … budget` = the gradient evaluations spent at that evaluation (mean over "
              "seeds), `at epoch` = when it was taken; a run that ended below a budget reports its final accuracy "
              "there (`reached` counts the runs that did reach RBO's budget).")


def experiment_title(experiment: str, rows: pd.DataFrame) -> str:
    """The experiment's name and the evidence tier(s) of its datasets (synthetic: not evidence)."""
    tiers = [t for t in TIERS if t in set(rows["tier"])]
    if rows["tier"].isna().any():
        tiers.append("synthetic data, not evidence")
    return f"{experiment} ({'; '.join(tiers)})"


def split_note(rows: pd.DataFrame) -> str:
    """Which training split the groups trained on (issue 10: the paper trained on the whole split)."""
    held = sorted({int(v) for v in rows["val_size"].dropna() if v > 0})
    whole = bool((rows["val_size"] == 0).any())
    if not held:
        return "Trained on the whole training split (no validation split), as the paper did." if whole else \
            "Training split: not recorded."
    text = (f"A validation split of {' or '.join(f'{v:,}' for v in held)} examples was held out of the training "
            "split (the paper trained on the whole split, so `diff pp` compares a model trained on fewer images)")
    return text + ("; some groups trained on the whole split." if whole else ".")


def write_results(agg: Aggregate, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    written = []
    experiments = agg.groups.groupby("experiment", sort=False) if len(agg.groups) else []
    for experiment, rows in experiments:
        folder = out / experiment
        name, split = experiment_title(experiment, rows), split_note(rows)
        written += write_table(folder / "table", rows, _display_table(rows), f"{name}: final metrics",
                               f"{TABLE_NOTE} {split}")
        if rows["optimizer"].nunique() > 1:  # one optimizer (an RBO-only grid): nothing to compare at equal compute
            eq = agg.equal[agg.equal["experiment"] == experiment]
            written += write_table(folder / "equal_compute", eq, _display_equal(eq), f"{name}: at equal compute",
                                   f"{EQUAL_NOTE} {split}")
        view = paper_view(rows)
        if view is not None:
            written += write_table(folder / "table1_view", view, view, f"{name}: test accuracy % in Table 1's shape",
                                   "Ours: mean ± std over completed seeds; paper: arXiv 2505.19527v3 Table 1.")
        for (exp, dataset, model), grid in agg.heatmaps.items():
            if exp == experiment:
                cols = ["radius", "lr", "n", "n_diverged", "status", "test_acc_mean", "test_acc_std",
                        "train_loss_mean", "train_loss_std"]
                written += write_table(folder / f"heatmap_{dataset}_{model}", grid[cols], heatmap_cells(grid),
                                       f"{name}: RBO final test accuracy %, {dataset}/{model}, ρ × η",
                                       f"Mean over completed seeds; 'div' = every run diverged. {split}", index=True)
    runs = agg.records.runs.drop(columns=["params"], errors="ignore")
    written.append(atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False)))
    written.append(write_claims(out / "claims.md", agg))
    from scripts.plot import write_index  # late: scripts.plot imports this module (and matplotlib)

    written.append(write_index(out, agg.records.describe()))
    return written


def cli(description: str) -> argparse.ArgumentParser:
    """The options ``scripts.aggregate`` and ``scripts.plot`` share."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs", help="folder of run records (default: runs)")
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument("--paper", default=str(PAPER_TABLE), help="the paper's Table 1 as CSV")
    parser.add_argument("--experiments", nargs="+", metavar="NAME",
                        help="experiment names to read (default: the experiment_name of every file under "
                             "conf/experiment/); records of any other experiment are left out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = cli(__doc__.split("\n\n")[0]).parse_args(argv)
    agg = build(args.runs, args.paper, args.experiments)
    written = write_results(agg, args.out)
    print(agg.records.describe())
    print(f"{len(agg.groups)} groups of seeds; wrote {len(written)} files under {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
