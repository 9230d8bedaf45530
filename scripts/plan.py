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
- Cost on ``--device``: pending gradient evaluations × the median seconds of one forward/backward pass of the
  run's model, timed only for the models the asked experiments use (one timing per model, input shape, batch,
  precision and device, a few seconds each: :func:`measure_pass`; each announced on stderr), cached in
  ``~/.cache/rbo-bench/plan-timings.json`` (``$XDG_CACHE_HOME`` honoured; the key also holds the torch version,
  the CPU or GPU name and the thread count) with the load average it was taken under. On a CPU whose load
  average is at or above its core count a wall clock measures the queue, not the pass (other processes' threads
  and this one's OpenMP threads waiting on each other: 25× an idle pass was seen), so there the pass is timed on
  one thread by its CPU time, an upper bound for an idle run; that timing is measured again on the first idle
  plan, and the estimates resting on it are marked (:class:`Timings`). ``--no-timing`` counts evaluations only.
- Cost on a GPU, from what was measured (:func:`read_gpu_throughput`): ``--gpu-throughput`` (default
  ``results/gpu/throughput.json``, written by the GPU check) gives each run's hours as its evaluations / the
  best aggregate rate measured for its setting; without the file the plan says that GPU cost is not measured.
  The file, one JSON object::

      {"device": "<torch.cuda.get_device_name()>", "torch": "<torch.__version__>", "measured_at": "<UTC ISO time>",
       "rows": [{"model": "mlp", "input": [1, 28, 28], "batch": 256, "precision": "fp32" | "bf16",
                 "path": "eager" | "cuda_graphs", "tf32": false, "channels_last": false,
                 "runs_per_gpu": 1, "evals_per_second": 1234.5}, ...]}

  ``evals_per_second``: training gradient evaluations per second (forward + backward of RBO's inner loop on that
  model, input [channels, height, width] and batch), summed over the ``runs_per_gpu`` runs sharing the GPU. A run
  matches the rows of its model, input, batch, precision, path (``cuda_graphs``), ``tf32`` and ``channels_last``;
  of those the fastest counts. :func:`measured_jobs_per_gpu` gives ``RBO_JOBS_PER_GPU``'s default
  (:mod:`experiments.fast_path`).
- ``--confirm``: a CPU launch estimated within ``--max-cpu-hours`` goes ahead and says so; above it, a terminal
  is asked; without one (stdin not a TTY, or ``CI=true``) it is refused with exit 3 and the command that
  overrides it (``$RBO_MAKE_COMMAND``, set by the Makefile, with ``YES=1`` or a larger ``MAX_CPU_HOURS``).
  ``YES=1`` launches without asking.
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

TIMING_PASSES = 30  # timed passes of one model at most ...
TIMING_BUDGET_S = 3.0  # ... and none started once this many seconds were spent on it, warm-up included
GPU_THROUGHPUT = Path("results") / "gpu" / "throughput.json"
GPU_PATHS = ("eager", "cuda_graphs")
SETTING_FIELDS = ("model", "input", "batch", "precision", "path", "tf32", "channels_last")  # what a row measured
MAKE_COMMAND_ENV = "RBO_MAKE_COMMAND"
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


def compose_jobs(jobs: list[list[str]]) -> list[DictConfig]:
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
        cfgs = compose_jobs(overrides)
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


def describe(cfg: DictConfig) -> str:
    """What one timing measures, e.g. ``mlp (1×28×28→10, batch 256, fp32)``."""
    channels, size, classes, _ = shape(cfg)
    return f"{cfg.model.name} ({channels}×{size}×{size}→{classes}, batch {cfg.batch_size}, {cfg.precision})"


def timing_cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rbo-bench" / "plan-timings.json"


def timing_key(cfg: DictConfig, device) -> str:
    """What one pass costs depends on: the model and its options (not ``init``: the same arithmetic), the input
    shape, batch, precision, the device (its name), the torch version and the number of threads."""
    import torch

    channels, size, classes, _ = shape(cfg)
    model = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "init"}
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{records.cpu_name()} ({torch.get_num_threads()} threads)"
    return json.dumps({"model": model, "input": [channels, size, size], "classes": classes, "batch": cfg.batch_size,
                       "precision": str(cfg.precision), "device": device.type, "hardware": hardware,
                       "torch": torch.__version__}, sort_keys=True)


def measure_pass(cfg: DictConfig, device, *, busy: bool = False) -> float:
    """Median seconds of one forward/backward pass of the run's model on a random batch: one warm-up pass
    (allocator, lazy initialisation), then up to :data:`TIMING_PASSES` timed ones, none started once
    :data:`TIMING_BUDGET_S` seconds were spent. A warm-up pass that alone spent the budget (a large model on a CPU)
    is the one sample: its set-up cost is small beside it. ``busy`` (a busy CPU): one thread, timed by the
    process's CPU time, which waiting for a core does not inflate."""
    import torch

    if busy:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return _median_pass(cfg, device, clock=time.process_time)
        finally:
            torch.set_num_threads(threads)
    return _median_pass(cfg, device, clock=time.perf_counter)


def _median_pass(cfg: DictConfig, device, *, clock) -> float:
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
        start = clock()
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return clock() - start

    warmup = one_pass()
    if warmup >= TIMING_BUDGET_S:
        return warmup
    times: list[float] = []
    while not times or (len(times) < TIMING_PASSES and warmup + sum(times) < TIMING_BUDGET_S):
        times.append(one_pass())
    return statistics.median(times)


def cpu_busy(load: float, cores: int) -> bool:
    """A CPU is busy when its load average is at or above its core count: a timing then overstates an idle run."""
    return load >= cores


class Timings:
    """Seconds per forward/backward pass, measured once per :func:`timing_key` and kept in a JSON file with the
    load average and core count it was measured under. On a busy CPU (:func:`cpu_busy`) a pass is timed on one
    thread by its CPU time (:func:`measure_pass`), an upper bound for an idle run, served as such and listed by
    :meth:`busy_note` until the first plan on an idle machine measures it again. An idle timing replaces a busy
    one; a busy one never replaces an idle one. ``retime``: measure every key once more (the cache still keeps
    the idle one)."""

    def __init__(self, path: Path | None = None, *, retime: bool = False):
        self.path = path or timing_cache_path()
        try:
            self.cache = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.cache = {}
        self.retime = retime
        self.measured: set[str] = set()  # keys measured by this process
        self.busy: dict[str, str] = {}  # keys served from a busy timing: what was measured, under what load

    def _is_busy(self, entry: dict, device) -> bool:
        return device.type == "cpu" and cpu_busy(entry["load"], entry["cores"])

    def _measure(self, cfg: DictConfig, device, key: str) -> None:
        print(f"plan: timing {describe(cfg)} on {device} ...", file=sys.stderr, flush=True)
        load, cores = os.getloadavg()[0], os.cpu_count()
        busy = device.type == "cpu" and cpu_busy(load, cores)
        entry = {"seconds": measure_pass(cfg, device, busy=busy), "load": load, "cores": cores,
                 "clock": "cpu, 1 thread" if busy else "wall"}
        print(f"plan:   {entry['seconds'] * 1e3:,.1f} ms per pass (load average {load:.1f} on {cores} cores"
              + ("; busy: one thread, CPU time" if busy else "") + ")", file=sys.stderr, flush=True)
        self.measured.add(key)
        old = self.cache.get(key)
        if isinstance(old, dict) and self._is_busy(entry, device) and not self._is_busy(old, device):
            print(f"plan:   busy: the cached idle timing ({old['seconds'] * 1e3:,.1f} ms) stays", file=sys.stderr)
            return
        self.cache[key] = entry
        try:
            records.write_json(self.path, self.cache)
        except OSError as err:  # a read-only home: the plan still works, it measures again next time
            print(f"plan: could not write the timing cache {self.path}: {err}", file=sys.stderr)

    def seconds_per_eval(self, cfg: DictConfig, device) -> float:
        key = timing_key(cfg, device)
        entry = self.cache.get(key)
        if key not in self.measured and (
                not (isinstance(entry, dict) and {"seconds", "load", "cores"} <= entry.keys())  # none, or no load
                or self.retime
                or (self._is_busy(entry, device) and (not cpu_busy(os.getloadavg()[0], os.cpu_count())
                                                      or entry.get("clock") != "cpu, 1 thread"))):  # a busy wall clock
            self._measure(cfg, device, key)
            entry = self.cache[key]
        if self._is_busy(entry, device):
            self.busy[key] = (f"{describe(cfg)}: {entry['seconds'] * 1e3:,.1f} ms of one thread's CPU time per pass, "
                              f"at load {entry['load']:.1f} on {entry['cores']} cores")
        return entry["seconds"]

    def busy_note(self) -> str | None:
        """Which timings the marked estimates rest on, and what they bound."""
        if not self.busy:
            return None
        return ("* rests on CPU timings taken while the machine was busy (load average at or above its cores): one "
                "thread's CPU time per pass, an upper bound for an idle run with more threads; measured again by "
                "the first plan on an idle machine:\n" + "\n".join(f"  {line}" for line in self.busy.values()))


# ---- cost on a GPU, from the measured throughput ------------------------------------------------------------

def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


ROW_FORMAT = {  # field: (check, what is allowed)
    "model": (lambda v: isinstance(v, str) and bool(v), "a model name (conf/model)"),
    "input": (lambda v: isinstance(v, list) and len(v) == 3 and all(map(_is_count, v)),
              "[channels, height, width], integers >= 1"),
    "batch": (_is_count, "an integer >= 1"),
    "precision": (lambda v: v in ("fp32", "bf16"), "fp32 or bf16"),
    "path": (lambda v: v in GPU_PATHS, " or ".join(GPU_PATHS)),
    "tf32": (lambda v: isinstance(v, bool), "true or false"),
    "channels_last": (lambda v: isinstance(v, bool), "true or false"),
    "runs_per_gpu": (_is_count, "an integer >= 1"),
    "evals_per_second": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf,
                         "a number > 0"),
}


def read_gpu_throughput(path: Path = GPU_THROUGHPUT) -> dict | None:
    """The measured GPU throughput (format: module docstring), None if ``path`` does not exist. A file that does
    not follow the format is a ``ValueError`` naming the file, the field, its value and what is allowed."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable JSON file ({err}); allowed: the format of scripts/plan.py's "
                         "docstring") from err

    def refuse(field: str, value, allowed: str):
        raise ValueError(f"{path}: {field}={value!r} is not allowed; allowed: {allowed}")

    if not isinstance(data, dict):
        refuse("the file", data, "a JSON object with device, torch, measured_at and rows")
    for field in ("device", "torch", "measured_at"):
        if not isinstance(data.get(field), str) or not data[field]:
            refuse(field, data.get(field), "a non-empty string")
    if not isinstance(data.get("rows"), list) or not data["rows"]:
        refuse("rows", data.get("rows"), "a non-empty list of measurements")
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict):
            refuse(f"rows[{i}]", row, "an object with " + ", ".join(ROW_FORMAT))
        for field, (check, allowed) in ROW_FORMAT.items():
            if not check(row.get(field)):
                refuse(f"rows[{i}].{field}", row.get(field), allowed)
    return data


def _setting(row: dict) -> tuple:
    return tuple(tuple(row[f]) if f == "input" else row[f] for f in SETTING_FIELDS)


def gpu_setting(cfg: DictConfig) -> tuple:
    """The run's values of :data:`SETTING_FIELDS`: the throughput rows it can be estimated from."""
    channels, size, _, _ = shape(cfg)
    return _setting({"model": cfg.model.name, "input": [channels, size, size], "batch": cfg.batch_size,
                     "precision": str(cfg.precision), "path": GPU_PATHS[bool(cfg.cuda_graphs)],
                     "tf32": bool(cfg.tf32), "channels_last": bool(cfg.channels_last)})


def best_rows(throughput: dict) -> dict[tuple, dict]:
    """Per measured setting, the row of the highest aggregate ``evals_per_second`` (its ``runs_per_gpu`` is the
    best number of runs to share the GPU)."""
    best: dict[tuple, dict] = {}
    for row in throughput["rows"]:
        setting = _setting(row)
        if setting not in best or row["evals_per_second"] > best[setting]["evals_per_second"]:
            best[setting] = row
    return best


def describe_setting(setting: tuple) -> str:
    """``vgg9 3×32×32 batch 256 fp32 cuda_graphs`` (``, tf32``, ``, channels_last`` when on)."""
    model, (channels, height, width), batch, precision, path, tf32, channels_last = setting
    options = "".join(f", {name}" for name, on in (("tf32", tf32), ("channels_last", channels_last)) if on)
    return f"{model} {channels}×{height}×{width} batch {batch} {precision} {path}{options}"


def measured_jobs_per_gpu(device_name: str, path: Path = GPU_THROUGHPUT) -> int | None:
    """``RBO_JOBS_PER_GPU``'s default on the GPU ``device_name``: the runs per GPU of the best aggregate throughput
    measured on that GPU, the smallest over the measured settings (more would slow one of them); None without a
    measurement of this GPU."""
    throughput = read_gpu_throughput(path)
    if throughput is None or throughput["device"] != device_name:
        return None
    return min(row["runs_per_gpu"] for row in best_rows(throughput).values())


# ---- before and after a launch ------------------------------------------------------------------------------

def confirm_launch(hours: float, runs: int, device, max_cpu_hours: float) -> None:
    """Return if the launch may go ahead; else exit :data:`EXIT_REFUSED` (module docstring, ``--confirm``)."""
    if device.type != "cpu":
        return
    what = f"{runs} pending runs need an estimated {hours:,.2f} hours on this CPU"
    if hours <= max_cpu_hours:
        print(f"plan: {what}, within the budget of {max_cpu_hours:g} hours (MAX_CPU_HOURS); launching")
        return
    what += f", above the budget of {max_cpu_hours:g} hours (MAX_CPU_HOURS)"
    if os.environ.get("YES") == "1":
        print(f"plan: {what}; launching (YES=1)")
        return
    command, budget = os.environ.get(MAKE_COMMAND_ENV), math.ceil(hours)
    override = (f"`{command} YES=1`, or raise the budget: `{command} MAX_CPU_HOURS={budget}`" if command else
                f"YES=1 in the environment, or raise the budget: --max-cpu-hours {budget}")
    if os.environ.get("CI", "").lower() in ("1", "true") or not sys.stdin.isatty():
        print(f"plan: {what}. Not launched: no terminal to ask (CI, or stdin is not a TTY). To launch anyway: "
              f"{override} (or DEVICE=cuda on a GPU machine).", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)
    if input(f"plan: {what}. Launch them? [y/N] ").strip().lower() not in ("y", "yes"):
        print(f"plan: not launched. To launch without this question: {override}", file=sys.stderr)
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
    parser.add_argument("--gpu-throughput", type=Path, default=GPU_THROUGHPUT,
                        help=f"the measured GPU throughput (default {GPU_THROUGHPUT}; format: module docstring)")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:split]), argv[split + 1:]  # after --: Hydra overrides for every job
    from experiments.preflight import PreflightError, preflight

    try:
        if args.has_pending:
            return 0 if any(j.pending for e in args.experiments for j in expand(e, extra)) else 1
        throughput = None if args.summary else read_gpu_throughput(args.gpu_throughput)
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
    best = best_rows(throughput) if throughput else {}
    gpu_used: dict[tuple, dict] = {}
    gpu_missing: set[tuple] = set()
    total_hours, total_pending = 0.0, 0
    gpu_column = f" est. hours on {throughput['device']} (measured) |" if throughput else ""
    print(f"| experiment | runs | finished | pending | failed before | pending gradient evaluations "
          f"| est. hours on {device} |{gpu_column}")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * bool(throughput))
    for experiment, jobs in planned.items():
        pending = [j for j in jobs if j.pending]
        evals = sum(grad_evals(j.cfg) for j in pending)
        hours = "-"
        if not args.no_timing:
            seconds = sum(grad_evals(j.cfg) * timings.seconds_per_eval(j.cfg, device) for j in pending)
            total_hours += seconds / 3600
            busy = any(timing_key(j.cfg, device) in timings.busy for j in pending)
            hours = f"{seconds / 3600:.2f}" + "*" * busy
        gpu_hours = ""
        if throughput:
            settings = [gpu_setting(j.cfg) for j in pending]
            gpu_missing.update(s for s in settings if s not in best)
            gpu_used.update((s, best[s]) for s in settings if s in best)
            rates = [best[s]["evals_per_second"] if s in best else None for s in settings]
            gpu_hours = " not measured |" if None in rates else \
                f" {sum(grad_evals(j.cfg) / rate for j, rate in zip(pending, rates)) / 3600:.2f} |"
        total_pending += len(pending)
        failed = sum(j.status == "failed" for j in jobs)
        print(f"| {experiment} | {len(jobs)} | {len(jobs) - len(pending)} | {len(pending)} | {failed} | {evals:,} "
              f"| {hours} |{gpu_hours}", flush=True)
        if args.pending:
            for job in pending:
                print("   ", " ".join(job.overrides))
    for message in to_fetch:
        print(f"\nnote: {message}")
    if not args.no_timing:
        print(f"\nhours on {device}: pending evaluations × the median seconds of a forward/backward pass of each model "
              f"({len(timings.measured)} timed now, the rest from {timings.path}); evaluation passes, data movement "
              "and optimizer arithmetic come on top.")
        if note := timings.busy_note():
            print(note)
    else:
        print(f"\nhours on {device}: not timed (--no-timing; `make plan EXPERIMENTS='a b'` times those experiments' "
              "models).")
    if throughput:
        print(f"hours on {throughput['device']}: measured by the GPU check ({args.gpu_throughput}, torch "
              f"{throughput['torch']}, {throughput['measured_at']}); each run's evaluations / the best aggregate rate "
              "measured for its setting, i.e. with that many runs sharing one GPU:"
              + "".join(f"\n  {describe_setting(s)}, {row['runs_per_gpu']} runs per GPU: "
                        f"{row['evals_per_second']:,.0f} evaluations/s" for s, row in sorted(gpu_used.items()))
              + "".join(f"\n  {describe_setting(s)}: not measured" for s in sorted(gpu_missing)))
    else:
        consequence = (f"the hours on {device} above rest on single forward/backward passes timed now, not on a "
                       "measured throughput" if device.type == "cuda" and not args.no_timing else
                       "so this plan gives no GPU estimate")
        print(f"GPU: not measured. No GPU has measured this suite's throughput yet ({args.gpu_throughput} does not "
              f"exist; the GPU check writes it on a GPU machine, README \"Parallel sweeps\"), {consequence}.")
    if args.confirm and not args.no_timing:
        confirm_launch(total_hours, total_pending, device, args.max_cpu_hours)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
