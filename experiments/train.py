"""Hydra entry point: ``python -m experiments.train optimizer=rbo dataset=cifar10 model=vgg9 seed=0``.

Sweeps: ``python -m experiments.train -m optimizer=sgd,rbo seed=0,1,2 hydra/launcher=joblib``. A config whose
record already says completed or diverged is skipped before torch is imported or data is loaded (if the code or
the data files changed since, the skip says so; ``on_change=rerun`` trains it again: README "Run records"); any
other record (running, failed, absent) is trained, resuming from its last checkpoint, by one process at a time.
"""

from __future__ import annotations

import hydra
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from experiments import records
from experiments.config import CONF_DIR, objective  # importing it registers the structured configs
from experiments.controls import resolve_effective_lr


def run(cfg: DictConfig) -> dict | None:
    """Skip a finished record (:func:`records.skip_decision`), else train; returns the summary (None when
    skipped). Relative ``runs_dir`` and ``data_dir`` are taken from the directory the command was started in."""
    cfg.runs_dir = to_absolute_path(cfg.runs_dir)
    if cfg.data_dir is not None:
        cfg.data_dir = to_absolute_path(cfg.data_dir)
    resolve_effective_lr(cfg)
    skip, message = records.skip_decision(records.run_dir(records.to_container(cfg)), cfg.on_change)
    if skip:
        print(message)
        return None
    from experiments.trainer import train

    return train(cfg)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """One job; returns ``optimized_metric`` of the run to a sweeper (Optuna, conf/hparams_search), else None."""
    return objective(cfg, run(cfg))


if __name__ == "__main__":
    main()
