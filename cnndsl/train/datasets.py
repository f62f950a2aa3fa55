"""What is known about a dataset without reading it: image channels and size, classes, sizes.

Torch-free, so ``cnndsl check`` can compare the data with the network: mnist is 1×28×28 with 10
classes, cifar10 3×32×32 — from the name alone. :func:`info_of_loaded` gives the same record for
data that was read (image folders and synthetic data are only fully known then).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from . import config as C


@dataclass(frozen=True)
class DataInfo:
    """The facts about a dataset the network must fit; None where unknown until the data is read."""

    name: str
    channels: int | None
    size: tuple[int, int] | None  # H, W of the stored images
    classes: int | None
    per_pixel: bool = False  # segmentation: one class per pixel
    num_train: int | None = None  # at most this many training images (per process)
    loaded: bool = False  # from data that was read, not from its name

    @property
    def shape_text(self) -> str:
        c = "?" if self.channels is None else str(self.channels)
        return f"{c}×{self.size[0]}×{self.size[1]}" if self.size else f"{c}×?×?"


# name: (C, H, W), classes, training images
KNOWN: dict[str, tuple[tuple[int, int, int], int, int]] = {
    "cifar10": ((3, 32, 32), 10, 50_000),
    "cifar100": ((3, 32, 32), 100, 50_000),
    "mnist": ((1, 28, 28), 10, 60_000),
    "fashionmnist": ((1, 28, 28), 10, 60_000),
    "svhn": ((3, 32, 32), 10, 73_257),
    "digits": ((1, 8, 8), 10, 1_797),
    "mnist5k": ((1, 28, 28), 10, 5_000),
}


def _pair(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _train_share(n: int, fraction: float, classes: int) -> int:
    """An upper bound of the training images left after a stratified split (rounding per class)."""
    return n - int(n * fraction) + (classes if fraction else 0)


def _class_folders(root: str) -> int | None:
    """Number of class sub-folders of an image folder (None when it cannot be listed cheaply)."""
    try:
        with os.scandir(os.path.expanduser(root)) as it:
            return sum(1 for e in it if e.is_dir()) or None
    except OSError:
        return None


def info_of(data: Any, net_shape: tuple[int, ...] | None = None, net_classes: int | None = None) -> DataInfo:
    """The :class:`DataInfo` of a validated ``train.data`` value, from its name and arguments."""
    kind = data.type
    if kind in KNOWN:
        (c, h, w), classes, n = KNOWN[kind]
        share = _train_share(n, getattr(data, "val_fraction", 0.0), classes)
        per_class = getattr(data, "per_class", None)
        return DataInfo(kind, c, (h, w), classes, num_train=min(share, per_class * classes) if per_class else share)
    if isinstance(data, C.SyntheticData):
        shape = tuple(data.shape) if data.shape else (tuple(net_shape) if net_shape and len(net_shape) == 3 else None)
        return DataInfo("synthetic", shape[0] if shape else 3, (shape[1], shape[2]) if shape else (32, 32),
                        data.num_classes or net_classes or 10, per_pixel=data.task == "segmentation",
                        num_train=data.num_train)
    if isinstance(data, C.ImageFolderData):
        return DataInfo("imagefolder", data.channels, _pair(data.size), _class_folders(data.root))
    return DataInfo(kind, None, None, None)


def info_of_loaded(data: Any) -> DataInfo:
    """The :class:`DataInfo` of a loaded :class:`cnndsl.train.data.Data`."""
    c, h, w = data.shape
    return DataInfo(data.name, c, (h, w), data.num_classes, per_pixel=data.train.labels.dim() == 3,
                    num_train=len(data.train), loaded=True)
