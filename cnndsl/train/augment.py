"""Augmentation: per-sample torchvision.transforms.v2 pipelines, and whole-batch on-device ops.

Both paths draw their randomness from generators seeded by (seed, epoch, index), so an epoch's
augmentation is a pure function of those numbers — independent of worker count, and exactly
reproducible after a mid-epoch resume.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cnndsl.errors import error
from . import config as C

DEVICE_OK = (C.Normalize, C.RandomCrop, C.HFlip, C.Cutout)
ADAPT = (C.Resize, C.Channels)  # deterministic geometry: applied to every split, once per image
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's convert("L")


def mix_seed(*parts: int) -> int:
    """Deterministic 63-bit seed from integers (splitmix-style)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def norm_stats(items: Sequence[Any], mean: Sequence[float], std: Sequence[float]) -> tuple[list, list]:
    """Mean/std to normalize with: an explicit ``normalize`` item wins over the dataset's, whose
    statistics follow the channel conversions (``rgb`` repeats them, ``grayscale`` weighs them)."""
    mean, std = list(mean), list(std)
    for it in items:
        if isinstance(it, C.Channels) and it.type == "rgb" and len(mean) == 1:
            mean, std = mean * 3, std * 3
        elif isinstance(it, C.Channels) and it.type == "grayscale" and len(mean) == 3:
            mean = [sum(w * m for w, m in zip(LUMA, mean))]
            std = [sum(w * s for w, s in zip(LUMA, std))]
    for it in items:
        if isinstance(it, C.Normalize):
            return list(it.mean or mean), list(it.std or std)
    return mean, std


class ToChannels:
    """``grayscale`` (luminance) or ``rgb`` (a gray channel repeated) on C×H×W or N×C×H×W images."""

    def __init__(self, channels: int):
        self.channels = channels

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        c = img.shape[-3]
        if c == self.channels:
            return img
        if self.channels == 3:
            return img.repeat_interleave(3, dim=-3) if c == 1 else img[..., :3, :, :]
        w = torch.tensor(LUMA, dtype=torch.float32, device=img.device).view(3, 1, 1)
        y = (img[..., :3, :, :].float() * w).sum(-3, keepdim=True)
        return y.round().clamp(0, 255).to(torch.uint8) if img.dtype == torch.uint8 else y.to(img.dtype)


def adapt_batch(x: torch.Tensor, items: Sequence[Any]) -> torch.Tensor:
    """The augment list's geometry as evaluation applies it, on a float N×C×H×W batch: resize,
    channel conversion; random_resized_crop(s) resizes to s, random_crop(s) takes the centre."""
    for it in items:
        if isinstance(it, (C.Resize, C.RandomResizedCrop)):
            x = F.interpolate(x, size=_size(it.size), mode="bilinear", antialias=True, align_corners=False)
        elif isinstance(it, C.RandomCrop) and it.size is not None:
            h, w = _size(it.size)
            top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
            if top < 0 or left < 0:
                x = F.pad(x, [max(-left, 0)] * 2 + [max(-top, 0)] * 2)
                top, left = max(top, 0), max(left, 0)
            x = x[..., top:top + h, left:left + w]
        elif isinstance(it, C.Channels):
            x = ToChannels(1 if it.type == "grayscale" else 3)(x)
    return x


def eval_images(images: torch.Tensor, items: Sequence[Any], mean: Sequence[float],
                std: Sequence[float]) -> torch.Tensor:
    """uint8 N×C×H×W → what the network sees at evaluation: the augment list's geometry
    (:func:`adapt_batch`), then normalization. Validation, eval, predict and the device-resident
    training set all go through here."""
    x = adapt_batch(images.float().div_(255), items)
    m, s = norm_stats(items, mean, std)
    x.sub_(torch.tensor(m, device=x.device).view(1, -1, 1, 1)).div_(torch.tensor(s, device=x.device).view(1, -1, 1, 1))
    return x


def _size(s: int | tuple[int, int]) -> list[int]:
    return [s, s] if isinstance(s, int) else list(s)


class SamplePipeline:
    """Per-sample transform: uint8 C x H x W -> normalized float; random ops seeded per sample."""

    def __init__(self, items: Sequence[Any], mean: Sequence[float], std: Sequence[float], *, train: bool):
        from torchvision.transforms import v2

        self.alt_flip = train and any(isinstance(i, C.HFlip) and i.type == "alt_flip" for i in items)
        geo: list = []
        post: list = []
        for it in items:
            if isinstance(it, C.Resize):
                geo.append(v2.Resize(_size(it.size), antialias=True))
            elif isinstance(it, C.Channels):
                geo.append(ToChannels(1 if it.type == "grayscale" else 3))
            elif not train:  # evaluation: the deterministic counterparts of random geometry
                if isinstance(it, C.RandomResizedCrop):
                    geo.append(v2.Resize(_size(it.size), antialias=True))
                elif isinstance(it, C.RandomCrop) and it.size is not None:
                    geo.append(v2.CenterCrop(_size(it.size)))
                continue
            elif isinstance(it, C.RandomCrop):
                size = _size(it.size) if it.size is not None else None
                geo.append(_RandomCropSame(size, it.padding, it.padding_mode))
            elif isinstance(it, C.HFlip) and it.type == "hflip":
                geo.append(v2.RandomHorizontalFlip(it.p))
            elif isinstance(it, C.RandomResizedCrop):
                geo.append(v2.RandomResizedCrop(_size(it.size), scale=it.scale, antialias=True))
            elif isinstance(it, C.ColorJitter):
                geo.append(v2.ColorJitter(it.brightness, it.contrast, it.saturation, it.hue))
            elif isinstance(it, C.RandomErasing):
                post.append(v2.RandomErasing(it.p, scale=it.scale))
            elif isinstance(it, C.Cutout):
                post.append(_Cutout(it.size))
        m, s = norm_stats(items, mean, std)
        self.random = train and bool(geo or post or self.alt_flip)
        self.transform = v2.Compose([*geo, v2.ToDtype(torch.float32, scale=True), v2.Normalize(m, s), *post])

    def __call__(self, img: torch.Tensor, seed: int, epoch: int) -> torch.Tensor:
        if self.alt_flip and epoch % 2 == 1:
            img = img.flip(-1)
        if not self.random:
            return self.transform(img)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(img)


class _RandomCropSame:
    """Random crop after padding; the output size defaults to the input size."""

    def __init__(self, size: list[int] | None, padding: int, mode: str):
        self.size, self.padding = size, padding
        self.mode = {"edge": "replicate"}.get(mode, mode)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = self.size or list(img.shape[-2:])
        if self.padding:
            x = img.unsqueeze(0)
            x = F.pad(x.float() if self.mode != "constant" else x, [self.padding] * 4, mode=self.mode)
            img = x.squeeze(0).to(img.dtype)
        top = int(torch.randint(0, img.shape[-2] - h + 1, ()).item())
        left = int(torch.randint(0, img.shape[-1] - w + 1, ()).item())
        return img[..., top:top + h, left:left + w]


class _Cutout:
    """Zero a random size x size square (clipped at the borders)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy, cx = int(torch.randint(0, h, ()).item()), int(torch.randint(0, w, ()).item())
        y0, x0 = max(cy - self.size // 2, 0), max(cx - self.size // 2, 0)
        img = img.clone()
        img[..., y0:y0 + self.size, x0:x0 + self.size] = 0
        return img


# ---------------------------------------------------------------------------------- on device

def check_device_ok(items: Sequence[Any]) -> bool:
    """Whether every augmentation can run as a whole-batch device op (resize and channel
    conversions are applied once, when the data is put on the device)."""
    return all(isinstance(i, DEVICE_OK + ADAPT) and (not isinstance(i, C.RandomCrop) or i.size is None)
               for i in items)


class BatchAugment:
    """Whole-batch augmentation on the device: translate (pre-padded), flip, alternating flip, cutout."""

    def __init__(self, items: Sequence[Any], *, seed: int):
        bad = [i.type for i in items if not isinstance(i, DEVICE_OK + ADAPT)]
        if bad:
            raise error(f"augmentation(s) {', '.join(bad)} cannot run in the device-resident loader",
                        hint="use `loader: dataloader`, or only normalize/random_crop/translate/hflip/"
                             "alt_flip/cutout/resize/grayscale/rgb")
        self.pad = max([i.padding for i in items if isinstance(i, C.RandomCrop)], default=0)
        self.pad_mode = next((i.padding_mode for i in items if isinstance(i, C.RandomCrop)), "reflect")
        self.flip_p = next((i.p for i in items if isinstance(i, C.HFlip) and i.type == "hflip"), 0.0)
        self.alt_flip = any(isinstance(i, C.HFlip) and i.type == "alt_flip" for i in items)
        self.cutout = next((i.size for i in items if isinstance(i, C.Cutout)), 0)
        self.seed = seed

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Once per dataset: pad for translation (the stored tensor is the padded one)."""
        if self.pad:
            mode = {"edge": "replicate"}.get(self.pad_mode, self.pad_mode)
            x = F.pad(x, [self.pad] * 4, mode=mode)
        return x

    def base_flip(self, n: int, device: torch.device) -> torch.Tensor | None:
        """alt_flip: a fixed random half of the images starts flipped (airbench)."""
        if not self.alt_flip:
            return None
        g = torch.Generator().manual_seed(mix_seed(self.seed, 0xF11F))
        return (torch.rand(n, generator=g) < 0.5).to(device)

    def __call__(self, x: torch.Tensor, idx: torch.Tensor, epoch: int, batch: int,
                 base_flip: torch.Tensor | None) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        g = torch.Generator(device=dev).manual_seed(mix_seed(self.seed, epoch, batch))
        if self.pad:
            x = batch_crop(x, self.pad, g)
        flip = None
        if self.flip_p > 0:
            flip = torch.rand(n, device=dev, generator=g) < self.flip_p
        if base_flip is not None:
            alt = base_flip[idx] ^ bool(epoch % 2)
            flip = alt if flip is None else flip ^ alt
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if self.cutout:
            x = batch_cutout(x, self.cutout, g)
        return x


def batch_crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels per image, from an input padded by ``pad``."""
    n, c, hp, wp = x.shape
    h, w = hp - 2 * pad, wp - 2 * pad
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=g)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=g)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None].expand(n, c, h, wp)
    x = x.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :].expand(n, c, h, w)
    return x.gather(3, cols)


def batch_cutout(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Zero one size x size square per image at a random centre."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), device=x.device, generator=g)
    cx = torch.randint(0, w, (n, 1, 1), device=x.device, generator=g)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    y0, x0 = cy - size // 2, cx - size // 2
    mask = (ys >= y0) & (ys < y0 + size) & (xs >= x0) & (xs < x0 + size)
    return x.masked_fill(mask.unsqueeze(1), 0.0)


def mix_batch(x: torch.Tensor, y: torch.Tensor, num_classes: int, mixup: float, cutmix: float,
              seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix (one per batch when both are on); returns soft targets N x K."""
    g = torch.Generator().manual_seed(seed)
    use_cutmix = cutmix > 0 and (mixup <= 0 or torch.rand((), generator=g).item() < 0.5)
    alpha = cutmix if use_cutmix else mixup
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=g).to(x.device)
    target = F.one_hot(y, num_classes).to(x.dtype if x.is_floating_point() else torch.float32)
    if use_cutmix:
        h, w = x.shape[-2:]
        rh, rw = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
        cy, cx = int(torch.randint(0, h, (), generator=g)), int(torch.randint(0, w, (), generator=g))
        y0, y1 = max(cy - rh // 2, 0), min(cy + rh // 2, h)
        x0, x1 = max(cx - rw // 2, 0), min(cx + rw // 2, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        x = lam * x + (1 - lam) * x[perm]
    return x, lam * target + (1 - lam) * target[perm]


def tta_logits(model: torch.nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Test-time augmentation: flip-average, optionally with +-1 px translations (airbench)."""
    def first(o: Any) -> torch.Tensor:
        return o[0] if isinstance(o, (tuple, list)) else o

    def flip_avg(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * (first(model(t)) + first(model(t.flip(-1))))
    if mode == "none":
        return first(model(x))
    out = flip_avg(x)
    if mode == "flip_translate":
        h, w = x.shape[-2:]
        p = F.pad(x, [1] * 4, mode="reflect")
        shifted = 0.5 * (flip_avg(p[..., 0:h, 0:w]) + flip_avg(p[..., 2:h + 2, 2:w + 2]))
        out = 0.5 * out + 0.5 * shifted
    return out
