"""Hydra callbacks of ``experiments.train`` (``hydra.callbacks`` in conf/config.yaml).

Imported by every Hydra run, skipped ones included: torch and the data modules are imported only when a multirun
has jobs to check, so finished runs are still skipped before torch is imported.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


def sweep_jobs(config: DictConfig) -> list[list[str]] | None:
    """The overrides of every job Hydra's basic sweeper will launch for the multirun ``config``, computed as
    ``BasicSweeper.sweep`` computes them (``hydra.sweeper.params``, then the command line's task overrides,
    parsed by Hydra's parser and crossed by ``BasicSweeper.split_arguments``); None under another sweeper (a
    search, e.g. Optuna, picks its jobs' values as it goes)."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != BasicSweeperConf._target_:
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    overrides = parser.parse_overrides([*params, *OmegaConf.to_container(config.hydra.overrides.task)])
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def job_config(config: DictConfig, overrides: list[str]) -> DictConfig:
    """The config the job with ``overrides`` runs, composed as its launcher composes it
    (``ConfigLoader.load_sweep_config``), without the ``hydra`` node (as ``run_job`` hands it to the task)."""
    job = GlobalHydra.instance().config_loader().load_sweep_config(master_config=config, sweep_overrides=overrides)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


class Preflight(Callback):
    """Before a multirun launches its first job, every job that is not finished yet is checked as
    ``scripts.plan`` checks a sweep (:func:`experiments.preflight.preflight`: values and data, issue 23): all
    problems in one message, exit 2 (:func:`experiments.errors.exit_refused`), nothing launched and no record
    written. Datasets the jobs will download are named. Hydra's basic sweeper only (:func:`sweep_jobs`); under a
    search sweeper each job still checks itself before it writes its record."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        jobs = sweep_jobs(config)
        if jobs is None:
            return
        from experiments import records

        cfgs = [job_config(config, overrides) for overrides in jobs]
        pending = [c for c in cfgs if records.finished_status(records.run_dir(records.to_container(c))) is None]
        if not pending:  # a finished sweep is skipped job by job without importing torch
            return
        from experiments.errors import exit_refused
        from experiments.preflight import PreflightError, preflight

        try:
            to_fetch = preflight(pending)
        except PreflightError as refusal:
            exit_refused(refusal)
        for message in to_fetch:
            log.info("note: %s", message)
