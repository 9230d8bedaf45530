"""The one training loop (issue 5): every optimizer driven by its declared protocol (``plain``, ``closure``,
``grad_then_closure``: :class:`experiments.optim.StepDriver`), honest cost accounting, evaluation rows, run
records with per-epoch checkpoints, resume, divergence and failure records.

Record format: README.md ("Run records"); how it is written: :mod:`experiments.records`.

- The closure (:class:`Closure`, the protocol of :mod:`rbo.common`) zero-grads, runs the forward pass on the
  current minibatch (bf16 autocast if ``precision=bf16``), back-propagates ``loss_scale`` × mean
  cross-entropy and returns it; ``closure(advance=True)`` first moves to the next minibatch of the epoch
  (Entropy-SGD with fresh batches). Gradient evaluations are counted here, never taken from an optimizer (RBO's
  ``step_evals`` adds its Hessian-vector products); every evaluation after a step's first leaves BatchNorm running
  statistics alone, whoever calls it (SPEC §1, §2).
- Train loss/accuracy are running means of the FIRST evaluation of each step (plain cross-entropy, without
  ``loss_scale``), kept on the device; validation and test run in eval mode under ``torch.no_grad`` and
  are excluded from ``train_seconds``.
- Resume: a checkpoint at the end of every epoch holds the model, optimizer, scheduler, RNG states, counters
  and every row written so far; the data order depends only on (seed, epoch). Rerunning the same config
  continues from it and ends with the metrics of an uninterrupted run (except wall-clock columns).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import traceback
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import fields

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from experiments import fast_path, records
from experiments.config import Config
from experiments.data import DATASETS, DeviceLoader, load_dataset
from experiments.models import MODELS, build_model
from experiments.optim import StepDriver, build_optimizer, check_optimizer_config, evals_per_step
from experiments.preflight import check_free_space, check_job, dataset_files
from experiments.wandb_logger import NullLogger, make_logger, offline_runs, resolve_mode
from rbo.common import DivergenceError, backward, frozen_running_stats, global_sq_norm

LOGGERS = ("none", "wandb")
WARMUP_STEPS = 3  # the first steps each process runs (lazy init, allocator, kernel choice): warmup_seconds
PROGRESS_SECONDS = 60.0  # a progress line within an epoch at least this often ...
PROGRESS_PARTS = 10  # ... and at least every tenth of the epoch, whichever comes first (issue 25)

log = logging.getLogger(__name__)  # under Hydra: the console and <hydra output dir>/train.log
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


# ---- validation, before any work ----------------------------------------------------------------------------

def _allowed(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is unknown; allowed: {', '.join(map(str, allowed))}")


def _at_least(key: str, value, low, what: str = "an integer") -> None:
    if value is None or value < low:
        raise ValueError(f"{key}={value!r} is not allowed; allowed: {what} >= {low}")


def _check_keys(node: DictConfig, schema: type, prefix: str) -> None:
    """Keys added with Hydra's ``+key=value`` bypass the schema: reject any key the schema does not have."""
    unknown = sorted(set(node.keys()) - {f.name for f in fields(schema)})
    if unknown:
        raise ValueError(f"unknown config key(s) {[prefix + k for k in unknown]}; allowed: "
                         f"{', '.join(prefix + f.name for f in fields(schema))}")


def validate(cfg: DictConfig, *, lr_pending: bool = False) -> None:
    """Every check that needs no data: names, ranges, keys. ``ValueError`` names the key, value and what is allowed.
    ``lr_pending``: accept an ``sgd_effective_lr`` lr not resolved yet (pre-flight of a whole sweep)."""
    _check_keys(cfg, Config, "")
    for group in ("optimizer", "dataset", "model", "logger"):
        _check_keys(cfg[group], OmegaConf.get_type(cfg[group]), f"{group}.")
    check_optimizer_config(cfg.optimizer, lr_pending=lr_pending)
    _allowed("dataset.name", cfg.dataset.name, DATASETS)
    _allowed("model.name", cfg.model.name, sorted(MODELS))
    _allowed("logger.name", cfg.logger.name, LOGGERS)
    if cfg.logger.name == "wandb":
        resolve_mode(cfg.logger.mode)  # $WANDB_MODE when logger.mode is null
    if not DEVICE_PATTERN.fullmatch(cfg.device):
        raise ValueError(f"device={cfg.device!r} is unknown; allowed: auto, cpu, cuda, cuda:N")
    fast_path.check_config(cfg)  # cuda_graphs, tf32: CUDA only
    for key in ("epochs", "batch_size", "eval_batch_size", "log_every"):
        _at_least(key, cfg[key], 1)
    if cfg.max_grad_evals is not None:
        _at_least("max_grad_evals", cfg.max_grad_evals, 1, "null or an integer")
    if cfg.max_sgd_epochs is not None and not (cfg.max_sgd_epochs > 0 and math.isfinite(cfg.max_sgd_epochs)):
        raise ValueError(f"max_sgd_epochs={cfg.max_sgd_epochs!r} is not allowed; allowed: null or a finite number > 0")
    if not (cfg.loss_scale > 0 and math.isfinite(cfg.loss_scale)):
        raise ValueError(f"loss_scale={cfg.loss_scale!r} is not allowed; allowed: a finite number > 0")
    if any(not (k > 0 and math.isfinite(k)) for k in cfg.budget_sgd_epochs):
        raise ValueError(f"budget_sgd_epochs={list(cfg.budget_sgd_epochs)!r} is not allowed; "
                         "allowed: a list of finite numbers > 0")


def resolve_device(name: str) -> torch.device:
    """``auto``: cuda if available, else cpu. A CUDA device that is not there is a ``ValueError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device={name!r} is not available here; allowed: cpu"
                         + (f", cuda, cuda:0..{torch.cuda.device_count() - 1}" if torch.cuda.is_available() else ""))
    return device


# ---- the closure -------------------------------------------------------------------------------------------

class Closure:
    """``closure(advance=False, create_graph=False)`` on the current minibatch, for ``optimizer.step``
    (protocol: rbo/common.py). ``create_graph`` keeps the gradients' graph for Hessian-vector products: the
    gradients come from ``torch.autograd.grad`` and are assigned, so no parameter holds a reference cycle through
    its ``.grad`` (what ``backward(create_graph=True)`` would make); the step's driver frees the graph after it.

    :meth:`next_step` takes the next minibatch of the epoch and marks the coming evaluation as the step's
    first (recorded for the train running means). Evaluations count as ``grad_evals``, or as ``diag_evals``
    while ``diagnostic`` is set (``measure_contact``).
    """

    def __init__(self, model, batches: Iterator, *, loss_scale: float, autocast, counters: dict):
        self.model, self.batches, self.loss_scale, self.autocast = model, batches, loss_scale, autocast
        self.counters = counters
        self.batch = None
        self.consumed = 0  # minibatches taken from this epoch
        self.first, self.diagnostic = False, False
        self.first_loss = None  # plain cross-entropy of the current step's first evaluation
        device = next(model.parameters()).device
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.seen = 0

    def _take(self) -> bool:
        batch = next(self.batches, None)
        if batch is None:
            return False
        self.batch = batch
        self.consumed += 1
        self.counters["examples"] += batch[1].shape[0]
        return True

    def next_step(self) -> bool:
        """Move to the next minibatch for a new step; False when the epoch has none left."""
        self.first = self._take()
        return self.first

    def __call__(self, advance: bool = False, create_graph: bool = False) -> torch.Tensor:
        if advance:
            self._take()  # none left: stay on the current minibatch
        x, y = self.batch
        first = self.first and not self.diagnostic
        self.model.zero_grad(set_to_none=True)
        with self.autocast(), nullcontext() if first else frozen_running_stats():
            logits = self.model(x)
        ce = F.cross_entropy(logits.float(), y)
        loss = ce * self.loss_scale if self.loss_scale != 1.0 else ce
        backward(loss, [p for p in self.model.parameters() if p.requires_grad], create_graph=create_graph)
        self.counters["diag_evals" if self.diagnostic else "grad_evals"] += 1
        if first:
            self.first = False
            self.first_loss = ce.detach()
            self.loss_sum += self.first_loss * y.shape[0]
            self.correct += (logits.detach().argmax(1) == y).sum()
            self.seen += y.shape[0]
        return loss.detach()

    def train_means(self) -> tuple[float, float]:
        if not self.seen:
            return math.nan, math.nan
        return float(self.loss_sum) / self.seen, float(self.correct) / self.seen


# ---- the trainer -------------------------------------------------------------------------------------------

class Trainer:
    """One run: :meth:`run` trains (or resumes) and writes the record; see the module docstring."""

    def __init__(self, cfg: DictConfig):
        check_job(cfg)  # pre-flight for this one job (experiments.preflight): nothing is written if it fails
        self.cfg = cfg
        self.config = records.to_container(cfg)
        self.run_id = records.run_id(self.config)
        self.dir = records.run_dir(self.config)
        self.device = resolve_device(cfg.device)
        self.env = {**records.environment(self.device), "source_sha256": records.source_sha256(),
                    "data_fingerprint": records.data_fingerprint(dataset_files(cfg))}
        # The run's history: everything a checkpoint carries besides model/optimizer/scheduler/RNG states.
        self.epoch = 0  # full epochs done
        self.counters = {"step": 0, "grad_evals": 0, "diag_evals": 0, "examples": 0, "train_seconds": 0.0}
        self.metrics: list[dict] = []
        self.steps: list[dict] = []
        self.diag_sum: dict[str, float] = {}  # per diagnostic key, over the run (summary "diagnostics")
        self.diag_count: dict[str, int] = {}
        self.started_at = records.now()
        self.history_loaded = False  # False: the files on disk may know more than this object (no CSV rewrite)
        self.logger = NullLogger()
        self.closure: Closure | None = None
        self._evaluated: tuple[int, dict] | None = None  # (step, results): one evaluation per model state
        self._t0: float | None = None  # training clock, running while not None
        self._steps_here = 0  # optimizer steps this process ran (the first WARMUP_STEPS are warm-up)
        self._started_here = time.monotonic()  # for the log lines' elapsed time and ETA
        self._last_line = self._started_here  # when the last start, progress or epoch line was written
        self._progress_part = 0  # tenths of the current epoch that the last progress line had reached
        self._first_epoch = 0  # the epoch this process started from (set by _train, which resumes)
        self.bar = tqdm(disable=True)  # _train opens the run's progress bar; _epoch alone (a benchmark) draws none

    def run(self) -> dict | None:
        """Train, resume or record the failure; returns the summary (as saved). Divergence is a result
        (status diverged, returns normally); any other exception is recorded as failed and re-raised.

        The record has one owner (:func:`records.record_lock`, held to the end): a second launch of the same
        run stops at once with :class:`records.RecordLocked`. Once the lock is held the record is looked at
        again (:func:`records.skip_decision`): finished meanwhile, it is skipped (returns None); finished with
        other code or data and ``on_change=rerun``, or with a damaged summary, the old record is set aside and the
        run starts afresh. Before anything is written the disk must hold its checkpoints with a margin
        (:func:`experiments.preflight.check_free_space`)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with records.record_lock(self.dir):
            decision = records.skip_decision(self.dir, self.cfg.on_change, self.config)
            if decision.message:
                print(decision.message)
            if decision.skip:
                return None
            check_free_space(self.cfg, self.dir)
            if decision.aside:
                records.set_aside(self.dir, records.RECORD_FILES, decision.aside)
            return self._train_record(self._load_history())

    def _train_record(self, state: dict | None) -> dict:
        """Resume from ``state`` (or start), train, write the record; see :meth:`run`."""
        summary = None
        self._write_invocation()
        try:
            self._write()
            self._start_logger()
            self._setup()
            if state is not None:
                self._restore(state)
            del state
            self._train()
            summary = self._write("completed", finished_at=records.now())
        except DivergenceError as err:
            self._clock_stop()
            at = self._position() if self.closure is not None else float(self.epoch)
            log.warning("diverged at epoch %.3f: %s", at, err)
            summary = self._write("diverged", diverged_at_epoch=at, error=str(err), finished_at=records.now())
        except Exception:
            try:
                summary = self._write("failed", error=traceback.format_exc(), finished_at=records.now())
            except OSError as err:  # the disk that failed the run (full, I/O error) refuses its record too
                log.error("the failure could not be recorded in %s (%s); the record says running", self.dir, err)
            raise
        finally:
            self.logger.finish(summary or records.json_safe(self._summary("running")))
            if summary is not None:
                self._log_end(summary)
        return summary

    # -- setup and resume -----------------------------------------------------------------------------------

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16) if self._bf16 else nullcontext()

    def _setup(self) -> None:
        cfg, ds = self.cfg, self.cfg.dataset
        data = load_dataset(ds.name, data_dir=cfg.data_dir, device=self.device, val_size=ds.val_size,
                            download=ds.download, synthetic_shape=ds.synthetic_shape,
                            synthetic_size=tuple(ds.synthetic_size))
        if cfg.batch_size > len(data.train):
            raise ValueError(f"batch_size={cfg.batch_size} is larger than the {len(data.train)} training examples "
                             f"of {ds.name}; allowed: 1..{len(data.train)}")
        norm = dict(normalize=ds.normalize, mean=data.mean, std=data.std)
        self.train_loader = DeviceLoader(data.train, cfg.batch_size, seed=cfg.seed, shuffle=ds.shuffle,
                                         augment=ds.augment, **norm)
        self.eval_loaders = {name: DeviceLoader(split, min(cfg.eval_batch_size, len(split)), seed=0, shuffle=False,
                                                **norm)
                             for name, split in (("val", data.val), ("test", data.test)) if split is not None}
        torch.manual_seed(cfg.seed)  # model initialisation (and any later global-RNG use, e.g. dropout)
        options = {k: v for k, v in self.config["model"].items() if k != "name"}
        self.model = build_model(cfg.model.name, in_channels=data.in_channels, num_classes=data.num_classes,
                                 image_size=data.image_size, **options).to(self.device)
        self.optimizer = build_optimizer(cfg.optimizer, self.model, seed=cfg.seed)
        self.graphed_closure = fast_path.install(cfg, self.model, self.optimizer)  # tf32, channels_last, graphs
        # the optimizer's protocol, and before any step: a closure that can keep the graph if the step needs it
        closure_call = type(self.graphed_closure).__call__ if self.graphed_closure else Closure.__call__
        self.step_driver = StepDriver(self.optimizer, cfg.optimizer, closure_call=closure_call,
                                      graphed=self.graphed_closure)
        self.scheduler = None
        if cfg.scheduler == "cosine":
            steps = len(self.train_loader)
            if getattr(self.optimizer, "fresh_batches", False):  # Entropy-SGD: each step consumes L minibatches
                steps = math.ceil(steps / self.optimizer.L)
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs * steps)
        self._bf16 = cfg.precision == "bf16"  # per-step decisions as plain attributes, not config lookups
        limits = [cfg.max_grad_evals, None if cfg.max_sgd_epochs is None
                  else math.ceil(cfg.max_sgd_epochs * len(self.train_loader))]
        self.grad_eval_limit = min((n for n in limits if n is not None), default=None)
        self.budgets = sorted(k * len(self.train_loader) for k in cfg.budget_sgd_epochs)  # in grad evals
        self.budget_epochs = sorted(cfg.budget_sgd_epochs)
        self.budgets_done = sum(row["trigger"] == "budget" for row in self.metrics)  # a resumed run has some
        self.step_cost = evals_per_step(cfg.optimizer)  # at most, per step: what the budgets and the cap plan with

    def _checkpoint(self) -> None:
        """``checkpoint.pt``: tensors and primitive containers only (``torch.load(weights_only=True)``). A write the
        disk refuses (full, I/O error) leaves the previous checkpoint as it was (an atomic write; its temporary file
        is removed) and raises :class:`records.CheckpointNotWritten`, which says what to do; the epoch's rows are
        on disk already (:meth:`_epoch` writes them first)."""
        cuda = self.device.type == "cuda"
        path = self.dir / "checkpoint.pt"
        try:
            records.save_checkpoint(path, {
                "run_id": self.run_id, "epoch": self.epoch, "started_at": self.started_at,
                "counters": dict(self.counters), "metrics": self.metrics, "steps": self.steps,
                "diag_sum": self.diag_sum, "diag_count": self.diag_count,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "rng": {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(self.device) if cuda else None},
            })
        except OSError as err:
            kept = f"the checkpoint of epoch {self.epoch - 1} is kept" if path.is_file() else "no earlier one exists"
            raise records.CheckpointNotWritten(
                f"{path} could not be written after epoch {self.epoch} ({err.strerror or err}): {kept}, and "
                f"metrics.csv holds every row up to epoch {self.epoch}; free space on that disk (or fix it) and "
                "run the same command again to resume") from err

    def _load_history(self) -> dict | None:
        """The last checkpoint's history (rows, counters) into this object, then ``config.yaml``; returns the
        checkpoint, if any (:func:`records.resume_state`: another run's checkpoint raises before anything is
        written, an unreadable one is set aside and the run starts from scratch)."""
        state = records.resume_state(self.dir, self.run_id, self.device)
        records.write_yaml(self.dir / "config.yaml", self.config)
        if state is not None:
            self.epoch, self.started_at, self.counters = state["epoch"], state["started_at"], state["counters"]
            self.metrics, self.steps = state["metrics"], state["steps"]
            self.diag_sum, self.diag_count = state["diag_sum"], state["diag_count"]
            print(f"resume: {self.dir} from epoch {self.epoch}")
        self.history_loaded = True
        return state

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["cpu"].cpu())
        if state["rng"]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)

    def _write_invocation(self) -> None:
        """``invocations.json`` beside the record: per job that ran this run (a resumed run has several), when it
        started, its Hydra output folder (``train.log``, ``.hydra/``), job name and command-line overrides."""
        from hydra.core.hydra_config import HydraConfig

        path = self.dir / "invocations.json"
        jobs = json.loads(path.read_text()) if path.is_file() else []
        job = {"started_at": records.now(), "output_dir": None, "job_name": None, "overrides": None}
        if HydraConfig.initialized():
            hydra = HydraConfig.get()
            job.update(output_dir=hydra.runtime.output_dir, job_name=hydra.job.name,
                       overrides=list(hydra.overrides.task))
        records.write_json(path, [*jobs, job])

    def _start_logger(self) -> None:
        """The configured logger; a resumed run first hands it its history, in the order it was logged (the
        logger skips what it already holds: experiments.wandb_logger)."""
        self.logger = make_logger(self.cfg.logger, directory=self.dir / ".wandb", run_id=self.run_id,
                                  config={**self.config, "run_id": self.run_id})
        history = [("epoch", r) for r in self.metrics] + [("steps", r) for r in self.steps]
        for kind, row in sorted(history, key=lambda kr: (kr[1]["step"], kr[0] == "epoch")):
            self.logger.log(kind, row)
        log.info("start %s %s-%s-%s-s%s (run %s) on %s%s; record %s", self.cfg.experiment_name,
                 self.cfg.optimizer.name, self.cfg.dataset.name, self.cfg.model.name, self.cfg.seed, self.run_id,
                 self.device, f", resuming after epoch {self.epoch}" if self.epoch else "", self.dir)

    # -- records --------------------------------------------------------------------------------------------

    def _summary(self, status: str, **extra) -> dict:
        diagnostics = {k: self.diag_sum[k] / self.diag_count[k] for k in self.diag_sum}
        return records.build_summary(self.config, status=status, metrics=self.metrics, counters=self.counters,
                                     diagnostics=diagnostics, env=self.env, started_at=self.started_at, **extra)

    def _write(self, status: str = "running", **extra) -> dict:
        """metrics.csv, steps.csv (unless the history could not be read) and summary.json; returns the summary."""
        if self.history_loaded:
            records.write_csv(self.dir / "metrics.csv", self.metrics, records.METRICS_COLUMNS)
            records.write_csv(self.dir / "steps.csv", self.steps, records.STEPS_COLUMNS)
        summary = records.json_safe(self._summary(status, **extra))
        records.write_json(self.dir / "summary.json", summary)
        return summary

    # -- timing and evaluation ------------------------------------------------------------------------------

    def _clock_start(self) -> None:
        self._t0 = time.perf_counter()

    def _clock_stop(self) -> None:
        """Add the time since :meth:`_clock_start` (no-op if the clock is not running) to ``train_seconds``, or
        to ``warmup_seconds`` while this process has run no more than :data:`WARMUP_STEPS` steps (the loop stops
        the clock right after the last warm-up step). Neither includes evaluation, steps.csv rows or checkpoints."""
        if self._t0 is not None:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            key = "train_seconds" if self._steps_here > WARMUP_STEPS else "warmup_seconds"
            self.counters[key] = self.counters.get(key, 0.0) + time.perf_counter() - self._t0  # old checkpoints: none
            self._t0 = None

    def _elapsed_eta(self, position: float, now: float) -> tuple[str, str]:
        """This process's elapsed time and the run's ETA at ``position`` (epochs, fractional)."""
        elapsed = now - self._started_here
        done_here = position - self._first_epoch
        eta = elapsed / done_here * (self.cfg.epochs - position) if done_here > 0 else math.nan
        return _duration(elapsed), _duration(eta)

    def _log_progress(self, epoch: int) -> None:
        """A line within the epoch (issue 25) when :data:`PROGRESS_SECONDS` have passed since the last line or the
        epoch has crossed another 1/:data:`PROGRESS_PARTS` of its batches, whichever comes first; in redirected
        output too, where the bar is off. Batches, the epoch's running train loss and accuracy, evaluations,
        elapsed time and ETA. Its host sync is not training time."""
        n, done, now = len(self.train_loader), self.closure.consumed, time.monotonic()
        part = done * PROGRESS_PARTS // n
        if done >= n or (part <= self._progress_part and now - self._last_line < PROGRESS_SECONDS):
            return
        self._clock_stop()
        train_loss, train_acc = self.closure.train_means()
        log.info("epoch %d/%d %d%% (%d/%d batches) train_loss %.4f train_acc %.4f grad_evals %d elapsed %s eta %s",
                 epoch, self.cfg.epochs, 100 * done // n, done, n, train_loss, train_acc, self.counters["grad_evals"],
                 *self._elapsed_eta(self._position(), now))
        self._progress_part, self._last_line = part, now

    def _log_epoch(self, row: dict) -> None:
        """One line per epoch: losses, accuracies, evaluations, this process's elapsed time and the run's ETA."""
        now = time.monotonic()
        log.info("epoch %d/%d train_loss %.4f val_acc %.4f test_acc %.4f grad_evals %d elapsed %s eta %s",
                 math.ceil(row["epoch"]), self.cfg.epochs, row["train_loss"], row["val_acc"], row["test_acc"],
                 row["grad_evals"], *self._elapsed_eta(row["epoch"], now))
        self._progress_part, self._last_line = 0, now

    def _wandb_destination(self) -> str:
        """Where the run's W&B rows went, for the end line: not logged (``logger=none``, ``logger.mode=disabled``),
        this job's offline folder (and the command that uploads it), or the online run."""
        logger = self.cfg.logger
        mode = resolve_mode(logger.mode) if logger.name == "wandb" else None
        if mode is None or mode == "disabled":
            return f"W&B not logged ({'logger.mode=disabled' if mode else f'logger={logger.name}'})"
        folder = self.dir / ".wandb"
        if mode == "offline":
            jobs = offline_runs(folder, self.run_id)
            where = jobs[-1].parent if jobs else folder
            return f"W&B offline in {where} (upload: wandb sync {where})"
        return f"W&B online: run {self.run_id} of project {logger.project} (local files in {folder})"

    def _log_end(self, summary: dict) -> None:
        """The run's last line: status, final accuracies, this job's wall time, the run's gradient evaluations,
        where W&B's files went (:meth:`_wandb_destination`) and the record."""
        final = summary["final"]
        level = {"completed": logging.INFO, "diverged": logging.WARNING}.get(summary["status"], logging.ERROR)
        log.log(level, "end %s after %.2f epochs: test_acc %s val_acc %s; wall %s, grad_evals %d; %s; record %s",
                summary["status"], summary["epochs_completed"],
                *(f"{final[k]:.4f}" if final[k] is not None else "n/a" for k in ("test_acc", "val_acc")),
                _duration(time.monotonic() - self._started_here), summary["cost"]["grad_evals"],
                self._wandb_destination(), self.dir)

    @torch.no_grad()
    def _evaluate(self) -> dict:
        """Validation and test loss/accuracy in eval mode (cached per step: budget and epoch rows can coincide)."""
        if self._evaluated is not None and self._evaluated[0] == self.counters["step"]:
            return self._evaluated[1]
        self.model.eval()
        out = {}
        for split in ("val", "test"):
            loader = self.eval_loaders.get(split)
            loss = torch.zeros((), device=self.device, dtype=torch.float64)
            correct = torch.zeros((), device=self.device, dtype=torch.int64)
            for x, y in loader.batches(0) if loader else ():
                with self._autocast():
                    logits = self.model(x)
                loss += F.cross_entropy(logits.float(), y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
            n = len(loader.split) if loader else 0
            out[f"{split}_loss"] = float(loss) / n if n else math.nan
            out[f"{split}_acc"] = float(correct) / n if n else math.nan
        self.model.train()
        self._evaluated = (self.counters["step"], out)
        return out

    def _row(self, trigger: str, epoch: float, **values) -> None:
        """Evaluate and append a metrics row (with the training clock stopped)."""
        self._clock_stop()
        counts = {k: self.counters[k] for k in ("step", "grad_evals", "examples", "train_seconds")}
        row = {"epoch": epoch, "trigger": trigger, **counts, "lr": float(self.optimizer.param_groups[0]["lr"]),
               "train_loss": math.nan, "train_acc": math.nan, **self._evaluate(), "budget_sgd_epochs": math.nan,
               **values}
        self.metrics.append(row)
        self.logger.log("epoch", row)

    # -- the loop -------------------------------------------------------------------------------------------

    def _position(self) -> float:
        """Epochs done so far, fractional within the current epoch."""
        return self.epoch + self.closure.consumed / len(self.train_loader)

    def _budget_spent(self) -> bool:
        """Whether the next step could take the run past its evaluation cap: it is not taken, so a capped run never
        spends more than its cap (an optimizer whose step costs K evaluations stops at the last multiple of K)."""
        return self.grad_eval_limit is not None and \
            self.counters["grad_evals"] + self.step_cost > self.grad_eval_limit

    def _budget_rows(self) -> None:
        """A ``budget`` row for each budget the next step could pass: the last point at or below it, so every
        optimizer is compared at no more than the evaluations it names (SGD: exactly there)."""
        due = bisect_left(self.budgets, self.counters["grad_evals"] + self.step_cost)
        for k in self.budget_epochs[self.budgets_done:due]:
            self._row("budget", self._position(), budget_sgd_epochs=k)
        self.budgets_done = max(self.budgets_done, due)

    def _train(self) -> None:
        self.model.train()
        if not self.metrics:
            self._row("init", 0.0)
            self._write()
        n = len(self.train_loader)
        self._first_epoch = self.epoch
        # One bar for the whole run (its ETA is the run's), on terminals only; log lines print above it.
        self.bar = tqdm(total=self.cfg.epochs * n, initial=self.epoch * n, unit="batch", dynamic_ncols=True,
                        desc=f"{self.cfg.optimizer.name} s{self.cfg.seed}", disable=None if self.cfg.progress else True)
        with self.bar, logging_redirect_tqdm():
            for epoch in range(self.epoch + 1, self.cfg.epochs + 1):
                if self._budget_spent():
                    break
                self._epoch(epoch)

    def _epoch(self, epoch: int) -> None:
        """One epoch (less if ``max_grad_evals`` runs out), its evaluation row, and at its end a checkpoint."""
        cfg, log_every = self.cfg, self.cfg.log_every
        self.closure = closure = Closure(self.model, self.train_loader.batches(epoch), loss_scale=cfg.loss_scale,
                                         autocast=self._autocast, counters=self.counters)
        sums: dict = {}  # per diagnostic key, over this epoch's steps (device tensors: no host sync)
        steps = 0
        bar = self.bar
        self._budget_rows()
        self._clock_start()
        while closure.next_step():
            before, evals_before = closure.consumed - 1, self.counters["grad_evals"]
            spent = self.step_driver(closure)
            self.counters["grad_evals"] = evals_before + spent
            self.step_cost = max(self.step_cost, spent)  # the caps plan with the most a step has cost
            if self.scheduler is not None:
                self.scheduler.step()
            self.counters["step"] += 1
            steps += 1
            self._steps_here += 1
            if self._steps_here == WARMUP_STEPS:  # the warm-up ends here: its time goes to warmup_seconds
                self._clock_stop()
            diag = {k: v for k, v in (getattr(self.optimizer, "diagnostics", None) or {}).items() if k != "grad_evals"}
            for k, v in diag.items():
                sums[k] = sums.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else v)
            bar.update(closure.consumed - before)
            self._log_progress(epoch)
            if self.counters["step"] % log_every == 0:
                self._clock_stop()
                loss = self._log_step(diag)
                bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", acc=f"{closure.train_means()[1]:.3f}")
            self._budget_rows()
            if self._budget_spent():
                break
            if self._t0 is None:
                self._clock_start()
        self._clock_stop()
        train_loss, train_acc = closure.train_means()
        if not math.isfinite(train_loss):
            raise DivergenceError(f"non-finite training loss {train_loss} in epoch {epoch}")
        for k, v in sums.items():
            self.diag_sum[k] = self.diag_sum.get(k, 0.0) + float(v)
            self.diag_count[k] = self.diag_count.get(k, 0) + steps
        self._row("epoch", self._position(), train_loss=train_loss, train_acc=train_acc,
                  **{f"diag_{k}": float(v) / steps for k, v in sums.items()})
        self._log_epoch(self.metrics[-1])
        self._write()  # the epoch's rows first: a checkpoint the disk refuses loses none of them
        if closure.consumed == len(self.train_loader):
            self.epoch = epoch
            self._checkpoint()

    def _log_step(self, diag: dict) -> float:
        """A steps.csv row (host syncs; not training time); returns the loss, non-finite → DivergenceError."""
        loss = float(self.closure.first_loss)
        row = {"step": self.counters["step"], "epoch": self._position(), "grad_evals": self.counters["grad_evals"],
               "loss": loss, **{f"diag_{k}": float(v) for k, v in diag.items()}}
        if "grad_norm" not in diag:  # torch's SGD/AdamW: ‖g‖ of the gradient the step used
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            row["diag_grad_norm"] = float(global_sq_norm(grads).sqrt())
        if hasattr(self.optimizer, "measure_contact"):  # RBO: one more evaluation, counted as diag_evals
            self.closure.diagnostic = True
            contact = self.optimizer.measure_contact(self.closure)
            self.closure.diagnostic = False
            row.update({f"diag_contact_{k}": float(v) for k, v in contact.items()})
        self.steps.append(row)
        self.logger.log("steps", row)
        if not math.isfinite(loss):
            raise DivergenceError(f"non-finite training loss {loss} at step {row['step']}")
        return loss


def _duration(seconds: float) -> str:
    """``4.2s``, ``3m07s``, ``2h05m``; ``?`` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def train(cfg: DictConfig) -> dict:
    """Run (or resume) the configured training and return its summary; see :class:`Trainer`."""
    return Trainer(cfg).run()
