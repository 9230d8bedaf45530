"""Hydra entry point: ``python -m experiments.train optimizer=rbo dataset=cifar10 model=vgg9 seed=0``.

Sweeps: ``python -m experiments.train -m optimizer=sgd,rbo seed=0,1,2 hydra/launcher=joblib``; every job is
checked before the first starts (:class:`experiments.callbacks.Preflight`). A config whose record already says
completed or diverged is skipped before torch is imported or data is loaded (if the code or the data files changed
since, the skip says so; ``on_change=rerun`` trains it again: README "Run records"); any other record (running,
failed, absent) is trained, resuming from its last checkpoint, by one process at a time.

A refusal (:class:`experiments.errors.Refusal`: an invalid value, missing or wrong data, a locked or foreign
record, a full disk) ends a single run with its message alone on stderr and exit status 2; in a multirun it fails
its job only, is logged there, and Hydra reports it at the sweep's end without a traceback.
"""

from __future__ import annotations

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from experiments import records
from experiments.config import CONF_DIR, objective  # importing it registers the structured configs
from experiments.controls import resolve_effective_lr
from experiments.errors import Refusal, exit_refused

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict | None:
    """Skip a finished record (:func:`records.skip_decision`), else train; returns the summary (None when
    skipped). Relative ``runs_dir`` and ``data_dir`` are taken from the directory the command was started in."""
    cfg.runs_dir = to_absolute_path(cfg.runs_dir)
    if cfg.data_dir is not None:
        cfg.data_dir = to_absolute_path(cfg.data_dir)
    try:
        resolve_effective_lr(cfg)
    except ValueError as err:  # optimizer.lr=null, and no finished reference runs to take it from
        raise Refusal(str(err)) from err
    config = records.to_container(cfg)
    decision = records.skip_decision(records.run_dir(config), cfg.on_change, config)
    if decision.skip:
        print(decision.message)
        return None
    from experiments.trainer import train

    return train(cfg)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """One job; returns ``optimized_metric`` of the run to a sweeper (Optuna, conf/hparams_search), else None.
    A refusal: see the module docstring."""
    try:
        return objective(cfg, run(cfg))
    except Refusal as refusal:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.error("refused: %s", refusal)
            raise
        exit_refused(refusal)


if __name__ == "__main__":
    main()
