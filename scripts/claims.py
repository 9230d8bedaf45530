"""``results/claims.md``: the paper's claims (SPEC §3), its ironing figure (issue 11) and the reviewers' four
questions (SPEC §4, issue 15) against the runs at hand, each verdict beside the rule it follows (issue 10).

Called by ``python -m scripts.aggregate`` with its :class:`~scripts.aggregate.Aggregate`. Each claim reads only
the experiments it names, so an ad-hoc run never changes a verdict. An evidence item is one experiment's groups of
one evidence tier (``scripts.records.TIERS``, by dataset; synthetic data are never evidence). A claim's verdict
comes from its primary item: the highest tier whose item reaches a verdict (supported / not supported), else the
highest tier's inconclusive item; the others are listed under it. :data:`COMMON_RULES` (divergence, noise, seeds,
selection on validation) apply to every comparison.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from experiments.data import dataset_shape
from scripts.records import PAPER_SCALE, TIERS, atomic_write_text, number, pm

if TYPE_CHECKING:
    from scripts.aggregate import Aggregate

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED = "supported", "not supported", "inconclusive", "not tested here"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED)
BASELINES = ("sgd", "entropy_sgd", "sam")  # the paper's Table 1 columns beside RBO
TUNED = ("sgd_momentum", "sam_momentum", "adamw")  # the reviewers' tuned baselines (issue 15, question 1)
MIN_SEEDS = 3  # finished seeds (completed, diverged or failed) per group before any comparison
FLOOR_PP = 0.5  # a difference counts only beyond max(FLOOR_PP, 2 standard errors of the difference)
EQUIVALENCE_MARGIN_PP = 1.0  # claim 6: the fixed margin of the two one-sided tests
TRAINED_LOSS = 0.75  # a group trained when its final training loss is at most this fraction of ln(classes)
MIN_RATIO_EPOCHS = 5  # claim 2: a baseline trained for fewer epochs gives only ratios 1/E, 2/E, ...
FASTER_RATIO = 0.6  # claim 2: "about half the epochs"
TABLE1_MIN_ROWS, TABLE1_WINS = 5, 5  # claim 1: rows compared before a verdict, and rows RBO must win
STABLE_LR, MACRO_RADIUS, STABLE_GAP_PP = (10.0, 50.0), (1.0, 5.0), 10.0  # claim 5, the paper's best region
AUTHORS_PROJECTION = {"projection": "gd", "proj_steps": 100.0, "proj_lr": 1e-3}  # the authors' RBO (SPEC §1)
# One-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (two one-sided tests at alpha = 0.05).
T95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753,
       1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697)

TABLE1 = ("paper/table1", "fashion/table1", "fashion_cpu/table1", "quick/table1")  # Table 1 and its controls
CONVERGENCE = (*TABLE1[:3], "fashion_cpu/convergence", *TABLE1[3:])  # claims 2 and 3: Table 1, and 5 CPU epochs
HEATMAP = ("paper/heatmap", "fashion/heatmap", "quick/heatmap")
TUNED_EXPERIMENTS = ("review/tuned", "review_cpu/tuned")
COMPUTE_MATCHED = ("review/compute_matched", "review_cpu/compute_matched")
INNER_SOLVER = ("review/inner_solver", "review_cpu/inner_solver")
LOSS_SCALE = ("review/loss_scale", "review_cpu/loss_scale")
REPRODUCE = {"paper": "make reproduce", "review": "make review", "quick": "make quick", "fashion": "make fashion",
             "fashion_cpu": "make fashion-cpu", "review_cpu": "make review-cpu"}

COMMON_RULES = (
    f"(a) A diverged or failed run is a result, never a missing value: a group with such runs loses a comparison "
    f"against a group without (both with: a tie), and every line lists the seeds that diverged or failed. "
    f"(b) A difference counts only beyond max({FLOOR_PP} pp, 2 standard errors of the difference of the two mean "
    f"test accuracies); anything smaller is a tie and is shown as one. "
    f"(c) Every group compared needs n ≥ {MIN_SEEDS} finished seeds; below that the comparison is not made. "
    f"(d) Where an optimizer has several settings in a block, the one with the fewest diverged or failed runs and "
    f"then the best mean validation accuracy is taken and reported on test accuracy; without a validation split "
    f"no setting is picked (the comparison is not made). "
    f"(e) Evidence tiers, strongest first: {'; '.join(TIERS)}; a claim's verdict names its tier. Synthetic data "
    f"are never evidence. A claim whose minimum evidence is not met is inconclusive, with what is missing.")


class Stat(NamedTuple):
    """One group's accuracy (%) as compared: mean and sample std over its n completed seeds, the seeds that
    diverged or failed, and its finished runs (completed + diverged + failed)."""

    label: str
    mean: float
    std: float
    n: int
    failed: str
    finished: int
    val: float = math.nan

    def text(self) -> str:
        extra = f"; diverged/failed seeds {self.failed}" if self.failed else ""
        return f"{self.label} {pm(self.mean, self.std)} % (n={self.n}{extra})"


def label(group) -> str:
    return group["optimizer"] + (f" [{group['setting']}]" if group["setting"] else "")


def stat(group, prefix: str = "test_acc", equal: pd.Series | None = None) -> Stat:
    """:class:`Stat` of a group row; with ``equal`` (its equal-compute row) the accuracy at SGD's budget."""
    failed = ",".join(s for s in (group["diverged_seeds"], group["failed_seeds"]) if s)
    finished = int(group["n"] + group["n_diverged"] + group["n_failed"])
    if equal is not None:
        return Stat(f"{label(group)} at {equal['evals_sgd_budget']:,.0f} evals", number(equal["acc_sgd_budget_mean"]),
                    number(equal["acc_sgd_budget_std"]), int(equal["acc_sgd_budget_n"]), failed, finished,
                    number(equal["val_sgd_budget_mean"]))
    return Stat(label(group), number(group[f"{prefix}_mean"]), number(group[f"{prefix}_std"]), int(group["n"]),
                failed, finished, number(group["val_acc_mean"]))


class Outcome(NamedTuple):
    sign: int  # +1: a ahead beyond noise, -1: behind, 0: tie
    diff: float  # a − b in pp (NaN when decided by divergence)
    se: float  # standard error of the difference
    text: str


WORD = {1: "ahead", -1: "behind", 0: "tie"}


def compare(a: Stat, b: Stat) -> Outcome:
    """``a`` against ``b`` under common rules (a) and (b); both need n ≥ 2 unless one of them diverged."""
    if a.failed or b.failed:
        if a.failed and b.failed:
            return Outcome(0, math.nan, math.nan, "both have diverged or failed runs: tie")
        loser = a if a.failed else b
        text = f"{loser.label} diverged/failed (seeds {loser.failed})"
        return Outcome(-1 if a.failed else 1, math.nan, math.nan, text)
    if min(a.n, b.n) < 2:
        raise ValueError(f"compare needs n >= 2 completed seeds per group, got {a.label} n={a.n}, {b.label} n={b.n}")
    diff, se = a.mean - b.mean, math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n)
    margin = max(FLOOR_PP, 2 * se)
    sign = 1 if diff > margin else -1 if diff < -margin else 0
    return Outcome(sign, diff, se, f"{diff:+.2f} pp (margin {margin:.2f})")


def too_few_seeds(*stats: Stat) -> list[str]:
    return [f"{s.label} has {s.finished} finished seeds (need {MIN_SEEDS})" for s in stats if s.finished < MIN_SEEDS]


def select(block: pd.DataFrame, which, name: str = "") -> tuple[pd.Series | None, str]:
    """The group of ``which`` (an optimizer name or a boolean mask of ``block``) under common rule (d), and a note:
    how it was selected, or why none was."""
    rows = block[block["optimizer"] == which] if isinstance(which, str) else block[which]
    name = name or str(which)
    if not len(rows):
        return None, f"no {name} runs"
    if len(rows) == 1:
        return rows.iloc[0], ""
    completed = rows[rows["n"] > 0]
    if completed["val_acc_mean"].isna().any():
        return None, f"{name}: {len(rows)} settings and no validation accuracy, no setting picked"
    finished = (rows["n"] + rows["n_diverged"] + rows["n_failed"]).clip(lower=1)
    ranked = rows.assign(_bad=(rows["n_diverged"] + rows["n_failed"]) / finished,
                         _val=-rows["val_acc_mean"].fillna(-math.inf))
    best = ranked.sort_values(["_bad", "_val"], kind="stable").iloc[0]
    return best, (f"{name} [{best['setting']}] selected on validation accuracy ({pm(best['val_acc_mean'], math.nan)} "
                  f"%) among {len(rows)} settings")


def chance_loss(dataset: str) -> float:
    """ln(classes): the cross-entropy of a uniform prediction."""
    return math.log(dataset_shape(dataset)[2])


def trained(group) -> bool:
    return number(group["train_loss_mean"]) <= TRAINED_LOSS * chance_loss(group["dataset"])


def above_chance(group) -> bool:
    """Mean test accuracy at least twice chance (2 × 100/classes %): the heat map's "something trained" (its
    1-epoch-style runs end with a running-mean training loss that lags far behind the model)."""
    return number(group["test_acc_mean"]) >= 2 * 100 / dataset_shape(group["dataset"])[2]


# ---------------------------------------------------------------- evidence items


@dataclass
class Item:
    """The evidence of one experiment, at one tier, for one claim."""

    experiment: str
    tier: str | None
    verdict: str
    summary: str
    lines: list[str]
    groups: list[str]  # group ids behind it
    size: int = 0  # comparisons made
    rule: str = ""  # a rule of its own, printed after the claim's (the ironing row)


Result = tuple[object, str, list[str]]  # (outcome, None when no comparison was made; evidence line; group ids)


def blocks(groups: pd.DataFrame, experiments):
    """(experiment, tier, 'dataset/model', block) of the named experiments, evidence tiers only."""
    if not len(groups):
        return
    named = groups[groups["experiment"].isin(experiments) & groups["tier"].notna()]
    for (experiment, dataset, model), block in named.groupby(["experiment", "dataset", "model"], sort=False):
        yield experiment, block["tier"].iloc[0], f"{dataset}/{model}", block


def scope(groups: pd.DataFrame, ids: list[str]) -> str:
    """Rows, seeds, epochs, hardware and training split of the groups behind an item."""
    used = groups[groups["group"].isin(ids)] if len(groups) and ids else groups.iloc[0:0]
    if not len(used):
        return "no runs"
    rows = list(dict.fromkeys(f"{d}/{m}" for d, m in zip(used["dataset"], used["model"])))
    seeds = sorted({int(s) for text in used["seeds"] for s in text.split(",") if s})
    per_group = used["n"] + used["n_diverged"] + used["n_failed"]
    epochs = sorted({f"{e:g}" for e in used["epochs"]}, key=float)
    hardware = sorted({h for text in used["hardware"] for h in text.split("; ")})
    held = sorted({int(v) for v in used["val_size"].dropna() if v > 0})
    split = f"{'/'.join(f'{v:,}' for v in held)} held out for validation" if held else "whole training split"
    return (f"rows {', '.join(rows)}; seeds {','.join(map(str, seeds)) or '—'} ({int(per_group.min())}–"
            f"{int(per_group.max())} finished per group); {'/'.join(epochs)} epochs; {split}; hardware: "
            f"{'; '.join(hardware)}")


def items(found: dict[tuple[str, str], list[Result]], decide: Callable[[list], tuple[str, str]],
          groups: pd.DataFrame) -> list[Item]:
    """One item per (experiment, tier): ``decide(outcomes)`` -> (verdict, summary), summary + its scope."""
    out = []
    for (experiment, tier), results in found.items():
        verdict, summary = decide([r[0] for r in results])
        ids = list(dict.fromkeys(g for r in results for g in r[2]))
        out.append(Item(experiment, tier, verdict, f"{summary}. Evidence: {scope(groups, ids)}",
                        [r[1] for r in results], ids, sum(r[0] is not None for r in results)))
    return out


def lead(block: pd.DataFrame, name: str, leader: str, rivals, of=stat, require_all: bool = True) -> Result:
    """Is ``leader`` (its selected setting) ahead of every rival beyond noise: 'lead', 'behind' (some rival ahead),
    'tie', or None when the comparison cannot be made. With ``require_all=False`` a loss to the rivals present is a
    result even when another rival is missing."""
    if not len(block):
        return None, f"{name}: not compared (no runs of this row)", []
    picks, notes = {}, []
    for optimizer in (leader, *rivals):
        row, note = select(block, optimizer)
        notes += [note] if note else []
        if row is not None:
            picks[optimizer] = row
    ids = [row["group"] for row in picks.values()]
    stats = {o: of(row) for o, row in picks.items()}
    short = too_few_seeds(*stats.values())
    missing = [o for o in (leader, *rivals) if o not in picks]
    if leader not in picks or stats[leader].finished < MIN_SEEDS:
        return None, f"{name}: not compared ({'; '.join(notes + short)})", ids
    ready = [o for o in rivals if o in stats and stats[o].finished >= MIN_SEEDS]
    outcomes = {o: compare(stats[leader], stats[o]) for o in ready}
    behind = any(r.sign < 0 for r in outcomes.values())
    if (missing or short) and (require_all or not behind):
        return None, f"{name}: not compared ({'; '.join(notes + short)})", ids
    result = "behind" if behind else "lead" if all(r.sign > 0 for r in outcomes.values()) else "tie"
    versus = "; ".join(f"vs {stats[o].text()}: {r.text}, {WORD[r.sign]}" for o, r in outcomes.items())
    extra = f" ({'; '.join(notes + short)})" if notes or short else ""
    return result, f"{name}: {stats[leader].text()} {versus} → {result}{extra}", ids


def majority(what: str):
    """decide(): supported when the outcome is 'lead' on more than half of the comparisons made."""
    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        if not made:
            return INCONCLUSIVE, f"no comparison could be made ({len(outcomes)} blocks, see below)"
        leads, ties = made.count("lead"), made.count("tie")
        verdict = SUPPORTED if leads > len(made) / 2 else NOT_SUPPORTED
        return verdict, (f"{what} on {leads} of {len(made)} compared ({ties} ties, {len(made) - leads - ties} "
                         f"behind){f'; {len(outcomes) - len(made)} not compared' if len(made) < len(outcomes) else ''}")
    return decide


# ---------------------------------------------------------------- the claims


def beats_baselines(agg: Aggregate, experiments) -> list[Item]:
    rows = list(dict.fromkeys((dataset, model) for dataset, model, _, _ in agg.paper))
    found = {}
    paper = agg.groups[agg.groups["tier"] == PAPER_SCALE] if len(agg.groups) else agg.groups
    for experiment in experiments:
        mine = paper[paper["experiment"] == experiment] if len(paper) else paper
        if not len(mine):
            continue
        found[(experiment, PAPER_SCALE)] = [
            lead(mine[(mine["dataset"] == d) & (mine["model"] == m)], f"{d}/{m}", "rbo", BASELINES) for d, m in rows]

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        wins, ties = made.count("lead"), made.count("tie")
        summary = (f"RBO best beyond noise on {wins} of {len(made)} rows compared ({ties} ties, "
                   f"{len(made) - wins - ties} behind); {len(rows) - len(made)} of the paper's {len(rows)} rows "
                   f"without n ≥ {MIN_SEEDS} seeds per optimizer")
        if len(made) < TABLE1_MIN_ROWS:
            return INCONCLUSIVE, f"{summary} (need {TABLE1_MIN_ROWS} rows compared)"
        if wins >= TABLE1_WINS:
            return SUPPORTED, summary
        if wins + len(rows) - len(made) < TABLE1_WINS:
            return NOT_SUPPORTED, summary
        return INCONCLUSIVE, f"{summary}: the missing rows decide"
    return items(found, decide, agg.groups)


def _convergence(agg: Aggregate, experiments) -> dict:
    """Per block and baseline: (epoch ratio, gradient-evaluation ratio) at which RBO's mean training loss first
    reaches the baseline's final one, or None with the reason."""
    found = {}
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        rbo, note = select(block, "rbo")
        if rbo is None and note.startswith("no "):
            continue
        for other in BASELINES:
            base, other_note = select(block, other)
            if base is None and other_note.startswith("no "):
                continue
            found.setdefault((experiment, tier), []).append(
                _ratio(agg.curves, rbo, base, f"{name} vs {other}", note or other_note))
    return found


def _ratio(curves: pd.DataFrame, rbo, base, name: str, note: str) -> Result:
    if rbo is None or base is None:
        return None, f"{name}: not compared ({note})", []
    ids, r, b = [rbo["group"], base["group"]], stat(rbo), stat(base)
    short = too_few_seeds(r, b)
    if short:
        return None, f"{name}: not compared ({'; '.join(short)})", ids
    if r.failed or b.failed:
        loser = r if r.failed else b
        ratio = math.inf if r.failed else 0.0
        return (ratio, ratio), f"{name}: {loser.label} diverged/failed (seeds {loser.failed}), counted against it", ids
    if base["epochs"] < MIN_RATIO_EPOCHS:
        return None, f"{name}: not compared ({base['epochs']:g} epochs; a ratio needs ≥ {MIN_RATIO_EPOCHS})", ids
    if not trained(base):
        return None, (f"{name}: not compared ({b.label} did not train: final loss {base['train_loss_mean']:.4f} > "
                      f"{TRAINED_LOSS} × ln(classes) = {TRAINED_LOSS * chance_loss(base['dataset']):.4f})"), ids
    curve = curves[(curves["group"] == rbo["group"]) & (curves["epoch"] >= 1)] if len(curves) else curves
    target = base["train_loss_mean"]
    hit = curve[curve["train_loss_mean"] <= target]
    epochs, evals = (float(hit["epoch"].iloc[0]), float(hit["grad_evals"].iloc[0])) if len(hit) else (math.inf,) * 2
    ratios = (epochs / base["epochs"], evals / base["grad_evals"])
    when = f"after {epochs:g} epochs ({evals:,.0f} evals)" if len(hit) else "never"
    return ratios, (f"{name}: {b.label}'s final train loss {target:.4f} after {base['epochs']:g} epochs "
                    f"({base['grad_evals']:,.0f} evals); RBO reaches it {when}: epoch ratio {ratios[0]:.2f}, "
                    f"gradient-evaluation ratio {ratios[1]:.2f}"), ids


def _faster(index: int, what: str):
    def evaluate(agg: Aggregate, experiments) -> list[Item]:
        def decide(outcomes):
            made = [o[index] for o in outcomes if o is not None]
            if not made:
                return INCONCLUSIVE, f"no comparison met the minimum ({len(outcomes)} candidates, see below)"
            median = float(pd.Series(made).median())
            verdict = SUPPORTED if median <= FASTER_RATIO else NOT_SUPPORTED
            return verdict, f"median {what} ratio {median:.2f} over {len(made)} comparisons"
        return items(_convergence(agg, experiments), decide, agg.groups)
    return evaluate


def radius_heatmap(agg: Aggregate, experiments) -> list[Item]:
    found = {}
    for (experiment, dataset, model), grid in agg.heatmaps.items():
        tier = grid["tier"].iloc[0]
        if experiment not in experiments or tier is None:
            continue
        results = found.setdefault((experiment, tier), [])
        for lr, column in grid.groupby("lr"):
            name, ids = f"{dataset}/{model} η={lr:g}", list(column["group"])
            if not any(above_chance(g) for _, g in column[column["n"] > 0].iterrows()):
                results.append((None, f"{name}: nothing trained (left out)", ids))
                continue
            smallest, region = column.loc[column["radius"].idxmin()], column[column["radius"].between(*MACRO_RADIUS)]
            if smallest["radius"] >= MACRO_RADIUS[0] or not len(region):
                results.append((None, f"{name}: needs a cell with ρ < 1 and one with 1 ≤ ρ ≤ 5", ids))
                continue
            small, cells = stat(smallest), [stat(g) for _, g in region.iterrows()]
            short = too_few_seeds(small, *cells)
            if short:
                results.append((None, f"{name}: not compared ({'; '.join(short)})", ids))
                continue
            outcomes = [compare(c, small) for c in cells]
            wins, losses = sum(o.sign > 0 for o in outcomes), sum(o.sign < 0 for o in outcomes)
            ok = wins > len(cells) / 2 and not losses
            versus = "; ".join(f"{c.text()}: {o.text}, {WORD[o.sign]}" for c, o in zip(cells, outcomes))
            results.append((ok, f"{name}: against ρ={smallest['radius']:g} {small.text()}: {versus} → "
                                f"{'region ahead' if ok else 'region not ahead'}", ids))

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        if not made:
            return INCONCLUSIVE, f"no η column could be compared ({len(outcomes)} columns, see below)"
        verdict = SUPPORTED if sum(made) > len(made) / 2 else NOT_SUPPORTED
        return verdict, f"1 ≤ ρ ≤ 5 ahead of the smallest ρ beyond noise at {sum(made)} of {len(made)} η compared"
    return items(found, decide, agg.groups)


def _hyper_without(row, *keys) -> dict:
    return {k: v for k, v in json.loads(row["hyper"]).items() if k not in keys}


def radius_control(agg: Aggregate, experiments) -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        for _, zero in block[block["optimizer"] == "rbo_radius0"].iterrows():
            twins = [r for _, r in block[block["optimizer"] == "rbo"].iterrows()
                     if _hyper_without(r, "radius", "name") == _hyper_without(zero, "radius", "name")]
            for rbo in twins:
                r, z, ids = stat(rbo), stat(zero), [rbo["group"], zero["group"]]
                short = too_few_seeds(r, z)
                if short:
                    found.setdefault((experiment, tier), []).append((None, f"{name}: not compared ({'; '.join(short)})",
                                                                     ids))
                    continue
                o = compare(r, z)
                found.setdefault((experiment, tier), []).append(
                    ("lead" if o.sign > 0 else "behind" if o.sign < 0 else "tie",
                     f"{name}: RBO ρ={rbo['radius']:g} {r.text()} vs ρ=0 {z.text()}: {o.text}, {WORD[o.sign]}", ids))
    return items(found, majority("ρ > 0 ahead of ρ = 0 beyond noise"), agg.groups)


def stable_large_lr(agg: Aggregate, experiments) -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        rbo = block[(block["optimizer"] == "rbo") & block["radius"].between(*MACRO_RADIUS)]
        inside, beyond = rbo[rbo["lr"].between(*STABLE_LR)], rbo[rbo["lr"] > STABLE_LR[1]]
        if not len(inside) and not len(beyond):
            continue
        best = block.loc[block["optimizer"] == "rbo", "test_acc_mean"].max()
        results = found.setdefault((experiment, tier), [])
        for _, g in inside.iterrows():
            s = stat(g)
            bad = bool(s.failed) or not s.mean >= best - STABLE_GAP_PP
            results.append(((bad, s.finished), f"{name} ρ={g['radius']:g} η={g['lr']:g}: {s.text()} → "
                                                f"{'unstable or far below' if bad else 'stable'}", [g["group"]]))
        results += [(None, f"{name} ρ={g['radius']:g} η={g['lr']:g} (beyond the paper's η ≤ 50, not in the verdict): "
                           f"{stat(g).text()}", [g["group"]]) for _, g in beyond.iterrows()]
        results.append((None, f"{name}: best RBO group of the block {pm(best, math.nan)} % (test)", []))

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        failing = [n for bad, n in made if bad]
        summary = f"{len(made) - len(failing)} of {len(made)} groups with 10 ≤ η ≤ 50, 1 ≤ ρ ≤ 5 stable"
        if not made:
            return INCONCLUSIVE, f"{summary}: no RBO group in the paper's range (only η > {STABLE_LR[1]:g})"
        if not failing:
            return SUPPORTED, summary
        if max(failing) >= 2:
            return NOT_SUPPORTED, summary
        return INCONCLUSIVE, f"{summary}; the failing groups have a single seed (a negative verdict needs ≥ 2)"
    return items(found, decide, agg.groups)


def equivalence(a: Stat, b: Stat) -> tuple[str | None, str]:
    """Two one-sided tests at alpha = 0.05 with margin :data:`EQUIVALENCE_MARGIN_PP`: 'agree' when the 90 %
    confidence interval of the difference (Welch) lies inside ±margin, 'disagree' when it lies outside, else None."""
    if a.failed or b.failed:
        if a.failed and b.failed:
            return None, "both have diverged or failed runs"
        loser = a if a.failed else b
        return "disagree", f"{loser.label} diverged/failed (seeds {loser.failed})"
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    denominator = va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1)
    df = (va + vb) ** 2 / denominator if denominator > 0 else a.n + b.n - 2
    half = T95[min(max(int(df), 1), len(T95)) - 1] * math.sqrt(va + vb)
    diff, m = a.mean - b.mean, EQUIVALENCE_MARGIN_PP
    low, high = diff - half, diff + half
    verdict = "agree" if -m < low and high < m else "disagree" if low > m or high < -m else None
    return verdict, f"diff {diff:+.2f} pp, 90 % CI [{low:+.2f}, {high:+.2f}] against ±{m:g} pp"


def zero_radius_is_gd(agg: Aggregate, experiments) -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        zeros = block[block["optimizer"] == "rbo_radius0"]
        controls = block[block["optimizer"] == "sgd_effective_lr"]
        matched = controls[controls["reference"] == "rbo_radius0"]
        results = found.setdefault((experiment, tier), []) if len(zeros) else []
        if len(zeros) and not len(matched):
            why = (f"its sgd_effective_lr takes its step from reference={', '.join(sorted(set(controls['reference'])))}"
                   if len(controls) else "no sgd_effective_lr control")
            results.append((None, f"{name}: no pairing of rbo_radius0 with SGD at rbo_radius0's own effective step "
                                  f"({why}; run it with optimizer.reference=rbo_radius0)",
                            list(zeros["group"]) + list(controls["group"])))
        for (_, zero), (_, control) in ((z, c) for z in zeros.iterrows() for c in matched.iterrows()):
            z, c, ids = stat(zero), stat(control), [zero["group"], control["group"]]
            short = too_few_seeds(z, c)
            verdict, text = (None, f"not compared ({'; '.join(short)})") if short else equivalence(z, c)
            results.append((verdict, f"{name}: {z.text()} vs {c.text()} (lr {control['lr']:.4g}): {text} → "
                                     f"{verdict or 'undecided'}", ids))

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        agree = made.count("agree")
        summary = f"agreement within ±{EQUIVALENCE_MARGIN_PP:g} pp on {agree} of {len(outcomes)} pairs"
        if "disagree" in made:
            return NOT_SUPPORTED, summary + f", {made.count('disagree')} disagree"
        if made and len(made) == len(outcomes):
            return SUPPORTED, summary
        return INCONCLUSIVE, summary + f", {len(outcomes) - len(made)} undecided or not paired"
    return items(found, decide, agg.groups)


@functools.cache
def ironing_result() -> dict | None:
    """``rbo.ironing.ironing_claim()`` (it runs the 1-D demo: once per process), None while it does not exist."""
    try:
        import rbo.ironing

        return rbo.ironing.ironing_claim()
    except (ImportError, AttributeError):
        return None


def ironing(agg: Aggregate, experiments) -> list[Item]:
    """The row of the ironing figure: its verdict, evidence and rule come from :func:`ironing_result` (issue 11's
    ablation)."""
    found = ironing_result()
    if found is None:
        return [Item("paper/ironing", None, INCONCLUSIVE, "ironing ablation not available", [], [])]
    if found.get("verdict") not in VERDICTS:
        raise ValueError(f"ironing_claim() returned verdict={found.get('verdict')!r}; allowed: {', '.join(VERDICTS)}")
    return [Item("paper/ironing", None, found["verdict"], str(found["evidence"]), [], [], 1, str(found["rule"]))]


def tuned_baselines(agg: Aggregate, experiments) -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        found.setdefault((experiment, tier), []).append(lead(block, name, "rbo", TUNED, require_all=False))
    return items(found, majority("RBO ahead of every validation-tuned baseline beyond noise"), agg.groups)


def _equal_of(agg: Aggregate) -> Callable[[pd.Series], Stat]:
    """A group's :class:`Stat` at SGD's gradient-evaluation budget (its row of the equal-compute table)."""
    rows = agg.equal.set_index("group") if len(agg.equal) else agg.equal
    return lambda group: stat(group, equal=rows.loc[group["group"]])


def _evaluated_within_budget(agg: Aggregate, group) -> bool:
    """Whether the group's runs hold an evaluation after init within SGD's gradient-evaluation budget."""
    row = agg.equal[agg.equal["group"] == group["group"]] if len(agg.equal) else agg.equal
    return bool(len(row)) and number(row["evals_sgd_budget"].iloc[0]) > 0


def compute_matched(agg: Aggregate, experiments) -> list[Item]:
    found, of = {}, _equal_of(agg)
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        rivals = [o for o in dict.fromkeys(block["optimizer"]) if o != "rbo"]
        found.setdefault((experiment, tier), []).append(lead(block, name, "rbo", rivals, of=of))
    return items(found, majority("RBO ahead of every optimizer at SGD's gradient-evaluation budget"), agg.groups)


def inner_solver(agg: Aggregate, experiments) -> list[Item]:
    found, of = {}, _equal_of(agg)
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        projection = block["projection"]
        kind = "newton" if (projection == "newton").any() else "gauss_newton"
        converged, note = select(block, projection == kind, f"RBO ({kind} projection)")
        authors = (block["optimizer"] == "rbo") & (projection == AUTHORS_PROJECTION["projection"]) & \
            (block["proj_steps"] == AUTHORS_PROJECTION["proj_steps"]) & \
            (block["proj_lr"] == AUTHORS_PROJECTION["proj_lr"])
        gd, gd_note = select(block, authors, "RBO (the authors' gd projection, K 100, γ 1e-3)")
        sgd, sgd_note = select(block, "sgd")
        results = found.setdefault((experiment, tier), [])
        if converged is None or sgd is None:
            results.append((None, f"{name}: not compared ({'; '.join(n for n in (note, sgd_note) if n)})", []))
            continue
        ids = [g["group"] for g in (converged, sgd, gd) if g is not None]
        at_budget = _evaluated_within_budget(agg, converged)
        c, s = (of(converged), of(sgd)) if at_budget else (stat(converged), stat(sgd))
        how = "at SGD's gradient-evaluation budget" if at_budget else \
            "at equal epochs (the records hold no RBO evaluation after init within SGD's budget)"
        short = too_few_seeds(c, s)
        if short:
            results.append((None, f"{name}: not compared ({'; '.join(short)})", ids))
            continue
        o = compare(c, s)
        outcome = "lead" if o.sign > 0 else "behind" if o.sign < 0 else "tie"
        line = f"{name}, {how}: {c.text()} vs {s.text()}: {o.text}, {WORD[o.sign]}"
        if gd is not None and not too_few_seeds(stat(converged), stat(gd)):
            g = compare(stat(converged), stat(gd))
            line += f"; against the authors' RBO at equal epochs {stat(gd).text()}: {g.text}, {WORD[g.sign]}"
        notes = [n for n in (note, sgd_note, gd_note) if n]
        results.append((outcome, line + (f" ({'; '.join(notes)})" if notes else ""), ids))
    return items(found, majority("RBO with a converged projection ahead of SGD at its best validation lr"),
                 agg.groups)


def loss_scale(agg: Aggregate, experiments) -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(agg.groups, experiments):
        scales = sorted(block["loss_scale"].dropna().unique())
        results = found.setdefault((experiment, tier), [])
        if len(scales) < 2:
            results.append((None, f"{name}: one loss scale only", list(block["group"])))
            continue
        low, high = scales[0], scales[-1]
        for rival in ("sgd", "sam"):
            pair = []
            for scale in (low, high):
                at = block[block["loss_scale"] == scale]
                picks = [select(at, o) for o in ("rbo", rival)]
                pair.append([p for p, _ in picks] + ["; ".join(n for _, n in picks if n)])
            ids = [g["group"] for p in pair for g in p[:2] if g is not None]
            if any(g is None for p in pair for g in p[:2]):
                results.append((None, f"{name} RBO vs {rival}: not compared ({'; '.join(p[2] for p in pair)})", ids))
                continue
            stats = [(stat(p[0]), stat(p[1])) for p in pair]
            short = too_few_seeds(*(s for two in stats for s in two))
            if short:
                results.append((None, f"{name} RBO vs {rival}: not compared ({'; '.join(short)})", ids))
                continue
            (a, b) = [compare(*two) for two in stats]
            shift = b.diff - a.diff
            beyond = not math.isfinite(shift) or abs(shift) > max(FLOOR_PP, 2 * math.hypot(a.se, b.se))
            changed = a.sign != b.sign and beyond
            results.append(("changed" if changed else "same",
                            f"{name} RBO vs {rival}: loss scale {low:g}: {stats[0][0].text()} vs {stats[0][1].text()}: "
                            f"{a.text}, {WORD[a.sign]}; loss scale {high:g}: {stats[1][0].text()} vs "
                            f"{stats[1][1].text()}: {b.text}, {WORD[b.sign]} → "
                            f"{'ranking changed beyond noise' if changed else 'no change beyond noise'}", ids))

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        summary = f"ranking changed beyond noise on {made.count('changed')} of {len(made)} pairs compared"
        if not made:
            return INCONCLUSIVE, f"no pair could be compared at two loss scales ({len(outcomes)} candidates)"
        return (NOT_SUPPORTED if "changed" in made else SUPPORTED), summary
    return items(found, decide, agg.groups)


# ---------------------------------------------------------------- claims.md


@dataclass
class Claim:
    title: str
    rule: str
    short_rule: str  # the rule in a few words, for the summary table
    experiments: tuple[str, ...]  # the only experiments its verdict may rest on
    evaluate: Callable[[Aggregate, tuple[str, ...]], list[Item]]
    items: list[Item] = field(default_factory=list)

    @property
    def primary(self) -> Item | None:
        def rank(item: Item):
            order = self.experiments.index(item.experiment) if item.experiment in self.experiments else 0
            tier = TIERS.index(item.tier) if item.tier in TIERS else 0
            return item.verdict not in (SUPPORTED, NOT_SUPPORTED), tier, -item.size, order
        return min(self.items, key=rank) if self.items else None

    @property
    def verdict(self) -> str:
        best = self.primary
        if best is None:
            return NOT_TESTED
        return f"{best.verdict} ({best.tier})" if best.tier else best.verdict


def make_claims() -> list[Claim]:
    seeds, noise = f"n ≥ {MIN_SEEDS} seeds per group", f"beyond max({FLOOR_PP} pp, 2 SE)"
    return [
        Claim("RBO beats SGD, Entropy-SGD and SAM in accuracy on 5 of the 7 rows of Table 1",
              f"Paper scale only. Per row of the paper's Table 1 with {seeds} for all four optimizers: RBO is best "
              f"when its mean test accuracy is ahead of each of SGD, Entropy-SGD and SAM {noise} (a tie is not a "
              f"win; divergence counts against the optimizer that diverged). Inconclusive with fewer than "
              f"{TABLE1_MIN_ROWS} of the 7 rows compared, or while the rows still missing could change the answer; "
              f"supported when RBO is best on ≥ {TABLE1_WINS} rows; not supported when it cannot reach "
              f"{TABLE1_WINS} even if every missing row were a win.",
              f"≥ {TABLE1_MIN_ROWS}/7 rows × {seeds}; RBO best {noise} on ≥ {TABLE1_WINS}",
              TABLE1[:1], beats_baselines),
        Claim("Faster convergence per epoch: RBO reaches the others' final training loss in about half the epochs",
              f"Per row and baseline (SGD, Entropy-SGD, SAM) with {seeds}: the first epoch at which RBO's mean "
              f"training loss (the epoch's running mean, averaged over completed seeds) is at or below the "
              f"baseline's final mean training loss, divided by the baseline's epochs (∞ if never), with the "
              f"gradient-evaluation ratio beside it. A comparison needs a baseline that trained (final loss ≤ "
              f"{TRAINED_LOSS} × ln(classes)) for ≥ {MIN_RATIO_EPOCHS} epochs; RBO diverging counts as ∞, a "
              f"baseline diverging as 0. Supported when the median epoch ratio is ≤ {FASTER_RATIO}; inconclusive "
              f"when no comparison meets the minimum.",
              f"median epoch ratio ≤ {FASTER_RATIO}; trained baseline, ≥ {MIN_RATIO_EPOCHS} epochs, {seeds}",
              CONVERGENCE, _faster(0, "epoch")),
        Claim("Faster convergence at equal compute: RBO reaches the others' final training loss with about half "
              "their gradient evaluations",
              f"The comparisons of claim 2 (same minimum evidence), measured in gradient evaluations: RBO's "
              f"evaluations when its mean training loss first reaches the baseline's final one, divided by the "
              f"baseline's evaluations for its whole run. Supported when the median ratio is ≤ {FASTER_RATIO}.",
              f"median gradient-evaluation ratio ≤ {FASTER_RATIO}; as claim 2", CONVERGENCE,
              _faster(1, "gradient-evaluation")),
        Claim("The radius matters: on the ρ–η heat map the best region (1 ≤ ρ ≤ 5) beats the smallest ρ",
              f"Per η column of RBO's ρ × η grid where something trained (a completed cell with mean test accuracy "
              f"≥ 2 × chance, 2 × 100/classes %; other columns are left out): each cell with 1 ≤ ρ ≤ 5 against the "
              f"column's smallest ρ (< 1), {noise}, n ≥ {MIN_SEEDS} seeds per cell. A column supports the claim "
              f"when most of its region cells are ahead and none is behind. Supported when a majority of the "
              f"columns compared support it; inconclusive when no column can be compared.",
              f"region ahead of smallest ρ {noise} in most trained η columns; n ≥ {MIN_SEEDS} seeds per cell",
              HEATMAP, radius_heatmap),
        Claim("The radius matters: RBO against the same RBO with ρ = 0 (control `rbo_radius0`)",
              f"Pairs of `rbo` and `rbo_radius0` groups of the same row with identical hyperparameters except ρ, "
              f"{seeds}: supported when RBO is ahead {noise} on a majority of the pairs compared (RBO diverging "
              f"where ρ = 0 trains is a loss); inconclusive when no pair meets the minimum.",
              f"ρ > 0 ahead of ρ = 0 {noise} on most pairs; {seeds}", TABLE1, radius_control),
        Claim("Stability at large η: RBO trains at learning rates far above SGD's",
              f"RBO groups inside the paper's best region, {STABLE_LR[0]:g} ≤ η ≤ {STABLE_LR[1]:g} and "
              f"{MACRO_RADIUS[0]:g} ≤ ρ ≤ {MACRO_RADIUS[1]:g}: a group is stable when none of its runs diverged or "
              f"failed and its mean test accuracy is within {STABLE_GAP_PP:g} pp of the block's best RBO group. "
              f"Supported when every such group is stable; not supported when a group with ≥ 2 seeds is not; "
              f"inconclusive when only single-seed groups fail. η > {STABLE_LR[1]:g} is reported separately.",
              f"every group with {STABLE_LR[0]:g} ≤ η ≤ {STABLE_LR[1]:g}, 1 ≤ ρ ≤ 5 stable; negative needs ≥ 2 seeds",
              HEATMAP, stable_large_lr),
        Claim("Control agreement: RBO at ρ = 0 matches SGD at its own effective step (the ρ → 0 limit is GD)",
              f"Pairs of `rbo_radius0` and `sgd_effective_lr` whose learning rate was measured on those "
              f"`rbo_radius0` runs (`optimizer.reference=rbo_radius0`), {seeds}: two one-sided t-tests (Welch, "
              f"α = 0.05) with a fixed margin of ±{EQUIVALENCE_MARGIN_PP:g} pp. A pair agrees when the 90 % "
              f"confidence interval of the difference lies inside the margin, disagrees when it lies outside (or "
              f"one side diverged), else is undecided. Supported when every pair agrees; not supported when any "
              f"disagrees; otherwise inconclusive. The exact identity (a converged projection at ρ → 0 is a GD "
              f"step, SPEC §1) is a unit test of `rbo/`; this is the empirical check.",
              f"TOST, margin ±{EQUIVALENCE_MARGIN_PP:g} pp, every pair; {seeds}", TABLE1, zero_radius_is_gd),
        Claim("The ball irons out wrinkles smaller than ρ (the 1-D figure)",
              "From issue 11's ablation of the authors' 1-D demo (`rbo.ironing.ironing_claim()`); its own rule:",
              "see the ablation's rule", ("paper/ironing",), ironing),
        Claim("Tuned baselines: RBO still leads when SGD with momentum, SAM (momentum) and AdamW get their learning "
              "rate chosen on validation accuracy",
              f"Per row: each of `sgd_momentum`, `sam_momentum`, `adamw` at the learning rate with the best mean "
              f"validation accuracy, RBO at its setting (validation-selected if several), reported on test "
              f"accuracy, {seeds}. RBO leads when it is ahead of all three {noise}; it is behind when any is ahead "
              f"of it (a result even if another baseline is missing). Supported when RBO leads on a majority of "
              f"the rows compared; inconclusive when no row can be compared (a missing baseline without a loss, too "
              f"few seeds, no validation split).",
              f"RBO ahead of all three tuned baselines {noise} on most rows; {seeds}", TUNED_EXPERIMENTS,
              tuned_baselines),
        Claim("Equal compute: RBO leads at the same number of gradient evaluations",
              f"Per row: every optimizer's test accuracy at SGD's gradient-evaluation budget (the last evaluation "
              f"at or below it, the evaluations actually spent shown), {seeds}. Supported when RBO is ahead of "
              f"every other optimizer {noise} on a majority of the rows compared.",
              f"RBO ahead of all at SGD's budget {noise} on most rows; {seeds}", COMPUTE_MATCHED, compute_matched),
        Claim("The ball, not the inner solver: RBO with a converged projection still beats SGD at its best "
              "validation learning rate",
              f"Per row: RBO with a converged projection (Newton if present, else Gauss–Newton; the setting with "
              f"the best validation accuracy) against SGD at the learning rate with the best validation accuracy, "
              f"at SGD's gradient-evaluation budget where the records hold an RBO evaluation after init within it, "
              f"else at equal epochs (said on each line); the authors' RBO (gd, K 100, γ 1e-3) beside it at equal "
              f"epochs. {seeds}, {noise}. Supported when converged RBO is ahead on a majority of the rows "
              f"compared.",
              f"converged-projection RBO ahead of best-lr SGD {noise} on most rows; {seeds}", INNER_SOLVER,
              inner_solver),
        Claim("Loss scale: the ranking of RBO against SGD and SAM is the same at loss scale 1 and 10",
              f"Per row and pair (RBO vs SGD, RBO vs SAM), {seeds}: the outcome (ahead, tie, behind {noise}) at "
              f"the smallest and the largest loss scale. The ranking changes beyond noise when the outcome differs "
              f"and the difference itself moved by more than max({FLOOR_PP} pp, 2 SE of the change). Supported when "
              f"no pair changes; not supported when one does; inconclusive when no pair can be compared.",
              f"no RBO-vs-SGD/SAM outcome flips {noise} between loss scales; {seeds}", LOSS_SCALE, loss_scale),
    ]


def evaluate_claims(agg: Aggregate) -> list[Claim]:
    claims = make_claims()
    for claim in claims:
        claim.items = claim.evaluate(agg, claim.experiments)
    return claims


def reproduce_command(experiment: str) -> str:
    return REPRODUCE.get(experiment.split("/")[0], "make experiments EXPERIMENTS=" + experiment)


def _runs_line(groups: pd.DataFrame, ids: list[str]) -> str:
    used = groups[groups["group"].isin(ids)] if len(groups) and ids else groups.iloc[0:0]
    if not len(used):
        return "none"
    diverged = [f"{label(g)} ({g['dataset']}/{g['model']}): {g['diverged_seeds']}" for _, g in used.iterrows()
                if g["diverged_seeds"]]
    return (f"{int(used['n_runs'].sum())} runs ({int(used['n'].sum())} completed, {int(used['n_diverged'].sum())} "
            f"diverged, {int(used['n_failed'].sum())} failed) in {used['group'].nunique()} groups"
            + (f"; diverged seeds: {'; '.join(diverged)}" if diverged else ""))


def _commands(claim: Claim) -> str:
    names = [e for e in claim.experiments if e != "paper/ironing"]
    if not names:
        return "`make figures`"
    by_command = {}
    for name in names:
        by_command.setdefault(reproduce_command(name), []).append(name)
    return "; ".join(f"`{c}` ({', '.join(e)})" for c, e in by_command.items())


def render(claims: list[Claim], groups: pd.DataFrame) -> str:
    out = [
        "# The paper's claims and the reviewers' questions against our runs", "",
        "Generated by `python -m scripts.aggregate` from the run records; do not edit. Each verdict is printed with "
        "the rule it follows. \"not tested here\": no runs of the claim's experiments; \"inconclusive\": runs "
        "exist but do not meet the claim's minimum evidence (what is missing is listed). Each claim reads only the "
        "experiments it names. Its verdict comes from the highest evidence tier that reaches one (the tier is "
        "named in the verdict); items of other tiers are listed under it.", "",
        f"**Common rules.** {COMMON_RULES}", "",
        "| # | claim | verdict | rule | evidence | runs | reproduce |", "|---|---|---|---|---|---|---|",
    ]
    for i, claim in enumerate(claims, 1):
        best = claim.primary
        evidence = f"{best.summary} (`{best.experiment}`)" if best else \
            f"no runs of {', '.join(f'`{e}`' for e in claim.experiments)}"
        ids = [g for item in claim.items for g in item.groups]
        used = groups[groups["group"].isin(ids)] if len(groups) and ids else groups.iloc[0:0]
        runs = f"{int(used['n_runs'].sum())}" if len(used) else "0"
        out.append(f"| {i} | {claim.title} | {claim.verdict} | {claim.short_rule} | {evidence} | {runs} | "
                   f"{_commands(claim)} |")
    for i, claim in enumerate(claims, 1):
        own = " ".join(item.rule for item in claim.items if item.rule) or \
            ("(not available yet)" if claim.evaluate is ironing else "")
        out += ["", f"## {i}. {claim.title}", "", f"**Verdict:** {claim.verdict}", "",
                f"**Rule:** {claim.rule}{' ' + own if own else ''}", "",
                f"**Experiments read:** {', '.join(f'`{e}`' for e in claim.experiments)}", "",
                "**Evidence:**" + ("" if claim.items else " none: no runs of these experiments were found.")]
        out += [""] * bool(claim.items)
        for item in sorted(claim.items, key=lambda it: it is not claim.primary):
            tags = ["primary"] * (item is claim.primary) + [t for t in (item.tier,) if t] + [item.verdict]
            out.append(f"- `{item.experiment}` ({', '.join(tags)}): {item.summary}")
            out += [f"  - {line}" for line in item.lines]
        ids = [g for item in claim.items for g in item.groups]
        out += ["", f"**Runs:** {_runs_line(groups, ids)}", "",
                f"**Reproduce:** {_commands(claim)}, then `make tables`"]
    return "\n".join(out) + "\n"


def write_claims(path: str | Path, agg: Aggregate) -> Path:
    return atomic_write_text(path, render(evaluate_claims(agg), agg.groups))
