"""Structured configs: the schema every ``conf/`` file and command-line override is checked against.

Each group option in ``conf/<group>/<name>.yaml`` starts from one of the dataclasses below (its defaults list
names the schema registered here), so a misspelt key, a value of the wrong type or a choice outside its
:class:`~enum.StrEnum` fails when Hydra composes the config, before anything runs or any job is queued. The
schemas are stored outside the config groups (``schema_<group>_<family>``), so ``--help`` does not offer them
as choices. Value checks that need more than a type (names, ranges, the batch size
against the dataset) are in :func:`experiments.trainer.validate`. Record format: README.md, "Run records".

The defaults here are neutral; the paper's values and every ``# ASSUMPTION`` (SPEC §2, §3) are in the YAML files.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

# conf/ of the checkout the suite runs from (the wheel ships only rbo and baselines: README "Install"). Hydra's
# config_path in experiments.train.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# Keys that change where or how a run is reported, never its numbers: left out of the run_id.
OUTPUT_ONLY_KEYS = ("runs_dir", "data_dir", "logger", "progress", "log_every", "device", "on_change",
                    "optimized_metric")
# Options added after records existed, with the value that runs before them had: left out of the run_id at that
# value (a record that lacks one ran at it), so adding an option does not orphan every earlier record.
ADDED_KEYS = {"dataset.shuffle": True}
# Registry keys of an optimizer (README "Adding an optimizer"): how it is built, driven and shown, not what it
# computes (its ``name`` and hyperparameters say that). Left out of the run_id and of a record's ``hyper``.
REGISTRY_KEYS = tuple(f"optimizer.{key}" for key in ("_target_", "_partial_", "display_name", "colour", "marker",
                                                     "role", "order", "protocol", "create_graph"))


def without_registry_keys(config: dict) -> dict:
    """A resolved run config without :data:`REGISTRY_KEYS` (a copy): what ``run_id`` hashes and ``hyper`` records."""
    optimizer = {k: v for k, v in config["optimizer"].items() if f"optimizer.{k}" not in REGISTRY_KEYS}
    return {**config, "optimizer": optimizer}


# ---- choices: any other value fails at composition (str enums: ``cfg.precision == "bf16"`` still holds) -----

class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"  # bf16 autocast


class Scheduler(StrEnum):
    none = "none"
    cosine = "cosine"  # per step, over epochs × batches per epoch


class Normalize(StrEnum):
    scale = "scale"  # pixels / 255 (the paper)
    standardize = "standardize"  # then the train split's mean/std


class OnChange(StrEnum):  # a rerun of a finished record whose code or data changed (README "Run records")
    keep = "keep"  # skip it, with a warning
    rerun = "rerun"  # set the old record aside and train again


class Metric(StrEnum):  # a run's final/* values (records.FINAL_KEYS)
    train_loss = "train_loss"
    train_acc = "train_acc"
    val_loss = "val_loss"
    val_acc = "val_acc"
    test_loss = "test_loss"
    test_acc = "test_acc"


class Protocol(StrEnum):  # how the trainer drives an optimizer's step (experiments.optim.StepDriver)
    plain = "plain"  # the closure's forward and backward, then step(): torch.optim's own
    closure = "closure"  # step(closure), which calls the closure (LBFGS, RBO, the suite's SAM, Entropy-SGD)
    grad_then_closure = "grad_then_closure"  # one forward and backward, then step(closure) (pytorch-optimizer's SAM)


class Role(StrEnum):  # what an optimizer is in this suite: tables and figures order and style by it
    paper = "paper"  # the paper's Table 1 optimizers
    variant = "variant"  # RBO with another projection
    control = "control"  # asks what RBO's ball contributes (issue 7)
    tuned = "tuned"  # baselines the reviewers asked for, tuned on validation
    zoo = "zoo"  # third-party optimizers (conf/experiment/zoo*)
    custom = "custom"  # optimizer=custom: any importable class


class WandbMode(StrEnum):
    online = "online"
    offline = "offline"
    disabled = "disabled"


# ---- optimizer group: one dataclass per family ----------------------------------------------------------

@dataclass
class OptimizerConfig:
    """The keys every optimizer has: its ``name`` (the file's name in conf/optimizer/, in every record), ``lr``, and
    the registry keys (:data:`REGISTRY_KEYS`) that say how it is built (``_target_``, a class or function taking
    ``params`` and the other keys as keyword arguments, by :func:`hydra.utils.instantiate`), driven and shown. A
    subclass's fields are the constructor's keyword arguments, except :attr:`trainer_keys`."""

    trainer_keys: ClassVar[tuple[str, ...]] = ("name",)  # read by the suite, never passed to the constructor
    name: str = MISSING
    lr: float | None = MISSING  # null only where the optimizer derives it (sgd_effective_lr)
    _target_: str = MISSING  # an importable optimizer class, or a function returning one (experiments.optim.sam)
    _partial_: bool = True  # instantiate returns a partial; the trainer passes params (and seed, if it takes one)
    display_name: str = MISSING  # for tables and legends
    colour: str | None = None  # a matplotlib colour; null: the figure picks one
    marker: str | None = None  # a matplotlib marker; null: the figure picks one
    role: Role = MISSING
    order: int | None = None  # position among its role (experiments.registry); null: after the numbered ones
    protocol: Protocol = MISSING
    create_graph: bool = False  # its step needs Hessian-vector products: gradients keep their graph


@dataclass
class AnyOptimizerConfig(OptimizerConfig):
    """Any importable optimizer (``optimizer=custom``, the zoo): ``_target_`` with every constructor argument but
    ``params`` and ``lr`` in ``kwargs``, checked by building it on a stand-in parameter (experiments.optim)."""

    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SGDConfig(OptimizerConfig):
    """torch.optim.SGD (``sgd``, ``sgd_momentum``)."""

    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass
class SGDKStepsConfig(SGDConfig):
    """baselines.KStepSGD (``sgd_k_steps``, issue 7's control): K SGD steps on each minibatch."""

    steps_per_batch: int = 100


@dataclass
class SGDEffectiveLRConfig(SGDConfig):
    """SGD at RBO's measured effective learning rate (``sgd_effective_lr``, issue 7's control). ``lr: null``
    resolves it from the completed ``reference`` runs (experiments.controls.resolve_effective_lr)."""

    trainer_keys: ClassVar[tuple[str, ...]] = ("name", "reference")
    reference: str = "rbo"


@dataclass
class AdamWConfig(OptimizerConfig):
    """torch.optim.AdamW."""

    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.01


@dataclass
class SAMConfig(OptimizerConfig):
    """baselines.SAM (``sam``; ``asam`` = adaptive). ``base`` picks the base optimizer (sgd | adamw); ``lr``,
    ``weight_decay`` and the base's own keys (SGD: momentum, nesterov; AdamW: betas, eps) go to it."""

    rho: float = 0.05
    adaptive: bool = False
    max_grad_norm: float | None = None
    base: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class EntropySGDConfig(SGDConfig):
    """baselines.EntropySGD (SPEC §2): SGD's keys drive its outer step; its noise generator is seeded by the
    run's ``seed``."""

    L: int = 20
    gamma: float = 0.03
    scoping: float = 0.0
    langevin_lr: float = 0.1
    noise: float = 1e-4
    alpha: float = 0.75
    fresh_batches: bool = False


@dataclass
class RBOConfig(OptimizerConfig):
    """rbo.RBO (SPEC §1): ``rbo`` (projection gd), ``rbo_gauss_newton``, ``rbo_newton``."""

    radius: float = MISSING
    proj_steps: int = 100  # K: the evaluation cap per step (newton: each Hessian-vector product costs 2)
    proj_lr: float = 1e-3  # gamma, gd only
    projection: str = "gd"  # gd (the authors') | gauss_newton | newton (rbo.optimizer.PROJECTIONS)
    proj_tol: float | None = None  # relative residual at which gauss_newton / newton stop; gd has none


# ---- dataset, model, logger -------------------------------------------------------------------------------

@dataclass
class DatasetConfig:
    """experiments.data.load_dataset and DeviceLoader options."""

    name: str = MISSING
    val_size: int = 5000
    normalize: Normalize = Normalize.scale
    augment: bool = False
    shuffle: bool = True  # false: the same order every epoch, as the authors' grain.SequentialSampler (SPEC §3)
    download: bool = True
    synthetic_shape: str = "mnist"  # synthetic only: mnist | cifar
    synthetic_size: list[int] = field(default_factory=lambda: [2048, 512])  # synthetic only: train, test


@dataclass
class ModelConfig:
    """experiments.models.build_model(name, **options): every key but ``name`` is passed as an option."""

    name: str = MISSING
    init: str = "torch"  # flax (the authors' Flax NNX defaults and BatchNorm momentum) | torch (torchvision's)


@dataclass
class VGG9Config(ModelConfig):
    kernel_size: int = 2  # 2 (the authors' code, padding 1) | 3


@dataclass
class WRNConfig(ModelConfig):
    dropout: float = 0.0  # in [0, 1)


@dataclass
class LoggerConfig:
    name: str = "none"


@dataclass
class WandbConfig(LoggerConfig):
    """One W&B run per job (experiments.wandb_logger). offline needs no account: ``wandb sync`` later."""

    name: str = "wandb"
    mode: WandbMode | None = None  # null: $WANDB_MODE if set, else offline (experiments.wandb_logger.resolve_mode)
    project: str = "rbo-bench"
    entity: str | None = None
    group: str | None = "${experiment_name}"
    tags: list[str] = field(default_factory=list)
    job_type: str | None = "train"


# ---- the whole run -----------------------------------------------------------------------------------------

@dataclass
class Config:
    optimizer: OptimizerConfig = MISSING
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    logger: LoggerConfig = MISSING
    experiment_name: str = "default"  # the record goes to <runs_dir>/<experiment_name>/<run_id>/
    seed: int = 0  # model init, data order, optimizer noise
    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N
    precision: Precision = Precision.fp32
    # Departures from fp32 eager PyTorch (issue 13, experiments.fast_path), off by default and in paper/*:
    cuda_graphs: bool = False  # closure's forward+backward replayed from CUDA graphs (cuda only; same step)
    tf32: bool = False  # TF32 matmuls and cuDNN convolutions (cuda only); false = strict fp32, convolutions included
    channels_last: bool = False  # NHWC memory format for the model's 4-d weights (round-off-level changes)
    epochs: int = 10
    batch_size: int = 256
    eval_batch_size: int = 1024  # validation/test batch size (eval mode: numbers equal up to float rounding)
    loss_scale: float = 1.0  # the training loss is loss_scale × mean cross-entropy (SPEC §4)
    max_grad_evals: int | None = None  # stop before a step that could spend more gradient evaluations than this
    max_sgd_epochs: float | None = None  # the same, in units of one SGD epoch (batches per epoch evaluations)
    # extra evaluations, each at the last point at or below k × batches/epoch gradient evaluations
    budget_sgd_epochs: list[float] = field(default_factory=list)
    scheduler: Scheduler = Scheduler.none
    log_every: int = 50  # steps between steps.csv rows
    runs_dir: str = "runs"
    data_dir: str | None = None  # None: $RBO_DATA, else ~/.cache/rbo-bench/data
    progress: bool = True  # tqdm bar for the whole run (quiet anyway when not on a terminal)
    optimized_metric: Metric | None = None  # the final value returned to a Hydra sweeper (conf/hparams_search)
    on_change: OnChange = OnChange.keep  # a finished record whose code or data changed: skip with a warning, or rerun


def objective(cfg, summary: dict | None) -> float | None:
    """What ``experiments.train.main`` returns to a sweeper (Optuna, conf/hparams_search): the run's final
    ``optimized_metric``; NaN (a failed trial, never the best) unless the run completed; None without the key. A
    skipped run (``summary`` None: already finished) is read from its record."""
    if cfg.optimized_metric is None:
        return None
    from experiments import records

    summary = summary or records.read_summary(records.run_dir(records.to_container(cfg)))
    value = summary["final"][cfg.optimized_metric]
    return float(value) if summary["status"] == "completed" and value is not None else float("nan")


SCHEMAS: dict[str, dict[str, type]] = {
    "optimizer": {"sgd": SGDConfig, "sgd_k_steps": SGDKStepsConfig, "sgd_effective_lr": SGDEffectiveLRConfig,
                  "adamw": AdamWConfig, "sam": SAMConfig, "entropy_sgd": EntropySGDConfig,
                  "rbo": RBOConfig, "any": AnyOptimizerConfig},
    "dataset": {"base": DatasetConfig},
    "model": {"base": ModelConfig, "vgg9": VGG9Config, "wrn": WRNConfig},
    "logger": {"none": LoggerConfig, "wandb": WandbConfig},
}


def register_configs() -> None:
    """Store ``base_config`` and, per group, ``schema_<group>_<family>`` at the top level, not in the group (each
    YAML file's defaults list names it: ``- /schema_optimizer_sgd@_here_``)."""
    OmegaConf.register_new_resolver("slug", lambda name: name.replace("/", "-"), replace=True)  # hydra.job.name
    # hydra/launcher=local_gpu (experiments.fast_path.gpu_for_job, parallel_jobs; torch is imported only when used)
    fast_path = functools.partial(importlib.import_module, "experiments.fast_path")
    OmegaConf.register_new_resolver("rbo_gpu", lambda: fast_path().gpu_for_job(), replace=True)
    OmegaConf.register_new_resolver("rbo_parallel_jobs", lambda: fast_path().parallel_jobs(), replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schemas in SCHEMAS.items():
        for family, node in schemas.items():
            cs.store(name=f"schema_{group}_{family}", node=node)


register_configs()
