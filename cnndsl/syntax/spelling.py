"""How IR values are spelled in spec text: the checks both writers (``.cnn`` and YAML) share.

A value with no spelling in a syntax raises ``ValueError`` naming it, never text that would read
back differently. This module imports nothing from the writers, so either can be imported alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import expr as E
from ..files import SPEC_SUFFIXES
from ..names import spelling_problem

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
BARE_TEMPLATE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\{[^{}\n\"]*\}[A-Za-z0-9_]*)+\Z")  # the grammar's TEMPLATE

# words the .cnn lexer reads as keywords in some position: never written as bare names in data
KEYWORDS = frozenset({
    "true", "false", "not", "and", "or", "if", "else", "in", "as", "when", "residual", "shortcut",
    "concat", "add", "multiply", "from", "input", "output", "freeze", "unfreeze", "import", "block",
    "network", "train",
})
# words that cannot start an item (label or op): the item grammar reads them as statements or
# keywords (`if`, `and`: continuing the previous item's expression; `as` after a repeat; `shortcut`
# after a group), so the text would read back differently
ITEM_KEYWORDS = frozenset({"in", "not", "residual", "concat", "add", "multiply", "from", "input", "output",
                           "freeze", "unfreeze", "true", "false", "when", "if", "else", "and", "or", "as",
                           "shortcut"})

# option values written bare read back as these words' meaning, not as the string
_NOT_BARE = KEYWORDS | ITEM_KEYWORDS | {"none", "backbone", "init"}


def expr_text(e: E.Expr, prec: int = 0) -> str:
    """``format_expr``, after refusing what has no spelling (NaN, line breaks and NULs in strings,
    names that are not identifiers); the text then always parses back to the same AST."""
    stack = [e]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is E.Num and isinstance(x.value, float) and math.isnan(x.value):
            raise ValueError("NaN has no spelling in a spec")
        if kind is E.Str:
            quote(x.value)
        elif kind is E.Name:
            name(x.id, "variable")
        elif kind is E.InShape:
            name(x.attr, "attribute")
        elif kind is E.MapExpr:
            for k, v in x.items:
                key(k)
                stack.append(v)
        elif kind is E.Call:
            name(x.func, "function")
            for k, v in x.kwargs:
                name(k, "argument")
                stack.append(v)
            stack.extend(x.args)
        elif kind is E.ListExpr:
            stack.extend(x.items)
        elif kind is E.BinOp:
            stack += [x.left, x.right]
        elif kind is E.Unary:
            stack.append(x.operand)
        elif kind is E.IfExp:
            stack += [x.test, x.body, x.orelse]
    return E.format_expr(e, prec)


def check_text(s: str, what: str = "string") -> str:
    """Refuse what no spec file can hold: NUL (spec text must not contain it) and lone surrogates
    (not UTF-8)."""
    if "\x00" in s:
        raise ValueError(f"the {what} {s!r} holds a NUL character, which spec files cannot")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} {s!r} is not valid Unicode text") from None
    return s


def quote(s: str) -> str:
    """A .cnn string literal (no escapes but ``\\"`` and ``\\\\``: line breaks cannot be written)."""
    if "\n" in s or "\r" in s:
        raise ValueError(f"the string {s!r} holds a line break, which .cnn strings cannot")
    check_text(s)
    return E.format_expr(E.Str(s))


def name(text: str, what: str, reserved: Iterable[str] = ()) -> str:
    """``text`` if it is an identifier (and not ``reserved``), else ``ValueError``."""
    if not isinstance(text, str) or not IDENT.match(text) or text in reserved:
        raise ValueError(f"the {what} name {text!r} cannot be written")
    return text


def key(k: str) -> str:
    return name(k, "key")


def label_text(text: str, what: str = "item", reserved: Iterable[str] = ITEM_KEYWORDS) -> str:
    """A layer, group or shortcut name in ``.cnn``: bare when it reads back as itself (an identifier,
    or a template of identifier pieces, that is no keyword), else quoted (``"block1-0"``)."""
    module_name(text, what)  # the same check
    if (IDENT.match(text) or BARE_TEMPLATE.match(text)) and text not in reserved:
        return text
    return quote(text)


def module_name(text: str, what: str = "item") -> str:
    """A layer, group or shortcut name as a YAML value (any valid name: quoted, computed)."""
    problem = spelling_problem(text, quoted=True, template=True)
    if problem is not None:
        raise ValueError(f"the {what} name {text!r} cannot be written: {problem}")
    return text


def ref_text(path: tuple[str, ...]) -> str:
    """A reference (``a.b.0``): names (quoted where they must be) and indices joined by dots."""
    if not path:
        raise ValueError("an empty reference")
    head, *rest = path
    parts = [head if head == "input" else _ref_part(head, ITEM_KEYWORDS)]
    parts += [part if part.isascii() and part.isdigit() else _ref_part(part, ()) for part in rest]
    return ".".join(parts)


def ref_path(path: tuple[str, ...]) -> str:
    """A reference as a YAML value: its parts joined by dots (a quoted name needs no quotes there)."""
    ref_text(path)  # the same check
    return ".".join(path)


def _ref_part(part: str, reserved: Iterable[str]) -> str:
    problem = spelling_problem(part, quoted=True)
    if problem is not None:
        raise ValueError(f"the reference {part!r} cannot be written: {problem}")
    return part if IDENT.match(part) and part not in reserved else quote(part)


def plain_text(v: Any) -> str:
    """A plain value of a backbone or init option in ``.cnn`` (``cnndsl.backbone.syntax.plain`` reads
    it back): a name when the string is one that reads back as itself, else a string literal."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if IDENT.match(v) and v not in _NOT_BARE else quote(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(plain_text(x) for x in v) + "]"
    return expr_text(E.Num(v))


def model_text(model: str) -> str:
    """A backbone's model: a dotted name (``resnet18``, ``timm.convnext_tiny``) or a string literal
    (a spec's path, anything else)."""
    parts = model.split(".")
    bare = not model.endswith(SPEC_SUFFIXES) and all(IDENT.match(p) and p not in _NOT_BARE
                                                                 for p in parts)
    return model if bare else quote(model)


class Unwritable(ValueError):
    """A value with no spelling in the syntax being written; ``span``: the construct holding it."""

    def __init__(self, message: str, span: Any = None):
        super().__init__(message)
        self.span = span


@contextmanager
def located(span: Any) -> Iterator[None]:
    """Give a ``ValueError`` raised inside the position of the construct being written (the
    innermost construct that has one)."""
    try:
        yield
    except Unwritable as exc:
        if exc.span is None:
            exc.span = span
        raise
    except ValueError as exc:
        raise Unwritable(str(exc), span) from None
