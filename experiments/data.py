"""Datasets kept on the training device as uint8 tensors, and a seeded device-side batch loader.

SPEC §3 (the paper's data: MNIST, CIFAR-10, CIFAR-100, pixels / 255, no augmentation) and §5 (no network
here: the torchvision path is kept for users and tested on small files in the real on-disk formats; the
10,000 real digits of ``assets/mnist-10k`` stand in for MNIST). Issue 5, "Data".

Every split is read once, converted to ``uint8 [N, C, H, W]`` images and ``int64 [N]`` labels and moved to the
device; batches are gathered from it by a device-side permutation seeded by ``(seed, epoch)``, so resuming at
epoch ``e`` replays exactly the order an uninterrupted run would have used.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import socket
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "mnist_subset", "synthetic")
NORMALIZE = ("scale", "standardize")
ASSETS = Path(__file__).parent / "assets" / "mnist-10k"
SUBSET_TRAIN = 8000  # first 8,000 of the 10,000 real digits train, the last 2,000 test (assets README)
SYNTHETIC_SHAPES = {"mnist": (1, 28, 28), "cifar": (3, 32, 32)}
SYNTHETIC_SEED = 20250525  # fixed: the synthetic data never depend on a run's seed
SYNTHETIC_CLASSES = 10
CROP_PADDING = 4  # the standard CIFAR recipe: zero-pad 4 pixels, random crop back, random horizontal flip
DOWNLOAD_TIMEOUT_S = 20.0  # per socket operation, so an offline machine fails fast instead of hanging

_TORCHVISION = {  # name -> (torchvision class, number of classes)
    "mnist": (datasets.MNIST, 10),
    "fashion_mnist": (datasets.FashionMNIST, 10),
    "cifar10": (datasets.CIFAR10, 10),
    "cifar100": (datasets.CIFAR100, 100),
}
_TRAIN_SIZES = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000,
                "mnist_subset": SUBSET_TRAIN}


def dataset_shape(name: str, *, synthetic_shape: str = "mnist",
                  synthetic_size: tuple[int, int] = (2048, 512)) -> tuple[int, int, int, int]:
    """(channels, image size, classes, training images before the validation split), without loading data."""
    if name == "synthetic":
        channels, size, _ = SYNTHETIC_SHAPES[synthetic_shape]
        return channels, size, SYNTHETIC_CLASSES, synthetic_size[0]
    channels, size = (3, 32) if name.startswith("cifar") else (1, 28)
    classes = _TORCHVISION[name][1] if name in _TORCHVISION else 10
    return channels, size, classes, _TRAIN_SIZES[name]


@dataclass
class Split:
    """One split, kept on the training device."""

    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, index: torch.Tensor) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass
class DatasetBundle:
    name: str
    train: Split
    val: Split | None
    test: Split
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]  # per channel, of the train split, in [0, 1] units
    std: tuple[float, ...]


def default_data_dir() -> Path:
    """``$RBO_DATA``, else ``~/.cache/rbo-bench/data``."""
    return Path(os.environ.get("RBO_DATA") or Path.home() / ".cache" / "rbo-bench" / "data")


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    val_size: int = 5000,
    val_seed: int = 0,
    download: bool = True,
    synthetic_shape: str = "mnist",
    synthetic_size: tuple[int, int] = (2048, 512),
) -> DatasetBundle:
    """Read ``name`` once, hold out ``val_size`` training examples (a permutation seeded by ``val_seed`` only,
    independent of the run seed; 0 = no validation split) and move every split to ``device``.

    Missing files (offline, or ``download=False``) raise ``FileNotFoundError`` naming the folder and the files
    to put there; a corrupt or truncated file raises ``RuntimeError`` naming it.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset name={name!r} is unknown; allowed: {', '.join(DATASETS)}")
    if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 0:
        raise ValueError(f"val_size={val_size!r} must be an integer >= 0 (0 = no validation split)")
    if synthetic_shape not in SYNTHETIC_SHAPES:
        allowed = ", ".join(SYNTHETIC_SHAPES)
        raise ValueError(f"synthetic_shape={synthetic_shape!r} is unknown; allowed: {allowed}")
    if len(synthetic_size) != 2 or not all(isinstance(n, int) and n > 0 for n in synthetic_size):
        raise ValueError(f"synthetic_size={synthetic_size!r} must be two positive integers (train, test)")

    if name == "mnist_subset":
        (train, test), num_classes = _mnist_subset(), 10
    elif name == "synthetic":
        (train, test), num_classes = _synthetic(synthetic_shape, synthetic_size), SYNTHETIC_CLASSES
    else:
        num_classes = _TORCHVISION[name][1]
        root = Path(data_dir) if data_dir is not None else default_data_dir()
        train, test = _torchvision(name, root, download)

    train, val = _hold_out(train, val_size, val_seed, name)
    mean, std = channel_stats(train.images)
    _, channels, size, _ = train.images.shape
    return DatasetBundle(
        name=name, train=train.to(device), val=None if val is None else val.to(device), test=test.to(device),
        num_classes=num_classes, in_channels=channels, image_size=size, mean=mean, std=std,
    )


def _hold_out(train: Split, val_size: int, val_seed: int, name: str) -> tuple[Split, Split | None]:
    """Split ``val_size`` examples off the training set; both parts keep the original order."""
    n = len(train)
    if val_size >= n:
        raise ValueError(
            f"val_size={val_size} must be smaller than the {n} training examples of {name} "
            f"(allowed: 0 <= val_size <= {n - 1}; 0 = no validation split)"
        )
    if val_size == 0:
        return train, None
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(val_seed))
    return train.subset(perm[val_size:].sort().values), train.subset(perm[:val_size].sort().values)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images in [0, 1] units, exact (pixel histograms)."""
    channels = range(images.shape[1])
    counts = torch.stack([torch.bincount(images[:, c].flatten(), minlength=256) for c in channels]).double().cpu()
    levels = torch.arange(256, dtype=torch.float64) / 255
    n = counts.sum(1)
    mean = counts @ levels / n
    var = (counts @ levels**2 / n - mean**2).clamp_min(0)
    return tuple(mean.tolist()), tuple(var.sqrt().tolist())


# ---- idx files (MNIST's format) -------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in ``.gz``; a damaged file is named in the error."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise RuntimeError(f"{path} is corrupt or truncated ({err}); delete it and fetch it again") from err


def _parse_idx(data: bytes, path: Path) -> torch.Tensor:
    """A uint8 idx tensor (magic 0x000008nd, nd big-endian uint32 sizes, then the bytes), size-checked."""
    magic = int.from_bytes(data[:4], "big")
    nd = magic & 0xFF
    if len(data) < 4 or magic >> 8 != 0x08 or not 1 <= nd <= 3 or len(data) < 4 + 4 * nd:
        raise RuntimeError(f"{path} is not a uint8 idx file (magic {magic:#010x}); delete it, fetch it again")
    dims = struct.unpack(f">{nd}I", data[4 : 4 + 4 * nd])
    body = data[4 + 4 * nd :]
    if len(body) != math.prod(dims):
        raise RuntimeError(
            f"{path} is corrupt or truncated: its header promises {dims} = {math.prod(dims)} bytes "
            f"but {len(body)} follow; delete it and fetch it again"
        )
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(dims)


def read_idx(path: str | Path) -> torch.Tensor:
    """Read a uint8 idx file (``.gz`` or plain)."""
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


def _mnist_subset() -> tuple[Split, Split]:
    images = read_idx(ASSETS / "images-idx3-ubyte.gz").unsqueeze(1)
    labels = read_idx(ASSETS / "labels-idx1-ubyte.gz").long()
    n = SUBSET_TRAIN
    return Split(images[:n], labels[:n]), Split(images[n:], labels[n:])


# ---- synthetic ---------------------------------------------------------------------------------------------

def _synthetic(shape: str, sizes: tuple[int, int]) -> tuple[Split, Split]:
    """Class templates plus Gaussian pixel noise, quantised to uint8: linearly separable in expectation, so a
    small MLP learns it in a few epochs. Train and test use their own fixed generators, so each split depends
    only on its own size."""
    c, h, w = SYNTHETIC_SHAPES[shape]
    g = torch.Generator().manual_seed(SYNTHETIC_SEED)
    templates = 0.5 + 0.1 * torch.randn(SYNTHETIC_CLASSES, c, h, w, generator=g)

    def sample(n: int, offset: int) -> Split:
        gen = torch.Generator().manual_seed(SYNTHETIC_SEED + offset)
        labels = torch.randint(0, SYNTHETIC_CLASSES, (n,), generator=gen)
        pixels = templates[labels] + 0.3 * torch.randn(n, c, h, w, generator=gen)
        return Split(pixels.clamp(0, 1).mul(255).round().to(torch.uint8), labels)

    return sample(sizes[0], 1), sample(sizes[1], 2)


# ---- torchvision datasets ------------------------------------------------------------------------------

IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SYSTEM_IDX_FOLDERS = {  # folders that system packages install, searched last
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),  # Debian/Ubuntu: apt install dataset-fashion-mnist
}
_KNOWN_GZ_MD5 = {md5: cls.__name__ for cls in (datasets.MNIST, datasets.FashionMNIST) for _, md5 in cls.resources}


def idx_folders(name: str, root: Path) -> list[Path]:
    """Where the four idx files of an MNIST-format dataset are looked for, in order: torchvision's layout
    (``<root>/<Class>/raw``), a flat folder (``<root>/<Class>``, then ``<root>`` itself), then the folder a
    system package installs (:data:`SYSTEM_IDX_FOLDERS`)."""
    cls = _TORCHVISION[name][0]
    return [root / cls.__name__ / "raw", root / cls.__name__, root, *SYSTEM_IDX_FOLDERS.get(name, ())]


def find_idx_files(name: str, root: Path) -> list[Path] | None:
    """The four idx files (plain or ``.gz``, in :data:`IDX_STEMS` order) from the first folder of
    :func:`idx_folders` that holds all four, else None. A ``.gz`` whose MD5 is that of another dataset's file
    (MNIST's files where Fashion-MNIST's are wanted, or the reverse) is an error, not a silent swap."""
    for folder in idx_folders(name, root):
        found = [next((p for p in (folder / s, folder / f"{s}.gz") if p.is_file()), None) for s in IDX_STEMS]
        if all(found):
            _check_not_another_dataset(name, found)
            return found
    return None


def _check_not_another_dataset(name: str, files: list[Path]) -> None:
    wanted = _TORCHVISION[name][0].__name__
    for path in files:
        if path.suffix == ".gz":
            owner = _KNOWN_GZ_MD5.get(hashlib.md5(path.read_bytes()).hexdigest())
            if owner is not None and owner != wanted:
                raise RuntimeError(f"{path} is {owner}'s file, but dataset={name!r} ({wanted}) was asked for; "
                                   f"point data_dir (or RBO_DATA) at the {wanted} files")


def _expected_files(cls: type, root: Path) -> tuple[Path, list[tuple[str, str | None]]]:
    """The folder torchvision reads and the ``(file, md5)`` pairs it needs there (md5 None: not checked)."""
    if issubclass(cls, datasets.MNIST):
        return root / cls.__name__ / "raw", [(stem, None) for stem in IDX_STEMS]
    pairs = [(f, md5) for f, md5 in cls.train_list + cls.test_list]
    return root / cls.base_folder, [*pairs, (cls.meta["filename"], cls.meta["md5"])]


def _missing(name: str, root: Path) -> list[str]:
    """Files of ``name`` still missing under ``root`` (an MNIST-format set counts as present in any layout of
    :func:`idx_folders`)."""
    cls = _TORCHVISION[name][0]
    folder, files = _expected_files(cls, root)
    if issubclass(cls, datasets.MNIST):
        return [] if find_idx_files(name, root) else [f for f, _ in files]
    return [f for f, _ in files if not (folder / f).is_file()]


def _missing_message(name: str, root: Path, missing: list[str], why: str) -> str:
    cls = _TORCHVISION[name][0]
    folder, files = _expected_files(cls, root)
    if issubclass(cls, datasets.MNIST):
        source = f"the .gz files from {cls.mirrors[0]} (plain or .gz both work)"
        others = ", ".join(str(f) for f in idx_folders(name, root)[1:])
        source += f"; a flat folder of the four files also works: {others}"
    else:
        source = f"the contents of {cls.url}, extracted"
    return (
        f"{cls.__name__} is not in {folder} ({why}). Missing: {', '.join(missing)}. Put these files there: "
        f"{', '.join(str(folder / f) for f, _ in files)} -- {source}; or run once with network access "
        f"and download=True (data_dir={root}, or set RBO_DATA)."
    )


def missing_data(name: str, data_dir: str | Path | None = None, download: bool = False) -> str | None:
    """Pre-flight: None when ``name`` can be loaded from ``data_dir`` (default :func:`default_data_dir`)
    without a download (always for ``mnist_subset`` and ``synthetic``), else the message naming what is
    missing and where to put it (``download`` only changes the wording)."""
    if name not in _TORCHVISION:
        return None
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    missing = _missing(name, root)
    why = "download=True will try to fetch them" if download else "download=False"
    return _missing_message(name, root, missing, why) if missing else None


def data_files(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The files :func:`load_dataset` reads for ``name`` (in whichever layout holds them; [] for ``synthetic``
    or when absent): what a run record fingerprints."""
    if name == "mnist_subset":
        return sorted(ASSETS.glob("*.gz"))
    if name not in _TORCHVISION:
        return []
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    cls = _TORCHVISION[name][0]
    if issubclass(cls, datasets.MNIST):
        return find_idx_files(name, root) or []
    folder, files = _expected_files(cls, root)
    return [folder / f for f, _ in files]


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _torchvision(name: str, root: Path, download: bool) -> tuple[Split, Split]:
    """Check the files, download only when some are missing, then read both splits (MNIST formats with
    :func:`read_idx` from whichever layout holds them, CIFAR with torchvision)."""
    cls = _TORCHVISION[name][0]
    missing = _missing(name, root)
    if missing and not download:
        raise FileNotFoundError(_missing_message(name, root, missing, "download=False"))
    if missing:
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                cls(root, train=True, download=True)
        except Exception as err:  # urllib, socket, md5 or archive errors: all mean "the files are not here"
            why = "download failed: " + " ".join(str(err).split())  # torchvision's text spans lines
            raise FileNotFoundError(_missing_message(name, root, missing, why)) from err

    if issubclass(cls, datasets.MNIST):
        return _idx_splits(find_idx_files(name, root))
    folder, files = _expected_files(cls, root)
    for file, md5 in files:
        if not check_integrity(folder / file, md5):
            raise RuntimeError(f"{folder / file} is corrupt or truncated (MD5 is not {md5}); delete it, fetch it again")
    try:
        return _to_split(cls(root, train=True)), _to_split(cls(root, train=False))
    except (RuntimeError, ValueError, TypeError, KeyError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise RuntimeError(f"torchvision could not read {cls.__name__} from {folder}: {err}") from err


def _idx_splits(files: list[Path]) -> tuple[Split, Split]:
    """Train and test splits from the four idx files (:data:`IDX_STEMS` order), counts checked."""
    splits = []
    for images_path, labels_path in (files[:2], files[2:]):
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise RuntimeError(f"{images_path} ({tuple(images.shape)}) and {labels_path} ({tuple(labels.shape)}) "
                               "do not hold N images and N labels; delete them and fetch them again")
        splits.append(Split(images.unsqueeze(1).contiguous(), labels.long()))
    return splits[0], splits[1]


def _to_split(ds: datasets.VisionDataset) -> Split:
    data = torch.as_tensor(ds.data)  # MNIST: uint8 [N, H, W]; CIFAR: numpy uint8 [N, H, W, C]
    images = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
    return Split(images.contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64))


# ---- loader --------------------------------------------------------------------------------------------

def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed for one (run seed, epoch) pair."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{epoch}".encode()).digest()[:8], "big") >> 1


def random_crop_flip(images: Tensor, generator: torch.Generator, padding: int = CROP_PADDING) -> Tensor:
    """Zero-pad by ``padding``, crop a random window of the original size and flip half of the images
    horizontally; one gather for the whole batch, random draws from ``generator`` on the images' device."""
    b, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (padding,) * 4).flatten(2)
    dy = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=dev)
    flip = torch.rand(b, 1, generator=generator, device=dev) < 0.5
    cols = torch.arange(w, device=dev)
    cols = torch.where(flip, cols.flip(0), cols) + dx  # [b, w]
    rows = torch.arange(h, device=dev) + dy  # [b, h]
    index = (rows[:, :, None] * (w + 2 * padding) + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.gather(2, index).view(b, c, h, w)


class DeviceLoader:
    """Batches of one split, gathered on its device in the order of a permutation seeded by (seed, epoch).

    ``normalize="scale"`` gives pixels / 255 (the paper, SPEC §3); ``"standardize"`` then subtracts ``mean``
    and divides by ``std`` (per channel, [0, 1] units). ``augment`` applies :func:`random_crop_flip` with the
    same generator. ``batches(epoch)`` yields ``(x float32 [B, C, H, W], y int64 [B])``.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
        normalize: str = "scale",
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        augment: bool = False,
    ) -> None:
        n, channels = len(split), split.images.shape[1]
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n:
            raise ValueError(f"batch_size={batch_size!r} must be an integer in [1, {n}] (the split's size)")
        if normalize not in NORMALIZE:
            raise ValueError(f"normalize={normalize!r} is unknown; allowed: {', '.join(NORMALIZE)}")
        dev = split.images.device
        self._mean = self._std = None
        if normalize == "standardize":
            if mean is None or std is None or len(mean) != channels or len(std) != channels or min(std) <= 0:
                raise ValueError(
                    f"normalize='standardize' needs mean and std with {channels} entries (std > 0); "
                    f"got mean={mean!r}, std={std!r}"
                )
            self._mean = torch.tensor(mean, dtype=torch.float32, device=dev).view(1, channels, 1, 1)
            self._std = torch.tensor(std, dtype=torch.float32, device=dev).view(1, channels, 1, 1)
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.shuffle, self.drop_last, self.augment = shuffle, drop_last, augment

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        images, labels = self.split.images, self.split.labels
        g = torch.Generator(device=images.device).manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(len(self.split), generator=g, device=images.device) if self.shuffle else None
        bs = self.batch_size
        for i in range(len(self)):
            sel = slice(i * bs, (i + 1) * bs) if order is None else order[i * bs : (i + 1) * bs]
            x, y = images[sel], labels[sel]
            if self.augment:
                x = random_crop_flip(x, g)
            x = x.float().div_(255)
            if self._mean is not None:
                x = x.sub_(self._mean).div_(self._std)
            yield x, y
