"""Checks before any planning or launch (issue 16): every job's config and every dataset the jobs need, all at
once, so a sweep fails in one message instead of one job (and one dataset) at a time, and writes no record.

``scripts.plan`` runs :func:`preflight` on every job of the experiments it is given (``make`` targets: before
anything is launched); :class:`experiments.trainer.Trainer` runs the same checks for its one job before it
writes its record. :func:`dataset_files` names the files a run reads, for the record's data fingerprint.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from experiments import data


class PreflightError(ValueError):
    """Jobs that cannot run as configured: every reason, in one message."""


def dataset_files(cfg: DictConfig) -> list[Path]:
    """The data files the run reads (the record's ``data_fingerprint``); [] for ``synthetic``."""
    return data.data_files(cfg.dataset.name, cfg.data_dir)


def missing_datasets(cfgs: list[DictConfig], *, fetch: bool) -> tuple[list[str], list[str]]:
    """``(missing, to_fetch)``: one message per dataset (and data folder) the jobs need that is not on disk.
    A dataset whose jobs say ``download=true`` is downloaded now with ``fetch`` (once for all its jobs; listed
    as missing only if that fails), else listed in ``to_fetch`` (the first job will download it)."""
    missing, to_fetch = [], []
    for name, data_dir, download in sorted({(c.dataset.name, c.data_dir, bool(c.dataset.download)) for c in cfgs},
                                           key=str):
        message = data.missing_data(name, data_dir, download)
        if message is not None and download and fetch:
            try:
                data.load_dataset(name, data_dir=data_dir, download=True, val_size=0)
                message = None
            except (FileNotFoundError, RuntimeError) as err:
                message = str(err)
        if message is not None:
            (to_fetch if download and not fetch else missing).append(message)
    return missing, to_fetch


def invalid_configs(cfgs: list[DictConfig]) -> list[str]:
    """Each distinct config error (:func:`experiments.trainer.validate`) with how many jobs have it. An
    ``sgd_effective_lr`` lr still null (its reference runs are not finished) is not an error here."""
    from experiments.trainer import validate

    errors: dict[str, int] = {}
    for cfg in cfgs:
        try:
            validate(cfg, lr_pending=True)
        except ValueError as err:
            errors[str(err)] = errors.get(str(err), 0) + 1
    return [f"{message} ({n} job{'s' if n > 1 else ''})" for message, n in errors.items()]


def preflight(cfgs: list[DictConfig], *, fetch: bool = False) -> list[str]:
    """Raise :class:`PreflightError` listing every invalid value and every missing dataset of ``cfgs``; returns
    the datasets that jobs will download (``fetch=False``), for the caller to mention."""
    missing, to_fetch = missing_datasets(cfgs, fetch=fetch)
    problems = invalid_configs(cfgs) + missing
    if problems:
        raise PreflightError(f"pre-flight: {len(problems)} problem(s), nothing was launched and no record written:\n"
                             + "\n".join(f"- {p}" for p in problems))
    return to_fetch
