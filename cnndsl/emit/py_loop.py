"""A block whose body is one repeat of another block, written as a loop over the repeat's index.

``denselayer{i + 1}: DenseLayer(growth) x(layers) as i`` becomes, like torchvision's
``models/densenet.py``::

    for i in range(layers):
        self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth, growth))

and ``CNBlock(sd=sd * (first + i) / (total - 1), scale=scale) x(depth) as i`` an ``nn.Sequential``
of a generator over ``range(depth)``. Every text comes from the spec — the count, the computed name,
each argument the call gives — except the input size of repetition ``i``, which is the block's
input size plus ``i`` times a constant step named by a parameter of equal value. Each text is
checked here against every repetition of the instance (cnndsl's evaluator, never generated code),
so the loop registers the names and builds the modules cnndsl does; a repeat that any text cannot
reproduce stays unrolled (and its count is then a fixed parameter of the class).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from .. import expr as E
from . import py_text as T

_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant, ast.IfExp, ast.Compare,
          ast.BoolOp, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


_NONE = object()


class NoLoop(Exception):
    """A loop the classes of the file cannot write after all (the caller writes the block unrolled)."""


@dataclass
class Loop:
    """The texts of one repeat written as a loop (python names; ``var``: the loop variable)."""

    var: str
    count: str
    key: str | None                 # an f-string body (``denselayer{i + 1}``); None: positions 0, 1, ...
    args: dict[str, str]            # the repeated class's parameter → its text ("" : left at its default)
    in_text: str                    # the input size of repetition ``var``
    in_name: str                    # the block class's input-size parameter

    @property
    def texts(self) -> list[str]:
        return [self.count, self.in_text, *self.args.values()]

    def sig(self) -> tuple:
        return (self.var, self.count, self.key, tuple(self.args.items()), self.in_text)


def python_text(e: Any, names: set[str]) -> str | None:
    """``e`` as a Python expression over ``names`` (arithmetic, comparisons, conditionals), or None."""
    try:
        text = E.format_expr(e)
        tree = ast.parse(text, mode="eval")
    except (TypeError, SyntaxError):
        return None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES) or (isinstance(node, ast.Name) and node.id not in names) \
                or (isinstance(node, ast.Constant) and type(node.value) not in (int, float)):
            return None
    return text


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def find_loop(block: Any, child: Any, args: dict[str, Any], in_name: str | None, in_size: Any,
              calls: list[tuple[str, Any]]) -> Loop | None:
    """The loop writing the ``calls`` (key, Call) of a block instance bound to ``args`` whose input
    has ``in_size`` channels (``in_name``), or None. ``block`` is its BlockDef, ``child`` the
    BlockDef of the repeated block."""
    from ..names import is_template, template_pieces
    from ..syntax.parse import parse_expr
    from .py_parts import python_name

    if block is None or len(block.body) != 1 or in_name is None or not calls:
        return None
    item = block.body[0]
    rep = item.repeat
    if item.kind != "layer" or rep is None or item.when is not None or child is None or item.op != child.name:
        return None
    if any(python_name(k) != k for k in args) or (rep.index is not None and rep.index in args):
        return None
    var = rep.index or "i"
    while var in args or var in T.RESERVED or var == in_name:
        var += "_"
    names = set(args) | {var}
    env = [E.Env({**args, **({rep.index: k} if rep.index else {})}, c.instance.in_shape)
           for k, (_, c) in enumerate(calls)]
    n = len(calls)
    # the count, and the names: a template of the index, or positions
    count = python_text(rep.count, set(args))
    if count is None or not _same(E.evaluate(rep.count, env[0]), n):
        return None
    key: str | None = None
    if item.name is None:
        if [k for k, _ in calls] != [str(k) for k in range(n)]:
            return None
    else:
        if not is_template(item.name):
            return None
        key = ""
        for piece, is_expr in template_pieces(item.name):
            if not is_expr:
                if any(ch in piece for ch in '{}"\\\'') or not piece.isprintable():
                    return None
                key += piece
                continue
            text = python_text(parse_expr(piece, "<name>"), {rep.index} if rep.index else set())
            if text is None:
                return None
            key += "{" + text + "}"
        for k, (name, _) in enumerate(calls):
            got = "".join(p if not e else str(E.evaluate(parse_expr(p, "<name>"), env[k]))
                          for p, e in template_pieces(item.name))
            if got != name:
                return None
    # the input size of each repetition: the block's, plus var times a constant step
    # (a chain: each repetition reads what the one before gives, so the step is what one adds)
    sizes = [c.instance.in_shape[0] if c.instance.in_shape else None for _, c in calls]
    steps = {c.shape[0] - size if c.shape and size is not None else None for (_, c), size in zip(calls, sizes)}
    if sizes[0] != in_size or len(steps) != 1 or None in steps:
        return None
    step = steps.pop()
    in_text = in_name
    if step:
        named = sorted((k for k, v in args.items() if _same(v, step)), key=lambda k: k in T.names_in(count))
        if not named:
            return None
        in_text = f"{in_name} + {var} * {named[0]}"
    # the arguments: the call's expressions, the repetition's input size, or the parameter's default
    given = {p.name: e for p, e in zip(child.params, item.args)} | {kw.name: kw.value for kw in item.kwargs}
    first = calls[0][1].instance
    loop_args: dict[str, str] = {}
    for name in first.names:
        values = [c.instance.names.get(name) for _, c in calls]
        if name == first.in_name:
            loop_args[name] = in_text
        elif name in given:
            text = python_text(given[name], names)
            if text is None or not all(_same(E.evaluate(given[name], env[k]), v) for k, v in enumerate(values)):
                return None
            loop_args[name] = text
        elif all(_same(v, values[0]) for v in values) and _same(dict(first.params).get(name, _NONE), values[0]):
            loop_args[name] = ""               # the parameter's own default
        elif all(_same(v, s) for v, s in zip(values, sizes)):
            loop_args[name] = in_text          # a default of in.channels
        else:
            return None
    return Loop(var, count, key, loop_args, in_text, in_name)


def loop_lines(classes: Any, c: Any, fixed: set[str]) -> list[str]:
    """``__init__``'s body (and ``forward``) of class ``c``, a block written as a loop; a fixed
    parameter its texts read is written as its value."""
    from .py_classes import call_args
    from .py_layout import CallExpr, KwArg, lay_out, with_comment
    from .py_leaf import EMPTY

    first, loop = c.first, c.first.loop

    def text(t: str) -> str:
        return T.NAME.sub(lambda m: T.literal(first.names[m.group()]) if m.group() in fixed else m.group(), t)

    child = first.children[0][1].instance
    cls = classes.of(child)
    args: list[Any] = []
    positional = True
    for name, value, default in call_args(classes, child):
        written = text(loop.args[name]) if loop.args[name] else ""
        if not written and default is not EMPTY:
            positional = False
            continue
        written = written or T.literal(value)
        if default is EMPTY and positional and name not in cls.keyword_only and name not in cls.late:
            args.append(written)
        else:
            positional = False
            args.append(KwArg(name, written))
    call = CallExpr(cls.name, args)
    lines = ["        super().__init__()", f"        for {loop.var} in range({text(loop.count)}):"]
    if loop.key is None:
        return lines + lay_out(12, "self.append", CallExpr("", [call]))
    lines += lay_out(12, "self.add_module", CallExpr("", [f'f"{loop.key}"', call]))
    return lines + ["", with_comment(4, first.head[0], first.head[1]), "        for layer in self.children():",
                    "            x = layer(x)", "        return x"]


__all__ = ["Loop", "NoLoop", "find_loop", "loop_lines", "python_text"]
