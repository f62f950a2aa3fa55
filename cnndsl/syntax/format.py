"""Spec IR → source text: the inverse of the front ends.

``format_cnn(spec)`` writes idiomatic ``.cnn`` text and ``format_yaml(spec)`` its YAML twin. Both
round-trip: ``parse(format_cnn(spec)).canonical() == spec.canonical()`` (and the same with
``format="yaml"``), and formatting is stable — formatting the parse of formatted text gives the same
text. Comments and the original layout are not kept (the IR holds neither).

Imports: a spec returned by :func:`cnndsl.load` has the imported blocks merged into ``spec.blocks``;
its text then holds those blocks inline and the ``import`` lines are left out (they would define the
blocks twice). A spec from :func:`cnndsl.parse` (imports not resolved) keeps its imports. Pass
``imports=True`` / ``False`` to decide yourself.

Some IR values have no spelling in one of the syntaxes (a ``null`` in the train section of a
``.cnn`` file, a layer named ``concat``, a string holding a newline); they raise ``ValueError``
naming the value rather than producing text that reads back differently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from .. import expr as E
from ..backbone.syntax import format_backbone, format_init
from ..ir import (
    Backbone,
    From,
    Group,
    Layer,
    Merge,
    NetworkDef,
    Parallel,
    Param,
    Ref,
    Repeat,
    Residual,
    Shortcut,
    Spec,
)

__all__ = ["format_cnn", "format_value", "format_yaml"]

INDENT = "    "
INLINE_WIDTH = 80   # a group / branch set / train value is written on one line when it fits in this
INLINE_ITEMS = 4    # ... and holds at most this many items

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# words the .cnn lexer reads as keywords in some position: never written as bare names in data
_KEYWORDS = frozenset({
    "true", "false", "not", "and", "or", "if", "else", "in", "as", "when", "residual", "shortcut",
    "concat", "add", "multiply", "from", "input", "output", "freeze", "unfreeze", "import", "block",
    "network", "train",
})
# words that cannot start an item (label or op) everywhere: the item grammar reads them as statements or
# keywords (`if`, `and`: continuing the previous item's expression; `as` after a repeat; `shortcut` after
# a group), so the text would read back differently
_ITEM_KEYWORDS = frozenset({"in", "not", "residual", "concat", "add", "multiply", "from", "input", "output",
                            "freeze", "unfreeze", "true", "false", "when", "if", "else", "and", "or", "as",
                            "shortcut"})


# ============================================================================ expressions

def _expr(e: E.Expr, prec: int = 0) -> str:
    """``format_expr``, after refusing what has no .cnn spelling (NaN, line breaks in strings, names
    that are not identifiers); the text then always parses back to the same AST."""
    stack = [e]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is E.Num and isinstance(x.value, float) and math.isnan(x.value):
            raise ValueError("NaN has no spelling in a spec")
        if kind is E.Str:
            _quote(x.value)
        elif kind is E.MapExpr:
            for k, v in x.items:
                _key(k)
                stack.append(v)
        elif kind is E.Call:
            _name(x.func, "function")
            for k, v in x.kwargs:
                _name(k, "argument")
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


def _quote(s: str) -> str:
    if "\n" in s or "\r" in s:
        raise ValueError(f"the string {s!r} holds a line break, which .cnn strings cannot")
    return E.format_expr(E.Str(s))


def _name(name: str, what: str, reserved: Iterable[str] = ()) -> str:
    if not _IDENT.match(name) or name in reserved:
        raise ValueError(f"the {what} name {name!r} cannot be written in .cnn")
    return name


def _key(k: str) -> str:
    return _name(k, "key")


# ============================================================================ .cnn


def format_cnn(spec: Spec, *, imports: bool | None = None) -> str:
    """Idiomatic ``.cnn`` text for ``spec``: imports, blocks, the network, then ``train``."""
    parts: list[str] = []
    if _keep_imports(spec, imports) and spec.imports:
        parts.append("\n".join(f"import {_quote(i.path)}" for i in spec.imports))
    for b in spec.blocks:
        parts.append(_def("block", b.name, b.params, _body_stmts(b.body, top=True)))
    net = spec.network
    if net is not None:
        parts.append(_def("network", net.name, net.params, _network_stmts(net)))
    if spec.train is not None:
        if not isinstance(spec.train, dict):
            raise ValueError("the train section must be a mapping")
        parts.append("train " + _data_block(spec.train, ""))
    return "\n\n".join(parts) + "\n"


def _keep_imports(spec: Spec, imports: bool | None) -> bool:
    if imports is not None:
        return imports
    # cnndsl.load merges imported blocks: their spans name another file than the spec's own
    own = spec.path
    return not any(b.span is not None and own is not None and b.span.file != own for b in spec.blocks)


def _def(kw: str, name: str, params: tuple[Param, ...], stmts: list[str]) -> str:
    head = f"{kw} {_name(name, kw)}"
    if params:
        head += "(" + ", ".join(_param(p) for p in params) + ")"
    if not stmts:
        return head + " {\n}"
    return head + " {\n" + "\n".join(INDENT + s if s else s for s in stmts) + "\n}"


def _param(p: Param) -> str:
    name = _name(p.name, "parameter")
    return name if p.default is None else f"{name} = {_expr(p.default)}"


def _network_stmts(net: NetworkDef) -> list[str]:
    dims = net.input
    if not dims:
        raise ValueError(f"network {net.name!r} has an empty input shape, which .cnn cannot write")
    if all(type(d) is E.Num and type(d.value) is int and d.value >= 0 for d in dims):
        lines = ["input " + "x".join(str(d.value) for d in dims)]
    else:
        lines = ["input(" + ", ".join(_expr(d) for d in dims) + ")"]
    lines += _body_stmts(net.body, top=True)
    if net.outputs:
        lines.append("output " + ", ".join(_ref(r) for r in net.outputs))
    if net.freeze:
        lines.append("freeze " + ", ".join(_quote(p.glob) for p in net.freeze))
    if net.unfreeze:
        lines.append("unfreeze " + ", ".join(_quote(p.glob) for p in net.unfreeze))
    if net.init is not None:
        lines.append(format_init(net.init))
    return lines


def _body_stmts(body: tuple, top: bool = False) -> list[str]:
    """Items of a body; ``top``: the body of a block or network, the only place for ``from``."""
    return [line for item in body for line in _item(item, top)]


def _ref(r: Ref) -> str:
    if not r.path:
        raise ValueError("an empty reference")
    head, *rest = r.path
    if head != "input":
        _name(head, "reference", _ITEM_KEYWORDS)
    for part in rest:
        if not part.isdigit():
            _name(part, "reference")
    return ".".join(r.path)


def _item(it: Any, top: bool = False) -> list[str]:
    """An item as lines, relative indentation (nested lines start with INDENT)."""
    if isinstance(it, From):
        return [f"from {_ref(it.ref)}"]
    if isinstance(it, Layer):
        lines = [_call(it)]
    elif isinstance(it, Merge):
        if not it.refs:
            raise ValueError(f"a {it.merge}(...) merge with no references")
        lines = [f"{it.merge}(" + ", ".join(_ref(r) for r in it.refs) + ")"]
    elif isinstance(it, Group):
        lines = _braced(it.body)
    elif isinstance(it, Residual):
        lines = ["residual " + l if i == 0 else l for i, l in enumerate(_braced(it.body))]
        if it.shortcut is not None:
            lines = _join(lines, _shortcut(it.shortcut))
    elif isinstance(it, Parallel):
        lines = _parallel(it)
    elif isinstance(it, Backbone):
        lines = [format_backbone(it, _KEYWORDS | _ITEM_KEYWORDS)]
    else:  # pragma: no cover - the IR has no other items
        raise TypeError(f"not an item: {it!r}")
    if it.name is not None:
        lines[0] = f"{_name(it.name, 'item', _ITEM_KEYWORDS)}: " + lines[0]
    if it.repeat is not None:
        lines[-1] += " " + _repeat(it.repeat)
    if it.when is not None:
        lines[-1] += " when " + _when(it.when)
    return lines


def _when(e: E.Expr) -> str:
    # after a condition that ends in a mapping's `}`, the lexer takes `network`, `train`, ... (the
    # name of the next item) for keywords; parentheses (no AST node) avoid that
    text = _expr(e)
    return f"({text})" if text.endswith("}") else text


def _call(it: Layer) -> str:
    op = _name(it.op, "layer", _ITEM_KEYWORDS)
    if not it.args and not it.kwargs:
        return op + "()" if op == "backbone" else op   # bare `backbone NAME` would start a backbone item
    parts = [_expr(a) for a in it.args] + [f"{_name(k.name, 'argument')}={_expr(k.value)}" for k in it.kwargs]
    return f"{op}(" + ", ".join(parts) + ")"


def _repeat(r: Repeat) -> str:
    c = r.count
    text = f"x{c.value}" if type(c) is E.Num and type(c.value) is int and c.value >= 0 else f"x({_expr(c)})"
    if r.index is not None:
        text += " as " + _name(r.index, "repeat index")
    return text


def _shortcut(sc: Shortcut) -> list[str]:
    head = "shortcut"
    if sc.name is not None:
        head += " " + _name(sc.name, "shortcut", {"when"})
    if sc.when is not None:
        head += " when " + _when(sc.when)
    body = _braced(sc.body)
    return [head + " " + body[0], *body[1:]]


def _join(a: list[str], b: list[str]) -> list[str]:
    """Continue the last line of ``a`` with the first of ``b``."""
    return [*a[:-1], a[-1] + " " + b[0], *b[1:]]


def _inline(body: tuple) -> str | None:
    """``a  b  c`` when every item fits on one line and the run is short, else None."""
    if len(body) > INLINE_ITEMS:
        return None
    texts = []
    for item in body:
        lines = _item(item)
        if len(lines) != 1:
            return None
        texts.append(lines[0])
    text = "  ".join(texts)
    return text if len(text) <= INLINE_WIDTH else None


def _braced(body: tuple) -> list[str]:
    if not body:
        return ["{ }"]
    text = _inline(body)
    if text is not None:
        return ["{ " + text + " }"]
    return ["{", *(INDENT + l for l in _body_stmts(body)), "}"]


def _parallel(it: Parallel) -> list[str]:
    if not it.branches:
        raise ValueError(f"a {it.merge} {{ }} with no branches")
    texts = [_inline(b) for b in it.branches]
    if all(t is not None for t in texts):
        words: list[str] = []
        for i, t in enumerate(texts):
            words += (["|"] if i else []) + ([t] if t else [])  # an empty branch: nothing between bars
        inner = " ".join(words)
        if len(inner) <= INLINE_WIDTH:
            return [f"{it.merge} {{ {inner} }}" if inner else f"{it.merge} {{ }}"]
    lines = [f"{it.merge} {{"]
    for i, branch in enumerate(it.branches):
        stmts = _body_stmts(branch)
        if i == 0:
            lines += [INDENT + l for l in stmts]
        elif not stmts:
            lines.append("  |")
        else:
            lines += ["  | " + stmts[0], *(INDENT + l for l in stmts[1:])]
    lines.append("}")
    return lines


# ---------------------------------------------------------------------------- train data


def format_value(v: Any) -> str:
    """A plain value (train section data) as a .cnn expression that evaluates back to it."""
    if v is None:
        raise ValueError("null has no spelling in .cnn (leave the key out)")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _expr(E.Num(v))
    if isinstance(v, str):
        return v if _IDENT.match(v) and v not in _KEYWORDS else _quote(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        call = _as_call(v)
        if call is not None:
            return call
        return "{" + ", ".join(f"{_data_key(k)}: {format_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write a {type(v).__name__} in a spec")


def _data_key(k: Any) -> str:
    if not isinstance(k, str):
        raise ValueError(f"train keys must be names, got {k!r}")  # noqa: TRY004 - unwritable: ValueError
    return _key(k)


def _as_call(v: dict) -> str | None:
    """``{type: sgd, lr: 0.1}`` → ``sgd(lr = 0.1)`` when the call reads back as that mapping."""
    t = v.get("type")
    if not isinstance(t, str) or not _IDENT.match(t) or t in _KEYWORDS or t in E.FUNCTIONS:
        return None
    args = v.get("args", None)
    if "args" in v and (not isinstance(args, list) or not args):
        return None  # a call writes "args" only for a non-empty positional list
    kwargs = [(k, x) for k, x in v.items() if k not in ("type", "args")]
    if not all(isinstance(k, str) and _IDENT.match(k) for k, _ in kwargs):
        return None
    parts = [format_value(a) for a in (args or [])] + [f"{k} = {format_value(x)}" for k, x in kwargs]
    return f"{t}(" + ", ".join(parts) + ")"


def _data_block(d: dict, indent: str) -> str:
    """The train mapping as a ``{ ... }`` block, one key per line."""
    if not d:
        return "{}"
    inner = indent + INDENT
    keys = list(d)
    lines = []
    for i, (k, x) in enumerate(d.items()):
        line = f"{inner}{_data_key(k)}: {_data(x, inner, len(inner) + len(str(k)) + 2)}"
        # entries need no commas, but a keyword as the next key (`if`, `network`) could continue or
        # end the value: a comma keeps it a key
        lines.append(line + "," if i + 1 < len(keys) and keys[i + 1] in _KEYWORDS else line)
    return "{\n" + "\n".join(lines) + "\n" + indent + "}"


def _data(v: Any, indent: str, used: int) -> str:
    """A value on one line when it fits (``used`` columns are taken before it), else broken over
    lines: a mapping one key per line, a list or a call's arguments one per line."""
    text = format_value(v)
    if used + len(text) <= 100 or not isinstance(v, (dict, list)) or not v:
        return text
    if isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v):
        return text  # a list of plain values stays on its line
    inner = indent + INDENT
    if isinstance(v, list):
        return "[\n" + "".join(f"{inner}{_data(x, inner, len(inner))},\n" for x in v) + indent + "]"
    call = _as_call(v)
    if call is None:
        return _data_block(v, indent)
    parts = [_data(a, inner, len(inner)) for a in v.get("args") or []]
    parts += [f"{k} = {_data(x, inner, len(inner) + len(k) + 3)}" for k, x in v.items() if k not in ("type", "args")]
    return f"{v['type']}(\n" + "".join(f"{inner}{p},\n" for p in parts) + indent + ")"


from .format_yaml import format_yaml  # noqa: E402  (the YAML writer reuses the helpers above)
