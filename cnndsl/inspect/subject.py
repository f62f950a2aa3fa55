"""What the inspect commands look at: a spec's network with its weights, and one input image.

Weights come from ``--checkpoint`` (a checkpoint file or a run directory; a run directory also
supplies the ``--set`` values, class names and normalisation it was trained with) or are the
random initial weights, which every picture then says. The input is ``--image`` (converted to the
network's channels and size, with a note saying so) or ``--sample N`` from the spec's dataset.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import error
from .images import read_for_network

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass
class Subject:
    """A built network in eval mode, what its weights are, and how its inputs are normalised."""

    spec: Any
    analysis: Any
    model: nn.Module
    weights: str                     # for captions: "trained weights (runs/x/last.pt)" or "random initial weights"
    mean: list[float]
    std: list[float]
    classes: list[str] | None = None
    trained: bool = False

    @property
    def name(self) -> str:
        return self.analysis.name

    def class_name(self, k: int) -> str:
        return self.classes[k] if self.classes and k < len(self.classes) else str(k)


@dataclass
class Input:
    """One input: the normalised batch of one, the picture to draw under overlays, a caption."""

    x: torch.Tensor                  # 1 x C x H x W, normalised
    picture: np.ndarray              # H x W x C float in [0, 1]
    caption: str
    label: int | None = None


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _run_dir_of(checkpoint: str | None) -> Path | None:
    if not checkpoint:
        return None
    p = Path(checkpoint)
    for d in (p, p.parent, p.parent.parent):
        if d.is_dir() and (d / "data.json").is_file():
            return d
    return None


def _meta(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        meta = json.loads((run_dir / "data.json").read_text())
    except (OSError, ValueError) as exc:
        raise error(f"--checkpoint: cannot read {run_dir / 'data.json'}: {exc}", None,
                    "the run directory is damaged; pass the checkpoint file and --set values yourself") from None
    return meta if isinstance(meta, dict) else {}


def _train_config(spec: Any, overrides: dict[str, Any]) -> Any:
    """The spec's train config, or None when it has none (inspection needs no dataset)."""
    if not getattr(spec, "train", None):
        return None
    from ..train.run import config_of

    return config_of(spec, overrides)


def _stats(cfg: Any, meta: dict[str, Any], channels: int) -> tuple[list[float], list[float], list[str] | None]:
    from ..train.data import STATS

    classes = meta.get("classes")
    if meta.get("mean") and meta.get("std"):
        mean, std = meta["mean"], meta["std"]
    elif cfg is not None and cfg.data.type in STATS:
        mean, std = STATS[cfg.data.type]
        if cfg.data.type in ("mnist", "mnist5k", "digits"):
            classes = classes or [str(i) for i in range(10)]
    else:
        mean, std = IMAGENET_STATS if channels == 3 else ((0.5,) * channels, (0.5,) * channels)
    if cfg is not None:
        from ..train.augment import norm_stats

        mean, std = norm_stats(cfg.augment, mean, std)
    return list(mean), list(std), classes


def load_subject(args: Any, command: str, *, need_image_input: bool = True) -> Subject:
    """Build the spec's network, load ``args.checkpoint`` if given, and find its input statistics."""
    import cnndsl

    spec = cnndsl.load(args.spec)
    checkpoint = getattr(args, "checkpoint", None)
    run_dir = _run_dir_of(checkpoint)
    meta = _meta(run_dir)
    params = {**(meta.get("params") or {}), **(getattr(args, "params", None) or {})}
    analysis = cnndsl.analyze(spec, limits=getattr(args, "limits", None), **params)
    shape = tuple(analysis.input_shape)
    if need_image_input and len(shape) != 3:
        raise error(f"cnndsl {command} needs a network whose input is an image (C×H×W); "
                    f"{analysis.name}'s input is {'×'.join(map(str, shape))}", None,
                    "the inspect commands draw images and feature maps")
    model = cnndsl.build(analysis).eval()
    weights, trained = "random initial weights", False
    if checkpoint:
        from ..train import checkpoint as ckpt

        state = ckpt.load(checkpoint)
        ckpt.load_weights(model, ckpt.model_state(state, checkpoint), checkpoint)
        weights, trained = f"trained weights from {checkpoint}", True
    cfg = _train_config(spec, getattr(args, "train_overrides", None) or {})
    mean, std, classes = _stats(cfg, meta, shape[0] if len(shape) == 3 else 1)
    return Subject(spec, analysis, model, weights, mean, std, classes, trained)


def image_input(subject: Subject, path: str, flag: str = "--image") -> Input:
    """An image file as the network's input (converted and resized as needed, with notes)."""
    arr, notes = read_for_network(path, subject.analysis.input_shape, flag)
    for n in notes:
        note(n)
    return _input(subject, arr, Path(path).name)


def sample_input(subject: Subject, index: int, args: Any) -> Input:
    """Image ``index`` of the validation split of the spec's dataset (the training split if none)."""
    cfg = _train_config(subject.spec, getattr(args, "train_overrides", None) or {})
    if cfg is None:
        raise error("--sample needs the spec's dataset, but the spec has no train section", None,
                    "use --image IMG instead")
    from ..train.data import load as load_data, read_image

    shape = tuple(subject.analysis.input_shape)
    data = load_data(cfg.data, data_root=getattr(args, "data_root", None), shape=shape,
                     num_classes=subject.analysis.output_shapes[0][0])
    split, which = (data.val, "val") if data.val is not None and len(data.val) else (data.train, "train")
    if not 0 <= index < len(split):
        raise error(f"--sample {index} is out of range: the {which} split of '{data.name}' has {len(split)} images",
                    None, f"use 0 ... {len(split) - 1}")
    if split.images is not None:
        img = split.images[index]
    else:
        img = read_image(split.files[index], split.size, split.channels)  # type: ignore[index]
    label = int(split.labels[index]) if split.labels.dim() == 1 else None
    classes = subject.classes or data.classes
    arr = img.permute(1, 2, 0).numpy()
    if tuple(img.shape) != shape:
        raise error(f"--sample: the dataset's images are {'×'.join(map(str, img.shape))} but the network takes "
                    f"{'×'.join(map(str, shape))}", None, "use --image with a file of any size")
    caption = f"{data.name} {which} #{index}" + (f" (label {classes[label]})" if label is not None else "")
    return _input(subject, arr, caption, label)


def _input(subject: Subject, arr: np.ndarray, caption: str, label: int | None = None) -> Input:
    pic = arr.astype(np.float32) / 255.0
    t = torch.from_numpy(pic).permute(2, 0, 1)
    mean = torch.tensor(subject.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(subject.std, dtype=torch.float32).view(-1, 1, 1)
    return Input(((t - mean) / std).unsqueeze(0), pic, caption, label)


def chosen_input(subject: Subject, args: Any) -> Input:
    """``--image`` or ``--sample``, exactly one of them."""
    if getattr(args, "image", None) is not None:
        return image_input(subject, args.image)
    if getattr(args, "sample", None) is not None:
        return sample_input(subject, args.sample, args)
    raise error("give an input: --image IMG or --sample N", None,
                "--sample N takes image N of the spec's validation data")
