"""The first step of the results pipeline (records → frame → tables → statistics → claims → figures → index):
run records as tidy DataFrames, and what every step shares (atomic writes, number formatting, evidence tiers).

``load_records(*roots)`` reads every record under each root (the committed evidence, ``results/records/``, then
``runs/``; format: README.md "Run records") into one row per run (``summary.json``, ``config.yaml``) and one row per
evaluation point (``metrics.csv``). Runs that differ only in their seed share a ``group`` id: the hash of the
resolved config without the seed, the output-only keys and the registry keys. Each record checks itself:

- unreadable or incomplete (missing or corrupt ``summary.json``, a ``running`` run with no metrics yet): skipped;
- damaged (:func:`damage`: a finished record without ``config.yaml``, a summary out of range, a summary that
  disagrees with its ``metrics.csv``): listed, never averaged;
- a ``metrics.csv`` that cannot be read: the run's final metrics count, its curves do not;
- a finite blow-up (:data:`BLOWUP_RULE`) is a divergence, whatever the trainer recorded;
- two records of one group and seed (a rerun under a new run id) are one run: the newest finished one.
Every case is a :class:`RecordWarning` and a line of :meth:`Records.describe`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from omegaconf import MISSING

from experiments import config as _config
from experiments.config import ADDED_KEYS, OUTPUT_ONLY_KEYS, Config
from experiments.data import dataset_shape
from experiments.records import FINAL_KEYS, atomic_write, summary_problems

STATUSES = ("running", "completed", "diverged", "failed")
FINISHED_STATUSES = ("completed", "diverged", "failed")  # a result (a diverged or failed run counts, never dropped)
COST_KEYS = ("grad_evals", "diag_evals", "examples", "train_seconds", "warmup_seconds", "seconds_per_epoch",
             "grad_evals_per_step")
# Config keys that do not change what a run computes (README.md "Run records": run_id), plus the seed, which is what
# a group of runs is averaged over.
NOT_IN_GROUP = frozenset({*OUTPUT_ONLY_KEYS, "seed"})
REGISTRY_KEYS = frozenset(getattr(_config, "REGISTRY_KEYS", ()))  # dotted: how an optimizer is built and shown
# Top-level settings with a default (e.g. cuda_graphs, added after earlier records were written): a record
# without the key ran at the default, so it groups with the records that state it.
TOP_LEVEL_DEFAULTS = {f.name: str(f.default) if isinstance(f.default, str) else f.default
                      for f in dataclasses.fields(Config)
                      if f.default not in (dataclasses.MISSING, MISSING) and f.name not in NOT_IN_GROUP}
# Evidence tiers by dataset, strongest first (issue 10, issue 14); a dataset not listed (synthetic) is never evidence.
PAPER_SCALE, REAL_DATA, CPU_SCALE = "paper scale", "real data, full size, not in the paper", "CPU-scale subset"
TIERS = (PAPER_SCALE, REAL_DATA, CPU_SCALE)
TIER_OF_DATASET = {"mnist": PAPER_SCALE, "cifar10": PAPER_SCALE, "cifar100": PAPER_SCALE,
                   "fashion_mnist": REAL_DATA, "mnist_subset": CPU_SCALE}
RECORD_FILES = ("summary.json", "config.yaml", "metrics.csv", "checkpoint.pt")
IDENTITY = ("run_id", "experiment", "group", "optimizer", "dataset", "model", "seed", "status")  # per metrics row
BLOWUP_FACTOR = 10.0
BLOWUP_RULE = (f"a run whose final training loss is non-finite or above {BLOWUP_FACTOR:g} × ln(classes) (ten times the "
               "cross-entropy of a uniform guess, about what a fresh classifier starts from) diverged, whatever its "
               "record says: a finite blow-up is not a result to average")


class RecordWarning(UserWarning):
    """A run record was skipped or is partly unreadable."""


class _Skip(Exception):
    """Raised inside the loader to skip one record with a reason."""


@dataclass
class Records:
    runs: pd.DataFrame  # one row per run
    metrics: pd.DataFrame  # one row per evaluation point of a run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (record folder, reason)
    damaged: list[tuple[str, str]] = field(default_factory=list)  # never averaged: (record folder, reason)
    without_curves: list[tuple[str, str]] = field(default_factory=list)  # metrics.csv unreadable: (folder, reason)
    left_out: dict[str, int] = field(default_factory=dict)  # experiment not asked for -> its number of records
    superseded: list[tuple[str, str]] = field(default_factory=list)  # a newer record of its seed: (folder, which)
    blown_up: list[tuple[str, str]] = field(default_factory=list)  # counted as diverged: (folder, why)
    ad_hoc: dict[str, int] = field(default_factory=dict)  # experiment -> records its sweeps do not launch
    sources: list[str] = field(default_factory=list)  # the roots read, with their record counts

    def keep(self, mask: pd.Series, **changes) -> Records:
        """These records with only the runs of ``mask`` (and their metrics rows), other fields replaced."""
        runs = self.runs[mask].reset_index(drop=True) if len(self.runs) else self.runs
        metrics = self.metrics[self.metrics["run_id"].isin(runs["run_id"])] if len(self.metrics) else self.metrics
        return dataclasses.replace(self, runs=runs, metrics=metrics.reset_index(drop=True), **changes)

    def select(self, experiments) -> Records:
        """Only the records of ``experiments``; the others are counted in ``left_out``, never read into a table."""
        if not len(self.runs):
            return self
        keep = self.runs["experiment"].isin(set(experiments))
        left = self.runs.loc[~keep, "experiment"].value_counts().to_dict()
        return self.keep(keep, left_out={**self.left_out, **left})

    def describe(self) -> str:
        """Human-readable account of what was read, what was skipped and what was left out."""
        counts = self.runs["status"].value_counts() if len(self.runs) else pd.Series(dtype=int)
        by_status = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES if counts.get(s, 0))
        lines = [f"sources: {'; '.join(self.sources)}"] if self.sources else []
        lines += [
            f"read {len(self.runs)} run records ({by_status or 'none'}) in "
            f"{self.runs['experiment'].nunique() if len(self.runs) else 0} experiment(s), "
            f"{len(self.metrics)} evaluation rows; skipped {len(self.skipped)} unreadable or incomplete records"
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        if self.damaged:
            lines.append(f"left out {len(self.damaged)} damaged records (listed, never averaged):")
            lines += [f"  damaged {path}: {reason}" for path, reason in self.damaged]
        if self.without_curves:
            lines.append(f"read {len(self.without_curves)} records without their curves (final metrics only):")
            lines += [f"  without curves {path}: {reason}" for path, reason in self.without_curves]
        if self.blown_up:
            lines.append(f"counted {len(self.blown_up)} completed records as diverged ({BLOWUP_RULE}):")
            lines += [f"  blown up {path}: {why}" for path, why in self.blown_up]
        if self.superseded:
            lines.append(f"left out {len(self.superseded)} records superseded by a newer record of the same settings "
                         "and seed (one run per seed is averaged, never two):")
            lines += [f"  superseded {path}: by {by}" for path, by in self.superseded]
        if self.ad_hoc:
            lines.append(f"left out {sum(self.ad_hoc.values())} ad-hoc records (configs their experiment's sweeps do "
                         "not launch; never evidence): " + ", ".join(f"{name} ({n})" for name, n in
                                                                      sorted(self.ad_hoc.items())))
        if self.left_out:
            lines.append(f"left out {sum(self.left_out.values())} records of experiments not asked for: "
                         + ", ".join(f"{name} ({n})" for name, n in sorted(self.left_out.items())))
        return "\n".join(lines)


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested dict to dotted keys; lists become JSON strings so every value is hashable."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def _run_dirs(root: Path) -> list[Path]:
    """Every folder below ``root`` holding a record file, hidden folders (e.g. Hydra's ``.hydra``) excluded."""
    found = {p.parent for name in RECORD_FILES for p in root.rglob(name)}
    return sorted(d for d in found if not any(part.startswith(".") for part in d.relative_to(root).parts))


def _read_summary(path: Path) -> dict:
    try:
        summary = json.loads((path / "summary.json").read_text())
    except FileNotFoundError as err:
        raise _Skip("no summary.json") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Skip(f"corrupt summary.json ({err})") from err
    if not isinstance(summary, dict):
        raise _Skip("corrupt summary.json (not a JSON object)")
    missing = [k for k in ("status", "optimizer", "dataset", "model") if not summary.get(k)]
    if missing:
        raise _Skip(f"summary.json lacks {', '.join(missing)}")
    if summary["status"] not in STATUSES:
        raise _Skip(f"unknown status {summary['status']!r} (allowed: {', '.join(STATUSES)})")
    return summary


def _read_config(path: Path) -> dict | None:
    """``config.yaml`` as a dict; None when it is absent or unreadable (a finished record without it is damaged)."""
    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        warnings.warn(f"{path}: unreadable config.yaml ({err})", RecordWarning, stacklevel=3)
        return None
    return config if isinstance(config, dict) else None


METRICS_NEEDED = ("epoch", "trigger", "grad_evals")  # without these a metrics.csv cannot place a single point


def _read_metrics(path: Path) -> tuple[pd.DataFrame | None, str | None]:
    """``(metrics, None)``, ``(None, None)`` when there is no metrics.csv, ``(None, why)`` when it is unreadable
    (or lacks a column every row needs, or has a non-numeric epoch): warned, never silent."""
    try:
        metrics = pd.read_csv(path / "metrics.csv")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        why = f"unreadable metrics.csv ({err})"
    else:
        missing = [c for c in METRICS_NEEDED if c not in metrics]
        if not missing and len(metrics) and not pd.api.types.is_numeric_dtype(metrics["epoch"]):
            missing = ["a numeric epoch"]
        if not missing:
            return (metrics if len(metrics) else None), None
        why = f"metrics.csv lacks {', '.join(missing)}"
    warnings.warn(f"{path}: {why}; its run is read without curves", RecordWarning, stacklevel=3)
    return None, why


def damage(summary: dict, config: dict | None, metrics: pd.DataFrame | None) -> str | None:
    """Why a record cannot be averaged, or None: a finished run without ``config.yaml``; accuracies outside
    [0, 1] or negative counters in ``summary.json``; a final test accuracy or evaluation count that disagrees
    with the record's own ``metrics.csv`` (its last init/epoch row)."""
    finished = summary["status"] in FINISHED_STATUSES
    if finished and config is None:
        return "no readable config.yaml (rerunning the same config restores it)"
    bad = summary_problems(summary)  # the same test the trainer's rerun applies before it retrains a record
    if bad:
        return f"summary.json out of range: {'; '.join(bad)}"
    final, cost = summary.get("final") or {}, summary.get("cost") or {}
    if metrics is None or summary["status"] != "completed" or "test_acc" not in metrics:
        return None
    rows = metrics[metrics["trigger"].astype(str) != "budget"]
    if not len(rows):
        return "metrics.csv holds no init or epoch row for a completed run"
    last = rows.iloc[-1]
    said, seen = number(final.get("test_acc")), number(last.get("test_acc"))
    if not (math.isclose(said, seen, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(said) and math.isnan(seen))):
        return f"summary.json's final test_acc {said!r} disagrees with metrics.csv's last row ({seen!r})"
    evals = number(cost.get("grad_evals"))
    if evals < number(metrics["grad_evals"].max()):
        return (f"summary.json's cost.grad_evals {evals!r} is below metrics.csv's {metrics['grad_evals'].max()!r} "
                "(the counters only grow)")
    return None


def blowup(summary: dict) -> str | None:
    """Why a completed record counts as diverged (:data:`BLOWUP_RULE`), or None."""
    if summary["status"] != "completed":
        return None
    loss = number((summary.get("final") or {}).get("train_loss"))
    try:
        limit = BLOWUP_FACTOR * math.log(dataset_shape(summary["dataset"])[2])
    except (KeyError, ValueError):
        return None
    if math.isfinite(loss) and loss <= limit:
        return None
    return f"final training loss {loss:.4g} > {BLOWUP_FACTOR:g} × ln(classes) = {limit:.3g}"


def number(value) -> float:
    """``float(value)``, NaN for None or anything not numeric."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _hardware(summary: dict) -> str:
    hardware = summary.get("hardware")
    if isinstance(hardware, dict):
        hardware = ", ".join(f"{v}" for v in hardware.values() if v not in (None, ""))
    return str(hardware or summary.get("device") or "unknown")


def group_params(config: dict, summary: dict) -> dict:
    """What defines a group of seeds: the resolved config without the seed, the output-only keys and the registry
    keys (how an optimizer is built and shown, not what it computes), top-level keys it lacks at their defaults."""
    params = {k: v for k, v in flatten(config).items()
              if k.split(".")[0] not in NOT_IN_GROUP and k not in REGISTRY_KEYS}
    params = {**TOP_LEVEL_DEFAULTS, **ADDED_KEYS, **params}
    for key in ("experiment", "dataset", "model", "optimizer"):
        params.pop(f"{key}.name", None)
        params[key] = summary.get(key)
    params["experiment"] = params["experiment"] or ""
    return params


def _read_run(path: Path, root: Path) -> tuple[dict, pd.DataFrame | None, str | None]:
    summary = _read_summary(path)
    metrics, unreadable = _read_metrics(path)
    if summary["status"] == "running" and metrics is None:
        raise _Skip("status running with no metrics yet")
    config = _read_config(path)
    why = damage(summary, config, metrics)
    if why:
        raise _Damaged(why)
    params = group_params(config or {}, summary)
    if not summary.get("experiment"):
        params["experiment"] = str(path.parent.relative_to(root))
    key = json.dumps(params, sort_keys=True, default=str)
    blown = blowup(summary)
    status = "diverged" if blown else summary["status"]
    source = summary.get("source_sha256")
    row = {
        "run_id": summary.get("run_id") or path.name,
        "experiment": params["experiment"],
        "status": status,
        "optimizer": summary["optimizer"],
        "dataset": summary["dataset"],
        "model": summary["model"],
        "seed": summary.get("seed"),
        "epochs": number(summary.get("epochs")),
        "epochs_completed": number(summary.get("epochs_completed")),
        "diverged_at_epoch": number(summary.get("epochs_completed")) if blown else
        number(summary.get("diverged_at_epoch")),
        "error": f"blow-up: {blown}" if blown else summary.get("error"),
        "device": summary.get("device"),
        "hardware": _hardware(summary),
        "git_commit": summary.get("git_commit"),
        "code": source[:12] if isinstance(source, str) else "unknown",
        "finished_at": summary.get("finished_at") or summary.get("started_at") or "",
        "group": hashlib.sha256(key.encode()).hexdigest()[:10],
        "params": params,
        "config": config or {},
        "hyper": json.dumps({k: v for k, v in (summary.get("hyper") or {}).items()
                             if f"optimizer.{k}" not in REGISTRY_KEYS}, sort_keys=True, default=str),
        "path": str(path),
    }
    final, cost = summary.get("final") or {}, summary.get("cost") or {}
    row |= {f"final_{k}": number(final.get(k)) for k in FINAL_KEYS}
    row |= {f"cost_{k}": number(cost.get(k)) for k in COST_KEYS}
    row |= {f"hyper_{k}": v for k, v in (summary.get("hyper") or {}).items() if f"optimizer.{k}" not in REGISTRY_KEYS}
    row |= {f"diag_{k}": number(v) for k, v in (summary.get("diagnostics") or {}).items()}
    return row, metrics, unreadable


class _Damaged(Exception):
    """Raised inside the loader for a record that must not be averaged (:func:`damage`)."""


def load_records(*roots: str | Path) -> Records:
    """Read every run record under each root (any depth: experiment names may contain '/'); a record found under
    two roots (the same run_id: the committed copy and the live one) is read once, from the later root. A root
    that is not a folder is an error when it is the only one, and is named in ``sources`` otherwise."""
    folders = [Path(r) for r in roots]
    if len(folders) == 1 and not folders[0].is_dir():
        raise ValueError(f"runs_dir={str(folders[0])!r} is not a folder: pass the folder the trainer wrote runs into")
    rows, curves, skipped, damaged, without, sources = [], {}, [], [], [], []
    for rank, root in enumerate(folders):
        if not root.is_dir():
            sources.append(f"{root} (absent)")
            continue
        found = 0
        for path in _run_dirs(root):
            try:
                row, metrics, unreadable = _read_run(path, root)
            except _Skip as why:
                warnings.warn(f"skipping {path}: {why}", RecordWarning, stacklevel=2)
                skipped.append((str(path), str(why)))
                continue
            except _Damaged as why:
                warnings.warn(f"damaged {path}: {why}; listed, never averaged", RecordWarning, stacklevel=2)
                damaged.append((str(path), str(why)))
                continue
            found += 1
            rows.append({**row, "_root": rank})
            if unreadable is not None:
                without.append((str(path), unreadable))
            if metrics is not None:
                curves[(rank, row["run_id"])] = metrics.assign(**{k: row[k] for k in IDENTITY})
        sources.append(f"{root} ({found} records)")
    runs = pd.DataFrame(rows, columns=None if rows else [*IDENTITY, "_root"])
    if len(runs):  # one record per run_id: the later root's
        runs = runs.sort_values("_root", kind="stable").drop_duplicates("run_id", keep="last")
    kept = {(r, i) for r, i in zip(runs["_root"], runs["run_id"])}
    metrics = pd.concat([m for key, m in curves.items() if key in kept], ignore_index=True) if kept & set(curves) \
        else pd.DataFrame(columns=list(IDENTITY))
    if "trigger" in metrics:
        metrics["trigger"] = metrics["trigger"].astype(str)
    runs, metrics, superseded = _one_record_per_seed(runs.drop(columns="_root").reset_index(drop=True), metrics)
    read = set(runs["path"]) if len(runs) else set()
    without = [(path, why) for path, why in without if path in read]
    blown = [(r.path, r.error.removeprefix("blow-up: ")) for r in runs.itertuples()
             if isinstance(r.error, str) and r.error.startswith("blow-up: ")] if len(runs) else []
    return Records(runs=runs, metrics=metrics, skipped=skipped, damaged=damaged, without_curves=without,
                   superseded=superseded, blown_up=blown, sources=sources if len(folders) > 1 else [])


def _one_record_per_seed(runs: pd.DataFrame, metrics: pd.DataFrame):
    """Two records of one group and seed (a rerun under a new run id, e.g. after a config key was added) are one
    run, not two samples: the newest finished one is kept (a running one only if none finished), the others are
    returned as superseded, never averaged."""
    if not len(runs):
        return runs, metrics, []
    ranked = runs.assign(_finished=runs["status"] != "running").sort_values(
        ["_finished", "finished_at", "path"], ascending=False, kind="stable")
    newest = ranked.drop_duplicates(["group", "seed"])
    dropped = ranked.drop(newest.index)
    kept_path = newest.set_index(["group", "seed"])["path"]
    superseded = [(row.path, kept_path[(row.group, row.seed)]) for row in dropped.itertuples()]
    for path, by in superseded:
        warnings.warn(f"{path} is superseded by {by} (same settings and seed): not read", RecordWarning, stacklevel=3)
    keep = runs.index.isin(newest.index)
    if len(metrics):
        metrics = metrics[~metrics["run_id"].isin(dropped["run_id"])]
    return runs[keep].reset_index(drop=True), metrics.reset_index(drop=True), superseded


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def pm(mean: float, std: float, digits: int = 2) -> str:
    """'mean ± std', 'mean' when there is no std (n = 1), '—' when there is no value."""
    if mean is None or math.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def num(value: float, spec: str = ",.0f") -> str:
    return "—" if value is None or math.isnan(value) else format(value, spec)
