"""Checks of a train section against its network, before torch is imported or data is read.

One code path for ``cnndsl check``, ``compile --summary`` and ``cnndsl train``: the config is
validated (with every ``--set train.*``), then the data — as far as its name tells (mnist is
1×28×28 with 10 classes) — is compared with the network: channels, image size after the augment
list's geometry, classes against the output width, per-pixel targets against the output map, the
batch size against the training set. ``train`` runs the same checks again on the data it loaded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cnndsl.errors import Diagnostic, Span, error, warning

from . import config as C
from .datasets import DataInfo, info_of
from .parts import check_parts, names_of

# augmentations that move pixels (refused with per-pixel targets, whose masks would not follow)
MOVING = ("random_crop", "translate", "hflip", "alt_flip", "resize", "random_resized_crop", "cutout",
          "random_erasing")


@dataclass
class Preflight:
    """A validated train config, what is known of its data, and the warnings found."""

    config: C.TrainConfig
    data: DataInfo
    warnings: list[Diagnostic] = field(default_factory=list)

    def summary(self) -> str:
        """One line for ``cnndsl check``: ``train: mnist5k 1×28×28, 10 classes, 8 epochs, ...``."""
        cfg, d = self.config, self.data
        parts = [f"train: {d.name} {d.shape_text}"]
        if d.classes:
            parts.append(f"{d.classes} classes")
        epochs = f"{cfg.epochs:g} epoch" + ("" if cfg.epochs == 1 else "s")
        if d.num_train and not d.loaded and cfg.data.type not in ("synthetic",) and \
                getattr(cfg.data, "val_fraction", 0) == 0:
            steps = d.num_train // cfg.batch_size if cfg.drop_last else -(-d.num_train // cfg.batch_size)
            epochs += f" of {steps} steps"
        parts += [epochs, f"batch {cfg.batch_size}", f"{cfg.optimizer.type}(lr={cfg.optimizer.lr:g})"]
        return ", ".join(parts)


def preflight(spec: Any, analysis: Any = None, overrides: dict[str, Any] | None = None, *,
              guess_device: bool = True) -> Preflight:
    """Validate the train section (and overrides) and check it against the analysed network.
    Raises :class:`cnndsl.CnnError`; returns the config and warnings. No torch. ``guess_device``:
    warn about fp16 on a CPU from a guess of the device (the runner knows it and checks itself)."""
    cfg = C.validate(C.apply_overrides(getattr(spec, "train", None), overrides or {}), spec, overrides)
    shape = tuple(analysis.input_shape) if analysis is not None else None
    out = analysis.output_shapes[0] if analysis is not None else None
    info = info_of(cfg.data, shape, out[0] if out else None)
    found = check_fit(spec, cfg, analysis, info, overrides)
    if analysis is not None:  # param_groups, freeze_after and stages against the network's names
        found += check_parts(cfg, names_of(analysis), lambda key: _span(spec, key, overrides))
    fp16 = precision_warning(spec, cfg, _guess_device(cfg.device), overrides) if guess_device else None
    return Preflight(cfg, info, found + ([fp16] if fp16 else []))


# ----------------------------------------------------------------------------------- helpers

def _span(spec: Any, key: tuple, overrides: dict[str, Any] | None) -> tuple[Span | None, str]:
    """Where a train value was written: its spec position, or the ``--set`` flag that gave it."""
    flag = C.override_flag(".".join(map(str, key)), overrides)
    if flag:
        return C.written_span(spec, key), f" (from {flag})"
    return (spec.train_span(key) if spec is not None else None), ""


def _input_note(spec: Any) -> list[tuple[Span | None, str]]:
    net = getattr(spec, "network", None)
    span = getattr(net, "input_span", None)
    return [(span, "the network's input is declared here")] if span is not None else []


def _dims(*xs: int) -> str:
    return "×".join(map(str, xs))


def _channels(n: int | None) -> str:
    return f"{n} channel" + ("" if n == 1 else "s")


def _pair(size: Any) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def geometry(items: Sequence[Any], channels: int | None, size: tuple[int, int] | None
             ) -> tuple[int | None, tuple[int, int] | None]:
    """Channels and size of the images the network sees after the augment list. Training and
    evaluation agree: at evaluation random_resized_crop(s) resizes to s and random_crop(s) takes
    the centre s×s (see :mod:`cnndsl.train.augment`)."""
    for it in items:
        if it.type in ("resize", "random_resized_crop"):
            size = _pair(it.size)
        elif it.type in ("random_crop", "translate") and it.size is not None:
            crop = _pair(it.size)
            if size is not None and (crop[0] > size[0] + 2 * it.padding or crop[1] > size[1] + 2 * it.padding):
                raise ValueError(f"{it.type}({_dims(*crop)}) is larger than the {_dims(*size)} images "
                                 f"it crops (padding {it.padding})")
            size = crop
        elif it.type == "grayscale":
            channels = 1
        elif it.type == "rgb":
            if channels not in (None, 1, 3):
                raise ValueError(f"rgb converts 1-channel images, but these have {channels} channels")
            channels = 3
    return channels, size


def _input_param(spec: Any, index: int) -> str | None:
    """The network parameter an input dimension is written as (``input (in_ch, 32, 32)``), if any."""
    net = getattr(spec, "network", None)
    dims = getattr(net, "input", ())
    expr = dims[index] if len(dims) == 3 else None
    names = {p.name for p in getattr(net, "params", ())}
    return expr.id if type(expr).__name__ == "Name" and expr.id in names else None


def _declare(spec: Any, index: int, value: int, shape: str) -> str:
    """How to change the network's input: ``--set in_ch=1`` when a parameter gives it."""
    param = _input_param(spec, index)
    return f"pass --set {param}={value}" if param else f"declare the network's input as {shape}"


def _conversion_hint(spec: Any, have: int | None, want: int, shape: tuple[int, ...]) -> str:
    change = _declare(spec, 0, have or 0, _dims(have or 0, *shape[1:]))
    if have == 1 and want == 3:
        return f"add `rgb` to augment (repeats the gray channel), or {change}"
    if have == 3 and want == 1:
        return f"add `grayscale` to augment (luminance), or {change}"
    return change


def _class_hint(spec: Any, analysis: Any, width: int, classes: int) -> str:
    """``--set num_classes=10`` when a network parameter gives the output width, else the layer."""
    net = getattr(spec, "network", None)
    bound = analysis.graph.params
    names = [p.name for p in getattr(net, "params", ()) if bound.get(p.name) == width
             and isinstance(bound.get(p.name), int) and not isinstance(bound.get(p.name), bool)]
    names.sort(key=lambda n: "class" not in n)
    if names:
        return f"pass --set {names[0]}={classes}, or make it the default: network {net.name}({names[0]} = {classes})"
    node = analysis.graph.nodes[analysis.graph.outputs[0]]
    what = node.op.describe() if node.op is not None else node.kind
    return f"make '{node.path}' ({what}) produce {classes} outputs"


# ----------------------------------------------------------------------------------- checks

def check_fit(spec: Any, cfg: C.TrainConfig, analysis: Any, info: DataInfo,
              overrides: dict[str, Any] | None = None) -> list[Diagnostic]:
    """Refuse data the network cannot be trained on (raises CnnError); return warnings.
    ``info`` comes from the dataset's name (check time) or from the data read (train time)."""
    found: list[Diagnostic] = []
    data_span, data_from = _span(spec, ("data",), overrides)
    aug_span, aug_from = _span(spec, ("augment",), overrides)
    where = f"{info.name} images"
    try:
        channels, size = geometry(cfg.augment, info.channels, info.size)
    except ValueError as exc:
        raise error(f"{exc}{aug_from}", aug_span or data_span) from None
    for it in cfg.augment:
        if it.type == "normalize" and channels is not None:
            for name in ("mean", "std"):
                values = getattr(it, name)
                if values is not None and len(values) not in (1, channels):
                    raise error(f"normalize has {len(values)} {name} values but the images have {channels} "
                                f"channel(s){aug_from}", aug_span, f"give one {name} per channel")
    if info.per_pixel:
        moving = [it.type for it in cfg.augment if it.type in MOVING]
        if moving or cfg.mixup or cfg.cutmix:
            what = moving[0] if moving else "mixup/cutmix"
            raise error(f"{what} would move the images but not their per-pixel targets{aug_from}",
                        aug_span or data_span, "segmentation training supports normalize, color_jitter, "
                                               "grayscale and rgb only")
    if info.num_train is not None and cfg.drop_last and cfg.batch_size > info.num_train:
        span, frm = _span(spec, ("batch_size",), overrides)
        raise error(f"batch_size {cfg.batch_size} is larger than the training set ({info.num_train} images)"
                    f"{frm}", span or data_span, "lower batch_size, or set drop_last: false")
    net = tuple(analysis.input_shape) if analysis is not None else ()
    if not net:
        return found
    after = "" if (channels, size) == (info.channels, info.size) else \
        f", {_dims(channels or 0, *(size or (0, 0)))} after augment"
    if channels is not None and channels != net[0]:
        raise error(f"{where} have {_channels(info.channels)}{after}, but the network's input "
                    f"{_dims(*net)} has {_channels(net[0])}{data_from}", data_span,
                    _conversion_hint(spec, channels, net[0], net), notes=_input_note(spec))
    if size is not None and len(net) == 3 and tuple(size) != tuple(net[1:]):
        h, w = net[1:]
        resize = f"resize({h})" if h == w else f"resize([{h}, {w}])"
        raise error(f"{where} are {info.shape_text}{after}, but the network's input is {_dims(*net)}{data_from}",
                    data_span, f"add {resize} to augment — it applies to training, validation, eval and "
                               f"predict images alike — or "
                               + (_declare(spec, 1, size[0], _dims(net[0], *size)) if size[0] == size[1]
                                  else f"declare the network's input as {_dims(net[0], *size)}"),
                    notes=_input_note(spec))
    if analysis is not None:
        found += _check_outputs(spec, analysis, info, size, data_span, data_from)
    return found


def _check_outputs(spec: Any, analysis: Any, info: DataInfo, size: tuple[int, int] | None,
                   data_span: Span | None, data_from: str) -> list[Diagnostic]:
    """The first output against the targets: one class per image, or a class per pixel."""
    out = tuple(analysis.output_shapes[0])
    node = analysis.graph.nodes[analysis.graph.outputs[0]]
    per = " per pixel" if info.per_pixel else ""
    note = [(data_span, f"the data{data_from}: {info.name}, {info.classes or '?'} classes{per}")]
    if info.per_pixel:
        if len(out) != 3 or (size is not None and tuple(out[1:]) != tuple(size)):
            raise error(f"the dataset has per-pixel targets {_dims(*size) if size else ''}, but the network's "
                        f"output is {_dims(*out)}", node.span,
                        "a segmentation network ends in a num_classes×H×W map (e.g. a 1×1 conv)", notes=note)
    elif len(out) != 1:
        raise error(f"the dataset has one class per image, but the network's output is {_dims(*out)}",
                    node.span, "end the network with global_avgpool flatten linear(num_classes)", notes=note)
    if info.classes is None:
        return []
    if out[0] < info.classes:
        raise error(f"{info.name}{data_from} has {info.classes} classes but the network's output '{node.path}' "
                    f"gives {out[0]} scores", node.span, _class_hint(spec, analysis, out[0], info.classes),
                    notes=note)
    if out[0] > info.classes:
        return [warning(f"the network's output '{node.path}' gives {out[0]} scores but {info.name}{data_from} has "
                        f"{info.classes} classes: {out[0] - info.classes} scores are never a target", node.span,
                        _class_hint(spec, analysis, out[0], info.classes))]
    return []


def _guess_device(device: str) -> str:
    """The device type a run would get, guessed without torch: cpu unless a GPU driver is visible."""
    if device != "auto":
        return device.split(":")[0]
    if sys.platform == "darwin":
        return "mps"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return "cpu"
    gpu = any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))
    return "cuda" if gpu else "cpu"


def precision_warning(spec: Any, cfg: C.TrainConfig, device_type: str,
                      overrides: dict[str, Any] | None = None) -> Diagnostic | None:
    """fp16 autocast on a CPU is tens of times slower than fp32 (about 50× measured on mnist5k)."""
    if cfg.precision != "fp16" or device_type != "cpu":
        return None
    span, frm = _span(spec, ("precision",), overrides)
    how = "device: auto found no GPU" if cfg.device == "auto" else f"device: {cfg.device}"
    return warning(f"precision fp16 on the CPU ({how}){frm} is tens of times slower than fp32 "
                   "(about 50× measured on specs/mnist5k.cnn)", span,
                   "use precision: bf16 (about as fast as fp32 on a CPU) or fp32; fp16 pays off on CUDA GPUs")
