"""Two loading paths with one interface: ``loader.epoch(epoch, start_batch)`` yields (x, y) on device.

- :class:`DataLoaderPath`: a torch DataLoader (workers, pinned memory, persistent workers,
  non-blocking copies) running per-sample v2 transforms.
- :class:`DeviceLoader`: the whole dataset lives on the device, normalized (and pre-padded) once;
  every batch is augmented as a whole there (airbench).

Both shuffle with a permutation seeded by (seed, epoch), so the position inside an epoch is all
a checkpoint needs to resume exactly; under DDP each rank takes a strided share of it.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import torch

from . import augment as A
from .data import Split, read_image


class EpochSampler:
    """Batches of indices for one epoch; shuffled by (seed, epoch), sharded by rank."""

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, drop_last: bool, seed: int,
                 rank: int = 0, world: int = 1, pad: bool = True):
        self.n, self.bs, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world, self.pad = seed, rank, world, pad

    def indices(self, epoch: int) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(A.mix_seed(self.seed, epoch, 0x5A3))
            perm = torch.randperm(self.n, generator=g)
        else:
            perm = torch.arange(self.n)
        if self.world > 1:
            if self.pad:  # equal shares: repeat the head (DistributedSampler's convention)
                total = math.ceil(self.n / self.world) * self.world
                perm = torch.cat([perm, perm[: total - self.n]])
            perm = perm[self.rank::self.world]
        return perm

    def __len__(self) -> int:
        m = len(self.indices(0)) if self.world > 1 else self.n
        return m // self.bs if self.drop_last else math.ceil(m / self.bs)

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        idx = self.indices(epoch)
        for b in range(start, len(self)):
            yield idx[b * self.bs:(b + 1) * self.bs]


class _SampleDataset(torch.utils.data.Dataset):
    """Indexed by (epoch, i): the epoch travels with the index so persistent workers see it."""

    def __init__(self, split: Split, pipeline: A.SamplePipeline, seed: int):
        self.split, self.pipeline, self.seed = split, pipeline, seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = key
        s = self.split
        img = s.images[i] if s.images is not None else read_image(s.files[i], s.size, s.channels)
        return self.pipeline(img, A.mix_seed(self.seed, epoch, i), epoch), s.labels[i]


class _BatchSampler:
    def __init__(self, sampler: EpochSampler):
        self.sampler, self.epoch, self.start = sampler, 0, 0

    def __len__(self) -> int:
        return len(self.sampler) - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for b in self.sampler.batches(self.epoch, self.start):
            yield [(self.epoch, i) for i in b.tolist()]


class DataLoaderPath:
    """Standard DataLoader path."""

    kind = "dataloader"

    def __init__(self, split: Split, pipeline: A.SamplePipeline, sampler: EpochSampler, *,
                 device: torch.device, num_workers: int, channels_last: bool, seed: int):
        self.sampler, self.device, self.channels_last = sampler, device, channels_last
        self.batch_sampler = _BatchSampler(sampler)
        self.loader = torch.utils.data.DataLoader(
            _SampleDataset(split, pipeline, seed), batch_sampler=self.batch_sampler,
            num_workers=num_workers, pin_memory=device.type == "cuda",
            persistent_workers=num_workers > 0,
            generator=torch.Generator().manual_seed(seed))  # worker seeds: not from the global RNG

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.batch_sampler.epoch, self.batch_sampler.start = epoch, start
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


class DeviceLoader:
    """Device-resident dataset with whole-batch augmentation."""

    kind = "device"

    def __init__(self, split: Split, items: Sequence[Any], mean: Sequence[float], std: Sequence[float],
                 sampler: EpochSampler, *, device: torch.device, train: bool, channels_last: bool,
                 seed: int):
        assert split.images is not None
        self.sampler, self.device, self.channels_last = sampler, device, channels_last
        x = A.eval_images(split.images.to(device), items, mean, std)  # resize, channels, normalize
        self.aug = A.BatchAugment(items if train else [], seed=seed)
        self.images = self.aug.prepare(x)
        self.labels = split.labels.to(device)
        self.base_flip = self.aug.base_flip(len(split), device)

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for b, idx in enumerate(self.sampler.batches(epoch, start), start):
            idx = idx.to(self.device)
            x = self.aug(self.images[idx], idx, epoch, b, self.base_flip)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


def fits_on_device(split: Split, device: torch.device, fraction: float = 0.25, items: Sequence[Any] = ()) -> bool:
    """Whether the float copy of a split (after the augment list's resizing and channel
    conversions) takes at most ``fraction`` of the device's free memory."""
    if split.images is None:
        return False
    from .preflight import geometry

    n, c, h, w = split.images.shape
    c2, (h2, w2) = geometry(items, c, (h, w))
    need = n * max(c, c2 or c) * max(h * w, h2 * w2) * 4 * 1.3
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return need <= fraction * free
    return need <= 4 * 2**30  # host memory: up to 4 GiB


def make_loader(split: Split, items: Sequence[Any], mean: Sequence[float], std: Sequence[float], *,
                kind: str, batch_size: int, train: bool, drop_last: bool, seed: int, device: torch.device,
                num_workers: int = 0, channels_last: bool = False, rank: int = 0, world: int = 1):
    """Build a train or eval loader; ``kind`` is auto, dataloader or device."""
    sampler = EpochSampler(len(split), batch_size, shuffle=train, drop_last=drop_last and train,
                           seed=seed, rank=rank, world=world, pad=train)
    if kind == "auto":
        ok = A.check_device_ok(items if train else [])
        kind = "device" if ok and fits_on_device(split, device, items=items) else "dataloader"
    if kind == "device":
        if split.images is None:
            from cnndsl.errors import error
            raise error("the device-resident loader needs an in-memory dataset",
                        hint="use `loader: dataloader` for image folders")
        if device.type == "cpu":  # `loader: device` asked for explicitly: the float copy must fit
            from .budget import check_alloc
            check_alloc(split.images.numel() * 4 * 2, f"the device-resident float copy of {len(split):,} images",
                        hint="use `loader: dataloader`")
        return DeviceLoader(split, items, mean, std, sampler, device=device, train=train,
                            channels_last=channels_last, seed=seed)
    pipe = A.SamplePipeline(items, mean, std, train=train)
    return DataLoaderPath(split, pipe, sampler, device=device, num_workers=num_workers,
                          channels_last=channels_last, seed=seed)
