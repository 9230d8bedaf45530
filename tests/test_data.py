"""experiments.data: real on-disk formats (tiny files written here), errors, splits, the device loader."""

from __future__ import annotations

import copy
import gzip
import hashlib
import pickle
import shutil
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision import datasets

from experiments import data
from experiments.data import DATASETS, DeviceLoader, Split, dataset_shape, default_data_dir, load_dataset

SUBSET_TRAIN_COUNTS = [823, 914, 792, 826, 784, 681, 798, 848, 755, 779]  # assets/mnist-10k/README.md
SUBSET_TEST_COUNTS = [178, 213, 199, 206, 196, 182, 216, 222, 189, 199]


@pytest.fixture(autouse=True)
def no_system_datasets(monkeypatch):
    """Tests see only the files they write, not a dataset a system package installed on this machine."""
    monkeypatch.setattr(data, "SYSTEM_IDX_FOLDERS", {})


@pytest.fixture(autouse=True)
def idx_shapes(monkeypatch) -> dict:
    """A copy of the official idx counts, restored after the test: :func:`_write_mnist` makes its small files the
    expected ones (a written file cannot hold 60,000 images in a unit test)."""
    shapes = copy.deepcopy(data.IDX_SHAPES)
    monkeypatch.setattr(data, "IDX_SHAPES", shapes)
    return shapes


# ---- writers for torchvision's on-disk formats --------------------------------------------------------

def _images(n: int, shape: tuple[int, ...], seed: int, offset: int = 0) -> np.ndarray:
    """Random uint8 images whose first two pixels encode their index (offset + i), so splits can be traced."""
    x = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    flat = x.reshape(n, -1)
    flat[:, 0], flat[:, 1] = (np.arange(n) + offset) % 256, (np.arange(n) + offset) // 256
    return x


def _index(images: torch.Tensor) -> torch.Tensor:
    flat = images.flatten(1).long()
    return flat[:, 0] + 256 * flat[:, 1]


def _idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape) + array.tobytes()


def _write_mnist(root: Path, folder: str, n_train: int, n_test: int, gz: bool) -> dict[str, np.ndarray]:
    """The four idx files in ``root/folder`` (``folder`` "MNIST/raw": torchvision's layout; "": flat)."""
    raw = root / folder
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": _images(n_train, (28, 28), 2),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": _images(n_test, (28, 28), 3, offset=1000),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(_idx_bytes(array)))
        else:
            (raw / name).write_bytes(_idx_bytes(array))
        for dataset in ("mnist", "fashion_mnist"):  # these counts are what the test's datasets hold
            data.IDX_SHAPES[dataset][name] = array.shape
    return arrays


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _write_cifar(root: Path, monkeypatch, cls: type, per_file: int = 6) -> dict[str, np.ndarray]:
    """CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``) pickles as the real archives
    hold them (rows of 3072 bytes: R, G, B planes of 32×32), and torchvision's MD5 table pointed at them."""
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    hundred = cls is datasets.CIFAR100
    files = [f for f, _ in cls.train_list + cls.test_list]
    written = {}
    for k, name in enumerate(files):
        n = per_file * (5 if hundred and name == "train" else 1)
        data = _images(n, (3072,), 10 + k, offset=1000 * k)
        labels = np.random.default_rng(k).integers(0, 100 if hundred else 10, n).tolist()
        entry = {"data": data, "filenames": [f"img{i}.png" for i in range(n)]}
        if hundred:
            entry.update(fine_labels=labels, coarse_labels=[y // 5 for y in labels])
        else:
            entry["labels"] = labels
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        written[name] = (data, np.array(labels))
    if hundred:
        meta = {"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": [f"s{i}" for i in range(20)]}
    else:
        meta = {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": per_file, "num_vis": 3072}
    (folder / cls.meta["filename"]).write_bytes(pickle.dumps(meta, protocol=2))
    monkeypatch.setattr(cls, "train_list", [[f, _md5(folder / f)] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, _md5(folder / f)] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / cls.meta["filename"])})
    return written


# ---- loading the real formats --------------------------------------------------------------------------

def test_mnist_idx_gz_through_torchvision(tmp_path):
    arrays = _write_mnist(tmp_path, "MNIST/raw", 40, 10, gz=True)
    b = load_dataset("mnist", data_dir=tmp_path, device="cpu", val_size=8, download=False)
    assert (len(b.train), len(b.val), len(b.test)) == (32, 8, 10)
    assert (b.num_classes, b.in_channels, b.image_size) == (10, 1, 28)
    assert b.train.images.dtype == torch.uint8 and b.train.labels.dtype == torch.int64
    assert torch.equal(b.test.images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert torch.equal(b.test.labels, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())
    idx = torch.cat([_index(b.train.images), _index(b.val.images)])
    assert sorted(idx.tolist()) == list(range(40))  # the validation split is held out of the training set
    labels = torch.from_numpy(arrays["train-labels-idx1-ubyte"]).long()
    assert torch.equal(b.train.labels, labels[_index(b.train.images)])
    pixels = b.train.images.double() / 255
    assert b.mean[0] == pytest.approx(pixels.mean().item(), abs=1e-12)
    assert b.std[0] == pytest.approx(pixels.std(unbiased=False).item(), abs=1e-12)


def test_fashion_mnist_plain_idx_files(tmp_path):
    arrays = _write_mnist(tmp_path, "FashionMNIST/raw", 20, 6, gz=False)
    b = load_dataset("fashion_mnist", data_dir=tmp_path, device="cpu", val_size=0, download=False)
    assert b.val is None
    assert torch.equal(b.train.images[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))


@pytest.mark.parametrize("folder, gz", [("", True), ("", False), ("FashionMNIST", True)])
def test_fashion_mnist_flat_folder(tmp_path, folder, gz):
    arrays = _write_mnist(tmp_path, folder, 12, 4, gz=gz)
    b = load_dataset("fashion_mnist", data_dir=tmp_path, device="cpu", val_size=0, download=False)
    assert torch.equal(b.train.images[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert torch.equal(b.test.labels, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())
    assert not list(tmp_path.rglob("*.tmp")) and len(list(tmp_path.rglob("*ubyte*"))) == 4  # nothing written


def test_fashion_mnist_from_the_debian_folder(tmp_path, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    arrays = _write_mnist(system, "", 10, 3, gz=True)
    monkeypatch.setattr(data, "SYSTEM_IDX_FOLDERS", {"fashion_mnist": (system,)})
    empty = tmp_path / "empty"
    b = load_dataset("fashion_mnist", data_dir=empty, device="cpu", val_size=0, download=False)
    assert torch.equal(b.test.images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert data.missing_data("fashion_mnist", empty) is None
    with pytest.raises(FileNotFoundError, match="MNIST"):  # the Debian folder is Fashion-MNIST's only
        load_dataset("mnist", data_dir=empty, device="cpu", download=False)


def _as_official(monkeypatch, cls: type, folder: Path) -> None:
    """torchvision's MD5 table of ``cls`` pointed at the ``.gz`` files written in ``folder``."""
    monkeypatch.setattr(cls, "resources", [(f, _md5(folder / f)) for f, _ in cls.resources])


def test_another_datasets_files_are_refused(tmp_path, monkeypatch):
    _write_mnist(tmp_path, "", 10, 3, gz=True)
    _as_official(monkeypatch, datasets.MNIST, tmp_path)  # as if these were MNIST's real files
    with pytest.raises(data.DataDamaged, match=r"train-images-idx3-ubyte.gz is mnist's file \(by its MD5\), but "
                                               "dataset='fashion_mnist' was asked for"):
        load_dataset("fashion_mnist", data_dir=tmp_path, device="cpu", download=False)
    assert load_dataset("mnist", data_dir=tmp_path, device="cpu", val_size=0, download=False).test is not None


def test_an_official_file_passes_on_its_md5_alone(tmp_path, monkeypatch, idx_shapes):
    """With the official MD5 a file is not read (here it holds 10 images where the table says 60,000)."""
    _write_mnist(tmp_path, "", 10, 3, gz=True)
    idx_shapes["mnist"]["train-images-idx3-ubyte"] = (60_000, 28, 28)
    assert "holds 10 images of 28x28, but mnist's train-images-idx3-ubyte holds 60,000" in data.damaged_data(
        "mnist", tmp_path)
    _as_official(monkeypatch, datasets.MNIST, tmp_path)
    assert data.damaged_data("mnist", tmp_path) is None


def test_counts_that_are_not_the_datasets_are_refused(tmp_path, idx_shapes):
    """Right format, wrong counts (a subset, another split): each file named, before anything is loaded."""
    _write_mnist(tmp_path, "FashionMNIST/raw", 40, 10, gz=True)
    idx_shapes["fashion_mnist"].update({"train-images-idx3-ubyte": (60_000, 28, 28),
                                        "train-labels-idx1-ubyte": (60_000,)})
    message = data.damaged_data("fashion_mnist", tmp_path)
    raw = tmp_path / "FashionMNIST" / "raw"
    assert message.startswith(f"{raw / 'train-images-idx3-ubyte.gz'} holds 40 images of 28x28, but fashion_mnist's "
                              "train-images-idx3-ubyte holds 60,000 images of 28x28, so it is not that file")
    assert f"{raw / 'train-labels-idx1-ubyte.gz'} holds 40 labels, but fashion_mnist's train-labels" in message
    assert "t10k" not in message  # the test files are right
    with pytest.raises(data.DataDamaged, match="holds 40 images of 28x28"):
        load_dataset("fashion_mnist", data_dir=tmp_path, device="cpu", download=False)


def test_labels_outside_the_ten_classes_are_refused(tmp_path):
    _write_mnist(tmp_path, "", 10, 3, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([1, 2, 12], dtype=np.uint8)))
    assert data.damaged_data("mnist", tmp_path) == (
        f"{tmp_path / 't10k-labels-idx1-ubyte'} holds label 12, but mnist's labels are 0-9, so it is not mnist's "
        "t10k-labels-idx1-ubyte; delete it and fetch it again")


def test_the_shipped_subset_renamed_is_not_fashion_mnist(tmp_path, monkeypatch):
    """The 10,000 shipped digits renamed as Fashion-MNIST's files: refused by their MD5, and by their count (10,000
    training images, not 60,000) when the MD5 is not known."""
    for split in ("train", "t10k"):
        for kind, stem in (("images", "idx3"), ("labels", "idx1")):
            shutil.copy(data.ASSETS / f"{kind}-{stem}-ubyte.gz", tmp_path / f"{split}-{kind}-{stem}-ubyte.gz")
    message = data.damaged_data("fashion_mnist", tmp_path)
    assert message.count("is mnist_subset's file (by its MD5), but dataset='fashion_mnist' was asked for") == 4
    monkeypatch.setattr(data, "_owner", lambda md5: None)
    message = data.damaged_data("fashion_mnist", tmp_path)
    assert message.count("holds 10,000") == 2 and "train-images-idx3-ubyte holds 60,000 images of 28x28" in message
    assert data.damaged_data("mnist_subset") is None  # the subset itself is what it claims


def test_a_file_changed_on_disk_is_checked_again(tmp_path):
    """The MD5 and read checks are cached by (path, size, modification time), never by path alone."""
    _write_mnist(tmp_path, "", 10, 3, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    assert data.damaged_data("mnist", tmp_path) is None and data.file_md5(path) == _md5(path)
    path.write_bytes(gzip.compress(_idx_bytes(np.array([1, 2, 12], dtype=np.uint8))))
    assert data.file_md5(path) == _md5(path) and "holds label 12" in data.damaged_data("mnist", tmp_path)


def test_missing_data_lists_every_layout(tmp_path):
    message = data.missing_data("fashion_mnist", tmp_path)
    for folder in (tmp_path / "FashionMNIST" / "raw", tmp_path / "FashionMNIST", tmp_path):
        assert str(folder) in message
    assert data.missing_data("mnist_subset", tmp_path) is None and data.missing_data("synthetic") is None
    _write_mnist(tmp_path, "FashionMNIST/raw", 4, 2, gz=False)
    assert data.missing_data("fashion_mnist", tmp_path) is None


def test_mismatched_idx_counts_are_named(tmp_path):
    _write_mnist(tmp_path, "", 10, 3, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(RuntimeError, match="t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path, device="cpu", download=False)


@pytest.mark.parametrize("name, cls", [("cifar10", datasets.CIFAR10), ("cifar100", datasets.CIFAR100)])
def test_cifar_pickles_through_torchvision(tmp_path, monkeypatch, name, cls):
    written = _write_cifar(tmp_path, monkeypatch, cls)
    b = load_dataset(name, data_dir=tmp_path, device="cpu", val_size=5, download=False)
    assert (len(b.train), len(b.val), len(b.test)) == (25, 5, 6)
    assert (b.num_classes, b.in_channels, b.image_size) == (100 if name == "cifar100" else 10, 3, 32)
    test_data, test_labels = written[cls.test_list[0][0]]
    assert torch.equal(b.test.images, torch.from_numpy(test_data).view(-1, 3, 32, 32))  # CHW planes, row-major
    assert torch.equal(b.test.labels, torch.from_numpy(test_labels))
    assert len(b.mean) == len(b.std) == 3
    assert b.mean[2] == pytest.approx((b.train.images[:, 2].double() / 255).mean().item(), abs=1e-12)


# ---- missing and damaged files --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, folder, files",
    [
        ("mnist", "MNIST/raw", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
        ("fashion_mnist", "FashionMNIST/raw", ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"]),
        ("cifar10", "cifar-10-batches-py", ["data_batch_1", "data_batch_5", "test_batch", "batches.meta"]),
        ("cifar100", "cifar-100-python", ["train", "test", "meta"]),
    ],
)
def test_missing_files_name_folder_and_files(tmp_path, name, folder, files):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(name, data_dir=tmp_path, device="cpu", download=False)
    message = str(err.value)
    assert str(tmp_path / folder) in message and "download=False" in message
    for f in files:
        assert str(tmp_path / folder / f) in message


def test_failed_download_is_the_missing_files_error(tmp_path, monkeypatch):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(datasets.CIFAR10, "download", offline)
    with pytest.raises(FileNotFoundError, match="download failed") as err:
        load_dataset("cifar10", data_dir=tmp_path, device="cpu", download=True)
    assert "data_batch_1" in str(err.value) and isinstance(err.value.__cause__, URLError)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_mnist_file_is_named(tmp_path, gz):
    _write_mnist(tmp_path, "MNIST/raw", 20, 5, gz=gz)
    path = tmp_path / "MNIST" / "raw" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert data.damaged_data("mnist", tmp_path).startswith(f"{path} is corrupt or truncated")  # the pre-flight
    with pytest.raises(data.DataDamaged, match="corrupt or truncated") as err:
        load_dataset("mnist", data_dir=tmp_path, device="cpu", val_size=0, download=False)
    assert str(path) in str(err.value)


def test_a_corrupt_gz_of_the_right_length_is_found_by_the_preflight(tmp_path):
    """One flipped byte inside the compressed data: gzip's CRC (or the inflater) finds it."""
    _write_mnist(tmp_path, "MNIST/raw", 40, 10, gz=True)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert data.missing_data("mnist", tmp_path) is None  # all four files are there ...
    assert data.damaged_data("mnist", tmp_path).startswith(f"{path} is corrupt or truncated")  # ... one is broken


def test_truncated_cifar_file_is_named(tmp_path, monkeypatch):
    _write_cifar(tmp_path, monkeypatch, datasets.CIFAR10)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:100])
    assert data.damaged_data("cifar10", tmp_path).startswith(f"{path} is corrupt or truncated (MD5 ")
    with pytest.raises(data.DataDamaged, match="corrupt or truncated") as err:
        load_dataset("cifar10", data_dir=tmp_path, device="cpu", val_size=0, download=False)
    assert str(path) in str(err.value)


def test_a_corrupt_cifar_archive_is_found_while_its_files_are_missing(tmp_path, monkeypatch):
    """The archive torchvision would extract (download=True) is checked against its MD5 while files are missing."""
    archive = tmp_path / "cifar-100-python.tar.gz"
    archive.write_bytes(b"not the archive")
    assert data.damaged_data("cifar100", tmp_path) == (
        f"{archive} is corrupt or truncated (MD5 {_md5(archive)}, not the official {datasets.CIFAR100.tgz_md5}); "
        "delete it and fetch it again")
    monkeypatch.setattr(datasets.CIFAR100, "tgz_md5", _md5(archive))
    assert data.damaged_data("cifar100", tmp_path) is None


# ---- mnist_subset, validation split, arguments -----------------------------------------------------------

def test_mnist_subset_real_digits():
    b = load_dataset("mnist_subset", device="cpu", val_size=0)
    assert (len(b.train), len(b.test), b.val) == (8000, 2000, None)
    assert b.train.images.shape == (8000, 1, 28, 28)
    assert torch.bincount(b.train.labels).tolist() == SUBSET_TRAIN_COUNTS
    assert torch.bincount(b.test.labels).tolist() == SUBSET_TEST_COUNTS
    held = load_dataset("mnist_subset", device="cpu", val_size=1000)
    assert (len(held.train), len(held.val)) == (7000, 1000)
    with pytest.raises(ValueError, match=r"val_size=8000 .*7999"):
        load_dataset("mnist_subset", device="cpu", val_size=8000)


def test_validation_split_depends_only_on_val_seed(tmp_path):
    _write_mnist(tmp_path, "MNIST/raw", 40, 5, gz=False)

    def val_index(val_seed: int, global_seed: int) -> list[int]:
        torch.manual_seed(global_seed)  # the run seed must not move the split
        b = load_dataset("mnist", data_dir=tmp_path, device="cpu", val_size=10, val_seed=val_seed, download=False)
        assert not set(_index(b.val.images).tolist()) & set(_index(b.train.images).tolist())
        return _index(b.val.images).tolist()

    assert val_index(0, global_seed=1) == val_index(0, global_seed=2)
    assert val_index(0, global_seed=1) != val_index(1, global_seed=1)


def test_argument_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="allowed: " + ", ".join(DATASETS)):
        load_dataset("imagenet", device="cpu")
    with pytest.raises(ValueError, match="val_size=-1"):
        load_dataset("synthetic", device="cpu", val_size=-1)
    with pytest.raises(ValueError, match="synthetic_shape='svhn'"):
        load_dataset("synthetic", device="cpu", synthetic_shape="svhn")
    with pytest.raises(ValueError, match="synthetic_size"):
        load_dataset("synthetic", device="cpu", synthetic_size=(0, 10))
    monkeypatch.setenv("RBO_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path


# ---- synthetic ----------------------------------------------------------------------------------------

def test_synthetic_is_deterministic_with_both_shapes():
    a = load_dataset("synthetic", device="cpu", val_size=0, synthetic_size=(64, 32))
    again = load_dataset("synthetic", device="cpu", val_size=0, synthetic_size=(64, 32))
    bigger = load_dataset("synthetic", device="cpu", val_size=0, synthetic_size=(128, 32))
    assert a.train.images.shape == (64, 1, 28, 28) and a.num_classes == 10
    assert torch.equal(a.train.images, again.train.images) and torch.equal(a.train.labels, again.train.labels)
    assert torch.equal(a.test.images, bigger.test.images)  # the test split does not depend on the train size
    c = load_dataset("synthetic", device="cpu", val_size=16, synthetic_shape="cifar", synthetic_size=(64, 32))
    assert c.train.images.shape == (48, 3, 32, 32) and (c.in_channels, c.image_size) == (3, 32)


def test_synthetic_is_learnable():
    b = load_dataset("synthetic", device="cpu", val_size=0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DeviceLoader(b.train, 64, seed=0)
    for epoch in range(2):
        for x, y in loader.batches(epoch):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    x, y = next(DeviceLoader(b.test, len(b.test), seed=0, shuffle=False).batches(0))
    assert (model(x).argmax(1) == y).float().mean() > 0.9  # chance: 0.1


# ---- DeviceLoader -------------------------------------------------------------------------------------

def _indexed_split(n: int = 50, shape: tuple[int, ...] = (3, 8, 8)) -> Split:
    return Split(torch.from_numpy(_images(n, shape, 5)), torch.arange(n) % 10)


def _epoch(loader: DeviceLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader.batches(epoch))


def test_loader_order_is_a_function_of_seed_and_epoch():
    split = _indexed_split()
    a, b = DeviceLoader(split, 16, seed=3), DeviceLoader(split, 16, seed=3)
    first = _epoch(a, 2)
    for (xa, ya), (xb, yb) in zip(first, _epoch(b, 2)):  # a fresh loader replays epoch 2 (resume)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    order = torch.cat([_index((x * 255).round().to(torch.uint8)) for x, _ in first])
    assert sorted(order.tolist()) == list(range(50))  # every example exactly once
    other_epoch = torch.cat([y for _, y in _epoch(a, 3)])
    other_seed = torch.cat([y for _, y in _epoch(DeviceLoader(split, 16, seed=4), 2)])
    ys = torch.cat([y for _, y in first])
    assert not torch.equal(ys, other_epoch) and not torch.equal(ys, other_seed)


def test_loader_lengths_and_drop_last():
    split = _indexed_split()
    keep, drop = DeviceLoader(split, 16, seed=0), DeviceLoader(split, 16, seed=0, drop_last=True)
    assert len(keep) == 4 and [len(y) for _, y in keep.batches(0)] == [16, 16, 16, 2]
    assert len(drop) == 3 and [len(y) for _, y in drop.batches(0)] == [16, 16, 16]


def test_loader_scale_and_standardize():
    split = _indexed_split()
    x, y = next(DeviceLoader(split, 50, seed=0, shuffle=False).batches(0))
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, split.images.float() / 255) and torch.equal(y, split.labels)
    b = load_dataset("synthetic", device="cpu", val_size=0, synthetic_shape="cifar", synthetic_size=(256, 8))
    loader = DeviceLoader(b.train, 256, seed=0, normalize="standardize", mean=b.mean, std=b.std)
    x, _ = next(loader.batches(0))
    assert x.mean((0, 2, 3)).abs().max() < 1e-4
    assert (x.std((0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4


def test_augment_is_a_padded_crop_or_flip_of_the_original():
    split = _indexed_split(20)
    loader = DeviceLoader(split, 20, seed=1, shuffle=False, augment=True)
    x, _ = next(loader.batches(0))
    again, _ = next(loader.batches(0))
    assert x.shape == (20, 3, 8, 8) and x.dtype == torch.float32 and torch.equal(x, again)
    out = (x * 255).round().to(torch.uint8)
    assert not torch.equal(out, split.images)
    for original, augmented in zip(split.images, out):
        padded = F.pad(original, (4, 4, 4, 4))
        crops = [padded[:, dy : dy + 8, dx : dx + 8] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(augmented, c) or torch.equal(augmented, c.flip(2)) for c in crops)


def test_loader_argument_errors():
    split = _indexed_split()
    with pytest.raises(ValueError, match=r"batch_size=0 .*\[1, 50\]"):
        DeviceLoader(split, 0, seed=0)
    with pytest.raises(ValueError, match=r"batch_size=51"):
        DeviceLoader(split, 51, seed=0)
    with pytest.raises(ValueError, match="normalize='zca'.*scale, standardize"):
        DeviceLoader(split, 8, seed=0, normalize="zca")
    with pytest.raises(ValueError, match="mean and std with 3 entries"):
        DeviceLoader(split, 8, seed=0, normalize="standardize", mean=(0.5,), std=(0.2,))


@pytest.mark.parametrize("name, shape", [("mnist_subset", "mnist"), ("synthetic", "mnist"), ("synthetic", "cifar")])
def test_dataset_shape_matches_the_loaded_data(name, shape):
    """What plan.py uses to size runs without loading data agrees with what load_dataset gives."""
    data = load_dataset(name, val_size=0, synthetic_shape=shape, synthetic_size=(64, 16))
    assert dataset_shape(name, synthetic_shape=shape, synthetic_size=(64, 16)) == (
        data.in_channels, data.image_size, data.num_classes, len(data.train))


def test_dataset_shape_of_the_torchvision_sets():
    assert dataset_shape("mnist") == (1, 28, 10, 60_000)
    assert dataset_shape("cifar100") == (3, 32, 100, 50_000)


def test_data_files_are_the_files_read(tmp_path, monkeypatch):
    _write_mnist(tmp_path, "FashionMNIST", 4, 2, gz=True)  # a flat folder
    files = data.data_files("fashion_mnist", tmp_path)
    assert [f.name for f in files] == [f"{s}.gz" for s in data.IDX_STEMS]
    assert data.data_files("mnist", tmp_path) == []  # absent
    assert data.data_files("synthetic") == [] and len(data.data_files("mnist_subset")) == 2
