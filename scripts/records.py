"""Run records (``runs/<experiment>/<run_id>/``, format: README.md "Run records") as tidy DataFrames,
and what every script of ``scripts/`` shares: atomic writes into ``results/`` and number formatting.

``load_records(runs_dir)`` returns one row per run (from ``summary.json`` and ``config.yaml``) and one row per
evaluation point (from ``metrics.csv``). Runs that differ only in their seed share a ``group`` id: the hash of
the resolved config without the seed and the output-only keys. Unreadable or incomplete records (missing or
corrupt ``summary.json``, a ``running`` run with no metrics yet) are skipped with a :class:`RecordWarning` and
listed in ``Records.skipped``.
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

from experiments.config import ADDED_KEYS, OUTPUT_ONLY_KEYS, Config
from experiments.records import FINAL_KEYS, atomic_write

STATUSES = ("running", "completed", "diverged", "failed")
FINISHED_STATUSES = ("completed", "diverged", "failed")  # a result (a diverged or failed run counts, never dropped)
COST_KEYS = ("grad_evals", "diag_evals", "examples", "train_seconds", "warmup_seconds", "seconds_per_epoch",
             "grad_evals_per_step")
# Config keys that do not change what a run computes (README.md "Run records": run_id), plus the seed, which is what
# a group of runs is averaged over.
NOT_IN_GROUP = frozenset({*OUTPUT_ONLY_KEYS, "seed"})
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


class RecordWarning(UserWarning):
    """A run record was skipped or is partly unreadable."""


class _Skip(Exception):
    """Raised inside the loader to skip one record with a reason."""


@dataclass
class Records:
    runs: pd.DataFrame  # one row per run
    metrics: pd.DataFrame  # one row per evaluation point of a run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (record folder, reason)
    damaged: list[tuple[str, str]] = field(default_factory=list)  # read without its curves: (record folder, reason)
    left_out: dict[str, int] = field(default_factory=dict)  # experiment not asked for -> its number of records
    superseded: list[tuple[str, str]] = field(default_factory=list)  # a newer record of its seed: (folder, which)

    def select(self, experiments) -> Records:
        """Only the records of ``experiments``; the others are counted in ``left_out``, never read into a table."""
        wanted = set(experiments)
        keep = self.runs["experiment"].isin(wanted) if len(self.runs) else pd.Series(dtype=bool)
        left = self.runs.loc[~keep, "experiment"].value_counts().to_dict() if len(self.runs) else {}
        metrics = self.metrics[self.metrics["experiment"].isin(wanted)] if len(self.metrics) else self.metrics
        return Records(self.runs[keep].reset_index(drop=True), metrics.reset_index(drop=True), self.skipped,
                       self.damaged, {**self.left_out, **left}, self.superseded)

    def describe(self) -> str:
        """Human-readable account of what was read, what was skipped and what was left out."""
        counts = self.runs["status"].value_counts() if len(self.runs) else pd.Series(dtype=int)
        by_status = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES if counts.get(s, 0))
        lines = [
            f"read {len(self.runs)} run records ({by_status or 'none'}) in "
            f"{self.runs['experiment'].nunique() if len(self.runs) else 0} experiment(s), "
            f"{len(self.metrics)} evaluation rows; skipped {len(self.skipped)} unreadable or incomplete records"
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        if self.damaged:
            lines.append(f"read {len(self.damaged)} records without their curves (final metrics only):")
            lines += [f"  damaged {path}: {reason}" for path, reason in self.damaged]
        if self.superseded:
            lines.append(f"left out {len(self.superseded)} records superseded by a newer record of the same settings "
                         "and seed (one run per seed is averaged, never two):")
            lines += [f"  superseded {path}: by {by}" for path, by in self.superseded]
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


def _read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        warnings.warn(f"{path}: unreadable config.yaml ({err}); grouping by summary.json only", RecordWarning,
                      stacklevel=3)
        return {}
    return config if isinstance(config, dict) else {}


METRICS_NEEDED = ("epoch", "trigger", "grad_evals")  # without these a metrics.csv cannot place a single point


def _read_metrics(path: Path) -> tuple[pd.DataFrame | None, str | None]:
    """``(metrics, None)``, ``(None, None)`` when there is no metrics.csv, ``(None, why)`` when it is damaged
    (unreadable, or lacking a column every row needs, or with a non-numeric epoch): warned, never silent."""
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


def _group_params(summary: dict, config: dict) -> dict:
    """What defines a group of seeds: the resolved config without seed and output-only keys, top-level keys it
    lacks at their defaults (falling back to summary.json's fields when there is no config.yaml)."""
    params = {k: v for k, v in flatten(config).items() if k.split(".")[0] not in NOT_IN_GROUP}
    if params:
        params = {**TOP_LEVEL_DEFAULTS, **ADDED_KEYS, **params}
    else:
        params = {f"optimizer.{k}": v for k, v in flatten(summary.get("hyper") or {}).items()}
        params["epochs"] = summary.get("epochs")
    for key in ("experiment", "dataset", "model", "optimizer"):
        params.pop(f"{key}.name", None)
        params[key] = summary.get(key)
    params["experiment"] = params["experiment"] or ""
    return params


def _read_run(path: Path, root: Path) -> tuple[dict, pd.DataFrame | None, str | None]:
    summary = _read_summary(path)
    metrics, damage = _read_metrics(path)
    if summary["status"] == "running" and metrics is None:
        raise _Skip("status running with no metrics yet")
    params = _group_params(summary, _read_config(path))
    if not summary.get("experiment"):
        params["experiment"] = str(path.parent.relative_to(root))
    key = json.dumps(params, sort_keys=True, default=str)
    row = {
        "run_id": summary.get("run_id") or path.name,
        "experiment": params["experiment"],
        "status": summary["status"],
        "optimizer": summary["optimizer"],
        "dataset": summary["dataset"],
        "model": summary["model"],
        "seed": summary.get("seed"),
        "epochs": number(summary.get("epochs")),
        "epochs_completed": number(summary.get("epochs_completed")),
        "diverged_at_epoch": number(summary.get("diverged_at_epoch")),
        "error": summary.get("error"),
        "device": summary.get("device"),
        "hardware": _hardware(summary),
        "git_commit": summary.get("git_commit"),
        "finished_at": summary.get("finished_at") or summary.get("started_at") or "",
        "group": hashlib.sha256(key.encode()).hexdigest()[:10],
        "params": params,
        "hyper": json.dumps(summary.get("hyper") or {}, sort_keys=True, default=str),
        "path": str(path),
    }
    final, cost = summary.get("final") or {}, summary.get("cost") or {}
    row |= {f"final_{k}": number(final.get(k)) for k in FINAL_KEYS}
    row |= {f"cost_{k}": number(cost.get(k)) for k in COST_KEYS}
    row |= {f"hyper_{k}": v for k, v in (summary.get("hyper") or {}).items()}
    row |= {f"diag_{k}": number(v) for k, v in (summary.get("diagnostics") or {}).items()}
    return row, metrics, damage


def load_records(runs_dir: str | Path) -> Records:
    """Read every run record under ``runs_dir`` (any depth: experiment names may contain '/')."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise ValueError(f"runs_dir={str(root)!r} is not a folder: pass the folder the trainer wrote runs into")
    rows, curves, skipped, damaged = [], [], [], []
    for path in _run_dirs(root):
        try:
            row, metrics, damage = _read_run(path, root)
        except _Skip as why:
            warnings.warn(f"skipping {path}: {why}", RecordWarning, stacklevel=2)
            skipped.append((str(path), str(why)))
            continue
        rows.append(row)
        if damage is not None:
            damaged.append((str(path), damage))
        if metrics is not None:
            curves.append(metrics.assign(**{k: row[k] for k in IDENTITY}))
    runs = pd.DataFrame(rows, columns=None if rows else list(IDENTITY))
    metrics = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=list(IDENTITY))
    if "trigger" in metrics:
        metrics["trigger"] = metrics["trigger"].astype(str)
    runs, metrics, superseded = _one_record_per_seed(runs, metrics)
    return Records(runs=runs, metrics=metrics, skipped=skipped, damaged=damaged, superseded=superseded)


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
