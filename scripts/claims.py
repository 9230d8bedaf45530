"""The fifth step of the results pipeline (records → frame → tables → statistics → **claims** → figures → index):
the paper's claims (SPEC §3), the ironing figure and the paper's theory (issues 11, 21) and the reviewers'
questions (SPEC §4, issue 15) against the runs at hand, each verdict beside the rule it follows.

Claims are data: :func:`claim_specs` lists each one's title, rule and the experiments its verdict may rest on,
with the function that reads the evidence; the statistics are :mod:`scripts.stats`, the rendering
:mod:`scripts.claims_md`. Adding a claim is one entry there (and its function, if no existing one fits).

An evidence item is one experiment's groups of one evidence tier (``scripts.records.TIERS``, by dataset; synthetic
data are never evidence). A claim's verdict comes from its primary item: the highest tier whose item reaches a
verdict (supported / not supported), else the highest tier's inconclusive item; the others are listed under it.
A comparison that is undecided at its n never makes a claim "not supported": the claim is "inconclusive" unless
the decided comparisons settle it whatever the undecided ones turn out to be.

Controls (issue 20): every claim that credits the ball (1, 2, 3, 9, 10) applies the same rule to SGD at RBO's
measured step (``sgd_effective_lr``, ``reference=rbo``) and to RBO with ρ = 0 (``rbo_radius0``); where a control
passes too, the verdict says so. Groups are compared only when every resolved config value but the varied one is
equal (epochs, loss scale, batch order, initialisation, data, validation split, budget); others are listed as
unpaired.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from experiments.data import dataset_shape
from scripts.frame import Frame
from scripts.records import PAPER_SCALE, TIERS, number, pm
from scripts.stats import (
    AHEAD,
    BEHIND,
    EQUIVALENCE_MARGIN_PP,
    FLOOR_PP,
    MIN_SEEDS,
    TIE,
    UNDECIDED,
    Stat,
    compare,
    t_quantile,
)

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED = "supported", "not supported", "inconclusive", "not tested here"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED)
BASELINES = ("sgd", "entropy_sgd", "sam")  # the paper's Table 1 columns beside RBO
TUNED = ("sgd_momentum", "sam_momentum", "adamw")  # the reviewers' tuned baselines (issue 15, question 1)
CONTROLS = ("rbo_radius0", "sgd_k_steps", "sgd_effective_lr")  # issue 7: RBO's compute or step without the ball
TRAINED_LOSS = 0.75  # a group trained when its final training loss is at most this fraction of ln(classes)
MIN_RATIO_EPOCHS = 5  # claim 2: a baseline trained for fewer epochs gives only ratios 1/E, 2/E, ...
FASTER_RATIO = 0.6  # claim 2: "about half the epochs"
TABLE1_MIN_ROWS, TABLE1_WINS = 5, 5  # claim 1: rows compared before a verdict, and rows RBO must win
STABLE_LR, MACRO_RADIUS, STABLE_GAP_PP = (10.0, 50.0), (1.0, 5.0), 10.0  # claim 6, the paper's best region
AUTHORS_PROJECTION = {"projection": "gd", "proj_steps": 100.0, "proj_lr": 1e-3}  # the authors' RBO (SPEC §1)
LEAD, TIED = "lead", "tie"  # a leader's result against all its rivals (with BEHIND, UNDECIDED)

TABLE1 = ("paper/table1", "fashion/table1", "fashion_cpu/table1", "quick/table1")  # Table 1 and its controls
CONVERGENCE = (*TABLE1[:3], "fashion_cpu/convergence", *TABLE1[3:])  # claims 2 and 3: Table 1, and 5 CPU epochs
HEATMAP = ("paper/heatmap", "fashion/heatmap", "quick/heatmap")
TUNED_EXPERIMENTS = ("review/tuned", "review_cpu/tuned")
COMPUTE_MATCHED = ("review/compute_matched", "review_cpu/compute_matched")
INNER_SOLVER = ("review/inner_solver", "review_cpu/inner_solver")
LOSS_SCALE = ("review/loss_scale", "review_cpu/loss_scale")
IRONING = ("paper/ironing",)
REPRODUCE = {"paper": "make reproduce", "review": "make review", "quick": "make quick", "fashion": "make fashion",
             "fashion_cpu": "make fashion-cpu", "review_cpu": "make review-cpu"}

COMMON_RULES = (
    f"(a) A diverged or failed run is a result, never a missing value: a group with such runs loses a comparison "
    f"against a group without (both with: undecided), and every line lists the seeds that diverged or failed. A "
    f"completed run whose final training loss is non-finite or above 10 × ln(classes) counts as diverged. "
    f"(b) Each comparison is Welch's t-test on the mean test accuracies, two-sided at α = 0.05 with Student's t "
    f"quantile at the Welch degrees of freedom: ahead or behind when significant and beyond {FLOOR_PP} pp; a tie only "
    f"when the 90 % confidence interval of the difference lies inside ±{EQUIVALENCE_MARGIN_PP:g} pp (two one-sided "
    f"tests); otherwise undecided, with the smallest difference this n detects and the seeds that would settle it. "
    f"A claim whose deciding comparisons are undecided is inconclusive, never not supported. "
    f"(c) Every group compared needs n ≥ {MIN_SEEDS} finished seeds; below that the comparison is not made. "
    f"(d) Two groups are compared only when every resolved config value but the one the comparison varies is equal "
    f"(epochs, loss scale, batch order, initialisation, data, validation split, budget); others are unpaired. "
    f"(e) Where an optimizer has several settings in a block, the one with the fewest diverged or failed runs and "
    f"then the best mean validation accuracy is taken and reported on test accuracy; without a validation split "
    f"no setting is picked. "
    f"(f) Only records whose config their experiment's sweeps launch are evidence (ad-hoc records are listed in "
    f"`index.md`). Evidence tiers, strongest first: {'; '.join(TIERS)}; a claim's verdict names its tier. "
    f"Synthetic data are never evidence. "
    f"(g) A \"majority\" is more than half. Claims that credit the ball apply their rule to SGD at RBO's measured "
    f"step and to RBO with ρ = 0 as well, and say so where a control passes too.")


def label(group) -> str:
    return group["optimizer"] + (f" [{group['setting']}]" if group["setting"] else "")


def stat(group, prefix: str = "test_acc", equal: pd.Series | None = None) -> Stat:
    """:class:`Stat` of a group row; with ``equal`` (its equal-compute row) the accuracy at SGD's budget."""
    failed = ",".join(s for s in (group["diverged_seeds"], group["failed_seeds"]) if s)
    finished = int(group["n"] + group["n_diverged"] + group["n_failed"])
    mixed = " (mixed code)" if group.get("mixed_code") else ""
    if equal is not None:
        return Stat(f"{label(group)}{mixed} at {equal['evals_sgd_budget']:,.0f} evals",
                    number(equal["acc_sgd_budget_mean"]), number(equal["acc_sgd_budget_std"]),
                    int(equal["acc_sgd_budget_n"]), failed, finished, number(equal["val_sgd_budget_mean"]))
    return Stat(label(group) + mixed, number(group[f"{prefix}_mean"]), number(group[f"{prefix}_std"]),
                int(group["n"]), failed, finished, number(group["val_acc_mean"]))


def too_few_seeds(*stats: Stat) -> list[str]:
    return [f"{s.label} has {s.finished} finished seeds (need {MIN_SEEDS})" for s in stats if s.finished < MIN_SEEDS]


# ---------------------------------------------------------------- pairing and selection


def differing_keys(a, b) -> set[str]:
    """The resolved config keys whose values differ between two groups (their ``params``)."""
    pa, pb = a["params"], b["params"]
    return {k for k in set(pa) | set(pb) if str(pa.get(k)) != str(pb.get(k))}


def optimizer_key(key: str) -> bool:
    return key == "optimizer" or key.startswith("optimizer.")


def unpaired_keys(a, b, varied: Callable[[str], bool] = optimizer_key) -> str:
    """The config keys in which ``a`` and ``b`` differ beyond what ``varied`` allows, for an 'unpaired' note."""
    return ", ".join(sorted(k for k in differing_keys(a, b) if not varied(k)))


def paired(a, b, varied: Callable[[str], bool] = optimizer_key) -> bool:
    """Common rule (d): ``a`` and ``b`` differ only in keys ``varied`` allows (by default: the optimizer)."""
    return not unpaired_keys(a, b, varied)


def select(block: pd.DataFrame, which, name: str = "") -> tuple[pd.Series | None, str]:
    """The group of ``which`` (an optimizer name or a boolean mask of ``block``) under common rule (e), and a note:
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


def is_control(block: pd.DataFrame, control: str) -> pd.Series:
    """The groups of a control that stands in for RBO: SGD at RBO's own measured step, or RBO with ρ = 0."""
    if control == "sgd_effective_lr":
        return (block["optimizer"] == control) & (block["reference"] == "rbo")
    return block["optimizer"] == control


CONTROL_NAMES = {"sgd_effective_lr": "SGD at RBO's step", "rbo_radius0": "RBO with ρ = 0"}
CONTROL_MEANING = {"sgd_effective_lr": "the step size, not the ball", "rbo_radius0": "the ball is not needed"}


def chance_loss(dataset: str) -> float:
    """ln(classes): the cross-entropy of a uniform prediction."""
    return math.log(dataset_shape(dataset)[2])


def trained(group) -> bool:
    return number(group["train_loss_mean"]) <= TRAINED_LOSS * chance_loss(group["dataset"])


def above_chance(group) -> bool:
    """Mean test accuracy at least twice chance (2 × 100/classes %): the heat map's "something trained"."""
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
    rule: str = ""  # a rule of its own, printed after the claim's (the ironing and theory rows)


Result = tuple[object, str, list[str]]  # (outcome, None when no comparison was made; evidence line; group ids)


def blocks(groups: pd.DataFrame, experiments):
    """(experiment, tier, 'dataset/model', block) of the named experiments, evidence tiers only."""
    if not len(groups):
        return
    named = groups[groups["experiment"].isin(experiments) & groups["tier"].notna()]
    for (experiment, dataset, model), block in named.groupby(["experiment", "dataset", "model"], sort=False):
        yield experiment, block["tier"].iloc[0], f"{dataset}/{model}", block


def scope(groups: pd.DataFrame, ids: list[str]) -> str:
    """Rows, seeds, epochs, hardware, training split and code of the groups behind an item."""
    used = groups[groups["group"].isin(ids)] if len(groups) and ids else groups.iloc[0:0]
    if not len(used):
        return "no group entered a comparison"
    rows = list(dict.fromkeys(f"{d}/{m}" for d, m in zip(used["dataset"], used["model"])))
    seeds = sorted({int(s) for text in used["seeds"] for s in text.split(",") if s})
    per_group = used["n"] + used["n_diverged"] + used["n_failed"]
    epochs = sorted({f"{e:g}" for e in used["epochs"]}, key=float)
    hardware = sorted({h for text in used["hardware"] for h in text.split("; ")})
    held = sorted({int(v) for v in used["val_size"].dropna() if v > 0})
    split = f"{'/'.join(f'{v:,}' for v in held)} held out for validation" if held else "whole training split"
    codes = sorted({c for text in used["code"] for c in text.split(", ")})
    mixed = int(used["mixed_code"].sum())
    code = f"code {', '.join(codes)}" + (f" ({mixed} groups mix code versions)" if mixed else "")
    return (f"rows {', '.join(rows)}; seeds {','.join(map(str, seeds)) or '—'} ({int(per_group.min())}–"
            f"{int(per_group.max())} finished per group); {'/'.join(epochs)} epochs; {split}; hardware: "
            f"{'; '.join(hardware)}; {code}")


def items(found: dict[tuple[str, str], list[Result]], decide: Callable[[list], tuple[str, str]],
          groups: pd.DataFrame, extra: Callable[[str, str, str], str] | None = None) -> list[Item]:
    """One item per (experiment, tier): ``decide(outcomes)`` -> (verdict, summary), summary + ``extra`` (the
    controls' sentence) + its scope."""
    out = []
    for (experiment, tier), results in found.items():
        verdict, summary = decide([r[0] for r in results])
        if extra is not None:
            summary += extra(experiment, tier, verdict)
        ids = list(dict.fromkeys(g for r in results for g in r[2]))
        out.append(Item(experiment, tier, verdict, f"{summary}. Evidence: {scope(groups, ids)}",
                        [r[1] for r in results], ids, sum(r[0] is not None for r in results)))
    return out


def lead(block: pd.DataFrame, name: str, leader, rivals, of=stat, require_all: bool = True,
         leader_name: str = "rbo") -> Result:
    """Is ``leader`` (an optimizer or a mask; its selected setting) ahead of every rival: 'lead' (ahead of all),
    'behind' (some rival ahead), 'tie' (none ahead of it, every other comparison a tie shown), 'undecided', or
    None when the comparison cannot be made. With ``require_all=False`` a loss to the rivals present is a result
    even when another rival is missing. A rival whose other config values differ (common rule (d)) is unpaired."""
    if not len(block):
        return None, f"{name}: not compared (no runs of this row)", []
    notes, picks = [], {}
    top, note = select(block, leader, leader_name)
    notes += [note] if note else []
    for optimizer in rivals:
        row, note = select(block, optimizer)
        notes += [note] if note else []
        if row is not None:
            if top is not None and not paired(top, row):
                notes.append(f"{optimizer} unpaired ({unpaired_keys(top, row)} differ)")
                continue
            picks[optimizer] = row
    ids = [row["group"] for row in ([top] if top is not None else []) + list(picks.values())]
    stats = {o: of(row) for o, row in picks.items()}
    short = too_few_seeds(*stats.values())
    missing = [o for o in rivals if o not in picks]
    if top is None or of(top).finished < MIN_SEEDS:
        short = too_few_seeds(of(top)) if top is not None else []
        return None, f"{name}: not compared ({'; '.join(notes + short)})", ids
    mine = of(top)
    ready = [o for o in rivals if o in stats and stats[o].finished >= MIN_SEEDS]
    outcomes = {o: compare(mine, stats[o]) for o in ready}
    behind = any(r.word == BEHIND for r in outcomes.values())
    if (missing or short) and (require_all or not behind):
        return None, f"{name}: not compared ({'; '.join(notes + short)})", ids
    words = [r.word for r in outcomes.values()]
    result = BEHIND if behind else LEAD if words and all(w == AHEAD for w in words) else \
        UNDECIDED if UNDECIDED in words else TIED
    versus = "; ".join(f"vs {stats[o].text()}: {r.text}, {r.word}" for o, r in outcomes.items())
    extra = f" ({'; '.join(notes + short)})" if notes or short else ""
    return result, f"{name}: {mine.text()} {versus} → {result}{extra}", ids


def majority(what: str):
    """decide(): supported when the outcome is 'lead' on more than half of the comparisons made; not supported
    when that cannot happen even if every undecided one were a lead; inconclusive otherwise."""
    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        if not made:
            return INCONCLUSIVE, f"no comparison could be made ({len(outcomes)} blocks, see below)"
        leads, ties, open_ = made.count(LEAD), made.count(TIED), made.count(UNDECIDED)
        behind = len(made) - leads - ties - open_
        summary = (f"{what} on {leads} of {len(made)} compared ({ties} ties, {behind} behind, {open_} undecided)"
                   f"{f'; {len(outcomes) - len(made)} not compared' if len(made) < len(outcomes) else ''}")
        if leads > len(made) / 2:
            return SUPPORTED, summary
        if leads + open_ > len(made) / 2:
            return INCONCLUSIVE, summary + ": the undecided comparisons decide"
        return NOT_SUPPORTED, summary
    return decide


def with_controls(frame: Frame, experiments, evaluate: Callable[[str, str], list[Item]]):
    """``extra`` for :func:`items`: the same rule applied to each control in place of RBO, in words."""
    results = {control: {(i.experiment, i.tier): i for i in evaluate(control, f"{CONTROL_NAMES[control]}")}
               for control in CONTROL_NAMES}

    def extra(experiment: str, tier: str, verdict: str) -> str:
        parts, passing = [], []
        for control, found in results.items():
            item = found.get((experiment, tier))
            if item is None:
                parts.append(f"{CONTROL_NAMES[control]}: no runs here")
                continue
            parts.append(f"{CONTROL_NAMES[control]}: {item.verdict} ({item.summary.split('. Evidence:')[0]})")
            passing += [control] if item.verdict == SUPPORTED else []
        text = ". Controls under the same rule: " + "; ".join(parts)
        if verdict == SUPPORTED and passing:
            text += ". " + ". ".join(f"So does {CONTROL_NAMES[c]}: {CONTROL_MEANING[c]}" for c in passing)
        return text
    return extra


# ---------------------------------------------------------------- the claims


def beats_baselines(frame: Frame, experiments, leader: str = "rbo", leader_name: str = "RBO") -> list[Item]:
    rows = list(dict.fromkeys((dataset, model) for dataset, model, _, _ in frame.paper))
    found = {}
    groups = frame.groups
    paper = groups[groups["tier"] == PAPER_SCALE] if len(groups) else groups
    for experiment in experiments:
        mine = paper[paper["experiment"] == experiment] if len(paper) else paper
        if not len(mine):
            continue
        found[(experiment, PAPER_SCALE)] = [
            lead(block, f"{d}/{m}", which(block, leader), BASELINES, leader_name=leader)
            for d, m in rows for block in [mine[(mine["dataset"] == d) & (mine["model"] == m)]]]

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        wins, ties, open_ = made.count(LEAD), made.count(TIED), made.count(UNDECIDED)
        missing = len(rows) - len(made)
        summary = (f"{leader_name} best beyond noise on {wins} of {len(made)} rows compared ({ties} ties, "
                   f"{len(made) - wins - ties - open_} behind, {open_} undecided); {missing} of the paper's "
                   f"{len(rows)} rows without n ≥ {MIN_SEEDS} seeds per optimizer")
        if len(made) < TABLE1_MIN_ROWS:
            return INCONCLUSIVE, f"{summary} (need {TABLE1_MIN_ROWS} rows compared)"
        if wins >= TABLE1_WINS:
            return SUPPORTED, summary
        if wins + open_ + missing < TABLE1_WINS:
            return NOT_SUPPORTED, summary
        return INCONCLUSIVE, f"{summary}: the missing or undecided rows decide"
    extra = None if leader != "rbo" else with_controls(
        frame, experiments, lambda c, n: beats_baselines(frame, experiments, c, n))
    return items(found, decide, frame.groups, extra)


def which(block: pd.DataFrame, leader: str):
    """The leader as :func:`select` takes it: an optimizer name, or a control's mask."""
    return is_control(block, leader) if leader in CONTROL_NAMES else leader


def _convergence(frame: Frame, experiments, leader: str) -> dict:
    """Per block and baseline: (epoch ratio, gradient-evaluation ratio) at which the leader's mean training loss
    first reaches the baseline's final one, or None with the reason."""
    found = {}
    for experiment, tier, name, block in blocks(frame.groups, experiments):
        top, note = select(block, which(block, leader), leader)
        if top is None and note.startswith("no "):
            continue
        for other in BASELINES:
            base, other_note = select(block, other)
            if base is None and other_note.startswith("no "):
                continue
            found.setdefault((experiment, tier), []).append(
                _ratio(frame.curves, top, base, f"{name} vs {other}", note or other_note))
    return found


def _ratio(curves: pd.DataFrame, top, base, name: str, note: str) -> Result:
    if top is None or base is None:
        return None, f"{name}: not compared ({note})", []
    ids, r, b = [top["group"], base["group"]], stat(top), stat(base)
    short = too_few_seeds(r, b)
    if short:
        return None, f"{name}: not compared ({'; '.join(short)})", ids
    if not paired(top, base):
        return None, f"{name}: not compared (unpaired: {unpaired_keys(top, base)} differ)", ids
    if r.failed or b.failed:
        loser = r if r.failed else b
        ratio = math.inf if r.failed else 0.0
        return (ratio, ratio), f"{name}: {loser.label} diverged/failed (seeds {loser.failed}), counted against it", ids
    if base["epochs"] < MIN_RATIO_EPOCHS:
        return None, f"{name}: not compared ({base['epochs']:g} epochs; a ratio needs ≥ {MIN_RATIO_EPOCHS})", ids
    if not trained(base):
        return None, (f"{name}: not compared ({b.label} did not train: final loss {base['train_loss_mean']:.4f} > "
                      f"{TRAINED_LOSS} × ln(classes) = {TRAINED_LOSS * chance_loss(base['dataset']):.4f})"), ids
    curve = curves[(curves["group"] == top["group"]) & (curves["epoch"] >= 1)] if len(curves) else curves
    target = base["train_loss_mean"]
    hit = curve[curve["train_loss_mean"] <= target]
    epochs, evals = (float(hit["epoch"].iloc[0]), float(hit["grad_evals"].iloc[0])) if len(hit) else (math.inf,) * 2
    ratios = (epochs / base["epochs"], evals / base["grad_evals"])
    when = f"after {epochs:g} epochs ({evals:,.0f} evals)" if len(hit) else "never"
    return ratios, (f"{name}: {b.label}'s final train loss {target:.4f} after {base['epochs']:g} epochs "
                    f"({base['grad_evals']:,.0f} evals); {r.label} reaches it {when}: epoch ratio {ratios[0]:.2f}, "
                    f"gradient-evaluation ratio {ratios[1]:.2f}"), ids


def _faster(index: int, what: str):
    def evaluate(frame: Frame, experiments, leader: str = "rbo", leader_name: str = "RBO") -> list[Item]:
        def decide(outcomes):
            made = [o[index] for o in outcomes if o is not None]
            if not made:
                return INCONCLUSIVE, f"no comparison met the minimum ({len(outcomes)} candidates, see below)"
            median = float(pd.Series(made).median())
            verdict = SUPPORTED if median <= FASTER_RATIO else NOT_SUPPORTED
            return verdict, f"{leader_name}: median {what} ratio {median:.2f} over {len(made)} comparisons"
        extra = None if leader != "rbo" else with_controls(frame, experiments, lambda c, n: evaluate(
            frame, experiments, c, n))
        return items(_convergence(frame, experiments, leader), decide, frame.groups, extra)
    return evaluate


def radius_heatmap(frame: Frame, experiments) -> list[Item]:
    found = {}
    for (experiment, dataset, model), grid in frame.heatmaps.items():
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
            words = [o.word for o in outcomes]
            wins, losses, open_ = words.count(AHEAD), words.count(BEHIND), words.count(UNDECIDED)
            ok = AHEAD if wins > len(cells) / 2 and not losses else \
                UNDECIDED if not losses and wins + open_ > len(cells) / 2 else BEHIND
            versus = "; ".join(f"{c.text()}: {o.text}, {o.word}" for c, o in zip(cells, outcomes))
            text = {AHEAD: "region ahead", BEHIND: "region not ahead", UNDECIDED: "undecided"}[ok]
            results.append((ok, f"{name}: against ρ={smallest['radius']:g} {small.text()}: {versus} → {text}", ids))

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        if not made:
            return INCONCLUSIVE, f"no η column could be compared ({len(outcomes)} columns, see below)"
        ahead, open_ = made.count(AHEAD), made.count(UNDECIDED)
        summary = (f"1 ≤ ρ ≤ 5 ahead of the smallest ρ at {ahead} of {len(made)} η compared ({open_} undecided)")
        if ahead > len(made) / 2:
            return SUPPORTED, summary
        return (INCONCLUSIVE, summary + ": the undecided columns decide") if ahead + open_ > len(made) / 2 else \
            (NOT_SUPPORTED, summary)
    return items(found, decide, frame.groups)


def _outcome_result(word: str) -> str:
    return {AHEAD: LEAD, BEHIND: BEHIND, TIE: TIED, UNDECIDED: UNDECIDED}[word]


def radius_control(frame: Frame, experiments) -> list[Item]:
    found = {}
    varied = {"optimizer", "optimizer.radius"}
    for experiment, tier, name, block in blocks(frame.groups, experiments):
        results = found.setdefault((experiment, tier), [])
        rbo_groups = [r for _, r in block[block["optimizer"] == "rbo"].iterrows()]
        for _, zero in block[block["optimizer"] == "rbo_radius0"].iterrows():
            twins = [r for r in rbo_groups if paired(r, zero, varied.__contains__)]
            if not twins:
                results.append((None, f"{name}: {label(zero)} unpaired (no rbo group differing only in ρ)",
                                [zero["group"]]))
            for rbo in twins:
                r, z, ids = stat(rbo), stat(zero), [rbo["group"], zero["group"]]
                short = too_few_seeds(r, z)
                if short:
                    results.append((None, f"{name}: not compared ({'; '.join(short)})", ids))
                    continue
                o = compare(r, z)
                results.append((_outcome_result(o.word), f"{name}: RBO ρ={rbo['radius']:g} {r.text()} vs ρ=0 "
                                                         f"{z.text()}: {o.text}, {o.word}", ids))
    return items(found, majority("ρ > 0 ahead of ρ = 0"), frame.groups)


def stable_large_lr(frame: Frame, experiments) -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(frame.groups, experiments):
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
    return items(found, decide, frame.groups)


def zero_radius_is_gd(frame: Frame, experiments) -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(frame.groups, experiments):
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
            if not paired(zero, control):
                results.append((None, f"{name}: {z.label} and {c.label} unpaired ({unpaired_keys(zero, control)} "
                                      "differ)", ids))
                continue
            short = too_few_seeds(z, c)
            if short:
                results.append((None, f"{name}: not compared ({'; '.join(short)})", ids))
                continue
            o = compare(z, c)
            verdict = {TIE: "agree", AHEAD: "disagree", BEHIND: "disagree"}.get(o.word, UNDECIDED)
            results.append((verdict, f"{name}: {z.text()} vs {c.text()} (lr {control['lr']:.4g}): {o.text} → "
                                     f"{verdict}", ids))

    def decide(outcomes):
        agree, disagree = outcomes.count("agree"), outcomes.count("disagree")
        summary = f"agreement within ±{EQUIVALENCE_MARGIN_PP:g} pp on {agree} of {len(outcomes)} pairs"
        if disagree:
            return NOT_SUPPORTED, summary + f", {disagree} disagree"
        if outcomes and agree == len(outcomes):
            return SUPPORTED, summary
        return INCONCLUSIVE, summary + f", {len(outcomes) - agree} undecided or not paired"
    return items(found, decide, frame.groups)


def tuned_baselines(frame: Frame, experiments, leader: str = "rbo", leader_name: str = "RBO") -> list[Item]:
    found = {}
    for experiment, tier, name, block in blocks(frame.groups, experiments):
        found.setdefault((experiment, tier), []).append(
            lead(block, name, which(block, leader), TUNED, require_all=False, leader_name=leader))
    extra = None if leader != "rbo" else with_controls(
        frame, experiments, lambda c, n: tuned_baselines(frame, experiments, c, n))
    return items(found, majority(f"{leader_name} ahead of every validation-tuned baseline"), frame.groups, extra)


def _equal_of(frame: Frame) -> Callable[[pd.Series], Stat]:
    """A group's :class:`Stat` at SGD's gradient-evaluation budget (its row of the equal-compute table)."""
    rows = frame.equal.set_index("group") if len(frame.equal) else frame.equal
    return lambda group: stat(group, equal=rows.loc[group["group"]])


def _evaluated_within_budget(frame: Frame, group) -> bool:
    """Whether the group's runs hold an evaluation after init within SGD's gradient-evaluation budget."""
    row = frame.equal[frame.equal["group"] == group["group"]] if len(frame.equal) else frame.equal
    return bool(len(row)) and number(row["evals_sgd_budget"].iloc[0]) > 0


def compute_matched(frame: Frame, experiments, leader: str = "rbo", leader_name: str = "RBO") -> list[Item]:
    found, of = {}, _equal_of(frame)
    for experiment, tier, name, block in blocks(frame.groups, experiments):
        rivals = [o for o in dict.fromkeys(block["optimizer"]) if o != "rbo" and o not in CONTROLS]
        found.setdefault((experiment, tier), []).append(
            lead(block, name, which(block, leader), rivals, of=of, leader_name=leader))
    extra = None if leader != "rbo" else with_controls(
        frame, experiments, lambda c, n: compute_matched(frame, experiments, c, n))
    return items(found, majority(f"{leader_name} ahead of every optimizer at SGD's gradient-evaluation budget"),
                 frame.groups, extra)


def inner_solver(frame: Frame, experiments) -> list[Item]:
    found, of = {}, _equal_of(frame)
    for experiment, tier, name, block in blocks(frame.groups, experiments):
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
        if not paired(converged, sgd):
            results.append((None, f"{name}: not compared (unpaired: {unpaired_keys(converged, sgd)} differ)", ids))
            continue
        at_budget = _evaluated_within_budget(frame, converged)
        c, s = (of(converged), of(sgd)) if at_budget else (stat(converged), stat(sgd))
        how = "at SGD's gradient-evaluation budget" if at_budget else \
            "at equal epochs (the records hold no RBO evaluation after init within SGD's budget)"
        short = too_few_seeds(c, s)
        if short:
            results.append((None, f"{name}: not compared ({'; '.join(short)})", ids))
            continue
        o = compare(c, s)
        line = f"{name}, {how}: {c.text()} vs {s.text()}: {o.text}, {o.word}"
        if gd is not None and paired(converged, gd) and not too_few_seeds(stat(converged), stat(gd)):
            g = compare(stat(converged), stat(gd))
            line += f"; against the authors' RBO at equal epochs {stat(gd).text()}: {g.text}, {g.word}"
        notes = [n for n in (note, sgd_note, gd_note) if n]
        results.append((_outcome_result(o.word), line + (f" ({'; '.join(notes)})" if notes else ""), ids))
    out = items(found, majority("RBO with a converged projection ahead of SGD at its best validation lr"),
                frame.groups)
    local = frame_theory(frame).get("local_vs_global")
    if local is not None:
        for item in out:
            item.lines.append(f"1-D, local against global projection (`paper/ironing` record): {local['evidence']}")
    return out


def _twin(block: pd.DataFrame, base, scale: float, rescale: bool):
    """The group of ``base``'s optimizer at loss scale ``scale`` differing from ``base`` only in the loss scale and,
    with ``rescale``, in step sizes divided by the scale (lr; RBO's η and γ): the unchanged and the rescaled twin."""
    allowed = {"loss_scale"} | ({"optimizer.lr", "optimizer.proj_lr"} if rescale else set())
    for _, g in block[(block["optimizer"] == base["optimizer"]) & (block["loss_scale"] == scale)].iterrows():
        if not paired(base, g, allowed.__contains__):
            continue
        lr_ratio = number(g["lr"]) / number(base["lr"])
        if rescale == (not math.isclose(lr_ratio, 1.0)) and (not rescale or math.isclose(lr_ratio * scale, 1.0)):
            return g
    return None


def _ranking_change(pair, name: str) -> Result:
    """RBO against a rival at two loss scales: 'changed' when the outcome differs and the difference itself moved
    significantly (Welch, t quantile) beyond the floor; 'same' when both are decided and it did not; else
    'undecided'."""
    (r1, b1), (r2, b2) = pair
    stats = [(stat(r1), stat(b1)), (stat(r2), stat(b2))]
    ids = [g["group"] for g in (r1, b1, r2, b2)]
    short = too_few_seeds(*(s for two in stats for s in two))
    if short:
        return None, f"{name}: not compared ({'; '.join(short)})", ids
    a, b = (compare(*two) for two in stats)
    shift = b.diff - a.diff
    se = math.hypot(a.se, b.se)
    df = min(a.df, b.df)
    moved = not math.isfinite(shift) or abs(shift) > max(FLOOR_PP, t_quantile(0.975, df) * se if se > 0 else 0.0)
    decided = a.word != UNDECIDED and b.word != UNDECIDED
    result = ("changed" if a.word != b.word and moved else "same") if decided else UNDECIDED
    said = {"changed": "ranking changed beyond noise", "same": "no change beyond noise"}.get(result, result)
    return result, (f"{name}: {stats[0][0].text()} vs {stats[0][1].text()}: {a.text}, {a.word}; then "
                    f"{stats[1][0].text()} vs {stats[1][1].text()}: {b.text}, {b.word} → {said}"), ids


def loss_scale(frame: Frame, experiments) -> list[Item]:
    found, controls = {}, {}
    for experiment, tier, name, block in blocks(frame.groups, experiments):
        scales = sorted(block["loss_scale"].dropna().unique())
        results = found.setdefault((experiment, tier), [])
        if len(scales) < 2:
            results.append((None, f"{name}: one loss scale only", list(block["group"])))
            continue
        low, high = scales[0], scales[-1]
        base = block[block["loss_scale"] == low]
        picks = {o: select(base, o) for o in ("rbo", "sgd", "sam")}
        if picks["rbo"][0] is None:
            results.append((None, f"{name}: not compared ({picks['rbo'][1]})", list(block["group"])))
            continue
        lines = controls.setdefault((experiment, tier), [])
        for rival in ("sgd", "sam"):
            one = picks[rival][0]
            if one is None or not paired(picks["rbo"][0], one):
                results.append((None, f"{name} RBO vs {rival}: not compared ({picks[rival][1] or 'unpaired'})", []))
                continue
            plain = [_twin(block, g, high, rescale=False) for g in (picks["rbo"][0], one)]
            if any(g is None for g in plain):
                results.append((None, f"{name} RBO vs {rival}: no twin at loss scale {high:g}", []))
                continue
            results.append(_ranking_change([(picks["rbo"][0], one), plain],
                                           f"{name} RBO vs {rival}, loss scale {low:g} then {high:g}"))
            rescaled = [_twin(block, g, high, rescale=True) for g in (picks["rbo"][0], one)]
            if all(g is not None for g in rescaled):
                outcome, line, _ = _ranking_change(
                    [(picks["rbo"][0], one), rescaled],
                    f"{name} RBO vs {rival}, loss scale {low:g} then {high:g} with every step size divided by {high:g}")
                lines.append((outcome, line))
            if rescaled[1] is not None and not too_few_seeds(stat(one), stat(rescaled[1])):
                o = compare(stat(rescaled[1]), stat(one))
                lines.append((None, f"{name} exact invariance: {stat(rescaled[1]).text()} under × {high:g} vs "
                                    f"{stat(one).text()} under × {low:g}: {o.text}, {o.word} (expected a tie: the same "
                                    f"steps up to rounding)"))

    def decide(outcomes):
        made = [o for o in outcomes if o is not None]
        summary = (f"ranking changed beyond noise on {made.count('changed')} of {len(made)} pairs compared "
                   f"({made.count(UNDECIDED)} undecided)")
        if not made:
            return INCONCLUSIVE, f"no pair could be compared at two loss scales ({len(outcomes)} candidates)"
        if "changed" in made:
            return NOT_SUPPORTED, summary
        return (SUPPORTED, summary) if UNDECIDED not in made else (INCONCLUSIVE, summary)

    def extra(experiment: str, tier: str, verdict: str) -> str:
        found_lines = controls.get((experiment, tier), [])
        rescaled = [o for o, _ in found_lines if o is not None]
        if not rescaled:
            return ""
        if "changed" in rescaled:
            return (". With every step size divided by the loss scale (SGD and SAM at lr/10, RBO at η/10 and γ/10) "
                    "the ranking still changes: RBO's own response to the scale")
        if verdict == NOT_SUPPORTED and UNDECIDED not in rescaled:
            return (". With every step size divided by the loss scale (SGD and SAM at lr/10, RBO at η/10 and γ/10) "
                    "the ranking is the one at × 1: the flip comes from the step sizes the loss scale multiplies, "
                    "which the paper's settings do not rescale")
        return ". With every step size divided by the loss scale: " + ", ".join(rescaled)

    out = items(found, decide, frame.groups, extra)
    for item in out:
        item.lines += [line for _, line in controls.get((item.experiment, item.tier), [])]
    return out


# ---------------------------------------------------------------- the 1-D rows (paper/ironing record)


def frame_theory(frame: Frame) -> dict:
    """The 1-D record's claim rows (``experiments.ironing.claim_rows``), {} when there is no record."""
    record = getattr(frame, "ironing", None)
    if not record:
        return {}
    from experiments.ironing import claim_rows

    return claim_rows(record)


def record_row(key: str):
    """An evaluate function for a claim whose verdict the 1-D record states itself (its own rule)."""
    def evaluate(frame: Frame, experiments) -> list[Item]:
        found = frame_theory(frame).get(key)
        if found is None:
            return [Item("paper/ironing", None, INCONCLUSIVE, "the 1-D record (`make ironing`) is not there", [], [])]
        if found.get("verdict") not in VERDICTS:
            raise ValueError(f"claim_rows()[{key!r}] gave verdict={found.get('verdict')!r}; allowed: "
                             f"{', '.join(VERDICTS)}")
        return [Item("paper/ironing", None, found["verdict"], str(found["evidence"]), [], [], 1, str(found["rule"]))]
    return evaluate


# ---------------------------------------------------------------- the claims as data


@dataclass
class Claim:
    title: str
    rule: str
    short_rule: str  # the rule in a few words, for the summary table
    experiments: tuple[str, ...]  # the only experiments its verdict may rest on
    evaluate: Callable[[Frame, tuple[str, ...]], list[Item]]
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


def claim_specs() -> list[Claim]:
    seeds, noise = f"n ≥ {MIN_SEEDS} seeds per group", "ahead by Welch's t (two-sided 5 %) and beyond 0.5 pp"
    controls = "; the same rule for SGD at RBO's step and RBO with ρ = 0"
    return [
        Claim("RBO beats SGD, Entropy-SGD and SAM in accuracy on 5 of the 7 rows of Table 1",
              f"Paper scale only. Per row of the paper's Table 1 with {seeds} for all four optimizers: RBO is best "
              f"when it is {noise} of each of SGD, Entropy-SGD and SAM (a tie is not a win; divergence counts "
              f"against the optimizer that diverged). Inconclusive with fewer than {TABLE1_MIN_ROWS} of the 7 rows "
              f"compared, or while the rows still missing or undecided could change the answer; supported when RBO "
              f"is best on ≥ {TABLE1_WINS} rows; not supported when it cannot reach {TABLE1_WINS} even if every "
              f"missing or undecided row were a win. The same rule is applied to SGD at RBO's step and to RBO with "
              f"ρ = 0.",
              f"≥ {TABLE1_MIN_ROWS}/7 rows × {seeds}; RBO best on ≥ {TABLE1_WINS}{controls}",
              TABLE1[:1], beats_baselines),
        Claim("Faster convergence per epoch: RBO reaches the others' final training loss in about half the epochs",
              f"Per row and baseline (SGD, Entropy-SGD, SAM) with {seeds}: the first epoch at which RBO's mean "
              f"training loss (the epoch's running mean, averaged over completed seeds) is at or below the "
              f"baseline's final mean training loss, divided by the baseline's epochs (∞ if never), with the "
              f"gradient-evaluation ratio beside it. A comparison needs a baseline that trained (final loss ≤ "
              f"{TRAINED_LOSS} × ln(classes)) for ≥ {MIN_RATIO_EPOCHS} epochs and the same config but the "
              f"optimizer; RBO diverging counts as ∞, a baseline diverging as 0. Supported when the median epoch "
              f"ratio is ≤ {FASTER_RATIO}; inconclusive when no comparison meets the minimum. The same rule is "
              f"applied to SGD at RBO's step and to RBO with ρ = 0.",
              f"median epoch ratio ≤ {FASTER_RATIO}; trained baseline, ≥ {MIN_RATIO_EPOCHS} epochs{controls}",
              CONVERGENCE, _faster(0, "epoch")),
        Claim("Faster convergence at equal compute: RBO reaches the others' final training loss with about half "
              "their gradient evaluations",
              f"The comparisons of claim 2 (same minimum evidence), measured in gradient evaluations: RBO's "
              f"evaluations when its mean training loss first reaches the baseline's final one, divided by the "
              f"baseline's evaluations for its whole run. Supported when the median ratio is ≤ {FASTER_RATIO}. The "
              f"same rule is applied to SGD at RBO's step and to RBO with ρ = 0.",
              f"median gradient-evaluation ratio ≤ {FASTER_RATIO}; as claim 2{controls}", CONVERGENCE,
              _faster(1, "gradient-evaluation")),
        Claim("The radius matters: on the ρ–η heat map the best region (1 ≤ ρ ≤ 5) beats the smallest ρ",
              f"Per η column of RBO's ρ × η grid where something trained (a completed cell with mean test accuracy "
              f"≥ 2 × chance; other columns are left out): each cell with 1 ≤ ρ ≤ 5 against the column's smallest ρ "
              f"(< 1), {noise}, n ≥ {MIN_SEEDS} seeds per cell. A column supports the claim when more than half of "
              f"its region cells are ahead and none is behind. Supported when more than half of the columns "
              f"compared support it; inconclusive when no column can be compared or the undecided columns decide.",
              f"region ahead of smallest ρ in most trained η columns; n ≥ {MIN_SEEDS} seeds per cell",
              HEATMAP, radius_heatmap),
        Claim("The radius matters: RBO against the same RBO with ρ = 0 (control `rbo_radius0`)",
              f"Pairs of `rbo` and `rbo_radius0` groups of the same row whose configs differ only in ρ, {seeds}: "
              f"supported when RBO is {noise} on more than half of the pairs compared (RBO diverging where ρ = 0 "
              f"trains is a loss); not supported when that cannot happen even if every undecided pair went to "
              f"RBO; inconclusive otherwise.",
              f"ρ > 0 ahead of ρ = 0 on most pairs; {seeds}", TABLE1, radius_control),
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
              f"`rbo_radius0` runs (`optimizer.reference=rbo_radius0`), same config but the optimizer, {seeds}: a "
              f"pair agrees when the 90 % confidence interval of the difference (Welch, t quantile) lies inside "
              f"±{EQUIVALENCE_MARGIN_PP:g} pp, disagrees when the difference is significant (two-sided 5 %) and "
              f"beyond {FLOOR_PP} pp (or one side diverged), else is undecided. Supported when every pair agrees; not "
              f"supported when any disagrees; otherwise inconclusive. The exact identity (a converged projection at "
              f"ρ → 0 is a GD step, SPEC §1) is a unit test of `rbo/`; this is the empirical check.",
              f"90 % CI inside ±{EQUIVALENCE_MARGIN_PP:g} pp for every pair; {seeds}", TABLE1, zero_radius_is_gd),
        Claim("The ball irons out wrinkles smaller than ρ (the 1-D figure)",
              "From the 1-D record (`experiments.ironing`, `results/records/paper/ironing/record.json`): the exact "
              "rolling ball, RBO with an exact projection, rbo.RBO, the authors' demo and its ablation, and "
              "gradient descent; its own rule:", "see the record's rule", IRONING, record_row("ironing")),
        Claim("Tuned baselines: RBO still leads when SGD with momentum, SAM (momentum) and AdamW get their learning "
              "rate chosen on validation accuracy",
              f"Per row: each of `sgd_momentum`, `sam_momentum`, `adamw` at the learning rate with the best mean "
              f"validation accuracy, RBO at its setting (validation-selected if several), reported on test "
              f"accuracy, {seeds}. RBO leads when it is {noise} of all three; it is behind when any is ahead of it "
              f"(a result even if another baseline is missing). Supported when RBO leads on more than half of the "
              f"rows compared; inconclusive when no row can be compared or the undecided rows decide. The same rule "
              f"is applied to SGD at RBO's step and to RBO with ρ = 0.",
              f"RBO ahead of all three tuned baselines on most rows; {seeds}{controls}", TUNED_EXPERIMENTS,
              tuned_baselines),
        Claim("Equal compute: RBO leads at the same number of gradient evaluations",
              f"Per row: every optimizer's test accuracy at SGD's gradient-evaluation budget (the last evaluation "
              f"at or below it, the evaluations actually spent shown), {seeds}. Supported when RBO is {noise} of "
              f"every other optimizer (the controls aside) on more than half of the rows compared. The same rule "
              f"is applied to SGD at RBO's step and to RBO with ρ = 0.",
              f"RBO ahead of all at SGD's budget on most rows; {seeds}{controls}", COMPUTE_MATCHED, compute_matched),
        Claim("The ball, not the inner solver: RBO with a converged projection still beats SGD at its best "
              "validation learning rate",
              f"Per row: RBO with a converged projection (Newton if present, else Gauss–Newton; the setting with "
              f"the best validation accuracy) against SGD at the learning rate with the best validation accuracy, "
              f"at SGD's gradient-evaluation budget where the records hold an RBO evaluation after init within it, "
              f"else at equal epochs (said on each line); the authors' RBO (gd, K 100, γ 1e-3) beside it at equal "
              f"epochs. {seeds}, {noise}. Supported when converged RBO is ahead on more than half of the rows "
              f"compared.",
              f"converged-projection RBO ahead of best-lr SGD on most rows; {seeds}", INNER_SOLVER, inner_solver),
        Claim("Loss scale: the ranking of RBO against SGD and SAM is the same at loss scale 1 and 10",
              f"Per row and pair (RBO vs SGD, RBO vs SAM), {seeds}, configs equal but the loss scale: the outcome "
              f"(ahead, tie, behind, undecided) at the smallest and at the largest loss scale. The ranking changes "
              f"when both outcomes are decided, they differ, and the difference itself moved significantly (Welch, "
              f"t quantile) and beyond {FLOOR_PP} pp. Supported when no pair changes; not supported when one does; "
              f"inconclusive when a pair is undecided or none can be compared. Controls, reported beside it: SGD "
              f"and SAM at lr/10 under × 10 (the same steps as at × 1: an exact invariance), and RBO with η and γ "
              f"divided by 10 against them.",
              f"no RBO-vs-SGD/SAM outcome flips between loss scales; {seeds}", LOSS_SCALE, loss_scale),
        Claim("Lemma 1 (weak ironing): for a bounded loss, the ball's height u_ρ − ρ flattens as ρ grows",
              "From the 1-D record; its own rule:", "see the record's rule", IRONING, record_row("lemma1")),
        Claim("Proposition 2 (linear ironing): on an affine loss plus a bounded one, the ball follows the affine part "
              "as ρ grows",
              "From the 1-D record; its own rule:", "see the record's rule", IRONING, record_row("prop2")),
        Claim("Proposition 3 (unreachable points): a point whose curvature exceeds 1/ρ is never a contact point",
              "From the 1-D record; its own rule:", "see the record's rule", IRONING, record_row("prop3")),
    ]


def evaluate_claims(frame: Frame) -> list[Claim]:
    claims = claim_specs()
    for claim in claims:
        claim.items = claim.evaluate(frame, claim.experiments)
    return claims


def reproduce_command(experiment: str) -> str:
    if experiment == "paper/ironing":
        return "make ironing"
    return REPRODUCE.get(experiment.split("/")[0], "make experiments EXPERIMENTS=" + experiment)
