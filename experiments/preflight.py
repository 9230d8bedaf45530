"""Checks before any planning or launch (issue 16, 23): every job's config and every dataset the jobs need, all
at once, so a sweep fails in one message instead of one job (and one dataset) at a time, and writes no record.

``scripts.plan`` runs :func:`preflight` on every job of the experiments it is given (``make`` targets: before
anything is launched), and so does a multirun launched directly (:class:`experiments.callbacks.Preflight`);
:class:`experiments.trainer.Trainer` runs :func:`check_job` for its one job before it writes its record, and
:func:`check_free_space` before it trains. :func:`dataset_files` names the files a run reads, for the record's
data fingerprint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import DictConfig

from experiments import data
from experiments.errors import Refusal

STATE_COPIES = 2  # optimizer state: at most 2 copies of the parameters (AdamW's moments; SGD momentum 1, RBO none)
CHECKPOINT_OVERHEAD = 1 << 20  # bytes: the rows, RNG states and serialisation a checkpoint holds besides tensors
SPACE_MARGIN = 2  # free space asked for: twice a checkpoint (the new one is written beside the old, then rows, W&B)


class PreflightError(Refusal):
    """Jobs that cannot run as configured: every reason, in one message."""


class DiskFull(Refusal):
    """Too little free space where the record goes for this run's checkpoints."""


def dataset_files(cfg: DictConfig) -> list[Path]:
    """The data files the run reads (the record's ``data_fingerprint``); [] for ``synthetic``."""
    return data.data_files(cfg.dataset.name, cfg.data_dir)


def missing_datasets(cfgs: list[DictConfig], *, fetch: bool) -> tuple[list[str], list[str]]:
    """``(missing, to_fetch)``: one message per dataset (and data folder) the jobs need that is not on disk, or
    whose files there are corrupt, truncated or another dataset's (:func:`experiments.data.damaged_data`).
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
            except (data.DataMissing, data.DataDamaged) as err:
                message = str(err)
        if message is not None:
            (to_fetch if download and not fetch else missing).append(message)
        elif (damage := data.damaged_data(name, data_dir)) is not None:
            missing.append(damage)
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


def check_job(cfg: DictConfig) -> None:
    """The pre-flight of one job (:class:`experiments.trainer.Trainer`, before it writes anything): raise
    :class:`PreflightError` with its first invalid value (:func:`experiments.trainer.validate`, and a CUDA device
    that is not there) or what is wrong with its data, as one sentence."""
    from experiments.trainer import resolve_device, validate

    try:
        validate(cfg)
        resolve_device(cfg.device)
    except ValueError as err:
        raise PreflightError(str(err)) from err
    missing, _ = missing_datasets([cfg], fetch=True)
    if missing:
        raise PreflightError(" ".join(missing))


def checkpoint_bytes(cfg: DictConfig) -> int:
    """An upper estimate of one ``checkpoint.pt`` of ``cfg``: the model's parameters and buffers, :data:`STATE_COPIES`
    copies of its parameters (the optimizer state) and :data:`CHECKPOINT_OVERHEAD`; the model is built on the meta
    device (no memory, no data; its shape from :func:`experiments.data.dataset_shape`)."""
    import torch

    from experiments.models import build_model

    ds = cfg.dataset
    channels, size, classes, _ = data.dataset_shape(ds.name, synthetic_shape=ds.synthetic_shape,
                                                    synthetic_size=tuple(ds.synthetic_size))
    options = {k: v for k, v in cfg.model.items() if k != "name"}
    with torch.device("meta"):
        model = build_model(cfg.model.name, in_channels=channels, num_classes=classes, image_size=size, **options)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return params * (1 + STATE_COPIES) + buffers + CHECKPOINT_OVERHEAD


def _size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_free_space(cfg: DictConfig, directory: Path) -> None:
    """Raise :class:`DiskFull` unless ``directory``'s disk has :data:`SPACE_MARGIN` times a checkpoint free: the
    record's own ``checkpoint.pt`` when it has one (a resumed run), else :func:`checkpoint_bytes`."""
    existing = directory / "checkpoint.pt"
    checkpoint = existing.stat().st_size if existing.is_file() else checkpoint_bytes(cfg)
    needed, free = SPACE_MARGIN * checkpoint, shutil.disk_usage(directory).free
    if free < needed:
        raise DiskFull(f"{directory} is on a disk with {_size(free)} free, but this run needs about {_size(needed)} "
                       f"there ({SPACE_MARGIN} x a checkpoint of {_size(checkpoint)}: model and optimizer state); "
                       "free space on that disk or set runs_dir to another one")
