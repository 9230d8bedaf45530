"""One-shot GPU check for the lead: ``python scripts/gpu_check.py`` (or ``python -m scripts.gpu_check``).

Prints one Markdown report, each section guarded (a failure prints its traceback and the next section runs),
each section timed, output flushed line by line:

(a) CUDA path correctness: one RBO step (K = 20), one SAM step and one Entropy-SGD step (noise 0) on the same
    float32 weights and batch on the device and on the CPU agree to 1e-5 (TF32 off for this section); the
    BatchNorm freeze works on the device (running statistics updated once per multi-evaluation step).
(b) bf16 autocast: SGD, SAM and RBO lower the loss of a toy problem under bf16 autocast on the device.
(d) An end-to-end ``experiments.train.run(cfg)`` (mnist_subset, MLP, RBO, 1 epoch) on the device: status,
    test accuracy, training seconds. Run before (c), so the slow section cannot starve it.
(c) Speed: ``scripts.bench_optimizers.step_costs`` (RBO / (K · SGD)), the trainer vs a bare loop, DeviceLoader
    vs a torchvision DataLoader, VGG-9 epoch time (SGD fp32 / bf16) and ms per RBO step (K = 100) on VGG-9.
    Parts that would start after ``--budget`` seconds are skipped (default 200 s; whole script < 4 min).

``--smoke --device cpu`` runs every section with reduced sizes on the CPU (compares CPU with CPU in (a)),
to test this script without a GPU. Exit status 1 if any section failed.
"""

from __future__ import annotations

import argparse
import copy
import importlib.machinery
import importlib.metadata
import platform
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``python scripts/gpu_check.py`` puts scripts/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from scripts.bench_optimizers import cross_entropy_closure  # noqa: E402  (torch and rbo only)

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

def check_end_to_end(device: torch.device, smoke: bool) -> None:
    from experiments.train import run
    from scripts.bench_trainer import compose

    with tempfile.TemporaryDirectory() as runs_dir:
        overrides = ["logger=none", "dataset=mnist_subset", "model=mlp", "optimizer=rbo", "epochs=1",
                     f"device={device}", f"runs_dir={runs_dir}", "progress=false",
                     *(["optimizer.proj_steps=5"] if smoke else [])]
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
    from scripts import bench_optimizers
    from scripts import bench_trainer as bt

    n, bs, workers = (2048, 256, 2) if smoke else (50_000, 256, 8)
    vgg = dict(n_train=128, batch_size=32, n_test=64) if smoke else dict(n_train=50_000, batch_size=256)
    rbo = dict(proj_steps=2, steps=1, n_train=128, batch_size=8, n_test=64) if smoke else dict(proj_steps=100)
    epochs, rbo_rows = [], []
    parts = [
        ("RBO / (K · SGD) step cost, MLP 784-512-512-10, batch 256 (`bench_optimizers.step_costs`)",
         lambda: _step_cost_table(bench_optimizers.step_costs(device, rounds=1 if smoke else 3))),
        ("Trainer vs bare loop (`bench_trainer.trainer_vs_bare`)",
         lambda: bt.trainer_vs_bare_table(bt.trainer_vs_bare(device, epochs=3 if smoke else 20))),
        ("DeviceLoader vs torchvision DataLoader (`bench_trainer.loader_throughput`)",
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


def _step_cost_table(rows) -> str:
    return "\n".join(["| optimizer | ms / step | RBO / (K · SGD) |", "|---|---:|---:|",
                      *(f"| {label} | {ms:.3f} | {ratio:.3f} |" for label, ms, ratio in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true", help="reduced sizes (to test this script on a CPU)")
    parser.add_argument("--budget", type=float, default=200.0,
                        help="seconds after which the remaining speed parts are skipped")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        say(f"CUDA is not available here (torch {torch.__version__}); use --device cpu --smoke")
        sys.exit(2)
    header(device, args.smoke, stub_missing_tqdm())
    with section("(a) CUDA path correctness: device vs CPU, BatchNorm freeze"):
        check_devices_agree(device)
        check_bn_freeze(device)
    with section("(b) bf16 autocast lowers the loss"):
        check_bf16(device, steps=30)
    with section("(d) End-to-end trainer run"):
        check_end_to_end(device, args.smoke)
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
