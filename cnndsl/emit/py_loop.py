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
    head: dict[str, str] | None = None   # the first repetition's texts, when it has another structure
    head_key: str = "0"             # and its name

    @property
    def texts(self) -> list[str]:
        return [self.count, self.in_text, *self.args.values(), *(self.head or {}).values()]

    def sig(self) -> tuple:
        head = tuple(self.head.items()) if self.head is not None else None
        return (self.var, self.count, self.key, tuple(self.args.items()), self.in_text, head, self.head_key)


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


def at_index(e: Any, index: str | None, value: int) -> Any:
    """``e`` with the repeat index set to ``value`` and what that decides folded away
    (``stride if i == 0 else 1`` at 0: ``stride``; ``sd * (first + i) / total``: ``sd * first / total``)."""
    kind = type(e).__name__
    if index is None:
        return e
    if kind == "Name":
        return E.Num(value) if e.id == index else e
    if kind == "Unary":
        return E.Unary(e.op, at_index(e.operand, index, value))
    if kind == "IfExp":
        test = at_index(e.test, index, value)
        if type(test).__name__ in ("Num", "Bool"):
            return at_index(e.body if test.value else e.orelse, index, value)
        return E.IfExp(test, at_index(e.body, index, value), at_index(e.orelse, index, value))
    if kind != "BinOp":
        return e
    left, right = at_index(e.left, index, value), at_index(e.right, index, value)
    consts = [type(x).__name__ in ("Num", "Bool") for x in (left, right)]
    if all(consts):
        return E.literal(E.evaluate(E.BinOp(e.op, left, right), E.Env({})))
    zero = [c and not isinstance(x.value, bool) and x.value == 0 for c, x in zip(consts, (left, right))]
    one = [c and not isinstance(x.value, bool) and x.value == 1 for c, x in zip(consts, (left, right))]
    if e.op == "+" and any(zero):
        return right if zero[0] else left
    if e.op == "-" and zero[1]:
        return left
    if e.op == "*" and any(one) and not any(isinstance(x.value, float) for c, x in zip(consts, (left, right)) if c):
        return right if one[0] else left
    return E.BinOp(e.op, left, right)


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
    head_call = None
    if len(calls) > 1 and _sig(calls[0][1].instance) != _sig(calls[1][1].instance):
        head_call, calls = calls[0], calls[1:]   # the first repetition has another structure: apart
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
    start = 0 if head_call is None else 1
    env = [E.Env({**args, **({rep.index: k} if rep.index else {})}, c.instance.in_shape)
           for k, (_, c) in enumerate(calls, start)]
    n = len(calls) + start
    # the count, and the names: a template of the index, or positions
    count = python_text(rep.count, set(args))
    if count is None or not T.same_value(E.evaluate(rep.count, env[0]), n):
        return None
    key: str | None = None
    if item.name is None:
        if [k for k, _ in calls] != [str(k) for k in range(start, n)]:
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
    # (a chain: each repetition reads what the one before gives, so the step is what one adds);
    # after a first repetition apart, what it gives: a parameter of that value
    sizes = [c.instance.in_shape[0] if c.instance.in_shape else None for _, c in calls]
    steps = {c.shape[0] - size if c.shape and size is not None else None for (_, c), size in zip(calls, sizes)}
    if len(steps) != 1 or None in steps:
        return None
    step = steps.pop()
    base = in_name if sizes[0] == in_size else next((k for k, v in args.items() if T.same_value(v, sizes[0])), None)
    if base is None or (head_call is None and base != in_name):
        return None
    in_text = base
    if step:
        named = sorted((k for k, v in args.items() if T.same_value(v, step)), key=lambda k: k in T.names_in(count))
        if not named:
            return None
        in_text = f"{base} + {var} * {named[0]}" if head_call is None else f"{base} + ({var} - 1) * {named[0]}"
    given = {p.name: e for p, e in zip(child.params, item.args)} | {kw.name: kw.value for kw in item.kwargs}
    loop_args = _arg_texts(given, calls, env, names, in_text, sizes)
    if loop_args is None:
        return None
    loop = Loop(var, count, key, loop_args, in_text, in_name)
    if head_call is not None:   # the first repetition's texts: the spec's at index 0
        env0 = E.Env({**args, **({rep.index: 0} if rep.index else {})}, head_call[1].instance.in_shape)
        at0 = {k: at_index(e, rep.index, 0) for k, e in given.items()}
        loop.head = _arg_texts(at0, [head_call], [env0], set(args), in_name, [in_size])
        loop.head_key = head_call[0]
        if loop.head is None or head_call[1].instance.in_shape[0] != in_size:
            return None
    return loop


def _arg_texts(given: dict[str, Any], calls: list[tuple[str, Any]], env: list[Any], names: set[str],
               in_text: str, sizes: list[Any]) -> dict[str, str] | None:
    """The texts of the repeated block's arguments in ``calls``: the call's expressions (``given``),
    the repetition's input size, or "" for a parameter at its default; None where one has none."""
    first = calls[0][1].instance
    out: dict[str, str] = {}
    for name in first.names:
        values = [c.instance.names.get(name) for _, c in calls]
        if name == first.in_name:
            out[name] = in_text
        elif name in given:
            text = python_text(given[name], names)
            if text is None or not all(T.same_value(E.evaluate(given[name], env[k]), v) for k, v in enumerate(values)):
                return None
            out[name] = text
        elif all(T.same_value(v, values[0]) for v in values) and T.same_value(dict(first.params).get(name, _NONE), values[0]):
            out[name] = ""               # the parameter's own default
        elif all(T.same_value(v, s) for v, s in zip(values, sizes)):
            out[name] = in_text          # a default of in.channels
        else:
            return None
    return out


def _sig(inst: Any) -> tuple:
    from .py_classes import Classes

    return Classes(set()).sig(inst)


def loop_lines(classes: Any, c: Any, fixed: set[str]) -> list[str]:
    """``__init__``'s body (and ``forward``) of class ``c``, a block written as a loop; a fixed
    parameter its texts read is written as its value."""
    from .py_classes import call_args
    from .py_layout import CallExpr, class_call, lay_out, with_comment
    from .py_leaf import EMPTY

    first, loop = c.first, c.first.loop

    def text(t: str) -> str:
        return T.NAME.sub(lambda m: T.literal(first.names[m.group()]) if m.group() in fixed else m.group(), t)

    def call(child: Any, texts: dict[str, str]) -> Any:
        def written(value: Any, default: Any, spec_text: str) -> str | None:
            if spec_text:
                return text(spec_text)
            return None if default is not EMPTY else T.literal(value)   # a default: left out

        return class_call(classes.of(child), ((name, written(value, default, texts[name]), default is EMPTY)
                                              for name, value, default in call_args(classes, child)))

    lines = ["        super().__init__()"]
    count = text(loop.count)
    if loop.head is not None:   # the first repetition, of another structure
        head = call(first.children[0][1].instance, loop.head)
        lines += lay_out(8, "self.append", CallExpr("", [head])) if loop.key is None else \
            lay_out(8, "self.add_module", CallExpr("", [T.string(loop.head_key), head]))
        count = f"1, {count}"
    body = call(first.children[-1][1].instance, loop.args)
    lines.append(f"        for {loop.var} in range({count}):")
    if loop.key is None:
        return lines + lay_out(12, "self.append", CallExpr("", [body]))
    lines += lay_out(12, "self.add_module", CallExpr("", [f'f"{loop.key}"', body]))
    return lines + ["", with_comment(4, first.head[0], first.head[1]), "        for layer in self.children():",
                    "            x = layer(x)", "        return x"]


__all__ = ["Loop", "NoLoop", "find_loop", "loop_lines", "python_text"]
