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
from ..ir import (
    BlockDef,
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

_PREC = {"if": 1, "or": 2, "and": 3, "not": 4, "==": 5, "!=": 5, "<": 5, "<=": 5, ">": 5, ">=": 5,
         "+": 6, "-": 6, "*": 7, "/": 7, "//": 7, "%": 7, "neg": 8, "**": 9}
_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


def _expr(e: E.Expr, prec: int = 0) -> str:
    """``format_expr`` with two fixes, so the text always parses back to the same AST.

    * comparisons do not chain in the grammar (``a == b == c`` is a syntax error), so a comparison
      operand that is itself a comparison is parenthesised on both sides (format_expr leaves the left
      one bare);
    * a negative number literal (from YAML or the API, never from parsing) is written like the unary
      minus it reads back as, with parentheses where that binds differently (``(-2) ** 2``).

    Infinite floats are written ``1e999``, which reads back as the same float.
    """
    kind = type(e)
    if kind is E.Num:
        v = e.value
        if isinstance(v, float) and math.isnan(v):
            raise ValueError("NaN has no spelling in a spec")
        text = ("-1e999" if v < 0 else "1e999") if isinstance(v, float) and math.isinf(v) else repr(v)
        if text.startswith("-"):
            return f"({text})" if _PREC["neg"] < prec else text
        return text
    if kind is E.Str:
        return _quote(e.value)
    if kind is E.BinOp:
        p = _PREC[e.op]
        if e.op == "**":
            left_p, right_p = p + 1, p
        elif e.op in _COMPARE:
            left_p = right_p = p + 1
        else:
            left_p, right_p = p, p + 1
        text = f"{_expr(e.left, left_p)} {e.op} {_expr(e.right, right_p)}"
        return f"({text})" if p < prec else text
    if kind is E.Unary:
        p = _PREC["not" if e.op == "not" else "neg"]
        text = ("not " if e.op == "not" else e.op) + _expr(e.operand, p)
        return f"({text})" if p < prec else text
    if kind is E.IfExp:
        text = f"{_expr(e.body, 2)} if {_expr(e.test, 2)} else {_expr(e.orelse, 1)}"
        return f"({text})" if prec > 1 else text
    if kind is E.ListExpr:
        return "[" + ", ".join(_expr(i) for i in e.items) + "]"
    if kind is E.MapExpr:
        return "{" + ", ".join(f"{_key(k)}: {_expr(v)}" for k, v in e.items) + "}"
    if kind is E.Call:
        parts = [_expr(a) for a in e.args] + [f"{_name(k, 'argument')}={_expr(v)}" for k, v in e.kwargs]
        return f"{_name(e.func, 'function')}(" + ", ".join(parts) + ")"
    return E.format_expr(e, prec)  # Bool, Name, InShape


def _quote(s: str) -> str:
    if "\n" in s or "\r" in s:
        raise ValueError(f"the string {s!r} holds a line break, which .cnn strings cannot")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        if not top:  # the grammar has `from` as a statement of block and network bodies only
            raise ValueError(f"'from {'.'.join(it.ref.path)}' inside a group, branch or residual cannot be "
                             "written in .cnn (only at the top of a block or network body)")
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
        return op
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


# ============================================================================ YAML

_YAML_RESERVED = frozenset({"name", "repeat", "as", "when", "shortcut", "merge", "group", "residual", "parallel",
                            "from", "concat", "add", "multiply"})


def format_yaml(spec: Spec, *, imports: bool | None = None) -> str:
    """The YAML twin of :func:`format_cnn` (keys ``imports``, ``blocks``, ``network``, ``train``)."""
    out: list[str] = []
    if _keep_imports(spec, imports) and spec.imports:
        out.append("imports: " + _flow([i.path for i in spec.imports]))
    if spec.blocks:
        lines = ["blocks:"]
        for b in spec.blocks:
            if len(lines) > 1:
                lines.append("")
            lines.append(f"  {_flow(b.name)}:")
            body = _yblock_fields(b)
            lines += ["    " + l for l in body] if body else []
            if not body:
                lines[-1] += " {}"
        out.append("\n".join(lines))
    if spec.network is not None:
        out.append("\n".join(["network:", *("  " + l for l in _ynetwork(spec.network))]))
    if spec.train is not None:
        if not isinstance(spec.train, dict):
            raise ValueError("the train section must be a mapping")
        out.append("\n".join(_ydata("train", spec.train)))
    return "\n\n".join(out) + "\n"


_DUMPER = None


def _dumper():
    """A SafeDumper that writes strings holding line breaks double-quoted (one line, escaped)."""
    global _DUMPER
    if _DUMPER is None:
        import yaml  # PyYAML is imported only when YAML is written

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data):  # the loader refuses anchors: write shared values out
                return True

        def represent_str(dumper, s):
            style = '"' if any(c in s for c in "\n\r\x85\u2028\u2029") else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)

        Dumper.add_representer(str, represent_str)
        _DUMPER = Dumper
    return _DUMPER


def _flow(v: Any) -> str:
    """One value in YAML flow style, on one line."""
    import yaml

    text = yaml.dump(v, Dumper=_dumper(), default_flow_style=True, width=1 << 30, sort_keys=False,
                     allow_unicode=True)
    text = text.removesuffix("\n...\n")
    return text.rstrip("\n")


def _ydata(key: str | None, v: Any, width: int = 100) -> list[str]:
    """Plain data: ``key: value`` on one line when it fits, else a block mapping / list."""
    head = "- " if key is None else _flow(key) + ": "
    text = _flow(v)
    if not isinstance(v, (dict, list)) or not v or len(head) + len(text) <= width:
        return [head + text]
    if isinstance(v, dict):
        sub = [l for k, x in v.items() for l in _ydata(k, x, width - 2)]
    else:
        sub = [l for x in v for l in _ydata(None, x, width - 2)]
    if key is None:  # a collection inside a list: its first line shares the '- '
        return ["- " + sub[0], *("  " + l for l in sub[1:])]
    return [head.rstrip(), *("  " + l for l in sub)]


def _yexpr(e: E.Expr) -> Any:
    """An expression as a YAML value: numbers and booleans as scalars, lists and mappings as YAML
    collections, anything else as its expression text (a YAML string is parsed as an expression)."""
    kind = type(e)
    if kind is E.Num:
        return e.value
    if kind is E.Bool:
        return e.value
    if kind is E.ListExpr:
        return [_yexpr(i) for i in e.items]
    if kind is E.MapExpr:
        return {k: _yexpr(v) for k, v in e.items}
    return _expr(e)


def _ypositional(e: E.Expr) -> Any:
    # a mapping among positional arguments would read as the keyword arguments: write it as text
    return _expr(e) if type(e) is E.MapExpr else _yexpr(e)


def _yparams(params: tuple[Param, ...]) -> str:
    return _flow({p.name: None if p.default is None else _yexpr(p.default) for p in params})


def _yblock_fields(b: BlockDef) -> list[str]:
    lines = []
    if b.params:
        lines.append("params: " + _yparams(b.params))
    if b.body:
        lines += ["layers:", *("  " + l for l in _yitems(b.body))]
    return lines


def _ynetwork(net: NetworkDef) -> list[str]:
    lines = ["name: " + _flow(net.name)]
    if net.params:
        lines.append("params: " + _yparams(net.params))
    lines.append("input: " + _flow([_yexpr(d) for d in net.input]))
    if net.body:
        lines += ["layers:", *("  " + l for l in _yitems(net.body))]
    if net.outputs:
        lines.append("outputs: " + _flow([".".join(r.path) for r in net.outputs]))
    if net.freeze:
        lines.append("freeze: " + _flow([p.glob for p in net.freeze]))
    if net.unfreeze:
        lines.append("unfreeze: " + _flow([p.glob for p in net.unfreeze]))
    return lines


def _yitems(body: tuple) -> list[str]:
    return [l for it in body for l in _yitem(it)]


def _ymeta(it: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if it.name is not None:
        meta["name"] = it.name
    if it.repeat is not None:
        meta["repeat"] = _yexpr(it.repeat.count)
        if it.repeat.index is not None:
            meta["as"] = it.repeat.index
    if it.when is not None:
        meta["when"] = _yexpr(it.when)
    return meta


def _yitem(it: Any) -> list[str]:
    """A list entry: the first line starts with '- ', the rest with two spaces."""
    if isinstance(it, From):
        return ["- " + _flow({"from": ".".join(it.ref.path)})]
    meta = _ymeta(it)
    if isinstance(it, Layer):
        args = _yargs(it)
        if args is None and not meta:
            return ["- " + _flow(it.op)]  # a bare name is a layer, whatever the name
        if it.op in _YAML_RESERVED:
            raise ValueError(f"a layer named {it.op!r} with arguments, a name, repeat or condition cannot be "
                             "written in YAML (as a key it means something else)")
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[it.op] = args
        d.update(meta)
        return ["- " + _flow(d)]
    if isinstance(it, Merge):
        refs = [".".join(r.path) for r in it.refs]
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[it.merge] = refs[0] if len(refs) == 1 else refs
        d.update(meta)
        return ["- " + _flow(d)]
    lines = [f"{k}: {_flow(v)}" for k, v in meta.items()]
    if isinstance(it, Group):
        lines += _ysub("group", it.body)
    elif isinstance(it, Residual):
        lines += _ysub("residual", it.body)
        sc = it.shortcut
        if sc is not None:
            fields = []
            if sc.name is not None:
                fields.append("name: " + _flow(sc.name))
            if sc.when is not None:
                fields.append("when: " + _flow(_yexpr(sc.when)))
            if sc.body:
                fields += _ysub("layers", sc.body)
            lines += ["shortcut:", *("  " + l for l in fields)] if fields else ["shortcut: {}"]
    elif isinstance(it, Parallel):
        lines.append("merge: " + it.merge)
        branches = []
        for b in it.branches:
            sub = _yitems(b)
            branches += ["- " + sub[0], *("  " + l for l in sub[1:])] if sub else ["- []"]
        lines += ["parallel:", *("  " + l for l in branches)] if branches else ["parallel: []"]
    else:  # pragma: no cover
        raise TypeError(f"not an item: {it!r}")
    return ["- " + lines[0], *("  " + l for l in lines[1:])]


def _ysub(key: str, body: tuple) -> list[str]:
    if not body:
        return [f"{key}: []"]
    return [f"{key}:", *("  " + l for l in _yitems(body))]


def _yargs(it: Layer) -> Any:
    """``null`` → none; a value → one positional; a list → positionals (+ a final keyword mapping);
    a mapping → keywords (the forms yaml_load.call_args reads)."""
    kwargs = {k.name: _yexpr(k.value) for k in it.kwargs}
    if not it.args:
        return kwargs or None
    if len(it.args) == 1 and not kwargs and type(it.args[0]) not in (E.ListExpr, E.MapExpr):
        return _yexpr(it.args[0])
    values = [_ypositional(a) for a in it.args]
    return values + [kwargs] if kwargs else values
