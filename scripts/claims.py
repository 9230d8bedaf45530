"""``results/claims.md``: each claim of the paper (SPEC §3, issue 7) against the runs at hand.

Called by ``python -m scripts.aggregate`` with its tables. Every claim has a stated rule, applied per experiment
(an "evidence item"); the claim's verdict comes from its primary item: full-scale evidence before CPU-scale
(datasets ``mnist_subset``, ``synthetic``), then the item with the most rows or pairs, then ``paper/*``
experiments. A claim with no runs behind it is "not tested here"; CPU-scale verdicts say "CPU-scale evidence".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scripts.records import atomic_write_text, num, pm

SUPPORTED, NOT_SUPPORTED, NOT_TESTED = "supported", "not supported", "not tested here"
BASELINES = ("sgd", "entropy_sgd", "sam")
GD_CONTROLS = ("sgd_effective_lr", "sgd_k_steps")


@dataclass
class Item:
    """The evidence of one experiment for one claim."""

    experiment: str
    ok: bool
    size: int  # rows or pairs compared
    summary: str
    lines: list[str]
    groups: list[str]  # group ids whose runs are behind it
    cpu_scale: bool = False

    def rank(self):
        return (self.cpu_scale, -self.size, not self.experiment.startswith("paper/"), self.experiment)


@dataclass
class Claim:
    title: str
    rule: str
    command: str  # what produces the runs when there are none
    evaluate: Callable[[pd.DataFrame, pd.DataFrame, dict], list[Item]]
    items: list[Item] = field(default_factory=list)

    @property
    def primary(self) -> Item | None:
        return min(self.items, key=Item.rank) if self.items else None

    @property
    def verdict(self) -> str:
        best = self.primary
        if best is None:
            return NOT_TESTED
        return (SUPPORTED if best.ok else NOT_SUPPORTED) + (" (CPU-scale evidence)" if best.cpu_scale else "")


def reproduce_command(experiment: str) -> str:
    prefix = experiment.split("/")[0]
    return {"paper": "make reproduce", "review": "make review", "quick": "make quick"}.get(prefix, "make reproduce")


def _blocks(groups: pd.DataFrame):
    """(experiment, dataset, model) blocks of completed groups."""
    done = groups[groups["n"] > 0] if len(groups) else groups
    return done.groupby(["experiment", "dataset", "model"], sort=False) if len(done) else []


def _best(block: pd.DataFrame, optimizer: str):
    """The optimizer's group with the highest mean test accuracy in the block (its best setting), or None."""
    rows = block[block["optimizer"] == optimizer]
    return rows.loc[rows["test_acc_mean"].idxmax()] if len(rows) and rows["test_acc_mean"].notna().any() else None


def _acc(row) -> str:
    return f"{pm(row['test_acc_mean'], row['test_acc_std'])} % (n={row['n']})"


def _se(a, b) -> float:
    """Standard error of the difference of two group means (a missing std, n = 1, counts as 0)."""
    var = [0.0 if math.isnan(r["test_acc_std"]) else r["test_acc_std"] ** 2 / r["n"] for r in (a, b)]
    return math.sqrt(sum(var))


def _items(per_experiment: dict[str, list[tuple]], decide, describe) -> list[Item]:
    """{experiment: [(value, group ids, cpu_scale, evidence line), ...]} -> one item per experiment, whose
    verdict is ``decide(values)`` and summary ``describe(values)``."""
    items = []
    for experiment, rows in per_experiment.items():
        ok = decide([r[0] for r in rows])
        items.append(Item(experiment, ok, len(rows), describe([r[0] for r in rows]), [r[3] for r in rows],
                          [g for r in rows for g in r[1]], any(r[2] for r in rows)))
    return items


def beats_baselines(groups, curves, heatmaps) -> list[Item]:
    found = {}
    for (experiment, dataset, model), block in _blocks(groups):
        best = {o: _best(block, o) for o in ("rbo", *BASELINES)}
        if any(b is None for b in best.values()):
            continue
        rival = max(BASELINES, key=lambda o: best[o]["test_acc_mean"])
        win = best["rbo"]["test_acc_mean"] > best[rival]["test_acc_mean"]
        line = (f"{dataset}/{model}: RBO {_acc(best['rbo'])} vs best other {rival} {_acc(best[rival])}: "
                f"RBO {'best' if win else 'not best'}")
        found.setdefault(experiment, []).append((win, [b["group"] for b in best.values()],
                                                 bool(best["rbo"]["cpu_scale"]), line))
    return _items(found, lambda wins: sum(wins) / len(wins) >= 5 / 7,
                  lambda wins: f"RBO best on {sum(wins)} of {len(wins)} rows")


def _first_epoch_at_or_below(curve: pd.DataFrame, target: float) -> float:
    below = curve[(curve["epoch"] >= 1) & (curve["train_loss_mean"] <= target)]
    return float(below["epoch"].iloc[0]) if len(below) else math.inf


def _loss_curve(curves: pd.DataFrame, group) -> pd.DataFrame:
    if group is None or not len(curves):
        return curves.iloc[0:0]
    return curves[(curves["group"] == group["group"]) & curves["train_loss_mean"].notna()]


def faster_per_epoch(groups, curves, heatmaps) -> list[Item]:
    found = {}
    for (experiment, dataset, model), block in _blocks(groups):
        rbo = _best(block, "rbo")
        rbo_curve = _loss_curve(curves, rbo)
        for other in BASELINES:
            base = _best(block, other)
            base_curve = _loss_curve(curves, base)
            if not len(base_curve) or not len(rbo_curve):
                continue
            target, epochs = base_curve["train_loss_mean"].iloc[-1], base_curve["epoch"].iloc[-1]
            reached = _first_epoch_at_or_below(rbo_curve, target)
            when = f"after {reached:g} epochs" if math.isfinite(reached) else \
                f"never within its {rbo_curve['epoch'].iloc[-1]:g} epochs"
            line = (f"{dataset}/{model} vs {other}: {other}'s final train loss {target:.4f} after {epochs:g} "
                    f"epochs; RBO reaches it {when} (ratio {reached / epochs:.2f})")
            found.setdefault(experiment, []).append((reached / epochs, [rbo["group"], base["group"]],
                                                     bool(rbo["cpu_scale"]), line))
    median = lambda ratios: float(pd.Series(ratios).median())  # noqa: E731
    return _items(found, lambda ratios: median(ratios) <= 0.6,
                  lambda ratios: f"median epochs ratio {median(ratios):.2f} over {len(ratios)} comparisons")


def radius_heatmap(groups, curves, heatmaps) -> list[Item]:
    items = []
    for (experiment, dataset, model), grid in heatmaps.items():
        ok_cells = grid[grid["n"] > 0]
        replicated = ok_cells["test_acc_std"].notna().any()
        noise = max(1.0, 2 * ok_cells["test_acc_std"].mean()) if replicated else 1.0
        lines, matters = [], []
        for lr, column in ok_cells.groupby("lr"):
            if len(column) < 2:
                continue
            spread = column["test_acc_mean"].max() - column["test_acc_mean"].min()
            matters.append(spread > noise)
            lines.append(f"η={lr:g}: accuracy over ρ ∈ {{{', '.join(f'{r:g}' for r in column['radius'])}}} spans "
                         f"{spread:.2f} pp ({'>' if spread > noise else '≤'} {noise:.2f} pp)")
        if not matters:
            continue
        best = ok_cells.loc[ok_cells["test_acc_mean"].idxmax()]
        lines.append(f"best cell ρ={best['radius']:g}, η={best['lr']:g}: {_acc(best)}; "
                     f"{int((grid['n'] == 0).sum())} of {len(grid)} cells without a completed run")
        if not replicated:
            lines.append("one seed per cell: no noise estimate, the threshold is the 1 pp floor")
        items.append(Item(experiment, sum(matters) > len(matters) / 2, len(matters),
                          f"{dataset}/{model}: ρ changes accuracy beyond {noise:.2f} pp at {sum(matters)} of "
                          f"{len(matters)} η", lines, list(grid["group"]), bool(grid["cpu_scale"].any())))
    return items


def _hyper_without(row, *keys) -> dict:
    return {k: v for k, v in json.loads(row["hyper"]).items() if k not in keys}


def radius_control(groups, curves, heatmaps) -> list[Item]:
    found = {}
    for (experiment, dataset, model), block in _blocks(groups):
        for _, zero in block[block["optimizer"] == "rbo_radius0"].iterrows():
            twins = [r for _, r in block[block["optimizer"] == "rbo"].iterrows()
                     if _hyper_without(r, "radius", "name") == _hyper_without(zero, "radius", "name")]
            for rbo in twins:
                diff, bar = rbo["test_acc_mean"] - zero["test_acc_mean"], max(0.5, 2 * _se(rbo, zero))
                line = (f"{dataset}/{model} {zero['setting'] or 'η=' + num(rbo['lr'], 'g')}: RBO ρ={rbo['radius']:g} "
                        f"{_acc(rbo)} vs ρ=0 {_acc(zero)}: diff {diff:+.2f} pp (threshold {bar:.2f})")
                found.setdefault(experiment, []).append((diff > bar, [rbo["group"], zero["group"]],
                                                         bool(rbo["cpu_scale"]), line))
    return _items(found, lambda helps: sum(helps) > len(helps) / 2,
                  lambda helps: f"ρ > 0 beats ρ = 0 beyond noise on {sum(helps)} of {len(helps)} pairs")


def stable_large_lr(groups, curves, heatmaps) -> list[Item]:
    items = []
    rbo_all = groups[groups["optimizer"] == "rbo"] if len(groups) else groups
    for experiment, rbo in rbo_all.groupby("experiment", sort=False) if len(rbo_all) else []:
        large = rbo[(rbo["lr"] >= 10) & rbo["radius"].between(1, 5)]
        if not len(large):
            continue
        best = rbo["test_acc_mean"].max()
        bad = int(large["n_diverged"].sum() + large["n_failed"].sum())
        far = large[(large["n"] > 0) & (large["test_acc_mean"] < best - 10)]
        lines = [f"{r['dataset']}/{r['model']} ρ={r['radius']:g} η={r['lr']:g}: {r['status']}, {_acc(r)}"
                 for _, r in large.iterrows()]
        lines.append(f"best RBO group of the experiment: {num(best, '.2f')} %")
        items.append(Item(experiment, bad == 0 and not len(far), len(large),
                          f"{len(large)} groups with η ≥ 10, 1 ≤ ρ ≤ 5: {bad} of {int(large['n_runs'].sum())} runs "
                          f"diverged or failed, {len(far)} completed groups > 10 pp below the best",
                          lines, list(large["group"]), bool(large["cpu_scale"].any())))
    return items


def zero_radius_is_gd(groups, curves, heatmaps) -> list[Item]:
    found = {}
    for (experiment, dataset, model), block in _blocks(groups):
        zero = block[(block["optimizer"] == "rbo_radius0")
                     | (block["optimizer"].isin(["rbo", "rbo_gauss_newton"]) & (block["radius"] == 0))]
        controls = block[block["optimizer"].isin(GD_CONTROLS)]
        for (_, z), (_, c) in ((z, c) for z in zero.iterrows() for c in controls.iterrows()):
            diff, bar = z["test_acc_mean"] - c["test_acc_mean"], max(1.0, 2 * _se(z, c))
            line = (f"{dataset}/{model}: {z['optimizer']} {z['setting']} {_acc(z)} vs {c['optimizer']} "
                    f"{c['setting']} {_acc(c)}: diff {diff:+.2f} pp (agreement within {bar:.2f})")
            found.setdefault(experiment, []).append((abs(diff) <= bar, [z["group"], c["group"]],
                                                     bool(z["cpu_scale"]), line))
    return _items(found, lambda agree: sum(agree) > len(agree) / 2,
                  lambda agree: f"ρ = 0 RBO agrees with a GD control on {sum(agree)} of {len(agree)} pairs")


def make_claims() -> list[Claim]:
    return [
        Claim("RBO beats SGD, Entropy-SGD and SAM in accuracy on 5 of the 7 rows of Table 1",
              "Per (dataset, model) row where all four optimizers have completed runs, each at its best setting "
              "of the experiment: RBO's mean test accuracy is above the best of SGD, Entropy-SGD and SAM. "
              "Supported when that holds on at least 5/7 of the rows compared; otherwise not supported.",
              "`make reproduce` (paper/table1); CPU scale: `make quick`", beats_baselines),
        Claim("Faster convergence per epoch: RBO reaches the others' final training loss in about half the epochs",
              "Per row and baseline (SGD, Entropy-SGD, SAM): the first epoch at which RBO's mean training loss "
              "(the epoch's running mean, averaged over seeds) is at or below the baseline's final mean training "
              "loss, divided by the baseline's epochs (∞ if never). Supported when the median ratio is ≤ 0.6; "
              "otherwise not supported.",
              "`make reproduce` (paper/table1); CPU scale: `make quick`", faster_per_epoch),
        Claim("The radius matters: the ρ–η heat map",
              "On RBO's ρ × η grid, per η with at least two radii that completed: the spread (max − min) of mean "
              "test accuracy across ρ. Supported when the spread exceeds max(1 pp, 2 × the grid's mean seed "
              "std) at a majority of those η; otherwise not supported. Cells where every run diverged are left "
              "out (they are stability, claim 4).",
              "`make reproduce` (paper/heatmap)", radius_heatmap),
        Claim("The radius matters: RBO against the same RBO with ρ = 0 (control `rbo_radius0`)",
              "Pairs of `rbo` and `rbo_radius0` groups of the same row with identical hyperparameters except ρ: "
              "supported when RBO's mean test accuracy exceeds ρ = 0's by more than max(0.5 pp, 2 standard "
              "errors of the difference) on a majority of pairs; otherwise not supported.",
              "`make review` (review/controls); CPU scale: `make quick`", radius_control),
        Claim("Stability at large η: RBO trains at learning rates far above SGD's",
              "RBO groups with η ≥ 10 inside the paper's 'macroscopic' radii 1 ≤ ρ ≤ 5: supported when none of "
              "their runs diverged or failed and each such group's mean test accuracy is within 10 pp of the "
              "experiment's best RBO group; otherwise not supported.",
              "`make reproduce` (paper/heatmap)", stable_large_lr),
        Claim("The ρ → 0 limit of RBO is gradient descent",
              "Pairs of an RBO at ρ = 0 (`rbo_radius0`, or `rbo`/`rbo_gauss_newton` at radius 0) and a GD control "
              "of the same row (`sgd_effective_lr`: SGD at RBO's measured effective step; `sgd_k_steps`): "
              "supported when their mean test accuracies differ by at most max(1 pp, 2 standard errors) on a "
              "majority of pairs; otherwise not supported. The exact identity (a converged projection at ρ → 0 "
              "is a GD step, SPEC §1) is a unit test of `rbo/`; this row is the empirical check.",
              "`make review` (review/controls); CPU scale: `make quick`", zero_radius_is_gd),
    ]


def evaluate_claims(groups: pd.DataFrame, curves: pd.DataFrame, heatmaps: dict) -> list[Claim]:
    claims = make_claims()
    for claim in claims:
        claim.items = claim.evaluate(groups, curves, heatmaps) if len(groups) else []
    return claims


def _runs_line(groups: pd.DataFrame, ids: list[str]) -> str:
    used = groups[groups["group"].isin(ids)] if len(groups) else groups
    if not len(used):
        return "none"
    seeds = sorted({s for text in used["seeds"] for s in text.split(",") if s}, key=int)
    hardware = sorted({h for text in used["hardware"] for h in text.split("; ")})
    return (f"{int(used['n_runs'].sum())} runs ({int(used['n'].sum())} completed, {int(used['n_diverged'].sum())} "
            f"diverged, {int(used['n_failed'].sum())} failed) in {used['group'].nunique()} groups; seeds "
            f"{', '.join(seeds) or '—'}; hardware: {'; '.join(hardware)}")


def _commands(claim: Claim) -> str:
    if not claim.items:
        return claim.command
    by_command = {}
    for item in claim.items:
        by_command.setdefault(reproduce_command(item.experiment), set()).add(item.experiment)
    return "; ".join(f"`{c}` ({', '.join(sorted(e))})" for c, e in by_command.items())


def render(claims: list[Claim], groups: pd.DataFrame) -> str:
    out = [
        "# The paper's claims against our runs", "",
        "Generated by `python -m scripts.aggregate` from the run records; do not edit. Each verdict follows the "
        "rule stated under its claim. A claim with no runs behind it is \"not tested here\". Evidence from the "
        "CPU-scale quick experiments (datasets `mnist_subset`, `synthetic`) is marked \"CPU-scale evidence\": it "
        "runs the same comparison at a much smaller scale than the paper. When several experiments bear on a "
        "claim, the verdict comes from the primary one (full scale first, then the most rows or pairs, then "
        "`paper/*`); the others are listed.", "",
        "| # | claim of the paper | verdict | evidence | runs | reproduce |", "|---|---|---|---|---|---|",
    ]
    for i, claim in enumerate(claims, 1):
        best = claim.primary
        evidence = f"{best.summary} ({best.experiment})" if best else "no runs"
        ids = [g for item in claim.items for g in item.groups]
        used = groups[groups["group"].isin(ids)] if len(groups) else groups
        runs = f"{int(used['n_runs'].sum())}" if len(used) else "0"
        out.append(f"| {i} | {claim.title} | {claim.verdict} | {evidence} | {runs} | {_commands(claim)} |")
    for i, claim in enumerate(claims, 1):
        out += ["", f"## {i}. {claim.title}", "", f"**Verdict:** {claim.verdict}", "", f"**Rule:** {claim.rule}",
                "", "**Evidence:**" + ("" if claim.items else " none: no runs of this comparison were found.")]
        out += [""] * bool(claim.items)
        for item in sorted(claim.items, key=Item.rank):
            tags = ["primary"] * (item is claim.primary) + ["CPU-scale evidence"] * item.cpu_scale
            verdict = SUPPORTED if item.ok else NOT_SUPPORTED
            out.append(f"- `{item.experiment}` ({', '.join(tags + [verdict])}): {item.summary}")
            out += [f"  - {line}" for line in item.lines]
        ids = [g for item in claim.items for g in item.groups]
        out += ["", f"**Runs:** {_runs_line(groups, ids)}", "",
                f"**Reproduce:** {_commands(claim)}, then `python -m scripts.aggregate --runs runs --out results`"]
    return "\n".join(out) + "\n"


def write_claims(path: str | Path, groups: pd.DataFrame, curves: pd.DataFrame, heatmaps: dict) -> Path:
    return atomic_write_text(path, render(evaluate_claims(groups, curves, heatmaps), groups))
