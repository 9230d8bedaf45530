"""One-shot GPU check: ``python scripts/bench/gpu_check.py`` (or ``python -m scripts.bench.gpu_check``).

The one script a GPU session runs (about 5-6 minutes on an H100). Prints one Markdown report, each section guarded
(a failure prints its traceback and the next section runs), each section timed, output flushed line by line:

(a) CUDA path correctness: one RBO step (K = 20), one SAM step and one Entropy-SGD step (noise 0) on the same
    float32 weights and batch on the device and on the CPU agree to 1e-5 (TF32 off for this section); the
    BatchNorm freeze works on the device (running statistics updated once per multi-evaluation step).
(e) Issue 13's fast path (experiments.fast_path): a few steps of RBO, SAM and Entropy-SGD on VGG-9 replayed from
    CUDA graphs equal the eager steps to :data:`GRAPH_TOL`, BatchNorm updated once per step on both paths.
(b) bf16 autocast: SGD, SAM and RBO lower the loss of a toy problem under bf16 autocast on the device.
(d) An end-to-end ``experiments.train.run(cfg)`` (mnist_subset, MLP, RBO, 1 epoch) on the device, eager and with
    ``cuda_graphs=true``: status, test accuracy, training seconds.
(f) Seconds per evaluation of RBO's inner loop (K = 100, batch 256) through the trainer's closure, eager and from
    CUDA graphs, for every (model, data shape) of paper/table1 and paper/heatmap; targets graph / eager ≤ 0.25
    (MLP) and ≤ 0.6 (VGG-9 on CIFAR).
(g) TF32 and channels_last on VGG-9 (graphs): speed-up and the parameter deviation from strict fp32 they cause.
(h) Several runs per GPU: N = 1, 2, 4, 8 worker processes (``--worker``) running RBO on the MLP and on VGG-9,
    timed over the same window: aggregate evaluations per second.
(i) One timed epoch of RBO through the trainer, CIFAR-shaped data with VGG-9 and MNIST-shaped data with the MLP,
    full size, against the estimate (grad_evals × the measured seconds per evaluation).
(j) The implied wall time of paper/table1 and paper/heatmap on one GPU, eager and with graphs at each N.
    Then the throughput JSON is written (below).
(k) ``torch.compile(mode="reduce-overhead")`` on the model, for comparison with the hand-captured graphs (CUDA).
(c) Speed: ``scripts.bench.optimizers.step_costs`` (RBO / (K · SGD)), the trainer vs a bare loop, DeviceLoader
    vs a torchvision DataLoader, VGG-9 epoch time (SGD fp32 / bf16) and ms per RBO step (K = 100) on VGG-9.
(k) and the parts of (c) that would start after ``--budget`` seconds are skipped (default 330 s).

``--smoke --device cpu`` runs every section that does not need CUDA with reduced sizes on the CPU (compares CPU
with CPU in (a); eager rows only in (f), (h), (i), (j)), to test this script without a GPU. Exit status 1 if any
section failed.

The throughput file (``--out``, default ``results/gpu/throughput.json``; with ``--smoke`` none unless given) is
read by ``scripts/plan.py`` and has the format of its docstring: ``device``, ``torch``, ``measured_at`` and one row
per (model, input, batch, precision, path, tf32, channels_last, runs_per_gpu) with its aggregate
``evals_per_second`` (:func:`throughput_rows`): (h)'s N = 1, 2, 4, 8 runs per GPU, then (f) and (g)'s single runs
where (h) has none. Written atomically, and only when something was measured.
"""

from __future__ import annotations

import argparse
import copy
import importlib.machinery
import importlib.metadata
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file, Python puts scripts/bench/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from scripts.bench.optimizers import cross_entropy_closure  # noqa: E402  (torch and rbo only)

TOL = 1e-5
START = time.perf_counter()
FAILED: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)


def elapsed() -> float:
    return time.perf_counter() - START


@contextmanager
def section(title: str, level: int = 2):
    """A ``## title`` section: timed; an exception prints its traceback and is recorded, then the script goes on."""
    say(f"\n{'#' * level} {title}\n")
    t = time.perf_counter()
    try:
        yield
    except Exception:
        FAILED.append(title)
        say("**FAILED**\n\n```\n" + traceback.format_exc().rstrip() + "\n```")
    say(f"\n_section time {time.perf_counter() - t:.1f} s (total {elapsed():.1f} s)_")


def stub_missing_tqdm() -> str | None:
    """The trainer imports tqdm at module level; where it is not installed, put in a no-op stand-in (every run
    here uses progress=false) rather than lose sections (c) and (d)."""
    try:
        import tqdm  # noqa: F401
    except ImportError:
        import types

        class NoBar:
            def __init__(self, *args, **kwargs) -> None:
                pass

            def update(self, n: int = 1) -> None:
                pass

            def set_postfix(self, *args, **kwargs) -> None:
                pass

            def close(self) -> None:
                pass

        module = types.ModuleType("tqdm")
        module.__spec__ = importlib.machinery.ModuleSpec("tqdm", None)  # torch._dynamo's find_spec needs one
        module.tqdm = NoBar
        sys.modules["tqdm"] = module
        return "tqdm is not installed: replaced by a no-op stand-in (all runs here use progress=false)"
    return None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def header(device: torch.device, smoke: bool, note: str | None) -> None:
    say(f"# rbo-bench GPU check{' (smoke: reduced sizes)' if smoke else ''}\n")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        hw = (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
              f"cuDNN {torch.backends.cudnn.version()}")
    else:
        hw = f"CPU, {torch.get_num_threads()} threads"
    say(f"- device: `{device}`: {hw}")
    say(f"- python {platform.python_version()}, torch {torch.__version__}, "
        + ", ".join(f"{d} {_version(d)}" for d in ("torchvision", "hydra-core", "omegaconf", "numpy", "pandas",
                                                    "matplotlib", "tqdm", "wandb")))
    if note:
        say(f"- note: {note}")
    if device.type == "cuda":
        say(f"- TF32 defaults: matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN {torch.backends.cudnn.allow_tf32}"
            f"; cudnn.benchmark {torch.backends.cudnn.benchmark}")


@contextmanager
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


# ---- (a) correctness ---------------------------------------------------------------------------------------

def _optimizers():
    from baselines import SAM, EntropySGD
    from rbo import RBO

    return {
        "RBO K=20 (η 1, ρ 2, γ 1e-3)": lambda ps: RBO(ps, lr=1.0, radius=2.0, proj_steps=20, proj_lr=1e-3),
        "SAM (SGD lr 0.1, ρ 0.05)": lambda ps: SAM(ps, torch.optim.SGD, rho=0.05, lr=0.1),
        "Entropy-SGD (L 5, noise 0)": lambda ps: EntropySGD(ps, lr=1.0, L=5, noise=0.0, seed=0),
    }


def _step_on(device, dtype, model_cpu, make, x, y) -> tuple[list[torch.Tensor], float]:
    model = copy.deepcopy(model_cpu).to(device, dtype)
    opt = make(list(model.parameters()))
    loss = opt.step(cross_entropy_closure(model, opt, x.to(device, dtype), y.to(device)))
    return [p.detach().double().cpu() for p in model.parameters()], float(loss)


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((u - v).abs().max()) for u, v in zip(a, b))


def check_devices_agree(device: torch.device) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 10))
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    theta = [p.detach().double() for p in model.parameters()]
    say(f"MLP 784-128-64-10, batch 64, one step from the same weights; {device} float32 vs cpu float32 "
        f"(cpu float64 for scale); pass: max |Δθ| ≤ {TOL:g}\n")
    say("| optimizer | max \\|θ_new − θ\\| | max \\|Δθ\\| device vs cpu | \\|Δloss\\| | "
        "max \\|Δθ\\| cpu fp32 vs fp64 | result |")
    say("|---|---:|---:|---:|---:|---|")
    with no_tf32():
        for name, make in _optimizers().items():
            dev, loss_dev = _step_on(device, torch.float32, model, make, x, y)
            cpu, loss_cpu = _step_on(torch.device("cpu"), torch.float32, model, make, x, y)
            ref, _ = _step_on(torch.device("cpu"), torch.float64, model, make, x, y)
            diff = _max_diff(dev, cpu)
            ok = diff <= TOL and abs(loss_dev - loss_cpu) <= TOL
            if not ok:
                FAILED.append(f"(a) {name}")
            say(f"| {name} | {_max_diff(cpu, theta):.2e} | {diff:.2e} | {abs(loss_dev - loss_cpu):.2e} | "
                f"{_max_diff(cpu, ref):.2e} | {'PASS' if ok else '**FAIL**'} |")


def check_bn_freeze(device: torch.device) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)).to(device)
    x, y = (torch.randn(32, 8) * 3 + 1).to(device), torch.randint(0, 3, (32,)).to(device)
    say(f"\nBatchNorm1d on {device}: after one step, running statistics must equal those of ONE plain forward "
        "from the same start (num_batches_tracked 1), and the freeze must be undone\n")
    say("| optimizer | evaluations | num_batches_tracked | max \\|Δ running_mean\\| | max \\|Δ running_var\\| | "
        "track_running_stats | result |")
    say("|---|---:|---:|---:|---:|---|---|")
    evals = {"RBO": 20, "SAM": 2, "Entropy": 5}
    for name, make in _optimizers().items():
        net = copy.deepcopy(model)
        reference = copy.deepcopy(model)
        opt = make(list(net.parameters()))
        calls = []
        base = cross_entropy_closure(net, opt, x, y)

        def closure(advance=False, base=base, calls=calls):
            calls.append(1)
            return base(advance)
        opt.step(closure)
        with torch.no_grad():
            reference(x)
        bn, ref = net[1], reference[1]
        dm = float((bn.running_mean - ref.running_mean).abs().max())
        dv = float((bn.running_var - ref.running_var).abs().max())
        tracked = int(bn.num_batches_tracked)
        expected = next(v for k, v in evals.items() if name.startswith(k))
        ok = tracked == 1 and dm <= 1e-5 and dv <= 1e-5 and bn.track_running_stats and len(calls) == expected
        if not ok:
            FAILED.append(f"(a) BN {name}")
        say(f"| {name} | {len(calls)} | {tracked} | {dm:.1e} | {dv:.1e} | {bn.track_running_stats} | "
            f"{'PASS' if ok else '**FAIL**'} |")


# ---- (b) bf16 autocast ------------------------------------------------------------------------------------------

def check_bf16(device: torch.device, steps: int) -> None:
    from baselines import SAM
    from rbo import RBO

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 32, generator=g)
    y = (x @ torch.randn(32, 10, generator=g)).argmax(1)
    x, y = x.to(device), y.to(device)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    makers = {
        "SGD lr 0.5": lambda ps: torch.optim.SGD(ps, lr=0.5),
        "SAM (SGD lr 0.5, ρ 0.05)": lambda ps: SAM(ps, torch.optim.SGD, rho=0.05, lr=0.5),
        "RBO K=10 (η 1, ρ 2, γ 5e-2)": lambda ps: RBO(ps, lr=1.0, radius=2.0, proj_steps=10, proj_lr=5e-2),
    }
    say(f"Toy problem (1024 × 32 Gaussian inputs, linear teacher, MLP 32-64-10) on {device}, {steps} full-batch "
        "steps under bf16 autocast (and the same in fp32 for reference); losses measured in float32 without "
        "autocast; pass: bf16 final < 0.8 × initial\n")
    say("| optimizer | initial loss | final loss bf16 | ratio | final loss fp32 | result |\n"
        "|---|---:|---:|---:|---:|---|")
    for name, make in makers.items():
        finals = {}
        for autocast in (True, False):
            net = copy.deepcopy(model)
            opt = make(list(net.parameters()))
            closure = cross_entropy_closure(net, opt, x, y, autocast=autocast)
            with torch.no_grad():
                initial = float(nn.functional.cross_entropy(net(x), y))
            for _ in range(steps):
                opt.step(closure)
            with torch.no_grad():
                finals[autocast] = float(nn.functional.cross_entropy(net(x), y))
        final = finals[True]
        ok = final < 0.8 * initial
        if not ok:
            FAILED.append(f"(b) {name}")
        say(f"| {name} | {initial:.4f} | {final:.4f} | {final / initial:.3f} | {finals[False]:.4f} | "
            f"{'PASS' if ok else '**FAIL**'} |")


# ---- (d) end to end -----------------------------------------------------------------------------------------------

def check_end_to_end(device: torch.device, smoke: bool, *, graphs: bool) -> None:
    from experiments.train import run
    from scripts.bench.trainer import compose

    with tempfile.TemporaryDirectory() as runs_dir:
        overrides = ["logger=none", "dataset=mnist_subset", "model=mlp", "optimizer=rbo", "epochs=1",
                     f"device={device}", f"runs_dir={runs_dir}", "progress=false",
                     *(["optimizer.proj_steps=5"] if smoke else []), *(["cuda_graphs=true"] if graphs else [])]
        shown = " ".join(o for o in overrides if not o.startswith("runs_dir="))
        say(f"`experiments.train.run(cfg)` with `{shown}` and a temporary runs_dir\n")
        cfg = compose(*overrides)
        t = time.perf_counter()
        summary = run(cfg)
        wall = time.perf_counter() - t
    cost, final = summary["cost"], summary["final"]
    say("| status | test_acc | test_loss | train_seconds | grad_evals | diag_evals | device | wall s |")
    say("|---|---:|---:|---:|---:|---:|---|---:|")
    say(f"| {summary['status']} | {final['test_acc']:.4f} | {final['test_loss']:.4f} | {cost['train_seconds']:.2f} | "
        f"{cost['grad_evals']} | {cost['diag_evals']} | {summary['device']} ({summary['hardware']}) | {wall:.1f} |")
    if summary["status"] != "completed":
        FAILED.append("(d) status")
        say(f"\nerror: {summary.get('error')}")


# ---- (c) speed -----------------------------------------------------------------------------------------------------

def speed(device: torch.device, smoke: bool, budget: float) -> None:
    from scripts.bench import optimizers
    from scripts.bench import trainer as bt

    n, bs, workers = (2048, 256, 2) if smoke else (50_000, 256, 8)
    vgg = dict(n_train=128, batch_size=32, n_test=64) if smoke else dict(n_train=50_000, batch_size=256)
    rbo = dict(proj_steps=2, steps=1, n_train=128, batch_size=8, n_test=64) if smoke else dict(proj_steps=100)
    epochs, rbo_rows = [], []
    parts = [
        ("RBO / (K · SGD) step cost, MLP 784-512-512-10, batch 256 (`bench.optimizers.step_costs`)",
         lambda: optimizers.step_cost_table(optimizers.step_costs(device, pairs=1 if smoke else optimizers.PAIRS))),
        ("Trainer vs bare loop (`bench.trainer.trainer_vs_bare`)",
         lambda: bt.trainer_vs_bare_table(bt.trainer_vs_bare(device, epochs=3 if smoke else 20))),
        ("DeviceLoader vs torchvision DataLoader (`bench.trainer.loader_throughput`)",
         lambda: bt.loader_table(bt.loader_throughput(device, n=n, batch_size=bs, workers=workers), n, device)),
        ("VGG-9 epoch, SGD fp32", lambda: _keep(epochs, bt.vgg9_epoch(device, "fp32", **vgg))),
        ("VGG-9 epoch, SGD bf16", lambda: _keep(epochs, bt.vgg9_epoch(device, "bf16", **vgg))),
        ("RBO step on VGG-9, fp32", lambda: _keep(rbo_rows, bt.rbo_step_ms(device, "fp32", **rbo))),
        ("RBO step on VGG-9, bf16", lambda: _keep(rbo_rows, bt.rbo_step_ms(device, "bf16", **rbo))),
    ]
    with bt.cached_datasets():
        for title, part in parts:
            if elapsed() > budget:
                say(f"\n### {title}\n\nskipped: {elapsed():.0f} s elapsed > budget {budget:.0f} s")
                continue
            with section(f"(c) {title}", level=3):
                say(part())
    with section("(c) VGG-9 through the trainer: summary", level=3):
        say(bt.vgg9_table(epochs, rbo_rows, vgg["n_train"], vgg["batch_size"], device))


def _keep(rows: list, row: dict) -> str:
    rows.append(row)
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())


# ---- issue 13: the fast path (experiments.fast_path) -----------------------------------------------------------

GRAPH_TOL = 1e-5  # max |Δθ| between the graph and the eager path after a few steps (fp32, TF32 off)
SHAPES = {"mnist": (1, 28), "cifar": (3, 32)}  # synthetic_shape -> (channels, image size)
# Every (model, data shape) of paper/table1 and paper/heatmap: what the implied wall time needs.
PAPER_MODELS = (("mlp", "mnist"), ("resnet6", "mnist"), ("vgg9", "mnist"), ("resnet8", "cifar"), ("vgg9", "cifar"))
TARGETS = {"mlp": 0.25, "vgg9": 0.6}  # graph / eager seconds per evaluation (issue 13)
RESULTS: dict[str, list] = {"per_eval": [], "concurrent": [], "epochs": [], "implied": [], "equality": []}


def fast_overrides(device, model: str, shape: str, *, n_train: int, batch_size: int = 256, val_size: int = 0,
                   graphs: bool = False, tf32: bool = False, channels_last: bool = False) -> list[str]:
    """A run of ``model`` on synthetic ``shape``-shaped data (``n_train`` images after ``val_size`` held out)."""
    flags = {"cuda_graphs": graphs, "tf32": tf32, "channels_last": channels_last}
    return ["dataset=synthetic", f"dataset.synthetic_shape={shape}",
            f"dataset.synthetic_size=[{n_train + val_size},256]", f"dataset.val_size={val_size}", f"model={model}",
            "logger=none", "progress=false", f"device={device}", f"batch_size={batch_size}",
            f"eval_batch_size={batch_size}", *(f"{key}={str(value).lower()}" for key, value in flags.items())]


def fast_trainer(overrides: list[str], runs_dir):
    """A :class:`Trainer` set up for ``overrides`` (``bench.trainer.prepared_trainer``), writing to ``runs_dir``."""
    from scripts.bench.trainer import compose, prepared_trainer

    return prepared_trainer(compose(*overrides, f"runs_dir={runs_dir}"))


def trainer_steps(trainer, steps: int):
    """Yield after each of ``steps`` optimizer steps on the trainer's data (epochs 1, 2, ... as needed)."""
    from experiments.trainer import Closure

    epoch, closure = 0, None
    for _ in range(steps):
        if closure is None or not closure.next_step():
            epoch += 1
            closure = Closure(trainer.model, trainer.train_loader.batches(epoch), loss_scale=trainer.cfg.loss_scale,
                              autocast=trainer._autocast, counters=trainer.counters)
            closure.next_step()
        trainer.optimizer.step(closure)
        yield


def seconds_per_eval(trainer, *, steps: int, warmup: int = 1) -> float:
    """Median seconds per gradient evaluation over ``steps`` steps, after ``warmup`` (graph capture)."""
    from scripts.bench.optimizers import sync

    times, evals = [], trainer.counters["grad_evals"]
    sync(trainer.device)
    start = time.perf_counter()
    for i, _ in enumerate(trainer_steps(trainer, warmup + steps)):
        sync(trainer.device)
        now, spent = time.perf_counter(), trainer.counters["grad_evals"] - evals
        if i >= warmup:
            times.append((now - start) / spent)
        start, evals = now, trainer.counters["grad_evals"]
    return statistics.median(times)


STEP_OPTIMIZERS = {  # few inner evaluations: the comparison is per evaluation
    "rbo": ("optimizer=rbo", "optimizer.proj_steps=10"),
    "sam": ("optimizer=sam",),
    "entropy_sgd": ("optimizer=entropy_sgd", "optimizer.L=5"),
}


def compare_graph_with_eager(device, optimizer: str, *, runs_dir, model: str = "vgg9", shape: str = "cifar",
                             steps: int = 3, batch_size: int = 64, **modes) -> dict:
    """``steps`` steps of ``optimizer`` from the same weights on the same batches, eager and replayed from CUDA
    graphs (``modes``: tf32, channels_last for both); max |Δ| of parameters and of buffers, BatchNorm updates."""
    states, updates, captured = [], [], False
    for graphs in (False, True):
        trainer = fast_trainer([*fast_overrides(device, model, shape, n_train=steps * batch_size,
                                                batch_size=batch_size, graphs=graphs, **modes),
                                *STEP_OPTIMIZERS[optimizer]], Path(runs_dir) / f"graphs_{graphs}")
        for _ in trainer_steps(trainer, steps):
            pass
        states.append({k: v.detach().double().cpu() for k, v in trainer.model.state_dict().items()})
        bns = [m for m in trainer.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        updates.append(int(bns[0].num_batches_tracked) if bns else steps)
        captured = graphs and trainer.graphed_closure.graphs is not None
    params = {name for name, _ in trainer.model.named_parameters()}
    diff = {name: float((states[0][name] - states[1][name]).abs().max()) if states[0][name].numel() else 0.0
            for name in states[0]}
    return {"optimizer": optimizer, "model": model, "steps": steps, "captured": captured,
            "max_param_diff": max(v for k, v in diff.items() if k in params),
            "max_buffer_diff": max((v for k, v in diff.items() if k not in params), default=0.0),
            "bn_updates_eager": updates[0], "bn_updates_graph": updates[1]}


def check_graph_equals_eager(device: torch.device, smoke: bool) -> None:
    say(f"Same weights, same batches, {3} steps eager and from CUDA graphs (TF32 off), VGG-9 (BatchNorm) on "
        f"CIFAR-shaped data, batch 64; pass: max |Δθ| and |Δ BN buffers| ≤ {GRAPH_TOL:g}, BatchNorm updated once "
        "per step on both paths\n")
    say("| optimizer | max \\|Δθ\\| | max \\|Δ buffers\\| | BN updates eager / graph | result |\n"
        "|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as runs_dir:
        for optimizer in STEP_OPTIMIZERS:
            r = compare_graph_with_eager(device, optimizer, runs_dir=runs_dir, batch_size=8 if smoke else 64)
            RESULTS["equality"].append(r)
            ok = (r["captured"] and r["max_param_diff"] <= GRAPH_TOL and r["max_buffer_diff"] <= GRAPH_TOL
                  and r["bn_updates_eager"] == r["bn_updates_graph"] == r["steps"])
            if not ok:
                FAILED.append(f"(e) {optimizer}")
            say(f"| {optimizer} | {r['max_param_diff']:.2e} | {r['max_buffer_diff']:.2e} | {r['bn_updates_eager']} / "
                f"{r['bn_updates_graph']} | {'PASS' if ok else '**FAIL**'} |")


def per_eval_row(device, model: str, shape: str, *, graphs: bool, n_train: int, batch_size: int, steps: int,
                 proj_steps: int, tf32: bool = False, channels_last: bool = False) -> dict:
    """Seconds per evaluation of RBO's inner loop (K = ``proj_steps``) through the trainer's closure."""
    with tempfile.TemporaryDirectory() as runs_dir:
        trainer = fast_trainer([*fast_overrides(device, model, shape, n_train=n_train, batch_size=batch_size,
                                                graphs=graphs, tf32=tf32, channels_last=channels_last),
                                "optimizer=rbo", f"optimizer.proj_steps={proj_steps}"], runs_dir)
        seconds = seconds_per_eval(trainer, steps=steps)
    channels, size = SHAPES[shape]
    row = {"model": model, "in_channels": channels, "image_size": size, "batch_size": batch_size,
           "precision": "fp32", "optimizer": "rbo", "proj_steps": proj_steps, "cuda_graphs": graphs, "tf32": tf32,
           "channels_last": channels_last, "seconds_per_eval": seconds}
    RESULTS["per_eval"].append(row)
    return row


def measured(model: str, shape: str, *, graphs: bool, tf32: bool = False, channels_last: bool = False) -> float:
    channels, size = SHAPES[shape]
    return next(r["seconds_per_eval"] for r in reversed(RESULTS["per_eval"])
                if (r["model"], r["in_channels"], r["image_size"], r["cuda_graphs"], r["tf32"], r["channels_last"])
                == (model, channels, size, graphs, tf32, channels_last))


def per_eval_table(device: torch.device, smoke: bool, graphs_available: bool) -> None:
    size = dict(n_train=16, batch_size=8, steps=2, proj_steps=2) if smoke else dict(n_train=2048, batch_size=256,
                                                                                   steps=3, proj_steps=100)
    paths = (False, True) if graphs_available else (False,)
    say(f"RBO's inner loop (K = {size['proj_steps']}) through the trainer's closure, batch {size['batch_size']}, "
        f"fp32, TF32 off; median over {size['steps']} steps after one (capture) step. Targets: graph / eager ≤ "
        f"{TARGETS['mlp']} (MLP), ≤ {TARGETS['vgg9']} (VGG-9 on CIFAR)\n")
    say("| model | data | eager ms / eval | graph ms / eval | graph / eager | target |\n|---|---|---:|---:|---:|---|")
    for model, shape in PAPER_MODELS:
        ms = {g: 1e3 * per_eval_row(device, model, shape, graphs=g, **size)["seconds_per_eval"] for g in paths}
        if not graphs_available:
            say(f"| {model} | {shape} | {ms[False]:.3f} | - | - | - |")
            continue
        ratio = ms[True] / ms[False]
        target = TARGETS.get(model) if (model, shape) != ("vgg9", "mnist") else None
        verdict = "-" if target is None else (f"≤ {target}: met" if ratio <= target else f"≤ {target}: **NOT met**")
        say(f"| {model} | {shape} | {ms[False]:.3f} | {ms[True]:.3f} | {ratio:.3f} | {verdict} |")


def math_modes_table(device: torch.device, smoke: bool) -> None:
    size = dict(n_train=16, batch_size=8, steps=2, proj_steps=2) if smoke else dict(n_train=2048, batch_size=256,
                                                                                   steps=3, proj_steps=100)
    say("VGG-9 on CIFAR-shaped data, RBO inner loop from CUDA graphs; each mode against strict fp32: speed, and "
        "max |Δθ| after 3 steps of RBO (K = 10) from the same weights (a departure from fp32, unlike the graphs)\n")
    say("| tf32 | channels_last | ms / eval | speed-up | max \\|Δθ\\| vs fp32 |\n|---|---|---:|---:|---:|")
    base = measured("vgg9", "cifar", graphs=True)
    with tempfile.TemporaryDirectory() as runs_dir:
        reference = _final_params(device, runs_dir, smoke)
        for tf32, channels_last in ((True, False), (False, True), (True, True)):
            seconds = per_eval_row(device, "vgg9", "cifar", graphs=True, tf32=tf32, channels_last=channels_last,
                                   **size)["seconds_per_eval"]
            deviation = max(float((a - b).abs().max()) for a, b in zip(
                reference, _final_params(device, runs_dir, smoke, tf32=tf32, channels_last=channels_last)))
            say(f"| {tf32} | {channels_last} | {1e3 * seconds:.3f} | {base / seconds:.2f}× | {deviation:.2e} |")


def _final_params(device, runs_dir, smoke: bool, **modes) -> list[torch.Tensor]:
    batch = 8 if smoke else 64
    overrides = fast_overrides(device, "vgg9", "cifar", n_train=3 * batch, batch_size=batch, graphs=True, **modes)
    trainer = fast_trainer([*overrides, *STEP_OPTIMIZERS["rbo"]], Path(runs_dir) / "-".join(map(str, modes.values())))
    for _ in trainer_steps(trainer, 3):
        pass
    return [p.detach().double().cpu() for p in trainer.model.parameters()]


# ---- several runs per GPU: one process per run ---------------------------------------------------------------

def worker(args) -> None:
    """``--worker MODEL:SHAPE``: set up RBO (K = 100) on that model, print ``ready``, wait for a line on stdin, run
    steps for ``--seconds``, print ``{"evals": n, "seconds": s}``."""
    from scripts.bench.optimizers import sync

    model, shape = args.worker.split(":")
    device = args.device
    small = dict(n_train=16, batch_size=8) if args.smoke else dict(n_train=2048, batch_size=256)
    with tempfile.TemporaryDirectory() as runs_dir:
        trainer = fast_trainer([*fast_overrides(device, model, shape, graphs=args.graphs, **small), "optimizer=rbo",
                                f"optimizer.proj_steps={2 if args.smoke else 100}"], runs_dir)
        steps = trainer_steps(trainer, 10**9)
        next(steps)  # capture
        sync(device)
        print("ready", flush=True)
        sys.stdin.readline()
        evals, start = trainer.counters["grad_evals"], time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            next(steps)
        sync(device)
        print(json.dumps({"evals": trainer.counters["grad_evals"] - evals, "seconds": time.perf_counter() - start}),
              flush=True)


def _worker_line(proc: subprocess.Popen, wanted) -> str | None:
    """The worker's next stdout line that ``wanted`` accepts (other output is passed through); None at its end."""
    for line in proc.stdout:
        if wanted(line.strip()):
            return line.strip()
        say(f"    worker: {line.rstrip()}")
    return None


def concurrent_rate(device, model: str, shape: str, jobs: int, *, graphs: bool, seconds: float, smoke: bool) -> dict:
    """Aggregate evaluations per second of ``jobs`` worker processes on ``device``, all timed over the same window."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", f"{model}:{shape}", "--device", str(device),
               "--seconds", str(seconds), *(["--graphs"] if graphs else []), *(["--smoke"] if smoke else [])]
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(jobs)]
    try:
        for proc in procs:
            if _worker_line(proc, lambda line: line == "ready") is None:
                raise RuntimeError(f"a worker did not start (exit status {proc.wait()}); run {' '.join(command)}")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        runs = [json.loads(_worker_line(proc, lambda line: line.startswith("{"))) for proc in procs]
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    for proc in procs:
        proc.wait(timeout=60)
    rates = [r["evals"] / r["seconds"] for r in runs]
    channels, size = SHAPES[shape]
    row = {"model": model, "in_channels": channels, "image_size": size, "batch_size": 8 if smoke else 256,
           "precision": "fp32", "cuda_graphs": graphs, "tf32": False, "channels_last": False,  # the workers' setting
           "jobs_per_gpu": jobs, "evals_per_s": sum(rates), "evals_per_s_per_job": rates}
    RESULTS["concurrent"].append(row)
    return row


def concurrency_table(device: torch.device, smoke: bool, graphs: bool, jobs: tuple[int, ...], seconds: float) -> None:
    path = "CUDA graphs" if graphs else "eager"
    say(f"RBO (K = {2 if smoke else 100}) in N separate processes on one {device.type} device ({path}), each "
        "timed over the same "
        f"{seconds:g} s window after set-up and capture; aggregate = sum of the processes' evaluations / s\n")
    say("| model | data | N | aggregate evals / s | × N = 1 | per process |\n|---|---|---:|---:|---:|---|")
    for model, shape in (("mlp", "mnist"), ("vgg9", "cifar")):
        base = None
        for n in jobs:
            r = concurrent_rate(device, model, shape, n, graphs=graphs, seconds=seconds, smoke=smoke)
            base = base or r["evals_per_s"]
            say(f"| {model} | {shape} | {n} | {r['evals_per_s']:,.0f} | {r['evals_per_s'] / base:.2f} | "
                + ", ".join(f"{x:,.0f}" for x in r["evals_per_s_per_job"]) + " |")


# ---- what the measured throughput implies: a timed epoch, Table 1, the heat map --------------------------------

def estimate_seconds(throughput: dict, cfg, jobs_per_gpu: int = 1) -> float:
    """Wall seconds one GPU needs for the run ``cfg`` when ``jobs_per_gpu`` runs share it: the run's gradient
    evaluations (``scripts.plan.grad_evals``) × the measured seconds per evaluation of its model, data shape, batch
    size and path (``throughput["per_eval"]``) / the measured aggregate speed-up of ``jobs_per_gpu`` processes
    (``throughput["concurrent"]``: the MLP's for the MLP, VGG-9's for conv nets). KeyError if not measured."""
    from scripts.plan import grad_evals, shape

    channels, size, _, _ = shape(cfg)
    key = (cfg.model.name, channels, size, cfg.batch_size, str(cfg.precision), bool(cfg.cuda_graphs), bool(cfg.tf32),
           bool(cfg.channels_last))
    fields = ("model", "in_channels", "image_size", "batch_size", "precision", "cuda_graphs", "tf32", "channels_last")
    rows = [r for r in throughput["per_eval"] if tuple(r[f] for f in fields) == key]
    if not rows:
        raise KeyError(f"no measured seconds per evaluation for {key} in the throughput file")
    model = "mlp" if cfg.model.name == "mlp" else "vgg9"
    rates = {r["jobs_per_gpu"]: r["evals_per_s"] for r in throughput["concurrent"]
             if r["model"] == model and r["cuda_graphs"] == bool(cfg.cuda_graphs)}
    gain = rates[jobs_per_gpu] / rates[1] if jobs_per_gpu in rates and 1 in rates else 1.0
    return grad_evals(cfg) * rows[-1]["seconds_per_eval"] / gain


def timed_epochs(device: torch.device, smoke: bool, graphs: bool) -> None:
    """One epoch of RBO (K = 100) through the trainer on CIFAR-shaped data with VGG-9 and MNIST-shaped data with
    the MLP, full size (45,000 / 55,000 training images, the last smaller batch eager), against the estimate."""
    from experiments.trainer import Trainer
    from scripts.bench.trainer import compose

    sizes = {"cifar": 45_000, "mnist": 55_000} if not smoke else {"cifar": 20, "mnist": 20}
    say(f"One training epoch, RBO K = {2 if smoke else 100}, batch {8 if smoke else 256}, "
        f"{'CUDA graphs' if graphs else 'eager'}, log_every 50 (contact diagnostics included); the trainer's "
        "training time (train_seconds + warmup_seconds: evaluation rows excluded) against grad_evals × the "
        "measured seconds per evaluation\n")
    say("| model | data | train images | steps | grad_evals | train s | estimate s | measured / estimate |")
    say("|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as runs_dir:
        for model, shape in (("vgg9", "cifar"), ("mlp", "mnist")):
            overrides = [*fast_overrides(device, model, shape, n_train=sizes[shape], val_size=16 if smoke else 5000,
                                         batch_size=8 if smoke else 256, graphs=graphs), "optimizer=rbo",
                         f"optimizer.proj_steps={2 if smoke else 100}", "epochs=1", "log_every=50"]
            trainer = Trainer(compose(*overrides, f"runs_dir={runs_dir}"))
            summary = trainer.run()
            if summary["status"] != "completed":
                raise RuntimeError(f"{model} on {shape}: {summary['status']}: {summary.get('error')}")
            counters = trainer.counters  # the epoch's training time: its warm-up steps (capture) included
            train_s = counters["train_seconds"] + counters.get("warmup_seconds", 0.0)
            evals, steps = counters["grad_evals"], counters["step"]
            estimate = evals * measured(model, shape, graphs=graphs)
            RESULTS["epochs"].append({"model": model, "in_channels": SHAPES[shape][0], "image_size": SHAPES[shape][1],
                                      "optimizer": "rbo", "cuda_graphs": graphs, "train_examples": sizes[shape],
                                      "steps": steps, "grad_evals": evals, "train_seconds": train_s,
                                      "estimate_seconds": estimate})
            say(f"| {model} | {shape} | {sizes[shape]:,} | {steps} | {evals:,} | {train_s:.1f} | {estimate:.1f} | "
                f"{train_s / estimate:.2f} |")


def implied_wall_time(device: torch.device, jobs: tuple[int, ...], graphs_available: bool, smoke: bool) -> None:
    """paper/table1 and paper/heatmap from scratch on one GPU: every run's evaluations × measured throughput."""
    from scripts import plan

    say("Every run of the experiment pending (an empty runs_dir), on one GPU; seconds per evaluation of each "
        "run's model and data shape measured above (RBO's inner loop, also used for SGD, SAM, Entropy-SGD), "
        "divided by the measured N-process speed-up. Goal (issue 13): table1 ≤ 1 h, heatmap ≤ 0.25 h\n")
    say("| experiment | runs | gradient evaluations | path | N per GPU | est. hours |\n|---|---:|---:|---|---:|---:|")
    throughput = {"per_eval": RESULTS["per_eval"], "concurrent": RESULTS["concurrent"]}
    with tempfile.TemporaryDirectory() as runs_dir:
        for experiment in ("paper/table1", "paper/heatmap"):
            evals = None
            for graphs in (False, True) if graphs_available else (False,):
                overrides = [f"runs_dir={runs_dir}", f"cuda_graphs={str(graphs).lower()}",
                             *(["batch_size=8"] if smoke else [])]  # the batch size (f) measured
                jobs_list = plan.expand(experiment, overrides)
                evals = sum(plan.grad_evals(job.cfg) for job in jobs_list)
                for n in jobs if graphs or not graphs_available else (1,):
                    hours = sum(estimate_seconds(throughput, job.cfg, n) for job in jobs_list) / 3600
                    RESULTS["implied"].append({"experiment": experiment, "runs": len(jobs_list), "grad_evals": evals,
                                               "cuda_graphs": graphs, "jobs_per_gpu": n, "hours": hours})
                    say(f"| {experiment} | {len(jobs_list)} | {evals:,} | {'graphs' if graphs else 'eager'} | {n} | "
                        f"{hours:.2f} |")


def compile_comparison(device: torch.device, smoke: bool) -> None:
    """``torch.compile(mode="reduce-overhead")`` on the model, eager closure and optimizer, for comparison."""
    size = dict(n_train=16, batch_size=8, proj_steps=2) if smoke else dict(n_train=2048, batch_size=256, proj_steps=100)
    say("The alternative issue 13 names: the model compiled with torch.compile(mode=\"reduce-overhead\"), "
        "closure and RBO eager; seconds per evaluation after two steps (compilation), against the rows above\n")
    say("| model | data | compiled ms / eval | graphs ms / eval | eager ms / eval | compile s |\n"
        "|---|---|---:|---:|---:|---:|")
    for model, shape in (("mlp", "mnist"), ("vgg9", "cifar")):
        with tempfile.TemporaryDirectory() as runs_dir:
            trainer = fast_trainer([*fast_overrides(device, model, shape, n_train=size["n_train"],
                                                    batch_size=size["batch_size"]), "optimizer=rbo",
                                    f"optimizer.proj_steps={size['proj_steps']}"], runs_dir)
            trainer.model = torch.compile(trainer.model, mode="reduce-overhead")
            start = time.perf_counter()
            for _ in trainer_steps(trainer, 2):
                pass
            compile_s = time.perf_counter() - start
            seconds = seconds_per_eval(trainer, steps=2 if smoke else 3, warmup=0)
        graphs = (f"{1e3 * measured(model, shape, graphs=True):.3f}"
                  if any(r["cuda_graphs"] for r in RESULTS["per_eval"]) else "-")
        say(f"| {model} | {shape} | {1e3 * seconds:.3f} | {graphs} | {1e3 * measured(model, shape, graphs=False):.3f} "
            f"| {compile_s:.0f} |")


def throughput_rows(results: dict[str, list]) -> list[dict]:
    """``results``' measurements as rows of the throughput file (scripts/plan.py's docstring): every (h) row
    (``concurrent``: aggregate evaluations per second of N runs per GPU), then every (f) and (g) row
    (``per_eval``: one run alone, 1 / seconds per evaluation) of a setting (h) did not measure with one run."""
    from scripts.plan import GPU_PATHS, SETTING_FIELDS

    rows: dict[tuple, dict] = {}
    measured = [(r, r["jobs_per_gpu"], r["evals_per_s"]) for r in results["concurrent"]]
    measured += [(r, 1, 1.0 / r["seconds_per_eval"]) for r in results["per_eval"]]
    for r, runs_per_gpu, evals_per_second in measured:
        row = {"model": r["model"], "input": [r["in_channels"], r["image_size"], r["image_size"]],
               "batch": r["batch_size"], "precision": r["precision"], "path": GPU_PATHS[bool(r["cuda_graphs"])],
               "tf32": r["tf32"], "channels_last": r["channels_last"], "runs_per_gpu": runs_per_gpu,
               "evals_per_second": evals_per_second}
        key = (*(str(row[f]) for f in SETTING_FIELDS), runs_per_gpu)
        rows.setdefault(key, row)
    return list(rows.values())


def write_throughput(path: Path, device_name: str, rows: list[dict]) -> None:
    """The throughput file (scripts/plan.py's format), atomically: ``device``, ``torch``, ``measured_at`` (UTC)
    and ``rows`` (:func:`throughput_rows`)."""
    from experiments.records import write_json

    write_json(path, {"device": device_name, "torch": torch.__version__,
                      "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows})
    say(f"\nthroughput ({len(rows)} rows) written to {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked before any work: a bad value is an error naming the option, the value and what
    is allowed (exit status 2)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (cpu: with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="reduced sizes (to test this script on a CPU)")
    parser.add_argument("--budget", type=float, default=330.0,
                        help="seconds after which (k) and the remaining speed parts of (c) are skipped")
    parser.add_argument("--jobs", default="1,2,4,8", help="processes per GPU measured in (h), comma-separated")
    parser.add_argument("--seconds", type=float, default=4.0, help="timing window of each (h) measurement")
    parser.add_argument("--out", type=Path, help="throughput JSON (default results/gpu/throughput.json; "
                        "with --smoke none unless given)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # MODEL:SHAPE: one process of (h)
    parser.add_argument("--graphs", action="store_true", help=argparse.SUPPRESS)  # the worker's path
    args = parser.parse_args(argv)
    try:
        args.device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"invalid --device={args.device!r}: allowed: cuda, cuda:N or cpu")
    jobs = args.jobs.split(",")
    if not all(n.strip().isdigit() and int(n) >= 1 for n in jobs):
        parser.error(f"invalid --jobs={args.jobs!r}: allowed: comma-separated integers >= 1, e.g. 1,2,4,8")
    args.jobs = tuple(int(n) for n in jobs)
    if not args.seconds > 0:
        parser.error(f"invalid --seconds={args.seconds!r}: allowed: a number of seconds > 0")
    if not args.budget >= 0:
        parser.error(f"invalid --budget={args.budget!r}: allowed: a number of seconds >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    sys.stdout.reconfigure(line_buffering=True)
    device, jobs = args.device, args.jobs
    if device.type == "cuda" and not torch.cuda.is_available():
        say(f"CUDA is not available here (torch {torch.__version__}); use --device cpu --smoke")
        sys.exit(2)
    header(device, args.smoke, stub_missing_tqdm())
    graphs = device.type == "cuda"  # CUDA graphs need CUDA: on a CPU only the eager rows are measured
    with section("(a) CUDA path correctness: device vs CPU, BatchNorm freeze"):
        check_devices_agree(device)
        check_bn_freeze(device)
    if graphs:
        with section("(e) Fast path: the CUDA-graph step equals the eager step"):
            check_graph_equals_eager(device, args.smoke)
    with section("(b) bf16 autocast lowers the loss"):
        check_bf16(device, steps=30)
    with section("(d) End-to-end trainer run"):
        check_end_to_end(device, args.smoke, graphs=False)
        if graphs:
            check_end_to_end(device, args.smoke, graphs=True)
    with section("(f) Seconds per evaluation: eager vs CUDA graphs"):
        per_eval_table(device, args.smoke, graphs)
    if graphs:
        with section("(g) Math modes: TF32, channels_last"):
            math_modes_table(device, args.smoke)
    with section("(h) Several runs per GPU: aggregate evaluations per second"):
        concurrency_table(device, args.smoke, graphs, jobs, args.seconds)
    with section("(i) One timed epoch against the estimate"):
        timed_epochs(device, args.smoke, graphs)
    with section("(j) Implied wall time: paper/table1, paper/heatmap"):
        implied_wall_time(device, jobs, graphs, args.smoke)
    out = args.out or (None if args.smoke else ROOT / "results" / "gpu" / "throughput.json")
    rows = throughput_rows(RESULTS)
    if out is not None and rows:
        write_throughput(out, torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", rows)
    elif out is not None:
        say(f"\nnothing measured: {out} left as it was")
    if not graphs or elapsed() > args.budget:
        say(f"\n## (k) torch.compile\n\nskipped: {'needs CUDA' if not graphs else f'{elapsed():.0f} s elapsed'}")
    else:
        with section("(k) torch.compile(mode=\"reduce-overhead\") for comparison"):
            compile_comparison(device, args.smoke)
    say("\n## (c) Speed")
    try:
        speed(device, args.smoke, args.budget)
    except Exception:
        FAILED.append("(c)")
        say("**FAILED**\n\n```\n" + traceback.format_exc().rstrip() + "\n```")
    say(f"\n## Result\n\n{'all sections passed' if not FAILED else 'FAILED: ' + '; '.join(FAILED)} "
        f"(total {elapsed():.1f} s)")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
