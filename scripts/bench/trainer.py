"""Cost of the trainer (issue 5's benchmark): ``python -m scripts.bench.trainer [--device cpu|cuda] [--epochs N]``.

1. One training epoch of the real trainer (``experiments.trainer.Trainer``, its own ``train_seconds`` counter:
   training only, evaluation and records excluded) on ``mnist_subset``/MLP with the paper's SGD (lr 0.01,
   batch 256), against a bare PyTorch loop over the same device tensors, the same initial weights and the same
   batches (``x = images[idx].float() / 255``, forward, cross-entropy, backward, SGD step). One warm-up epoch
   each, then interleaved epochs (alternating which goes first); medians. Target: trainer / bare ≤ 1.10.
2. With ``--device cuda`` also: images per second of :class:`experiments.data.DeviceLoader` against a
   torchvision ``DataLoader`` (PIL images, ``transforms.ToTensor()``, workers, ``pin_memory``) on
   CIFAR-shaped random uint8 data, each batch moved to the GPU; one VGG-9 epoch of the trainer on 50,000
   CIFAR-shaped synthetic images with SGD in fp32 and bf16; and ms per RBO step at K = 100 on VGG-9 with the
   trainer's closure and data.

Every function takes its sizes as arguments, so ``scripts/bench/gpu_check.py --smoke`` can run them small on CPU.
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from scripts.bench.optimizers import sync

# The trainer-vs-bare recipe: the paper's SGD on the shipped digits, nothing printed, no W&B.
MNIST_SGD = ("dataset=mnist_subset", "model=mlp", "optimizer=sgd", "optimizer.lr=0.01", "batch_size=256",
             "logger=none", "progress=false")


def compose(*overrides: str):
    """The config ``python -m experiments.train <overrides>`` would run (Hydra's compose API, as tests/conftest)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from experiments.config import CONF_DIR  # importing it registers the structured configs

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def prepared_trainer(cfg):
    """A :class:`Trainer` with data, model and optimizer built (``_setup``), ready for ``_epoch(e)`` calls."""
    from experiments.trainer import Trainer

    trainer = Trainer(cfg)
    trainer.dir.mkdir(parents=True, exist_ok=True)
    trainer._load_history()
    trainer._setup()
    trainer.model.train()
    return trainer


def trainer_epoch(trainer, epoch: int) -> tuple[float, float]:
    """(training seconds by the trainer's own counter, wall seconds of the whole epoch incl. eval and records)."""
    before = trainer.counters["train_seconds"]
    start = time.perf_counter()
    trainer._epoch(epoch)
    return trainer.counters["train_seconds"] - before, time.perf_counter() - start


def bare_epoch(model, optimizer, images, labels, batch_size: int, order: torch.Tensor) -> float:
    """Seconds for one epoch of the plainest PyTorch loop over ``order`` (device tensors)."""
    device = images.device
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        x, y = images[idx].float() / 255, labels[idx]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    sync(device)
    return time.perf_counter() - start


def trainer_vs_bare(device: torch.device, *, epochs: int = 20, warmup: int = 1) -> dict:
    """Median ms per epoch of the trainer and of the bare loop, interleaved (see the module docstring)."""
    from experiments.data import epoch_seed

    with tempfile.TemporaryDirectory() as runs_dir:
        cfg = compose(*MNIST_SGD, f"device={device}", f"epochs={warmup + epochs}", f"runs_dir={runs_dir}")
        trainer = prepared_trainer(cfg)
        split = trainer.train_loader.split
        model = copy.deepcopy(trainer.model)  # same initial weights
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr)
        model.train()
        train_ms, wall_ms, bare_ms = [], [], []
        for epoch in range(1, warmup + epochs + 1):
            g = torch.Generator(device=split.images.device).manual_seed(epoch_seed(cfg.seed, epoch))
            order = torch.randperm(len(split), generator=g, device=split.images.device)  # the trainer's batches

            def bare(order=order):
                return bare_epoch(model, optimizer, split.images, split.labels, cfg.batch_size, order)

            if epoch % 2:  # alternate which one goes first
                (train_s, wall_s), bare_s = trainer_epoch(trainer, epoch), bare()
            else:
                bare_s, (train_s, wall_s) = bare(), trainer_epoch(trainer, epoch)
            if epoch > warmup:
                train_ms.append(1e3 * train_s)
                wall_ms.append(1e3 * wall_s)
                bare_ms.append(1e3 * bare_s)
        steps = len(trainer.train_loader)
    trainer_med, bare_med = statistics.median(train_ms), statistics.median(bare_ms)
    return {"device": str(device), "epochs": epochs, "steps": steps, "examples": len(split),
            "trainer_ms": trainer_med, "bare_ms": bare_med, "ratio": trainer_med / bare_med,
            "trainer_min_ms": min(train_ms), "bare_min_ms": min(bare_ms), "min_ratio": min(train_ms) / min(bare_ms),
            "wall_ms": statistics.median(wall_ms), "ratios": [t / b for t, b in zip(train_ms, bare_ms)]}


def trainer_vs_bare_table(r: dict) -> str:
    ratios = sorted(r["ratios"])
    paired = statistics.median(ratios)
    return "\n".join([
        f"mnist_subset/MLP 784-512-512-10, SGD lr 0.01, batch 256: {r['examples']} examples, {r['steps']} steps "
        f"per epoch, {r['device']}; {r['epochs']} interleaved epochs each, after one warm-up epoch\n",
        "| loop | median ms / epoch | min ms / epoch |", "|---|---:|---:|",
        f"| bare PyTorch loop | {r['bare_ms']:.1f} | {r['bare_min_ms']:.1f} |",
        f"| trainer (its `train_seconds`) | {r['trainer_ms']:.1f} | {r['trainer_min_ms']:.1f} |",
        f"| trainer, whole `_epoch` (+ eval, checkpoint, records) | {r['wall_ms']:.1f} | |",
        "",
        f"trainer / bare: **{r['ratio']:.3f}** (ratio of medians; target ≤ 1.10: "
        f"{'met' if r['ratio'] <= 1.10 else 'NOT met'}); median of the per-epoch-pair ratios {paired:.3f} "
        f"(min {ratios[0]:.3f}, max {ratios[-1]:.3f}); ratio of minima {r['min_ratio']:.3f} (least disturbed "
        "by other load).",
    ])


# ---- input pipelines ------------------------------------------------------------------------------------------

class PILImages(torch.utils.data.Dataset):
    """CIFAR10-style dataset: HWC uint8 numpy images returned as PIL images through ``transform``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _images_per_second(batches: Callable[[], Iterator], n: int, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    for x, y in batches():
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    sync(device)
    return n / (time.perf_counter() - start)


def loader_throughput(device: torch.device, *, n: int = 50_000, batch_size: int = 256, workers: int = 8,
                      repeats: int = 3) -> list[tuple[str, float]]:
    """Images/s for one epoch of CIFAR-shaped random uint8 data: DeviceLoader (data on ``device``) against a
    torchvision DataLoader (PIL + ToTensor, ``workers`` processes, pinned memory on CUDA), plain and with the
    4-pixel crop + flip augmentation. Every batch ends on ``device``."""
    from torchvision import transforms

    from experiments.data import DeviceLoader, Split

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=gen)
    split = Split(images.to(device), labels.to(device))
    hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    rows = []
    for label, aug in (("plain", False), ("crop + flip", True)):
        loader = DeviceLoader(split, batch_size, seed=0, augment=aug)
        for _ in loader.batches(0):  # warm-up
            pass
        rates = [_images_per_second(functools.partial(loader.batches, e), n, device) for e in range(1, repeats + 1)]
        rows.append((f"DeviceLoader, {label}", statistics.median(rates)))
        tf = transforms.Compose([*(augment if aug else []), transforms.ToTensor()])
        dl = torch.utils.data.DataLoader(PILImages(hwc, labels.numpy(), tf), batch_size=batch_size, shuffle=True,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0, timeout=120 if workers > 0 else 0)
        it = iter(dl)  # warm-up: start the workers
        for _ in range(min(5, len(dl))):
            next(it)
        del it
        rate = _images_per_second(dl.__iter__, n, device)
        rows.append((f"DataLoader + PIL ToTensor, {label} ({workers} workers"
                     f"{', pin_memory' if device.type == 'cuda' else ''})", rate))
        del dl
    return rows


def loader_table(rows: list[tuple[str, float]], n: int, device: torch.device) -> str:
    base = {label.split(",")[-1].strip(): rate for label, rate in rows if label.startswith("DeviceLoader")}
    lines = [f"{n} CIFAR-shaped uint8 images, batch 256, each batch moved to {device}\n",
             "| pipeline | images / s | DeviceLoader / this |", "|---|---:|---:|"]
    for label, rate in rows:
        key = "crop + flip" if "crop + flip" in label else "plain"
        lines.append(f"| {label} | {rate:,.0f} | {base[key] / rate:.1f}× |")
    return "\n".join(lines)


# ---- VGG-9 through the trainer --------------------------------------------------------------------------------

@contextmanager
def cached_datasets():
    """Load each dataset once per process while timing (the 50k synthetic images take seconds to generate)."""
    import experiments.trainer as trainer_module

    original = trainer_module.load_dataset
    trainer_module.load_dataset = functools.lru_cache(maxsize=4)(original)
    try:
        yield
    finally:
        trainer_module.load_dataset = original


def _vgg9_overrides(device, precision: str, n_train: int, batch_size: int, runs_dir: str,
                    n_test: int = 512) -> list[str]:
    return ["dataset=synthetic", "dataset.synthetic_shape=cifar", f"dataset.synthetic_size=[{n_train},{n_test}]",
            "dataset.val_size=0", "model=vgg9", "logger=none", "progress=false", f"device={device}",
            f"precision={precision}", f"batch_size={batch_size}", f"eval_batch_size={batch_size}",
            f"runs_dir={runs_dir}"]


def vgg9_epoch(device: torch.device, precision: str, *, n_train: int = 50_000, batch_size: int = 256,
               epochs: int = 1, n_test: int = 512) -> dict:
    """Training seconds (trainer's counter) of VGG-9 epochs with the paper's SGD, after one warm-up epoch."""
    with tempfile.TemporaryDirectory() as runs_dir:
        cfg = compose(*_vgg9_overrides(device, precision, n_train, batch_size, runs_dir, n_test), "optimizer=sgd",
                      f"epochs={epochs + 1}")
        trainer = prepared_trainer(cfg)
        times = [trainer_epoch(trainer, e)[0] for e in range(1, epochs + 2)][1:]
        steps = len(trainer.train_loader)
    seconds = statistics.median(times)
    return {"precision": precision, "seconds": seconds, "steps": steps, "ms_per_step": 1e3 * seconds / steps,
            "images_per_s": n_train / seconds}


def rbo_step_ms(device: torch.device, precision: str, *, proj_steps: int = 100, batch_size: int = 256,
                n_train: int = 50_000, steps: int = 5, warmup: int = 1, n_test: int = 512) -> dict:
    """Median ms per RBO step (K = ``proj_steps``) on VGG-9 with the trainer's model, optimizer, data and
    closure (what ``Trainer._epoch`` runs per step, without the per-epoch evaluation)."""
    from experiments.trainer import Closure

    with tempfile.TemporaryDirectory() as runs_dir:
        cfg = compose(*_vgg9_overrides(device, precision, n_train, batch_size, runs_dir, n_test), "optimizer=rbo",
                      f"optimizer.proj_steps={proj_steps}", "epochs=1")
        trainer = prepared_trainer(cfg)
        closure = Closure(trainer.model, trainer.train_loader.batches(1), loss_scale=cfg.loss_scale,
                          autocast=trainer._autocast, counters=trainer.counters)
        times = []
        for _ in range(warmup + steps):
            if not closure.next_step():
                closure = Closure(trainer.model, trainer.train_loader.batches(2), loss_scale=cfg.loss_scale,
                                  autocast=trainer._autocast, counters=trainer.counters)
                closure.next_step()
            sync(device)
            start = time.perf_counter()
            trainer.optimizer.step(closure)
            sync(device)
            times.append(time.perf_counter() - start)
    return {"precision": precision, "K": proj_steps, "ms": 1e3 * statistics.median(times[warmup:])}


def vgg9_table(epochs: list[dict], rbo: list[dict], n_train: int, batch_size: int, device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [f"VGG-9 (2×2 kernels), {n_train} CIFAR-shaped synthetic images, batch {batch_size}, {name}; "
             "trainer's `train_seconds`, epoch after one warm-up epoch\n",
             "| run | s / epoch | ms / step | images / s |", "|---|---:|---:|---:|"]
    sgd = {}
    for r in epochs:
        sgd[r["precision"]] = r["ms_per_step"]
        lines.append(f"| SGD {r['precision']} | {r['seconds']:.2f} | {r['ms_per_step']:.2f} | "
                     f"{r['images_per_s']:,.0f} |")
    if rbo:
        lines += ["", "| RBO step | ms / step | RBO / (K · SGD step) |", "|---|---:|---:|"]
        for r in rbo:
            ratio = r["ms"] / (r["K"] * sgd[r["precision"]]) if r["precision"] in sgd else float("nan")
            lines.append(f"| RBO K={r['K']} {r['precision']} | {r['ms']:.1f} | {ratio:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda | cuda:N")
    parser.add_argument("--epochs", type=int, default=20, help="timed epochs per loop, after one warm-up epoch")
    args = parser.parse_args()
    from experiments.trainer import resolve_device

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"## Trainer overhead: trainer vs bare loop, {name}, torch {torch.__version__}\n", flush=True)
    print(trainer_vs_bare_table(trainer_vs_bare(device, epochs=args.epochs)), flush=True)
    if device.type != "cuda":
        return
    print("\n## Input pipeline: DeviceLoader vs torchvision DataLoader\n", flush=True)
    print(loader_table(loader_throughput(device), 50_000, device), flush=True)
    print("\n## VGG-9 through the trainer\n", flush=True)
    with cached_datasets():
        epochs = [vgg9_epoch(device, p) for p in ("fp32", "bf16")]
        rbo = [rbo_step_ms(device, p) for p in ("fp32", "bf16")]
    print(vgg9_table(epochs, rbo, 50_000, 256, device), flush=True)


if __name__ == "__main__":
    main()
