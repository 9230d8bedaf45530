"""What a sweep will launch and what it will cost, before it starts (every ``make`` target that trains runs this
first). ``python -m scripts.plan paper/table1 paper/heatmap [--device cuda] [-- override ...]``.

- Expansion as Hydra's own sweeper does it: the experiment's ``hydra.sweeper.params``, then the overrides after
  ``--``, parsed by Hydra's override parser (comma lists, ``range()``, ``choice()``, ``glob()`` over a config
  group's options) and crossed by ``BasicSweeper.split_arguments``. A search sweeper (one with ``n_trials``,
  e.g. Optuna; ``interval()``) plans ``n_trials`` jobs at a representative point of the space. Each job's
  config is what ``experiments.train`` composes: one Hydra compose per distinct set of group choices, then
  the job's value overrides applied the way Hydra applies them (``OmegaConf.update``).
- Pre-flight (:mod:`experiments.preflight`): every job's values and every dataset, all problems in one message,
  exit 2 before anything is planned or launched. ``--fetch`` downloads datasets whose jobs say download=true.
- Records: finished runs (completed, diverged) are skipped by the sweep, the others are pending.
- Cost: pending gradient evaluations × the median seconds of one forward/backward pass of each model at its
  batch size on this device, measured once per (model, input shape, batch, precision, device) and cached in
  ``~/.cache/rbo-bench/plan-timings.json`` (``$XDG_CACHE_HOME`` honoured; the key also holds the torch
  version, the CPU or GPU name and the thread count).
- ``--confirm``: above ``--max-cpu-hours`` on a CPU, ask before launching; ``YES=1`` skips the question;
  without a terminal to ask (or ``CI=true``) refuse with exit 3 instead of hanging.
- ``--summary``: after a sweep, which experiments have runs that did not finish (failed, or no record) and
  where their errors are; exit 1 if any.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments import records
from experiments.config import CONF_DIR as CONF  # importing it registers the structured configs
from experiments.controls import resolve_effective_lr

TIMING_WARMUP = 2  # passes not timed (allocator, lazy initialisation)
TIMING_REPEATS = (7, 30)  # timed passes: at least, at most ...
TIMING_BUDGET_S = 2.0  # ... stopping once this much time was spent past the minimum
EXIT_PREFLIGHT, EXIT_REFUSED = 2, 3


@dataclass
class Job:
    overrides: list[str]
    cfg: DictConfig
    status: str | None  # the record's status (completed, diverged, running, failed), None if it has none
    record: Path | None  # None while an sgd_effective_lr lr is unresolved (its reference runs are not finished)

    @property
    def pending(self) -> bool:
        return self.status not in records.FINISHED


# ---- expansion ---------------------------------------------------------------------------------------------

def _representative(override: Override) -> str:
    """One point of a search space: a discrete sweep's first value, an interval's midpoint (geometric when
    tagged log)."""
    key, value = override.get_key_element(), override.value()
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        mid = math.sqrt(low * high) if "log" in value.tags and low > 0 else (low + high) / 2
        return f"{key}={round(mid) if isinstance(low, int) and isinstance(high, int) else mid!r}"
    if override.is_sweep_override():
        return f"{key}={next(iter(override.sweep_string_iterator()))}"
    return f"{key}={override.get_value_element_as_str()}"


def sweep_overrides(experiment: str, extra: list[str]) -> list[list[str]]:
    """The override lists of every job of ``experiment=<experiment>``, as Hydra's sweeper makes them (module
    docstring); ``hydra.*`` overrides in ``extra`` go to every job unchanged. Call inside
    ``initialize_config_dir(CONF)``."""
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    extra_parsed = parser.parse_overrides(list(extra))
    fixed = [o.input_line for o in extra_parsed if not o.is_sweep_override()]
    cfg = compose("config", overrides=[f"experiment={experiment}", *fixed], return_hydra_config=True)
    hydra_extra = [o.input_line for o in extra_parsed if o.is_hydra_override()]
    task_extra = [o.input_line for o in extra_parsed if not o.is_hydra_override()]
    params = [f"{k}={v}" for k, v in (OmegaConf.to_container(cfg.hydra.sweeper.get("params")) or {}).items()]
    overrides = parser.parse_overrides([*params, f"experiment={experiment}", *task_extra])
    trials = cfg.hydra.sweeper.get("n_trials")
    if trials is not None:  # a search: n_trials jobs whose values the sweeper picks as it goes
        return [[*map(_representative, overrides), *hydra_extra] for _ in range(trials)]
    searched = [o.input_line for o in overrides if o.is_sweep_override() and not o.is_discrete_sweep()]
    if searched:
        raise ValueError(f"experiment={experiment}: {', '.join(searched)} is a search space; it needs a search "
                         "sweeper with n_trials (e.g. hydra/sweeper=optuna); the basic sweeper enumerates comma "
                         "lists, range(), choice() and glob() only")
    [jobs] = BasicSweeper.split_arguments(overrides, None)
    return [[*job, *hydra_extra] for job in jobs]


def _compose_all(jobs: list[list[str]]) -> list[DictConfig]:
    """``compose("config", overrides=job)`` for every job, composing once per distinct set of group choices
    and prefixed (``+``/``~``) overrides and applying the plain ``key=value`` overrides to a copy, as Hydra
    does after composition. Call inside ``initialize_config_dir(CONF)``."""
    loader = GlobalHydra.instance().config_loader()
    parser = OverridesParser.create(config_loader=loader)
    bases: dict[tuple[str, ...], DictConfig] = {}
    cfgs = []
    for job in jobs:
        parsed = parser.parse_overrides(job)
        plain = [o for o in parsed if o.is_hydra_override() is False and o.package is None and o.input_line[0]
                 not in "+~" and not loader.repository.group_exists(o.key_or_group)]
        base = tuple(o.input_line for o in parsed if o not in plain)
        if base not in bases:
            bases[base] = compose("config", overrides=list(base))
        cfg = bases[base].copy()
        for override in plain:
            OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
        cfgs.append(cfg)
    return cfgs


def expand(experiment: str, extra: list[str] = ()) -> list[Job]:
    """Every job of ``experiment`` with its composed config and its record's status."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        overrides = sweep_overrides(experiment, list(extra))
        cfgs = _compose_all(overrides)
    jobs = []
    for job, cfg in zip(overrides, cfgs):
        cfg.runs_dir = str(Path(cfg.runs_dir).resolve())
        if cfg.data_dir is not None:
            cfg.data_dir = str(Path(cfg.data_dir).resolve())
        try:
            resolve_effective_lr(cfg)  # as experiments.train does: the resolved lr is part of the run_id
        except ValueError:  # its reference runs are not finished yet: pending
            jobs.append(Job(job, cfg, None, None))
            continue
        path = records.run_dir(records.to_container(cfg))
        jobs.append(Job(job, cfg, (records.read_summary(path) or {}).get("status"), path))
    return jobs


# ---- cost ---------------------------------------------------------------------------------------------------

def shape(cfg: DictConfig) -> tuple[int, int, int, int]:
    from experiments.data import dataset_shape

    ds = cfg.dataset
    return dataset_shape(ds.name, synthetic_shape=ds.synthetic_shape, synthetic_size=tuple(ds.synthetic_size))


def batches_per_epoch(cfg: DictConfig) -> int:
    return math.ceil((shape(cfg)[3] - cfg.dataset.val_size) / cfg.batch_size)


def grad_evals(cfg: DictConfig) -> int:
    """The run's training gradient evaluations: every epoch, capped by its budget (the trainer takes no step that
    could pass the cap: it stops at the last multiple of a step's evaluations)."""
    from experiments.optim import evals_per_step

    per_epoch, per_step = batches_per_epoch(cfg), evals_per_step(cfg.optimizer)
    fresh = cfg.optimizer.name == "entropy_sgd" and cfg.optimizer.fresh_batches  # one evaluation per batch
    total = cfg.epochs * per_epoch * (1 if fresh else per_step)
    caps = [cfg.max_grad_evals, None if cfg.max_sgd_epochs is None else math.ceil(cfg.max_sgd_epochs * per_epoch)]
    for cap in filter(None, caps):
        total = min(total, cap // per_step * per_step)
    return total


def timing_cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rbo-bench" / "plan-timings.json"


def timing_key(cfg: DictConfig, device) -> str:
    """What one pass costs depends on: the model and its options, the input shape, batch, precision, the device
    (its name), the torch version and the number of threads."""
    import torch

    channels, size, classes, _ = shape(cfg)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{records.cpu_name()} ({torch.get_num_threads()} threads)"
    return json.dumps({"model": OmegaConf.to_container(cfg.model, resolve=True), "input": [channels, size, size],
                       "classes": classes, "batch": cfg.batch_size, "precision": str(cfg.precision),
                       "device": device.type, "hardware": hardware, "torch": torch.__version__}, sort_keys=True)


def measure_pass(cfg: DictConfig, device) -> float:
    """Median seconds of one forward/backward pass of the run's model on a random batch: :data:`TIMING_WARMUP`
    passes first, then at least ``TIMING_REPEATS[0]`` timed ones, more (up to ``TIMING_REPEATS[1]``) while the
    time spent stays under :data:`TIMING_BUDGET_S`."""
    import torch

    from experiments.models import build_model

    channels, size, classes, _ = shape(cfg)
    options = {k: v for k, v in cfg.model.items() if k != "name"}
    model = build_model(cfg.model.name, in_channels=channels, num_classes=classes, image_size=size,
                        **options).to(device)
    x = torch.rand(cfg.batch_size, channels, size, size, device=device)
    y = torch.randint(0, classes, (cfg.batch_size,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")

    def one_pass() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for _ in range(TIMING_WARMUP):
        one_pass()
    times: list[float] = []
    while len(times) < TIMING_REPEATS[0] or (len(times) < TIMING_REPEATS[1] and sum(times) < TIMING_BUDGET_S):
        times.append(one_pass())
    return statistics.median(times)


class Timings:
    """Seconds per forward/backward pass, measured once per :func:`timing_key` and kept in a JSON file with the
    load average of the machine when it was measured (a busy CPU makes every estimate an upper bound)."""

    def __init__(self, path: Path | None = None, *, retime: bool = False):
        self.path = path or timing_cache_path()
        try:
            self.cache = {} if retime else json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.cache = {}
        self.measured = 0
        self.busy: dict[str, float] = {}  # timing keys used that were measured with a load average >= the cores

    def seconds_per_eval(self, cfg: DictConfig, device) -> float:
        key = timing_key(cfg, device)
        if key not in self.cache:
            seconds = measure_pass(cfg, device)
            self.cache[key] = {"seconds": seconds, "load": os.getloadavg()[0], "cores": os.cpu_count()}
            self.measured += 1
            try:
                records.write_json(self.path, self.cache)
            except OSError as err:  # a read-only home: the plan still works, it measures again next time
                print(f"plan: could not write the timing cache {self.path}: {err}", file=sys.stderr)
        entry = self.cache[key]
        if not isinstance(entry, dict):  # a cache written before the load was kept
            return float(entry)
        if device.type == "cpu" and entry["load"] >= entry["cores"]:
            self.busy[key] = entry["load"]
        return entry["seconds"]

    def busy_note(self) -> str | None:
        """What to say when a CPU estimate rests on timings taken while the machine was busy."""
        if not self.busy:
            return None
        return (f"{len(self.busy)} of these timings were measured while the CPU was busy (load average "
                f"{max(self.busy.values()):.1f} on {os.cpu_count()} cores): their hours are upper bounds; "
                f"--retime on an idle machine measures them again")


# ---- before and after a launch ------------------------------------------------------------------------------

def confirm_launch(hours: float, runs: int, device, max_cpu_hours: float) -> None:
    """Return if the launch may go ahead; else exit :data:`EXIT_REFUSED` (module docstring, ``--confirm``)."""
    if device.type != "cpu" or hours <= max_cpu_hours:
        return
    what = (f"{runs} pending runs need an estimated {hours:,.1f} hours on this CPU, above the threshold of "
            f"{max_cpu_hours:g} hours (MAX_CPU_HOURS)")
    if os.environ.get("YES") == "1":
        print(f"plan: {what}; launching (YES=1)")
        return
    if os.environ.get("CI", "").lower() in ("1", "true") or not sys.stdin.isatty():
        print(f"plan: {what}. Not launched: no terminal to ask (CI, or stdin is not a TTY). Run again with YES=1 "
              "to launch anyway, or DEVICE=cuda on a GPU machine.", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)
    if input(f"plan: {what}. Launch them? [y/N] ").strip().lower() not in ("y", "yes"):
        print("plan: not launched", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)


def unfinished_report(experiment: str, jobs: list[Job]) -> str | None:
    """After a sweep: None if every run of ``experiment`` finished, else one line saying how many did not and
    where their errors are (failed records: ``summary.json``'s ``error``; jobs that wrote no record: Hydra's
    job log under the sweep folder, multirun/ by default)."""
    unfinished = [j for j in jobs if j.pending]
    if not unfinished:
        return None
    failed = [j for j in unfinished if j.status == "failed"]
    running = [j for j in unfinished if j.status == "running"]
    parts = [f"{len(unfinished)} of {len(jobs)} runs did not finish"]
    if failed:
        parts.append(f"{len(failed)} failed, errors in " + ", ".join(str(j.record / "summary.json") for j in failed))
    if running:
        parts.append(f"{len(running)} stopped while running (killed?), records " + ", ".join(map(str, (
            j.record for j in running))))
    if rest := len(unfinished) - len(failed) - len(running):
        parts.append(f"{rest} wrote no record (refused before training: see the job's log under the sweep folder, "
                     "multirun/ by default)")
    return f"{experiment}: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", help="names under conf/experiment, e.g. paper/table1")
    parser.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda | cuda:N")
    parser.add_argument("--pending", action="store_true", help="print the pending jobs' overrides")
    parser.add_argument("--has-pending", action="store_true",
                        help="print nothing; exit 0 if any job is pending, 1 if every run is finished")
    parser.add_argument("--no-timing", action="store_true", help="count evaluations only")
    parser.add_argument("--retime", action="store_true", help="measure every timing again (not from the cache)")
    parser.add_argument("--fetch", action="store_true", help="pre-flight downloads datasets with download=true")
    parser.add_argument("--confirm", action="store_true", help="ask before a CPU launch above --max-cpu-hours")
    parser.add_argument("--max-cpu-hours", type=float, default=2.0, help="the threshold of --confirm (hours)")
    parser.add_argument("--summary", action="store_true",
                        help="after a sweep: list the runs that did not finish; exit 1 if any")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:split]), argv[split + 1:]  # after --: Hydra overrides for every job
    from experiments.preflight import PreflightError, preflight

    try:
        if args.has_pending:
            return 0 if any(j.pending for e in args.experiments for j in expand(e, extra)) else 1
        planned = {e: expand(e, extra) for e in args.experiments}
        if args.summary:
            lines = [line for e, jobs in planned.items() if (line := unfinished_report(e, jobs))]
            print(f"summary: {len(args.experiments) - len(lines)} of {len(args.experiments)} experiments finished "
                  f"every run" + "".join(f"\n  UNFINISHED {line}" for line in lines))
            return 1 if lines else 0
        to_fetch = preflight([j.cfg for jobs in planned.values() for j in jobs if j.pending], fetch=args.fetch)
    except (PreflightError, ValueError, HydraException, OmegaConfBaseException) as err:  # bad overrides, values
        print(f"plan: {err}", file=sys.stderr)
        return EXIT_PREFLIGHT
    from experiments.trainer import resolve_device

    device = resolve_device(args.device)
    timings = Timings(retime=args.retime)
    total_hours, total_pending = 0.0, 0
    print(f"| experiment | runs | finished | pending | failed before | pending gradient evaluations "
          f"| est. hours on {device} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for experiment, jobs in planned.items():
        pending = [j for j in jobs if j.pending]
        evals = sum(grad_evals(j.cfg) for j in pending)
        hours = "-"
        if not args.no_timing:
            seconds = sum(grad_evals(j.cfg) * timings.seconds_per_eval(j.cfg, device) for j in pending)
            total_hours += seconds / 3600
            hours = f"{seconds / 3600:.2f}"
        total_pending += len(pending)
        failed = sum(j.status == "failed" for j in jobs)
        print(f"| {experiment} | {len(jobs)} | {len(jobs) - len(pending)} | {len(pending)} | {failed} | {evals:,} "
              f"| {hours} |")
        if args.pending:
            for job in pending:
                print("   ", " ".join(job.overrides))
    for message in to_fetch:
        print(f"\nnote: {message}")
    if not args.no_timing:
        print(f"\n(hours: pending evaluations x the median of {TIMING_REPEATS[0]}+ timed forward/backward passes of "
              f"each model, {timings.measured} measured now, the rest from {timings.path}; evaluation passes, data "
              "movement and optimizer arithmetic come on top)")
        if note := timings.busy_note():
            print(f"note: {note}")
        if args.confirm:
            confirm_launch(total_hours, total_pending, device, args.max_cpu_hours)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
