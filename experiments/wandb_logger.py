"""A thin Weights & Biases wrapper: one W&B run per job, finished at the end (issue 5, "Records, logging").

``logger=none`` never imports wandb. ``logger=wandb`` with ``mode``: ``offline`` (default; no account, no
network; files in ``<run record>/.wandb/wandb/offline-run-*``, upload later with ``wandb sync`` on those),
``online`` (needs credentials already configured: ``wandb login`` or ``WANDB_API_KEY``; never prompts),
``disabled``. Each job starts its
own run (``reinit="finish_previous"``), so runs of a multirun never merge. A resumed job is a new W&B run
that first replays the rows of its record, so each W&B run holds the whole history.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

MODES = ("online", "offline", "disabled")


class NullLogger:
    """``logger=none``."""

    def log(self, kind: str, row: dict) -> None:
        pass

    def finish(self, summary: dict) -> None:
        pass


class WandbLogger:
    """``log("epoch", metrics_row)`` and ``log("steps", steps_row)`` become W&B series ``epoch/<column>``
    (x-axis ``epoch/epoch``) and ``steps/<column>`` (x-axis ``steps/step``); ``finish`` stores the summary."""

    def __init__(self, cfg, *, directory: Path, name: str, config: dict):
        """``cfg.mode`` was checked against :data:`MODES` by ``experiments.trainer.validate``."""
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        if cfg.mode == "online" and not wandb.login(prompt=False, verify=False):
            raise ValueError("logger.mode='online' needs W&B credentials (run `wandb login` or set WANDB_API_KEY); "
                             "allowed without an account: logger.mode=offline (then `wandb sync`) or disabled")
        directory.mkdir(parents=True, exist_ok=True)  # hidden: record readers skip what W&B writes there
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, group=cfg.group, tags=list(cfg.tags), job_type=cfg.job_type,
            name=name, config=config, dir=str(directory), mode=cfg.mode, reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off"),
        )
        self.run.define_metric("epoch/*", step_metric="epoch/epoch")
        self.run.define_metric("steps/*", step_metric="steps/step")

    def log(self, kind: str, row: dict) -> None:
        self.run.log({f"{kind}/{k}": v for k, v in row.items() if isinstance(v, int | float)})

    def finish(self, summary: dict) -> None:
        flat = {"status": summary["status"], "epochs_completed": summary["epochs_completed"],
                **{f"final/{k}": v for k, v in summary["final"].items()},
                **{f"cost/{k}": v for k, v in summary["cost"].items()}}
        self.run.summary.update({k: v for k, v in flat.items() if v is not None and not _nan(v)})
        self.run.finish(exit_code=0 if summary["status"] in ("completed", "diverged") else 1)


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def make_logger(cfg, *, directory: Path, name: str, config: dict) -> NullLogger | WandbLogger:
    """The logger ``cfg.name`` selects: ``none`` or ``wandb``."""
    if cfg.name == "none":
        return NullLogger()
    if cfg.name == "wandb":
        return WandbLogger(cfg, directory=directory, name=name, config=config)
    raise ValueError(f"logger.name={cfg.name!r} is unknown; allowed: none, wandb")
