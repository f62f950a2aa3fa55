"""The leaves of the emitted classes: a layer's module as a constructor call, and a bare parameter.

:func:`leaf` reads every ``__init__`` argument of a module back from its attributes of the same
names, so any op that builds a torch.nn module — or one of :mod:`cnndsl.nn`'s, whose source the
file then carries (``Leaf.copy``) — is written without a hand list. :func:`bare_parameter` turns a
``bare_parameter`` op's own rendering (``Op.parameter_source``) into a template whose numbers are
values the class may compute from its parameters (``torch.full((dim, 1, 1), 1e-06)``).
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import nn as runtime
from ..graph import Graph, Node
from .py_layout import KwArg

EMPTY = inspect.Parameter.empty
_PAIRS = {"kernel_size", "stride", "padding", "dilation", "output_padding", "output_size", "scale_factor",
          "size"}
_KEYWORD_ONLY = {"kernel_size"}          # written kernel_size=3, as torchvision does


def is_runtime(cls: type) -> bool:
    """A module class of :mod:`cnndsl.nn`, whose source is copied into the generated file."""
    return getattr(runtime, cls.__name__, None) is cls


RUNTIME_NAMES = frozenset(n for n, v in vars(runtime).items() if isinstance(v, type) and is_runtime(v))


@dataclass
class Arg:
    """One constructor argument: its value in this instance, its default (EMPTY: required)."""

    name: str
    value: Any
    default: Any = EMPTY
    positional: bool = True               # may be written by position while it is required
    same_as: str | None = None            # omitted when equal to this argument (pools: stride = kernel)


@dataclass
class Leaf:
    """A layer's module: ``nn.Conv2d(...)``, or ``LayerNorm2d(...)`` whose class ``copy`` the file defines."""

    cls: str                              # "nn.Conv2d"
    args: list[Arg]
    shape: tuple[int, ...] = ()           # its output shape (in the first instance: comments)
    reads_input: bool = False             # fed by its class's input (may take in_channels)
    copy: type | None = None              # a cnndsl.nn class, copied into the file


@dataclass
class Template:
    """Text an op wrote (``Op.source``, ``Op.parameter_source``) cut at its numbers: each number is
    a value the class may compute from its parameters (``x.narrow(1, 0, out // 2)``)."""

    pieces: list[str]                     # len(args) + 1 pieces of text around the numbers
    args: list[Arg]

    def render(self, texts: list[str]) -> str:
        out = self.pieces[0]
        for text, piece in zip(texts, self.pieces[1:]):
            out += text + piece
        return out

    @property
    def first(self) -> str:
        """The text with this instance's values."""
        return self.render([repr(a.value) for a in self.args])


@dataclass
class Param(Template):
    """A bare parameter registered on its class (``self.layer_scale = nn.Parameter(...)``)."""

    shape: tuple[int, ...] = ()
    reads_input: bool = False


def _collapse(v: Any) -> Any:
    if isinstance(v, (tuple, list)) and len(v) > 0 and len(set(v)) == 1:
        return v[0]
    return v


def leaf(module: nn.Module) -> Leaf:
    """The class and every ``__init__`` argument of a torch.nn (or cnndsl.nn) module, read back
    from its attributes of the same names (the writer leaves out those at their defaults)."""
    cls = type(module)
    copied = is_runtime(cls)
    if getattr(nn, cls.__name__, None) is not cls and not copied:
        raise NotImplementedError(f"no source rendering for module class {cls.__module__}.{cls.__qualname__}")
    params = inspect.signature(cls.__init__).parameters
    args: list[Arg] = []
    for name, p in params.items():
        if name in ("self", "device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name == "bias" and (module.bias is None or isinstance(module.bias, torch.Tensor)):
            value: Any = module.bias is not None
            if not value and (getattr(module, "affine", True) is False
                              or getattr(module, "elementwise_affine", True) is False):
                continue  # a norm without affine parameters has no bias anyway
        elif hasattr(module, name):
            value = getattr(module, name)
        else:
            raise NotImplementedError(f"{cls.__name__}: cannot read back the argument {name!r}")
        if isinstance(value, torch.Tensor):
            raise NotImplementedError(f"{cls.__name__}: argument {name!r} is a tensor")
        if name in _PAIRS:
            value = _collapse(value)
        default = _collapse(p.default) if name in _PAIRS and p.default is not EMPTY else p.default
        same_as = "kernel_size" if name == "stride" and p.default is None and "kernel_size" in params else None
        args.append(Arg(name, value, default, name not in _KEYWORD_ONLY, same_as))
    return Leaf(cls.__name__ if copied else f"nn.{cls.__name__}", args, copy=cls if copied else None)


def template(text: str, op: Any) -> Template:
    """``text`` (one expression) cut at its numbers, negative ones left whole; each number is an
    argument named after ``op``'s field of that value (``start``, ``init``), else ``value``."""
    numbers = sorted((n for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Constant)
                      and type(n.value) in (int, float) and text[n.col_offset - 1:n.col_offset] != "-"),
                     key=lambda n: n.col_offset)
    values = op.model_dump() if hasattr(op, "model_dump") else {}
    fields = {v: k for k, v in reversed(values.items()) if type(v) in (int, float)}
    pieces, args, at = [], [], 0
    for n in numbers:
        pieces.append(text[at:n.col_offset])
        args.append(Arg(fields.get(n.value, "value"), n.value))
        at = n.end_col_offset
    pieces.append(text[at:])
    return Template(pieces, args)


def bare_parameter(graph: Graph, node: Node) -> Param:
    """The op's ``parameter_source`` for ``node`` as a :class:`Param`."""
    t = template(node.op.parameter_source([graph.nodes[i].shape for i in node.inputs]), node.op)
    return Param(t.pieces, t.args)


def written_args(args: list[Arg], texts: list[tuple[str, bool]]) -> list[Any]:
    """Constructor arguments as written: literals at their defaults left out, required ones by
    position until the first one written by name."""
    out: list[Any] = []
    positional = True
    written = {a.name: t for a, (t, _) in zip(args, texts)}
    for a, (text, symbolic) in zip(args, texts):
        required = a.default is EMPTY
        if not required and not symbolic and _default_equal(a.value, a.default):
            positional = False
            continue
        if a.same_as and not symbolic and text == written.get(a.same_as):
            positional = False
            continue
        if required and positional and a.positional:
            out.append(text)
        else:
            positional = False
            out.append(KwArg(a.name, text))
    return out


def _default_equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_default_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # pragma: no cover - exotic defaults
        return False
