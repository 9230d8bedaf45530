"""The third step of the results pipeline (records → frame → **tables** → statistics → claims → figures → index):
the tables of ``results/<experiment>/`` from a :class:`~scripts.frame.Frame`, as Markdown, CSV and LaTeX.

- ``table``: one row per group of seeds with its final metrics, status counts, the paper's value beside ours and
  the cost in gradient evaluations (seconds are in the CSV only: the records were timed under varying load);
- ``equal_compute`` (experiments with at least two optimizers): accuracy at equal epochs and at equal gradient
  evaluations; a group that spent no step within a budget is marked so (its accuracy there is the untrained
  model's);
- ``table1_view``: the same accuracies in the shape of the paper's Table 1, ours beside the paper's;
- ``heatmap_<dataset>_<model>`` for an RBO ρ × η grid;
- ``curves`` (CSV): the mean curves the figures draw;
and ``results/runs.csv``, one row per run. Titles name the evidence tier; every table says whether a validation
split was held out and which code version produced it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from scripts.frame import OPTIMIZERS, Frame
from scripts.records import TIERS, atomic_write, atomic_write_text, num, pm


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
        "code": [f"mixed: {c} (commits {m})" if mixed else c for c, mixed, m in
                 zip(rows["code"], rows["mixed_code"], rows["commits"])],
    })


def _display_equal(rows: pd.DataFrame) -> pd.DataFrame:
    def acc(name):
        """The accuracy at a budget; where no step fit within it, said in the cell (the untrained model's)."""
        return [pm(m, s) + (" (no step within the budget: the untrained model)" if evals == 0 else "")
                for m, s, evals in zip(rows[f"acc_{name}_budget_mean"], rows[f"acc_{name}_budget_std"],
                                       rows[f"evals_{name}_budget"])]

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


TABLE_NOTE = ("Generated by `make tables` (`python -m scripts.results`) from the run records; do not edit. Mean ± "
              "sample std (ddof = 1) over the n completed seeds; diverged, failed and running runs are counted in "
              "`status`, not averaged. `paper %` = arXiv 2505.19527v3 Table 1 (`results/paper/table1.csv`), shown "
              "for groups trained for the paper's 10 epochs; `diff pp` = ours − paper in percentage points. Cost: "
              "training gradient evaluations (mean over completed runs); the CSV also holds training seconds, which "
              "were measured under varying machine load and are not comparable between rows. `code`: the source "
              "hash of the code that produced the group's records.")
EQUAL_NOTE = ("Test accuracy at equal epochs and at equal gradient evaluations. SGD budget = epochs (capped by "
              "`max_sgd_epochs`) × minibatches per epoch, what SGD spends on the whole run; RBO budget = the full "
              "budget of the `rbo` runs. The accuracy at a budget is the run's last evaluation at or below it, "
              "never one beyond it: `evals @ … budget` = the gradient evaluations spent at that evaluation (mean over "
              "seeds), `at epoch` = when it was taken; a run that ended below a budget reports its final accuracy "
              "there (`reached` counts the runs that did reach RBO's budget).")


def code_note(rows: pd.DataFrame) -> str:
    """Whether one code version produced the experiment's records (issue 20: a group that mixes versions says so)."""
    mixed = rows[rows["mixed_code"]]
    if len(mixed):
        return (f"{len(mixed)} group(s) mix code versions (`code` says which): their seeds ran different code and "
                "are marked so wherever they are compared.")
    codes = sorted(set(rows["code"]))
    return f"Code version{'s' if len(codes) > 1 else ''} of these records: {', '.join(codes)}."


def experiment_title(experiment: str, rows: pd.DataFrame) -> str:
    """The experiment's name and the evidence tier(s) of its datasets (synthetic: not evidence)."""
    tiers = [t for t in TIERS if t in set(rows["tier"])]
    if rows["tier"].isna().any():
        tiers.append("synthetic data, not evidence")
    return f"{experiment} ({'; '.join(tiers)})"


def split_note(rows: pd.DataFrame, diff_column: bool = True) -> str:
    """Which training split the groups trained on (issue 10: the paper trained on the whole split); the caveat about
    `diff pp` only for a table that has that column."""
    held = sorted({int(v) for v in rows["val_size"].dropna() if v > 0})
    whole = bool((rows["val_size"] == 0).any())
    if not held:
        return "Trained on the whole training split (no validation split), as the paper did." if whole else \
            "Training split: not recorded."
    text = (f"A validation split of {' or '.join(f'{v:,}' for v in held)} examples was held out of the training "
            "split (the paper trained on the whole split" + (", so `diff pp` compares a model trained on fewer "
                                                             "images)" if diff_column else ")"))
    return text + ("; some groups trained on the whole split." if whole else ".")




def write_tables(frame: Frame, out_dir: str | Path, whole: bool = True) -> list[Path]:
    """Every table of ``frame`` under ``out_dir`` and, for the ``whole`` suite, ``runs.csv``; returns the files
    written."""
    out = Path(out_dir)
    written = []
    experiments = frame.groups.groupby("experiment", sort=False) if len(frame.groups) else []
    for experiment, rows in experiments:
        folder = out / experiment
        name, split, no_diff = experiment_title(experiment, rows), split_note(rows), split_note(rows, False)
        numbers = rows.drop(columns=["params"])
        written += write_table(folder / "table", numbers, _display_table(rows), f"{name}: final metrics",
                               f"{TABLE_NOTE} {split} {code_note(rows)}")
        if rows["optimizer"].nunique() > 1:  # one optimizer (an RBO-only grid): nothing to compare at equal compute
            eq = frame.equal[frame.equal["experiment"] == experiment]
            written += write_table(folder / "equal_compute", eq, _display_equal(eq), f"{name}: at equal compute",
                                   f"{EQUAL_NOTE} {no_diff}")
        view = paper_view(rows)
        if view is not None:
            written += write_table(folder / "table1_view", view, view, f"{name}: test accuracy % in Table 1's shape",
                                   "Ours: mean ± std over completed seeds; paper: arXiv 2505.19527v3 Table 1.")
        for (exp, dataset, model), grid in frame.heatmaps.items():
            if exp == experiment:
                cols = ["radius", "lr", "n", "n_diverged", "status", "test_acc_mean", "test_acc_std",
                        "train_loss_mean", "train_loss_std"]
                written += write_table(folder / f"heatmap_{dataset}_{model}", grid[cols], heatmap_cells(grid),
                                       f"{name}: RBO final test accuracy %, {dataset}/{model}, ρ × η",
                                       f"Mean over completed seeds; 'div' = every run diverged. {no_diff}",
                                       index=True)
        if len(frame.curves):
            curves = frame.curves[frame.curves["group"].isin(rows["group"])]
            written.append(atomic_write(folder / "curves.csv", lambda tmp, c=curves: c.to_csv(tmp, index=False)))
    if whole:
        runs = frame.records.runs.drop(columns=["params", "config"], errors="ignore")
        written.append(atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False)))
    return written
