"""Text pieces of the emitted Python: literals, inert comments, identifiers, submodule access.

Every string the emitter did not make itself (a name, a label, a parameter value, a file name)
reaches the output only through :func:`string` (a Python literal, via ``repr``), :func:`inert` (a
comment or docstring body) or, for module names, through :func:`assign_child` / :func:`child`,
which write an identifier only when it is one and ``repr`` otherwise.
"""

from __future__ import annotations

import keyword
import re
from typing import Any

from torch import nn

# names the emitted file itself uses: never a class, variable or parameter name of the spec's
RESERVED = {"self", "x", "torch", "nn", "super", "out", "outs", "model", "print", "sum", "tuple", "str",
            "isinstance", "getattr", "int", "float", "bool", "object", "n", "p"}
PARAM_RESERVED = {"self", "torch", "nn", "super", "int", "float", "bool", "str", "object"}


def string(text: str) -> str:
    """A Python string literal for any text (double-quoted, as ruff formats them, when possible)."""
    r = repr(text)
    return '"' + r[1:-1] + '"' if r[0] == "'" and '"' not in text and "'" not in text else r


def same_value(a: Any, b: Any) -> bool:
    """Equal values of one type (``1`` is not ``True`` or ``1.0``): values written the same."""
    return type(a) is type(b) and a == b


def inert(text: str) -> str:
    """Any text made safe inside a ``#`` comment or a docstring: one line, no quote or backslash
    that could end or escape it, control characters written as escapes."""
    return "".join(c if c.isprintable() and c not in '\\"' else
                   ("\\" + c if c in '\\"' else ascii(c)[1:-1]) for c in text)


def literal(v: Any) -> str:
    """A Python literal for a constructor argument."""
    if isinstance(v, str):
        return string(v)
    if isinstance(v, tuple):
        inner = ", ".join(literal(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if v is None or isinstance(v, (bool, int, float)):
        return repr(v)
    raise NotImplementedError(f"cannot write {type(v).__name__} value {v!r} as a literal")


# a parameter's name in a value's expression (``mid if mid > 0 else out``: not the keywords)
NAME = re.compile(r"(?<![\w.])(?!(?:" + "|".join(keyword.kwlist) + r")\b)[A-Za-z_]\w*")


def names_in(expression: str) -> set[str]:
    """The parameter names a value's expression reads (``(dim, 1, 1)`` → ``{"dim"}``)."""
    return set(NAME.findall(expression))


def is_identifier(name: str) -> bool:
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def identifier(name: str, fallback: str) -> str:
    """``name`` made into a Python identifier (for classes and variables, never for module names)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name if name.isascii() else name.encode("ascii", "replace").decode())
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = fallback + "_" + name if name else fallback
    return name


def class_name(label: str, fallback: str) -> str:
    """A class name for a block or stage label: CamelCase when the label is lower case."""
    name = identifier(label, fallback)
    if name[0].islower():
        name = "".join(p[:1].upper() + p[1:] for p in name.split("_") if p) or fallback
        name = identifier(name, fallback)
    return name


def attribute_ok(name: str, owner: type = nn.Module) -> bool:
    """``name`` can be written as ``self.name`` on an ``owner`` without clashing with its methods."""
    return is_identifier(name) and not name.startswith("_") and not hasattr(owner, name)


def assign_child(owner: str, name: str, value: str) -> str:
    """The statement registering submodule ``name`` on ``owner`` (``self.conv1 = ...``); the one
    place module names reach the output: as an attribute when that is safe, else by ``repr``."""
    if attribute_ok(name):
        return f"{owner}.{name} = {value}"
    return f"{owner}.add_module({string(name)}, {value})"


def child(owner: str, name: str, positional: bool = False) -> str:
    """The expression of submodule ``name`` of ``owner``: ``owner.conv1``, ``owner[0]`` in an
    ``nn.Sequential`` named by position, else ``getattr(owner, "...")``."""
    if positional and name.isdigit() and name.isascii():
        return f"{owner}[{int(name)}]"
    if attribute_ok(name, nn.Sequential if positional else nn.Module):
        return f"{owner}.{name}"
    return f"getattr({owner}, {string(name)})"
