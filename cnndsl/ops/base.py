"""The op protocol and registry.

Each op is ONE pydantic model registered under its name. The model is the argument schema; its
methods are the rules that the passes call: ``infer`` (output shape), ``rf`` (receptive-field
rule), ``param_shapes``/``buffer_shapes`` (parameters), ``macs`` (cost) and ``build`` (the torch
module). Adding an op touches one file. torch is imported only inside ``build``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from ..expr import format_shape

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosPair = Union[PosInt, tuple[PosInt, PosInt]]
NonNegPair = Union[NonNegInt, tuple[NonNegInt, NonNegInt]]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]


class ShapeError(Exception):
    """Raised by ``infer``; the expander adds the node's name, span and its inputs."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# ----------------------------------------------------------------------------- receptive-field rules


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window (conv, pools): kernel, stride, padding, dilation per axis (H, W)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class Transposed:
    """Transposed conv / upsampling: the map grows by ``stride``; each output sees ~k/s inputs."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class Upsample:
    """Resampling from ``inp`` (H, W) to ``out``; ``smooth``: interpolates between neighbours."""

    out: tuple[int, int]
    inp: tuple[int, int]
    smooth: bool = False


@dataclass(frozen=True, slots=True)
class Pointwise:
    """Each output position depends on the same input position only (activations, norms, ...)."""


@dataclass(frozen=True, slots=True)
class Adaptive:
    """Adaptive pooling to ``out`` (H, W) bins."""

    out: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Dense:
    """Every output depends on every input position (linear on a flattened map)."""


@dataclass(frozen=True, slots=True)
class Merge:
    """Several inputs combined position by position (add, concat)."""


RFRule = Union[Window, Transposed, Upsample, Pointwise, Adaptive, Dense, Merge]


# ----------------------------------------------------------------------------- the op base class


class Op(BaseModel):
    """Base of every op: the pydantic fields are the op's arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    name: ClassVar[str] = ""
    positional: ClassVar[tuple[str, ...]] = ()    # argument names accepted by position
    aliases: ClassVar[dict[str, str]] = {}        # short names: k -> kernel
    arity: ClassVar[int] = 1                      # number of inputs; -1: two or more
    inplace_safe: ClassVar[bool] = False          # output may be overwritten by a following in-place op
    summary: ClassVar[str] = ""                   # one line for docs and `cnndsl ops`

    # ---- rules (override as needed)
    def infer(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def rf(self, ins: list[Shape]) -> RFRule:
        return Pointwise()

    def param_shapes(self, ins: list[Shape], out: Shape) -> dict[str, Shape]:
        return {}

    def buffer_shapes(self, ins: list[Shape], out: Shape) -> dict[str, Shape]:
        return {}

    def macs(self, ins: list[Shape], out: Shape) -> int:
        return 0

    def build(self, ins: list[Shape], out: Shape) -> "nn.Module":
        raise NotImplementedError(self.name)

    # ---- helpers
    def describe(self) -> str:
        """``conv(64, kernel=3, padding=1)`` — the arguments that differ from the defaults."""
        fields = self.model_dump(exclude_defaults=True)
        pos = [repr(fields.pop(p)) for p in self.positional if p in fields]
        return f"{self.name}(" + ", ".join(pos + [f"{k}={v!r}" for k, v in fields.items()]) + ")"


REGISTRY: dict[str, type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: make an op available in specs under ``cls.name``."""
    assert cls.name and cls.name not in REGISTRY, cls.name
    REGISTRY[cls.name] = cls
    return cls


# ----------------------------------------------------------------------------- shape helpers


def need_map(op: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a C×H×W feature map, but its input is a {format_shape(shape)}",
                         "a layer that works on images cannot follow 'flatten' or 'linear'")
    return shape  # type: ignore[return-value]


def window_out(size: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    """PyTorch's output-size formula for convolution and pooling."""
    span = d * (k - 1) + 1
    num = size + 2 * p - span
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def prod(shape: Shape) -> int:
    return math.prod(shape)


Mode = Literal["nearest", "bilinear", "bicubic"]
