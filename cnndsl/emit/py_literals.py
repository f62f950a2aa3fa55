"""Text the source emitter writes: string literals and inert comments for text that comes from the
spec, value literals, shape comments, and constructor calls read back from built modules (torch.nn's
and cnndsl.nn's, whose source :mod:`cnndsl.emit.python` copies into the file)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from .. import nn as runtime

# parameters that hold one value per spatial axis: (3, 3) is written 3
_PAIRS = {"kernel_size", "stride", "padding", "dilation", "output_padding", "output_size", "scale_factor",
          "size"}
_KEYWORD_ONLY = {"kernel_size"}          # written kernel_size=3, as torchvision does


# ----------------------------------------------------------------------------- literals


def _str(text: str) -> str:
    """A Python string literal for any text (``repr``; double-quoted, as black writes them, when
    the text has no quotes)."""
    r = repr(text)
    return '"' + r[1:-1] + '"' if r[0] == "'" and '"' not in text and "'" not in text else r


def _inert(text: str) -> str:
    """Any text made safe inside a ``#`` comment or a ``\"\"\"`` docstring: one line, no quote or
    backslash that could end or escape it, control characters written as escapes."""
    return "".join(c if c.isprintable() and c not in '\\"' else
                   ("\\" + c if c in '\\"' else ascii(c)[1:-1]) for c in text)


def _lit(v: Any) -> str:
    """A Python literal for a constructor argument."""
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, tuple):
        inner = ", ".join(_lit(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    if v is None or isinstance(v, (bool, int)):
        return repr(v)
    raise NotImplementedError(f"cannot write {type(v).__name__} value {v!r} as a literal")


def _shape(shape: tuple[int, ...]) -> str:
    return "(B, " + ", ".join(map(str, shape)) + ")"


# ----------------------------------------------------------------------------- constructor calls


def _is_torch_nn(cls: type) -> bool:
    return getattr(nn, cls.__name__, None) is cls


def _is_runtime(cls: type) -> bool:
    """A module class of :mod:`cnndsl.nn`, whose source is copied into the generated file."""
    return getattr(runtime, cls.__name__, None) is cls


RUNTIME_NAMES = {n for n, v in vars(runtime).items() if isinstance(v, type) and _is_runtime(v)}


def constructor(module: nn.Module) -> str:
    """``nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1, bias=False)`` for a torch.nn module
    (``LayerNorm2d((96,), eps=1e-06)`` for one of cnndsl.nn): the arguments of its class's
    ``__init__``, read back from the attributes of the same names, those at their defaults left out."""
    cls = type(module)
    if not (_is_torch_nn(cls) or _is_runtime(cls)):
        raise NotImplementedError(f"no source rendering for module class {cls.__module__}.{cls.__qualname__}")
    args: list[str] = []
    positional = True
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        required = p.default is inspect.Parameter.empty
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
        if name in _PAIRS and isinstance(value, (tuple, list)) and len(value) > 0 and len(set(value)) == 1:
            value = value[0]
        if name == "stride" and "kernel_size" in inspect.signature(cls.__init__).parameters \
                and p.default is None and value == _collapse(module.kernel_size):
            continue  # pools: the stride defaults to the kernel size
        if not required and _equal(value, p.default):
            positional = False
            continue
        if required and positional and name not in _KEYWORD_ONLY:
            args.append(_lit(value))
        else:
            positional = False
            args.append(f"{name}={_lit(value)}")
    return f"{'nn.' if _is_torch_nn(cls) else ''}{cls.__name__}({', '.join(args)})"


def _collapse(v: Any) -> Any:
    if isinstance(v, (tuple, list)) and len(v) > 0 and len(set(v)) == 1:
        return v[0]
    return v


def _equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # pragma: no cover - exotic defaults
        return False
