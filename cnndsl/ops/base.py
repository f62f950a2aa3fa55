"""The op protocol and registry.

Each op is ONE class registered under its name. Its annotated attributes are the argument schema
(validated on first use, see :mod:`cnndsl.ops.args`); its methods are the rules that the passes
call: ``infer`` (output shape), ``rf`` (receptive-field rule), ``param_shapes``/``buffer_shapes``
(parameters), ``macs`` (cost), ``build`` (the torch module) and ``source`` (how ``--emit python``
writes a stateless op inline). ``example`` and ``example_input`` feed the test over every op
(tests/test_ops.py) and the docs. Adding an op touches one file (see docs/contributing.md).
torch is imported only inside ``build``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_origin, get_type_hints

from ..expr import format_shape
from ..layout import axes_of, axes_text, is_standard, to_standard
from ..record import Record
from .args import REQUIRED, Bounds, pydantic_hint, quick_check, validator

if TYPE_CHECKING:
    from pydantic import BaseModel
    from torch import nn

Shape = tuple[int, ...]

PosInt = Annotated[int, Bounds(ge=1)]
NonNegInt = Annotated[int, Bounds(ge=0)]
PosPair = Union[PosInt, tuple[PosInt, PosInt]]
NonNegPair = Union[NonNegInt, tuple[NonNegInt, NonNegInt]]

# Float arguments are finite (no inf/nan, however they were written or computed) and bounded where
# torch has a precondition or where a larger magnitude can only overflow float32 activations.
FiniteFloat = Annotated[float, Bounds(finite=True)]
Prob = Annotated[float, Bounds(ge=0.0, le=1.0, finite=True)]
PosFloat = Annotated[float, Bounds(gt=0.0, finite=True)]
Gain = Annotated[float, Bounds(ge=-1e4, le=1e4, finite=True)]       # a factor or slope
Alpha = Annotated[float, Bounds(ge=1e-6, le=1e6, finite=True)]      # elu/celu: torch needs 1/alpha in float32
Eps = Annotated[float, Bounds(ge=1e-12, le=10.0, finite=True)]      # normalisation epsilon


class ShapeError(Exception):
    """Raised by ``infer``; the expander adds the node's name, span and its inputs."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# ----------------------------------------------------------------------------- receptive-field rules


class Window(Record):
    """A sliding window (conv, pools): kernel, stride, padding, dilation per axis (H, W)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    context: bool = False   # each output also sees a summary of the whole map (a global gate)


class Transposed(Record):
    """Transposed conv / upsampling: the map grows by ``stride``; each output sees ~k/s inputs."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)


class Upsample(Record):
    """Resampling from ``inp`` (H, W) to ``out``; ``smooth``: interpolates between neighbours."""

    out: tuple[int, int]
    inp: tuple[int, int]
    smooth: bool = False


class Pointwise(Record):
    """Each output position depends on the same input position (activations, norms, ...);
    ``context``: and on statistics of the whole map (group/instance/layer norm over H×W)."""

    context: bool = False


class Adaptive(Record):
    """Adaptive pooling to ``out`` (H, W) bins."""

    out: tuple[int, int]


class Dense(Record):
    """Every output depends on every input position (linear on a flattened map)."""


class Merge(Record):
    """Several inputs combined position by position (add, concat)."""


class Reshape(Record):
    """A reshape: to a vector, each value keeps its field (like flatten); back to the C×H×W map a
    vector was flattened from, too; any other reshape loses the spatial structure (see Lost)."""


class Lost(Record):
    """Values are mixed along H or W in a way no window describes (a linear over a spatial axis):
    from here on the receptive field is reported as n/a, with the node where this happened."""


class Unknown(Record):
    """Not known (an opaque node of a traced model): this node and what follows have no field."""


RFRule = Union[Window, Transposed, Upsample, Pointwise, Adaptive, Dense, Merge, Reshape, Lost, Unknown]


# ----------------------------------------------------------------------------- the op base class


class _OpMeta(type):
    """Gives op classes pydantic's ``model_fields`` without building the schema at import time."""

    @property
    def model_fields(cls) -> dict[str, Any]:
        return cls.schema().model_fields


class Op(metaclass=_OpMeta):
    """Base of every op: annotated class attributes are the op's arguments.

    Arguments are validated on first use of each op (see :mod:`cnndsl.ops.args`), which keeps
    ``import cnndsl`` — and so ``cnndsl check`` — fast: a spec pays only for the ops it uses.
    """

    name: ClassVar[str] = ""
    positional: ClassVar[tuple[str, ...]] = ()    # argument names accepted by position
    aliases: ClassVar[dict[str, str]] = {}        # short names: k -> kernel
    arity: ClassVar[int] = 1                      # number of inputs; -1: two or more
    inplace_safe: ClassVar[bool] = False          # output may be overwritten by a following in-place op
    summary: ClassVar[str] = ""                   # one line for docs and `cnndsl ops`
    variadic: ClassVar[bool] = False              # the last positional argument takes all the rest
    bare_parameter: ClassVar[bool] = False        # its one parameter is registered on the enclosing
    #   module under the layer's own name (state_dict key `block.layer_scale`, no submodule); its
    #   param_shapes has the single key "", its module a `weight` and a static `function(x, weight)`
    example: ClassVar[str] = ""                   # layers ending with this op, for tests and docs
    example_input: ClassVar[tuple[int, ...]] = (8, 6, 6)   # the input shape of `example`

    def __init__(self, **values: Any):
        self.__dict__.update(type(self).validate_arguments(values))

    # ---- the schema
    @classmethod
    def arguments(cls) -> dict[str, tuple[Any, Any]]:
        """``{name: (type, default)}`` in declaration order (bases first); the default is
        ``cnndsl.ops.args.REQUIRED`` for a required one. The one source of every validator."""
        found = cls.__dict__.get("_arguments")
        if found is None:
            hints = get_type_hints(cls, include_extras=True)
            found = {}
            for klass in reversed(cls.__mro__):
                for fname in klass.__dict__.get("__annotations__", {}):
                    hint = hints.get(fname)
                    if fname.startswith("_") or hint is None or get_origin(hint) is ClassVar:
                        continue
                    found[fname] = (hint, getattr(cls, fname, REQUIRED))
            cls._arguments = found
        return found

    @classmethod
    def schema(cls) -> type[BaseModel]:
        """The pydantic model of the arguments (``model_fields``, JSON schema, help)."""
        model = cls.__dict__.get("_schema")
        if model is None:
            from pydantic import create_model

            fields = {n: (pydantic_hint(hint), ... if default is REQUIRED else default)
                      for n, (hint, default) in cls.arguments().items()}
            model = create_model(cls.__name__, __config__=_CONFIG, **fields)
            cls._schema = model
        return model

    @classmethod
    def validate_arguments(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Every argument's value, defaults filled in; ``pydantic_core.ValidationError`` (pydantic's
        ``ValidationError``) for a missing, unknown or invalid one — pydantic's strict mode."""
        quick = cls.__dict__.get("_quick")
        if quick is None:
            cls._quick = quick = quick_check(cls.arguments()) or False
        if quick is not False and (done := quick(values)) is not None:
            return done         # plainly valid: no need to ask pydantic-core
        check = cls.__dict__.get("_validator")
        if check is None:
            check = validator(cls.__name__, cls.arguments())
            cls._validator = check = check if check is not None else False
        if check is False:      # a type only the pydantic model knows (e.g. a plugin's own Field)
            return dict(cls.schema().model_validate(values))
        return check.validate_python(values)

    @classmethod
    def model_validate(cls, values: dict[str, Any]) -> "Op":
        """Validate argument values (pydantic strict mode) and return the op."""
        op = object.__new__(cls)
        op.__dict__.update(cls.validate_arguments(values))
        return op

    def model_dump(self, exclude_defaults: bool = False, exclude: set[str] | tuple = ()) -> dict[str, Any]:
        out = {}
        for fname, (_, default) in type(self).arguments().items():
            if fname in exclude:
                continue
            value = self.__dict__[fname]
            if exclude_defaults and default is not REQUIRED and value == default:
                continue
            out[fname] = value
        return out

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.__dict__.items(), key=lambda kv: kv[0]))))

    def __repr__(self) -> str:
        return self.describe()

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

    def source(self, args: list[str], ref: str) -> str | None:
        """The expression ``--emit python`` writes for this layer in ``forward``, given its inputs'
        variables and ``ref``, the expression for its module (or bare parameter); None: call the
        module (``{ref}(x)``), which is then constructed in ``__init__``."""
        return None

    def parameter_source(self, ins: list[Shape]) -> str:
        """For a ``bare_parameter`` op: its initial value as ``--emit python`` writes it
        (``nn.Parameter(torch.full((96, 1, 1), 1e-06))``)."""
        raise NotImplementedError(self.name)

    # ---- helpers
    def describe(self) -> str:
        """``conv(64, 3, padding=1)`` — the arguments that differ from the defaults."""
        fields = self.model_dump(exclude_defaults=True)
        pos: list[str] = []
        for p in self.positional:
            if p in fields:
                value = fields.pop(p)
                spread = self.variadic and p == self.positional[-1]      # permute(0, 2, 3, 1)
                pos += [repr(v) for v in value] if spread else [repr(value)]
        return f"{self.name}(" + ", ".join(pos + [f"{k}={v!r}" for k, v in fields.items()]) + ")"


_CONFIG = {"extra": "forbid", "frozen": True, "strict": True}   # pydantic's ConfigDict is a TypedDict


class _Registry(dict):
    """``{name: op class}``. ``get`` and ``[]`` look a name that is not registered up among the ops
    installed packages declare (entry points ``cnndsl.ops``, see :mod:`cnndsl.plugins`) and load
    it; ``in`` and iteration see the ops loaded so far (scanning entry points costs ~0.1-0.3 s, paid
    only when a spec names something that is neither a block nor a loaded op)."""

    def get(self, name, default=None, fallback: bool = True):  # type: ignore[override]
        found = dict.get(self, name)
        if found is None and fallback and isinstance(name, str):
            from ..plugins import entry_point_op

            found = entry_point_op(name)
        return default if found is None else found

    def __missing__(self, name: str) -> type[Op]:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found


REGISTRY: dict[str, type[Op]] = _Registry()


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: make an op available in specs under ``cls.name``."""
    assert cls.name and dict.get(REGISTRY, cls.name) is None, cls.name
    REGISTRY[cls.name] = cls
    return cls


# ----------------------------------------------------------------------------- shape helpers


def need_map(op: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a C×H×W feature map, but its input is a {format_shape(shape)}",
                         "a layer that works on images cannot follow 'flatten' or 'linear'"
                         if len(shape) == 1 else layout_hint(shape))
    need_standard(op, shape, "a C×H×W feature map")
    return shape  # type: ignore[return-value]


def need_standard(op: str, shape: Shape, what: str) -> None:
    """Refuse a permuted or reshaped layout that ``op`` would misread."""
    if not is_standard(shape):
        raise ShapeError(f"{op} needs {what}, but its input is {format_shape(shape)}", layout_hint(shape))


def layout_hint(shape: Shape) -> str:
    back = to_standard(shape)
    if back is not None:
        return f"permute back first: permute({', '.join(map(str, back))})"
    return "reshape it to C×H×W first, e.g. reshape(C, H, W)"


def same_layout(op: str, ins: list[Shape]) -> None:
    """Inputs combined elementwise must have their axes in the same order."""
    for i, s in enumerate(ins[1:], 2):
        if axes_of(s) != axes_of(ins[0]):
            raise ShapeError(f"{op} combines inputs whose axes differ: input 1 is {format_shape(ins[0])}, "
                             f"input {i} is {format_shape(s)}", layout_hint(s if axes_text(s) else ins[0]))


def window_out(size: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    """PyTorch's output-size formula for convolution and pooling."""
    span = d * (k - 1) + 1
    num = size + 2 * p - span
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def _sees_input(start: int, size: int, k: int, d: int) -> bool:
    """Whether a window whose first tap is at ``start`` (taps every ``d``) touches a real pixel."""
    j = -(start // d) if start < 0 else 0   # the first tap at or after position 0
    return j <= k - 1 and start + j * d <= size - 1


def check_window(size: tuple[int, int], k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
                 d: tuple[int, int], p_after: tuple[int, int] | None = None, ceil: bool = False,
                 zero_padding: bool = True) -> None:
    """Refuse a window geometry that makes no sense on a map of ``size`` (H, W), before torch sees it:
    padding as wide as the (dilated) kernel (border outputs see only padding), a dilated window
    whose taps all fall into the padding, or a stride beyond the padded input (the window can
    start only once; huge strides also make torch's backward allocate stride² memory).
    ``zero_padding``: False for reflect/replicate/circular padding, whose border holds real pixels."""
    after = p_after if p_after is not None else p
    for axis, n, ki, si, pb, pa, di in zip(("height", "width"), size, k, s, p, after, d):
        span = di * (ki - 1) + 1
        kernel = f"kernel {ki}" + (f" with dilation {di}, which spans {span}" if di > 1 else "")
        if zero_padding and max(pb, pa) >= span:
            raise ShapeError(f"padding {max(pb, pa)} along the {axis} is not smaller than the {kernel}: "
                             "the outputs at the border would see only padding",
                             f"use a padding of at most {span - 1} (p=(k-1)//2 keeps the size for odd kernels)")
        padded = n + pb + pa
        out = window_out(n + pa - pb, ki, si, pb, di, ceil)
        if zero_padding and out >= 1 and not (_sees_input(-pb, n, ki, di) and _sees_input((out - 1) * si - pb, n, ki, di)):
            raise ShapeError(f"along the {axis}, every tap of the {kernel} falls into the padding "
                             f"({pb}) of the {n}-pixel input at the border",
                             "reduce the dilation or the padding")
        limit = max(padded, span, 2)
        if si > limit:
            raise ShapeError(f"stride {si} along the {axis} is larger than the padded input "
                             f"({n} + {pb + pa} = {padded}): the window can start only once",
                             f"use a stride of at most {limit} (the output is the same)")


def prod(shape: Shape) -> int:
    return math.prod(shape)


Mode = Literal["nearest", "bilinear", "bicubic"]
