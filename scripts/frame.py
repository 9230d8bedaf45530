"""The second step of the results pipeline (records → **frame** → tables → statistics → claims → figures → index):
the records of one :class:`~scripts.records.Records` as the frames every later step reads.

- ``groups``: one row per group of seeds (dataset, model, optimizer, setting): mean ± sample std (ddof = 1) of the
  final metrics over the completed seeds and n, status counts (diverged and failed runs appear as such), the
  paper's Table 1 value beside ours (SPEC §3, ``results/paper/table1.csv``), the cost columns and the code version
  (``code``: the source hash of its records; ``mixed_code`` when they differ, with their ``commits``);
- ``equal``: each group's test accuracy at equal epochs and at two fixed budgets of gradient evaluations, (a) SGD's
  budget for all the epochs (capped by ``max_sgd_epochs``) and (b) RBO's full budget (SPEC §4): the last evaluation
  at or below the budget, with the evaluations it had actually spent;
- ``curves``: mean ± std over completed seeds per (group, epoch);
- ``heatmaps``: the ``rbo`` groups that form a ρ × η grid (SPEC §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.registry import optimizer_info
from scripts.records import PAPER_SCALE, STATUSES, TIER_OF_DATASET, Records, number

ROOT = Path(__file__).resolve().parents[1]
PAPER_TABLE = ROOT / "results" / "paper" / "table1.csv"

OPTIMIZERS = tuple(optimizer_info())  # row order: the registry's (the paper's optimizers, variants, controls, ...)
DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "mnist_subset", "synthetic")
MODELS = ("mlp", "resnet6", "resnet8", "vgg9", "resnet18", "wrn16_8")
BLOCK = ["experiment", "dataset", "model"]
DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                 "mnist_subset": "MNIST subset", "synthetic": "synthetic"}
MODEL_NAMES = {"mlp": "MLP", "resnet6": "ResNet-6", "resnet8": "ResNet-8", "vgg9": "VGG-9", "resnet18": "ResNet-18",
               "wrn16_8": "WRN-16-8"}
# Optimizers whose optimizer steps per epoch may differ from the number of minibatches (Entropy-SGD with fresh
# batches, SGD taking K steps per batch): not used to count minibatches per epoch.
NOT_ONE_BATCH_PER_STEP = ("entropy_sgd", "sgd_k_steps")
METRICS = ("test_acc", "val_acc", "train_acc", "train_loss", "test_loss")
COSTS = ("grad_evals", "grad_evals_per_step", "train_seconds", "seconds_per_epoch")


@dataclass
class Frame:
    records: Records
    groups: pd.DataFrame  # one row per group of seeds
    equal: pd.DataFrame  # equal-compute table, one row per group
    curves: pd.DataFrame  # mean ± std over completed seeds per (group, epoch)
    heatmaps: dict[tuple[str, str, str], pd.DataFrame]  # (experiment, dataset, model) -> rbo groups on a ρ×η grid
    paper: dict = field(default_factory=dict)  # load_paper(): the paper's Table 1
    ironing: dict | None = None  # the 1-D record (experiments.ironing), read by the ironing and theory claims


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
            "tier": TIER_OF_DATASET.get(first["dataset"]), **code_version(g), "params": params,
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


def code_version(runs: pd.DataFrame) -> dict:
    """The code behind a group's runs (issue 20): ``code`` (the source hash of its records, or each of them),
    ``mixed_code`` when they differ, and ``commits``, the git commits the records name."""
    codes = sorted(set(runs["code"].fillna("unknown"))) if "code" in runs else ["unknown"]
    commits = sorted({str(c)[:7] + ("-dirty" if str(c).endswith("-dirty") else "") for c in runs["git_commit"]
                      if isinstance(c, str)}) if "git_commit" in runs else []
    return {"code": ", ".join(codes), "mixed_code": len(codes) > 1, "commits": ", ".join(commits)}


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


def build_frame(records: Records, paper_path: str | Path = PAPER_TABLE) -> Frame:
    """Every frame of ``records`` (already selected: the experiments asked for, launched configs only)."""
    paper = load_paper(paper_path)
    groups = group_table(records.runs, paper) if len(records.runs) else pd.DataFrame()
    empty = not len(groups)
    equal = pd.DataFrame() if empty else equal_compute_table(groups, records.runs, records.metrics)
    curves = pd.DataFrame() if empty or not len(records.metrics) else mean_curves(records.metrics)
    return Frame(records, groups, equal, curves, heatmaps(groups), paper)


def block_title(experiment: str, dataset: str, model: str) -> str:
    """'quick/table1: MNIST subset / MLP (CPU-scale subset)': readable names and the evidence tier of the dataset
    where it is not the paper's scale."""
    tier = TIER_OF_DATASET.get(dataset, "synthetic data, not evidence")
    title = f"{experiment}: {DATASET_NAMES.get(dataset, dataset)} / {MODEL_NAMES.get(model, model)}"
    return title if tier == PAPER_SCALE else f"{title} ({tier})"
