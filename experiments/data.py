"""Datasets kept on the training device as uint8 tensors, and a seeded device-side batch loader.

SPEC §3 (the paper's data: MNIST, CIFAR-10, CIFAR-100, pixels / 255, no augmentation) and §5 (no network
here: the torchvision path is kept for users and tested on small files in the real on-disk formats; the
10,000 real digits of ``assets/mnist-10k`` stand in for MNIST). Issue 5, "Data".

Every split is read once, converted to ``uint8 [N, C, H, W]`` images and ``int64 [N]`` labels and moved to the
device; batches are gathered from it by a device-side permutation seeded by ``(seed, epoch)``, so resuming at
epoch ``e`` replays exactly the order an uninterrupted run would have used.
"""

from __future__ import annotations

import functools
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

from experiments.errors import Refusal

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
# What each idx file holds (the official counts; SPEC §3, §5): a file that holds anything else is not that file.
IDX_SHAPES = {
    "mnist": {"train-images-idx3-ubyte": (60_000, 28, 28), "train-labels-idx1-ubyte": (60_000,),
              "t10k-images-idx3-ubyte": (10_000, 28, 28), "t10k-labels-idx1-ubyte": (10_000,)},
    "fashion_mnist": {"train-images-idx3-ubyte": (60_000, 28, 28), "train-labels-idx1-ubyte": (60_000,),
                      "t10k-images-idx3-ubyte": (10_000, 28, 28), "t10k-labels-idx1-ubyte": (10_000,)},
    "mnist_subset": {"images-idx3-ubyte": (10_000, 28, 28), "labels-idx1-ubyte": (10_000,)},
}
IDX_CLASSES = 10  # every MNIST-format dataset here: labels 0-9


class DataMissing(Refusal, FileNotFoundError):
    """A dataset's files are not where the run looks for them (offline, ``download=False``, a failed download)."""


class DataDamaged(Refusal, RuntimeError):
    """A dataset's file is corrupt or truncated, or not the file it claims to be (another dataset's, other counts)."""


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

    Missing files (offline, or ``download=False``) raise :class:`DataMissing` naming the folder and the files
    to put there; a corrupt, truncated or wrong file (:func:`damaged_data`) raises :class:`DataDamaged` naming it.
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
        raise DataDamaged(f"{path} is corrupt or truncated ({err}); delete it and fetch it again") from err


def _parse_idx(data: bytes, path: Path) -> torch.Tensor:
    """A uint8 idx tensor (magic 0x000008nd, nd big-endian uint32 sizes, then the bytes), size-checked."""
    magic = int.from_bytes(data[:4], "big")
    nd = magic & 0xFF
    if len(data) < 4 or magic >> 8 != 0x08 or not 1 <= nd <= 3 or len(data) < 4 + 4 * nd:
        raise DataDamaged(f"{path} is not a uint8 idx file (magic {magic:#010x}); delete it and fetch it again")
    dims = struct.unpack(f">{nd}I", data[4 : 4 + 4 * nd])
    body = data[4 + 4 * nd :]
    if len(body) != math.prod(dims):
        raise DataDamaged(
            f"{path} is corrupt or truncated: its header promises {dims} = {math.prod(dims)} bytes "
            f"but {len(body)} follow; delete it and fetch it again"
        )
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(dims)


def read_idx(path: str | Path) -> torch.Tensor:
    """Read a uint8 idx file (``.gz`` or plain)."""
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


def _shape_text(shape: tuple[int, ...]) -> str:
    count, *image = shape
    return f"{count:,} images of {'x'.join(map(str, image))}" if image else f"{count:,} labels"


def read_checked_idx(path: Path, name: str, stem: str) -> torch.Tensor:
    """:func:`read_idx`, refused (:class:`DataDamaged`) unless the file holds what ``name``'s file ``stem`` holds
    (:data:`IDX_SHAPES`: the official counts and 28x28 images; labels below :data:`IDX_CLASSES`)."""
    array = read_idx(path)
    expected = IDX_SHAPES[name][stem]
    if tuple(array.shape) != expected:
        raise DataDamaged(
            f"{path} holds {_shape_text(tuple(array.shape))}, but {name}'s {stem} holds {_shape_text(expected)}, "
            f"so it is not that file (another dataset, or a subset of one); point data_dir (or RBO_DATA) at "
            f"{name}'s files")
    if array.ndim == 1 and array.numel() and int(array.max()) >= IDX_CLASSES:
        raise DataDamaged(f"{path} holds label {int(array.max())}, but {name}'s labels are 0-{IDX_CLASSES - 1}, "
                          f"so it is not {name}'s {stem}; delete it and fetch it again")
    return array


def _mnist_subset() -> tuple[Split, Split]:
    images, labels = (read_checked_idx(ASSETS / f"{stem}.gz", "mnist_subset", stem)
                      for stem in IDX_SHAPES["mnist_subset"])
    n = SUBSET_TRAIN
    return Split(images[:n].unsqueeze(1), labels[:n].long()), Split(images[n:].unsqueeze(1), labels[n:].long())


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


def official_md5(name: str) -> dict[str, str]:
    """File name -> MD5 of the official file, from torchvision's tables: the four ``.gz`` files of MNIST and
    Fashion-MNIST; CIFAR's archive (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``) and every file
    extracted from it. Empty for the suite's own sets (``mnist_subset``, ``synthetic``)."""
    if name not in _TORCHVISION:
        return {}
    cls = _TORCHVISION[name][0]
    if issubclass(cls, datasets.MNIST):
        return dict(cls.resources)
    return {cls.filename: cls.tgz_md5, **dict(cls.train_list + cls.test_list), cls.meta["filename"]: cls.meta["md5"]}


@functools.cache
def _md5(path: str, size: int, mtime_ns: int) -> str:
    """MD5 of a file, computed once per (path, size, modification time): a changed file is hashed again."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    stat = path.stat()
    return _md5(str(path), stat.st_size, stat.st_mtime_ns)


def _owner(md5: str) -> str | None:
    """The dataset whose official file (or, for ``mnist_subset``, shipped file) has this MD5; None if unknown."""
    for name in _TORCHVISION:
        if md5 in official_md5(name).values():
            return name
    subset = {file_md5(ASSETS / f"{stem}.gz") for stem in IDX_SHAPES["mnist_subset"]}
    return "mnist_subset" if md5 in subset else None


@functools.cache
def _idx_problem(path: str, size: int, mtime_ns: int, name: str, stem: str) -> str | None:
    """:func:`read_checked_idx`'s refusal of this file, or None; read once per (path, size, modification time)."""
    try:
        read_checked_idx(Path(path), name, stem)
    except DataDamaged as err:
        return str(err)
    return None


def _idx_file_problem(name: str, stem: str, path: Path) -> str | None:
    """Why ``path`` is not ``name``'s idx file ``stem``, or None. An official ``.gz`` passes on its MD5 alone and
    another dataset's is refused on it; any other file (recompressed, as Debian's, or plain) is read whole and
    checked (:func:`read_checked_idx`: header, counts, image size, labels; gzip's CRC finds a corrupt one)."""
    if path.suffix == ".gz":
        md5 = file_md5(path)
        if official_md5(name).get(path.name) == md5:
            return None
        owner = _owner(md5)
        if owner not in (None, name):
            return (f"{path} is {owner}'s file (by its MD5), but dataset={name!r} was asked for; point data_dir "
                    f"(or RBO_DATA) at {name}'s files")
    stat = path.stat()
    return _idx_problem(str(path), stat.st_size, stat.st_mtime_ns, name, stem)


def _cifar_problems(name: str, root: Path) -> list[str]:
    """Every extracted CIFAR file that is there but not the official one (MD5), and the archive while files are
    missing (``download=True`` would extract it) if it is not the official one."""
    cls = _TORCHVISION[name][0]
    folder, files = _expected_files(cls, root)
    md5 = official_md5(name)
    present = [folder / f for f in files if (folder / f).is_file()]
    if len(present) < len(files) and (root / cls.filename).is_file():
        present.append(root / cls.filename)
    return [f"{path} is corrupt or truncated (MD5 {file_md5(path)}, not the official {md5[path.name]}); delete it "
            "and fetch it again" for path in present if file_md5(path) != md5[path.name]]


def damaged_data(name: str, data_dir: str | Path | None = None) -> str | None:
    """Pre-flight: None when every file of ``name`` that is on disk is what it claims to be, else one message
    naming each bad file and what to do (missing files are :func:`missing_data`'s). MNIST-format files:
    :func:`_idx_file_problem` (the shipped ``mnist_subset`` too); CIFAR: :func:`_cifar_problems`. Each file is
    hashed or read once per process while its size and modification time stay the same."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if name == "mnist_subset":
        problems = [_idx_file_problem(name, stem, ASSETS / f"{stem}.gz") for stem in IDX_SHAPES[name]]
    elif name in ("mnist", "fashion_mnist"):
        files = find_idx_files(name, root) or []
        problems = [_idx_file_problem(name, stem, path) for stem, path in zip(IDX_STEMS, files, strict=False)]
    elif name in ("cifar10", "cifar100"):
        problems = _cifar_problems(name, root)
    else:
        return None
    problems = [p for p in problems if p is not None]
    return "; ".join(problems) if problems else None


def idx_folders(name: str, root: Path) -> list[Path]:
    """Where the four idx files of an MNIST-format dataset are looked for, in order: torchvision's layout
    (``<root>/<Class>/raw``), a flat folder (``<root>/<Class>``, then ``<root>`` itself), then the folder a
    system package installs (:data:`SYSTEM_IDX_FOLDERS`)."""
    cls = _TORCHVISION[name][0]
    return [root / cls.__name__ / "raw", root / cls.__name__, root, *SYSTEM_IDX_FOLDERS.get(name, ())]


def find_idx_files(name: str, root: Path) -> list[Path] | None:
    """The four idx files (plain or ``.gz``, in :data:`IDX_STEMS` order) from the first folder of
    :func:`idx_folders` that holds all four, else None. Whether they are ``name``'s is :func:`damaged_data`'s
    question: wrong files in an earlier folder are refused, never passed over for a later one."""
    for folder in idx_folders(name, root):
        found = [next((p for p in (folder / s, folder / f"{s}.gz") if p.is_file()), None) for s in IDX_STEMS]
        if all(found):
            return found
    return None


def _expected_files(cls: type, root: Path) -> tuple[Path, list[str]]:
    """The folder torchvision reads and the files it needs there."""
    if issubclass(cls, datasets.MNIST):
        return root / cls.__name__ / "raw", list(IDX_STEMS)
    return root / cls.base_folder, [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]


def _missing(name: str, root: Path) -> list[str]:
    """Files of ``name`` still missing under ``root`` (an MNIST-format set counts as present in any layout of
    :func:`idx_folders`)."""
    cls = _TORCHVISION[name][0]
    folder, files = _expected_files(cls, root)
    if issubclass(cls, datasets.MNIST):
        return [] if find_idx_files(name, root) else files
    return [f for f in files if not (folder / f).is_file()]


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
        f"{', '.join(str(folder / f) for f in files)} -- {source}; or run once with network access "
        f"and download=True (data_dir={root}, or set RBO_DATA)."
    )


def missing_data(name: str, data_dir: str | Path | None = None, download: bool = False) -> str | None:
    """Pre-flight: None when ``name`` can be loaded from ``data_dir`` (default :func:`default_data_dir`)
    without a download (always for ``mnist_subset`` and ``synthetic``), else the message naming what is
    missing and where to put it (``download`` only changes the wording). Whether the files there are right is
    :func:`damaged_data`'s question."""
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
    return [folder / f for f in files]


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _torchvision(name: str, root: Path, download: bool) -> tuple[Split, Split]:
    """Check the files, download only when some are missing, refuse damaged or wrong ones
    (:func:`damaged_data`), then read both splits (MNIST formats with :func:`read_checked_idx` from whichever
    layout holds them, CIFAR with torchvision)."""
    cls = _TORCHVISION[name][0]
    missing = _missing(name, root)
    if missing and not download:
        raise DataMissing(_missing_message(name, root, missing, "download=False"))
    if missing:
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                cls(root, train=True, download=True)
        except Exception as err:  # urllib, socket, md5 or archive errors: all mean "the files are not here"
            why = "download failed: " + " ".join(str(err).split())  # torchvision's text spans lines
            raise DataMissing(_missing_message(name, root, missing, why)) from err
    problem = damaged_data(name, root)
    if problem is not None:
        raise DataDamaged(problem)
    if issubclass(cls, datasets.MNIST):
        train_images, train_labels, test_images, test_labels = (
            read_checked_idx(path, name, stem) for stem, path in zip(IDX_STEMS, find_idx_files(name, root),
                                                                      strict=True))
        return (Split(train_images.unsqueeze(1).contiguous(), train_labels.long()),
                Split(test_images.unsqueeze(1).contiguous(), test_labels.long()))
    try:
        return _to_split(cls(root, train=True)), _to_split(cls(root, train=False))
    except (RuntimeError, ValueError, TypeError, KeyError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise DataDamaged(f"torchvision could not read {cls.__name__} from {_expected_files(cls, root)[0]}: "
                          f"{err}") from err


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
