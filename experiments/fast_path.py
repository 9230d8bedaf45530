"""The GPU fast path (issue 13): math modes and CUDA-graph replay of the trainer's closure.

Three config keys (:class:`experiments.config.Config`), each a departure from fp32 eager PyTorch, off by default
and in every ``paper/*`` experiment:

- ``tf32``: TF32 tensor-core matmuls and cuDNN convolutions (products with a 10-bit mantissa). ``false`` turns
  both off, so fp32 means fp32 (PyTorch's own default allows TF32 in cuDNN convolutions). CUDA only.
- ``channels_last``: the model's 4-d weights, and the graphs' input buffer, in NHWC memory format; convolutions
  then use other kernels, so numbers change at round-off level. Any device.
- ``cuda_graphs``: each evaluation of the closure (forward, loss, backward) is one replay of a CUDA graph
  (:class:`GraphedClosure`); the step equals the eager one to fp32 round-off (``tests/test_fast_path.py``,
  gpu-marked, and ``scripts/bench/gpu_check.py``). CUDA only.

The graphs wrap the closure, never the optimizers: :func:`install` registers a step pre-hook
(``torch.optim.Optimizer.register_step_pre_hook``) that hands ``step`` a :class:`GraphedClosure` around the
trainer's :class:`experiments.trainer.Closure`. The optimizers stay plain ``torch.optim.Optimizer`` classes,
usable in any eager loop; their foreach updates run eagerly between two replays.

Choices (issue 13, "What to build"):

- Hand-captured ``torch.cuda.CUDAGraph``, not ``torch.compile(mode="reduce-overhead")``. A compiled model
  keeps the loss, ``zero_grad``, the autograd engine and ``.grad`` accumulation in Python for every evaluation
  (the launch overhead this path exists to remove), costs tens of seconds of compilation in every one of a
  sweep's processes, and must recompile for the BatchNorm freeze (a global hook that flips a module flag). The
  hand capture is this one module and changes nothing elsewhere. Not measured here (no GPU in the session that
  wrote it): ``scripts/bench/gpu_check.py`` times both side by side.
- The batch is copied into static input buffers once per minibatch, not per evaluation. A batch of another
  shape (the epoch's last, smaller batch) is evaluated eagerly by the wrapped closure: nothing is dropped, so
  epochs, evaluation counts and data order are the eager path's.
- Gradients: the graphs write ∇f into one static buffer per parameter (``torch.autograd.grad`` and one foreach
  copy), attached as ``p.grad`` after every replay. Where the eager closure allocates new gradient tensors per
  evaluation, a replay overwrites the previous evaluation's gradients in place: an optimizer must not keep a
  gradient tensor across evaluations (none of the suite's does; the gpu tests compare every step). Every
  trainable parameter must take part in the loss.
- BatchNorm: two captures sharing one memory pool. ``update`` (running statistics updated inside the graph, as
  the eager forward does) replays for the step's first evaluation, ``frozen`` (captured inside
  :func:`rbo.common.frozen_running_stats`) for every other one: the protocol of :mod:`rbo.common` that every
  optimizer of the suite follows. Evaluations after the first must therefore not expect statistics updates.
- Diagnostics stay on the device: the graphs also write the plain cross-entropy and the number of correct
  predictions; the step's first evaluation adds them to the closure's running sums with device ops; the
  returned loss is a device tensor (a copy: the next replay overwrites the static one).
- Capture happens at the first step that has a full batch (inside the training clock: its cost is counted),
  after eager warm-up evaluations on a side stream whose effect on BatchNorm buffers and the CUDA RNG is undone.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from rbo.common import frozen_running_stats

JOBS_PER_GPU_ENV = "RBO_JOBS_PER_GPU"
DEFAULT_JOBS_PER_GPU = 2  # where this GPU's throughput was not measured (see jobs_per_gpu)
WARMUP_EVALUATIONS = 3  # eager evaluations before capture (cuDNN/cuBLAS plans, allocator), alternating BN modes
CUDA_ONLY_KEYS = ("cuda_graphs", "tf32")


# ---- config -------------------------------------------------------------------------------------------------

def check_config(cfg) -> None:
    """``cuda_graphs`` and ``tf32`` need a CUDA device: ``ValueError`` naming the key, its value, the device and
    what is allowed (``device=auto`` counts as cpu where CUDA is not available)."""
    on_cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    for key in CUDA_ONLY_KEYS:
        if cfg[key] and on_cpu:
            where = "" if cfg.device == "cpu" else ", which is cpu here (CUDA is not available)"
            raise ValueError(f"{key}=true is not allowed with device={cfg.device!r}{where}; allowed: "
                             f"{key}=false on cpu, or {key}=true with device=cuda or cuda:N")


def set_math_modes(*, tf32: bool) -> None:
    """TF32 for cuBLAS matmuls and cuDNN convolutions on or off (process-wide; set by every run's setup)."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def install(cfg, model: nn.Module, optimizer: torch.optim.Optimizer) -> GraphedClosure | None:
    """Apply ``cfg``'s math modes and memory format to ``model``; with ``cuda_graphs``, register the step
    pre-hook that replays the closure from CUDA graphs (captured at the first full batch). Returns it, if any."""
    set_math_modes(tf32=cfg.tf32)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # in place: the optimizer keeps the same parameters
    if not cfg.cuda_graphs:
        return None
    device = next(model.parameters()).device
    if device.type != "cuda":  # check_config stops this earlier; here for callers that skip it
        raise ValueError(f"cuda_graphs=true is not allowed with the model on {device}; allowed: a CUDA device")
    graphed = GraphedClosure(functools.partial(ClosureGraphs, model, loss_scale=cfg.loss_scale,
                                               bf16=cfg.precision == "bf16", channels_last=cfg.channels_last),
                             batch_size=cfg.batch_size)
    optimizer.register_step_pre_hook(graphed.pre_step)
    return graphed


# ---- several runs per GPU (conf/hydra/launcher/local_gpu.yaml) ---------------------------------------------

def default_jobs_per_gpu() -> int:
    """The runs per GPU of the best aggregate throughput measured on this GPU
    (:func:`scripts.plan.measured_jobs_per_gpu`, ``results/gpu/throughput.json``), else
    :data:`DEFAULT_JOBS_PER_GPU`."""
    if torch.cuda.is_available():
        from scripts.plan import measured_jobs_per_gpu

        measured = measured_jobs_per_gpu(torch.cuda.get_device_name(0))
        if measured is not None:
            return measured
    return DEFAULT_JOBS_PER_GPU


def jobs_per_gpu() -> int:
    """``$RBO_JOBS_PER_GPU`` (default :func:`default_jobs_per_gpu`), checked."""
    value = os.environ.get(JOBS_PER_GPU_ENV)
    if value is None:
        return default_jobs_per_gpu()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{JOBS_PER_GPU_ENV}={value!r} is not allowed; allowed: an integer >= 1")
    return int(value)


def parallel_jobs() -> int:
    """Resolver ``${rbo_parallel_jobs:}``: runs at once on this machine, ``$RBO_JOBS_PER_GPU`` × visible GPUs."""
    return jobs_per_gpu() * max(1, torch.cuda.device_count())


def gpu_for_job() -> str:
    """Resolver ``${rbo_gpu:}``: ``cuda:<job number mod visible GPUs>`` inside a Hydra multirun job, so job
    ``n`` of a sweep runs on GPU ``n % GPUs``; ``auto`` outside one or where no GPU is visible."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    gpus = torch.cuda.device_count()
    num = OmegaConf.select(HydraConfig.get(), "job.num") if HydraConfig.initialized() else None
    return "auto" if num is None or gpus == 0 else f"cuda:{num % gpus}"


# ---- CUDA graphs of the closure -----------------------------------------------------------------------------

class ClosureGraphs:
    """Forward, loss and backward of ``model`` on static batch buffers, captured twice (BatchNorm statistics
    updated / frozen) into one memory pool; see the module docstring. ``x``, ``y``: a sample batch (shapes)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_scale: float, bf16: bool,
                 channels_last: bool):
        self.model, self.loss_scale, self.bf16 = model, loss_scale, bf16
        self.params = [p for p in model.parameters() if p.requires_grad]
        memory_format = torch.channels_last if channels_last and x.dim() == 4 else torch.contiguous_format
        self.x = torch.empty_like(x, memory_format=memory_format).copy_(x)
        self.y = y.clone()
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.ce, self.loss = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
        self.correct = torch.zeros((), device=x.device, dtype=torch.int64)
        self._warm_up()
        self.update, self.frozen = self._capture()

    def forward_backward(self) -> None:
        """What :class:`experiments.trainer.Closure` computes (bf16 autocast, plain and scaled cross-entropy,
        gradients, correct predictions), written into the static buffers."""
        with torch.enable_grad():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
                logits = self.model(self.x)
            ce = F.cross_entropy(logits.float(), self.y)
            grads = torch.autograd.grad(ce * self.loss_scale, self.params)
        torch._foreach_copy_(self.grads, list(grads))
        self.ce.copy_(ce.detach())
        self.loss.copy_(ce.detach() * self.loss_scale)
        self.correct.copy_((logits.detach().argmax(1) == self.y).sum())

    def _warm_up(self) -> None:
        buffers = list(self.model.buffers())
        saved = [b.clone() for b in buffers]
        rng = torch.cuda.get_rng_state(self.x.device)
        stream = torch.cuda.Stream(self.x.device)
        stream.wait_stream(torch.cuda.current_stream(self.x.device))
        with torch.cuda.stream(stream):
            for i in range(WARMUP_EVALUATIONS):
                with frozen_running_stats() if i % 2 else nullcontext():
                    self.forward_backward()
        torch.cuda.current_stream(self.x.device).wait_stream(stream)
        for buffer, value in zip(buffers, saved):
            buffer.copy_(value)
        torch.cuda.set_rng_state(rng, self.x.device)

    def _capture(self) -> tuple[torch.cuda.CUDAGraph, torch.cuda.CUDAGraph]:
        """The ``update`` and the ``frozen`` graph, in one memory pool (they never run at the same time)."""
        pool = torch.cuda.graph_pool_handle()
        graphs = []
        for frozen in (False, True):
            graph = torch.cuda.CUDAGraph()
            with frozen_running_stats() if frozen else nullcontext(), torch.cuda.graph(graph, pool=pool):
                self.forward_backward()
            graphs.append(graph)
        return graphs[0], graphs[1]

    def stage(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Copy a batch into the static input buffers."""
        self.x.copy_(x)
        self.y.copy_(y)

    def replay(self, *, update_stats: bool) -> None:
        (self.update if update_stats else self.frozen).replay()

    def attach_grads(self) -> None:
        """Make the static gradient buffers the parameters' ``.grad`` (an eager evaluation replaces them)."""
        for p, g in zip(self.params, self.grads):
            p.grad = g


class GraphedClosure:
    """The trainer's closure with each evaluation replayed from :class:`ClosureGraphs` (``make_graphs(x, y)``
    builds them from the first full batch of ``batch_size`` examples). Keeps the closure's protocol and
    bookkeeping: ``advance``, ``grad_evals``/``diag_evals``, the first evaluation's loss and accuracy."""

    def __init__(self, make_graphs: Callable[[torch.Tensor, torch.Tensor], ClosureGraphs], *, batch_size: int):
        self.make_graphs, self.batch_size = make_graphs, batch_size
        self.graphs: ClosureGraphs | None = None
        self.closure = None  # the trainer's Closure of the current step
        self._staged = None  # the batch now in the static buffers

    def pre_step(self, optimizer, args: tuple, kwargs: dict):
        """Step pre-hook (``args`` = (optimizer, closure)): ``step(closure)`` becomes ``step(self)`` once the
        graphs exist; before the first full batch (and for a step called without a closure) it runs eagerly."""
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        if closure is None:
            return None
        if self.graphs is None:
            x, y = closure.batch
            if x.shape[0] != self.batch_size:
                return None
            self.graphs = self.make_graphs(x, y)
        self.closure = closure
        if "closure" in kwargs:
            return args, {**kwargs, "closure": self}
        return (args[0], self, *args[2:]), kwargs

    def __call__(self, advance: bool = False) -> torch.Tensor:
        closure, graphs = self.closure, self.graphs
        if advance:
            closure._take()  # none left: stay on the current minibatch (Closure's rule)
        x, y = closure.batch
        if x.shape != graphs.x.shape:  # the epoch's last, smaller batch: the eager closure sets p.grad itself
            return closure()
        if closure.batch is not self._staged:
            graphs.stage(x, y)
            self._staged = closure.batch
        first = closure.first and not closure.diagnostic
        graphs.replay(update_stats=first)
        graphs.attach_grads()  # p.grad: this evaluation's gradient, as after an eager one (a step may have set it
        # to None, as pytorch-optimizer's SAM does, and the gradient already there may be a short batch's)
        closure.counters["diag_evals" if closure.diagnostic else "grad_evals"] += 1
        if first:
            closure.first = False
            closure.first_loss = graphs.ce.clone()
            closure.loss_sum += closure.first_loss * y.shape[0]
            closure.correct += graphs.correct
            closure.seen += y.shape[0]
        return graphs.loss.clone()
