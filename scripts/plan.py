"""What a sweep will launch and what it will cost, before it starts (``make reproduce`` prints this first).

``python -m scripts.plan paper/table1 paper/heatmap [--device cuda] [-- override ...]``. Each experiment's
``hydra.sweeper.params`` is expanded into its jobs (comma lists, as Hydra's basic sweeper does), every job's
config is composed exactly as ``experiments.train`` would compose it, and its run record is looked up: finished
runs (completed, diverged) are skipped by the sweep, the others are pending. The cost of the pending runs is
counted in gradient evaluations and turned into hours by timing a few forward/backward passes of each model
on this device. ``--pending`` prints exactly the pending jobs' overrides.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from experiments import config as _config  # noqa: F401  (registers the structured configs)
from experiments import records
from experiments.controls import resolve_effective_lr
from experiments.data import dataset_shape
from experiments.optim import evals_per_step

CONF = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class Job:
    overrides: list[str]
    cfg: DictConfig
    status: str | None  # completed | diverged (skipped), or None (pending: new, running, failed)

    @property
    def pending(self) -> bool:
        return self.status is None


def sweep_overrides(experiment: str, extra: list[str]) -> list[list[str]]:
    """The override lists of every job of ``experiment=<experiment>`` (cartesian product of its params).

    Call inside ``initialize_config_dir(CONF)``."""
    cfg = compose("config", overrides=[f"experiment={experiment}", *extra], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params) or {}
    axes = [[f"{key}={value.strip()}" for value in str(values).split(",")] for key, values in params.items()]
    return [[f"experiment={experiment}", *combo, *extra] for combo in itertools.product(*axes)]


def expand(experiment: str, extra: list[str] = ()) -> list[Job]:
    jobs = []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for overrides in sweep_overrides(experiment, list(extra)):
            cfg = compose("config", overrides=overrides)
            cfg.runs_dir = str(Path(cfg.runs_dir).resolve())
            try:
                resolve_effective_lr(cfg)  # as experiments.train does: the resolved lr is part of the run_id
            except ValueError:  # its reference runs are not finished yet: pending
                jobs.append(Job(overrides, cfg, None))
                continue
            status = records.finished_status(records.run_dir(records.to_container(cfg)))
            jobs.append(Job(overrides, cfg, status))
    return jobs


def shape(cfg: DictConfig) -> tuple[int, int, int, int]:
    ds = cfg.dataset
    return dataset_shape(ds.name, synthetic_shape=ds.synthetic_shape, synthetic_size=tuple(ds.synthetic_size))


def batches_per_epoch(cfg: DictConfig) -> int:
    return math.ceil((shape(cfg)[3] - cfg.dataset.val_size) / cfg.batch_size)


def grad_evals(cfg: DictConfig) -> int:
    """The run's training gradient evaluations: every epoch, capped by its budget."""
    per_epoch = batches_per_epoch(cfg)
    fresh = cfg.optimizer.name == "entropy_sgd" and cfg.optimizer.fresh_batches  # one evaluation per batch
    total = cfg.epochs * per_epoch * (1 if fresh else evals_per_step(cfg.optimizer))
    if cfg.max_sgd_epochs is not None:
        total = min(total, math.ceil(cfg.max_sgd_epochs * per_epoch))
    if cfg.max_grad_evals is not None:
        total = min(total, cfg.max_grad_evals)
    return total


def seconds_per_eval(cfg: DictConfig, device: torch.device, cache: dict) -> float:
    """Median seconds of one forward/backward pass of the run's model at its batch size, measured once."""
    from experiments.models import build_model

    channels, size, classes, _ = shape(cfg)
    key = (cfg.model.name, channels, size, classes, cfg.batch_size, cfg.precision)
    if key not in cache:
        options = {k: v for k, v in cfg.model.items() if k != "name"}
        model = build_model(cfg.model.name, in_channels=channels, num_classes=classes, image_size=size,
                            **options).to(device)
        x = torch.rand(cfg.batch_size, channels, size, size, device=device)
        y = torch.randint(0, classes, (cfg.batch_size,), device=device)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        times = []
        for i in range(5):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.zero_grad(set_to_none=True)
            with autocast:
                loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
        cache[key] = statistics.median(times)
    return cache[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", help="names under conf/experiment, e.g. paper/table1")
    parser.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda | cuda:N")
    parser.add_argument("--pending", action="store_true", help="print the pending jobs' overrides")
    parser.add_argument("--has-pending", action="store_true",
                        help="print nothing; exit 0 if any job is pending, 1 if every run is finished")
    parser.add_argument("--no-timing", action="store_true", help="count evaluations only")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:split]), argv[split + 1:]  # after --: Hydra overrides for every job
    if args.has_pending:
        raise SystemExit(0 if any(j.pending for e in args.experiments for j in expand(e, extra)) else 1)
    from experiments.trainer import resolve_device

    device = resolve_device(args.device)
    cache = {}
    print(f"| experiment | runs | finished | pending | pending gradient evaluations | est. hours on {device} |")
    print("|---|---:|---:|---:|---:|---:|")
    for experiment in args.experiments:
        jobs = expand(experiment, extra)
        pending = [j for j in jobs if j.pending]
        evals = sum(grad_evals(j.cfg) for j in pending)
        hours = "-"
        if not args.no_timing:
            seconds = sum(grad_evals(j.cfg) * seconds_per_eval(j.cfg, device, cache) for j in pending)
            hours = f"{seconds / 3600:.2f}"
        print(f"| {experiment} | {len(jobs)} | {len(jobs) - len(pending)} | {len(pending)} | {evals:,} | {hours} |")
        if args.pending:
            for job in pending:
                print("   ", " ".join(job.overrides))
    if not args.no_timing:
        print("\n(hours: pending evaluations x one timed forward/backward of each model; evaluation passes, data"
              " movement and optimizer arithmetic come on top)")


if __name__ == "__main__":
    main()
