"""A thin Weights & Biases wrapper: one W&B run per run record (issue 5, "Records, logging"; issue 12, "W&B").

``logger=none`` never imports wandb. ``logger=wandb``:

- Identity: the W&B run id is the record's ``run_id`` (``resume="allow"``), so a resumed job continues the same
  W&B run; name ``{optimizer}-{dataset}-{model}-s{seed}``, group ``logger.group`` (the experiment), tags
  optimizer, dataset, model, experiment and ``logger.tags``.
- Mode (:func:`resolve_mode`): an explicit ``logger.mode`` wins; left at ``null`` it is ``$WANDB_MODE`` when set,
  else ``offline``. ``offline`` needs no account and no network (files in
  ``<run record>/.wandb/wandb/offline-run-*-<run_id>``, one folder per job of the run; ``wandb sync`` uploads
  them into the one W&B run ``run_id``); ``online`` needs credentials already configured (``wandb login`` or
  ``WANDB_API_KEY``; never prompts); ``disabled`` writes nothing (wandb is not started).
- Rows: metrics rows become ``train/loss``, ``train/acc``, ``train/diag_*``, ``val/*``, ``test/*`` plus the
  counters ``epoch``, ``step``, ``grad_evals``, ``examples``, ``train_seconds``, ``lr``, ``trigger`` (init |
  budget | epoch), ``budget_sgd_epochs``; steps.csv rows become ``steps/loss``, ``steps/diag_*`` with ``epoch``,
  ``step``, ``grad_evals``. Non-finite values are left out (a NaN never reaches the summary).
- Nothing twice: the trainer hands every row of the run in order (a resumed run first its history); the W&B
  step of a row is its position in that sequence, and rows the W&B run already holds (``run.starting_step``
  online, the earlier offline folders of this run id offline) are skipped.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

from experiments.config import WandbMode

MODES = tuple(WandbMode)
COUNTERS = ("epoch", "step", "grad_evals", "examples", "train_seconds", "lr", "trigger", "budget_sgd_epochs")


class NullLogger:
    """``logger=none``."""

    def log(self, kind: str, row: dict) -> None:
        pass

    def finish(self, summary: dict) -> None:
        pass


def resolve_mode(mode: str | None) -> WandbMode:
    """``logger.mode`` if given, else ``$WANDB_MODE`` if set, else offline; an unknown value is a ``ValueError``."""
    key, value = ("logger.mode", mode) if mode is not None else ("WANDB_MODE", os.environ.get("WANDB_MODE"))
    if value is None:
        return WandbMode.offline
    if value not in MODES:
        raise ValueError(f"{key}={value!r} is unknown; allowed: {', '.join(MODES)}")
    return WandbMode(value)


def wandb_key(kind: str, column: str) -> str:
    """The W&B series of a metrics (``kind="epoch"``) or steps.csv (``kind="steps"``) column."""
    if column in COUNTERS:
        return column
    if kind == "steps":
        return f"steps/{column}"
    split, _, name = column.partition("_")
    if split in ("train", "val", "test") and name:
        return f"{split}/{name}"
    return f"train/{column}"  # diag_*: epoch means of the optimizer's diagnostics


def _loggable(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int | float) and math.isfinite(value))


class WandbLogger:
    """``log(kind, row)`` for every row of the run, in order; ``finish(summary)`` stores the summary."""

    def __init__(self, cfg, *, directory: Path, run_id: str, config: dict):
        os.environ.setdefault("WANDB_SILENT", "true")
        mode = resolve_mode(cfg.mode)
        import wandb

        if mode == "online" and not wandb.login(prompt=False, verify=False):
            raise ValueError("logger.mode='online' needs W&B credentials (run `wandb login` or set WANDB_API_KEY); "
                             "allowed without an account: logger.mode=offline (then `wandb sync`) or disabled")
        held = offline_rows(directory, run_id) if mode == "offline" else 0
        directory.mkdir(parents=True, exist_ok=True)  # hidden: record readers skip what W&B writes there
        names = [config["optimizer"]["name"], config["dataset"]["name"], config["model"]["name"]]
        tags = list(dict.fromkeys([*names, config["experiment_name"], *cfg.tags]))
        self.run = wandb.init(
            id=run_id, resume="allow", project=cfg.project, entity=cfg.entity, group=cfg.group,
            name="-".join(names) + f"-s{config['seed']}", tags=tags,
            job_type=cfg.job_type, config=config, dir=str(directory), mode=str(mode), reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off"),
        )
        for prefix in ("train", "val", "test"):
            self.run.define_metric(f"{prefix}/*", step_metric="epoch")
        self.run.define_metric("steps/*", step_metric="step")
        self.rows = 0  # rows handed to log() so far: the W&B step of the next one
        self.held = max(held, getattr(self.run, "starting_step", 0) or 0)  # rows the W&B run already has

    def log(self, kind: str, row: dict) -> None:
        if self.rows >= self.held:
            self.run.log({wandb_key(kind, k): v for k, v in row.items() if _loggable(v)}, step=self.rows)
        self.rows += 1

    def finish(self, summary: dict) -> None:
        flat = {"status": summary["status"], "epochs_completed": summary["epochs_completed"],
                **{f"final/{k}": v for k, v in summary["final"].items()},
                **{f"cost/{k}": v for k, v in summary["cost"].items()}}
        self.run.summary.update({k: v for k, v in flat.items() if _loggable(v)})
        self.run.finish(exit_code=0 if summary["status"] in ("completed", "diverged") else 1)
        import wandb

        wandb.teardown()  # the W&B service writes the offline files asynchronously: complete once it has stopped


def make_logger(cfg, *, directory: Path, run_id: str, config: dict) -> NullLogger | WandbLogger:
    """The logger ``cfg.name`` selects: ``none`` or ``wandb``; W&B in disabled mode is :class:`NullLogger` (wandb
    would still create its folder)."""
    if cfg.name == "none" or (cfg.name == "wandb" and resolve_mode(cfg.mode) == "disabled"):
        return NullLogger()
    if cfg.name == "wandb":
        return WandbLogger(cfg, directory=directory, run_id=run_id, config=config)
    raise ValueError(f"logger.name={cfg.name!r} is unknown; allowed: none, wandb")


# ---- reading offline runs back ---------------------------------------------------------------------------------

def _records(path: Path) -> Iterator:
    """The protobuf records of a ``run-<id>.wandb`` file (W&B's LevelDB-style log: a 7-byte file header, then
    32 KiB blocks of chunks, each with a 7-byte header: CRC32C, length, type full=1 | first=2 | middle=3 | last=4)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    block, pos, chunks = 32768, 7, b""
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:  # block trailer
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # zero padding at the end of a block
            pos += room
            continue
        if pos + 7 + length > len(data):  # a job killed mid-write: the rows before are whole
            return
        chunks += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            yield Record.FromString(chunks)
            chunks = b""


def offline_runs(directory: Path, run_id: str) -> list[Path]:
    """The ``run-<run_id>.wandb`` files of every offline job of this run, oldest first.

    A job that starts in the same second as an earlier one gets W&B's numbered folder,
    ``offline-run-<time>-<run_id>-<n>`` (``wandb.init`` sets ``x_sync_dir_suffix``): it is this run's too."""
    folder = re.compile(rf"offline-run-(\d{{8}}_\d{{6}})-{re.escape(run_id)}(?:-(\d+))?")
    jobs = []
    for path in (directory / "wandb").glob(f"offline-run-*-{run_id}*/run-{run_id}.wandb"):
        match = folder.fullmatch(path.parent.name)
        if match:
            jobs.append(((match[1], int(match[2] or 0)), path))
    return [path for _, path in sorted(jobs)]


def offline_history(directory: Path, run_id: str) -> list[dict]:
    """Every history row the offline jobs of this run wrote, in order (``_step`` included)."""
    rows = []
    for path in offline_runs(directory, run_id):
        for record in _records(path):
            if record.WhichOneof("record_type") == "history":
                rows.append({"/".join(item.nested_key) or item.key: json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def offline_rows(directory: Path, run_id: str) -> int:
    """How many rows this run's offline W&B files hold already (``_step`` runs 0, 1, ...)."""
    return max((row["_step"] + 1 for row in offline_history(directory, run_id)), default=0)
