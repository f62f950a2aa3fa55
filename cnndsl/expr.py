"""Expressions over network parameters: the AST, a safe evaluator and a canonical printer.

Expressions appear wherever a spec takes a value: layer arguments (``conv(c * 2)``), repeat counts,
``when`` conditions, parameter defaults and the train section. They are evaluated by walking this
small AST — never with Python's ``eval``. Names that are not bound evaluate to a :class:`Symbol`
(``same``, ``bilinear``), which op schemas accept for enumerated arguments and reject elsewhere
with an "unknown name" diagnostic.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Mapping, Union

from .errors import Span, did_you_mean, error
from .layout import axes_of, axes_text
from .record import Record, hidden

MAX_INT = 10**18  # larger integers are refused: no spec needs them and they hide typos


# ----------------------------------------------------------------------------- AST


class Num(Record):
    value: int | float
    span: Span | None = hidden()


class Str(Record):
    value: str
    span: Span | None = hidden()


class Bool(Record):
    value: bool
    span: Span | None = hidden()


class Name(Record):
    id: str
    span: Span | None = hidden()


class InShape(Record):
    """``in.channels`` and friends: the shape of the tensor flowing into the item."""

    attr: str
    span: Span | None = hidden()


class BinOp(Record):
    op: str
    left: "Expr"
    right: "Expr"
    span: Span | None = hidden()


class Unary(Record):
    op: str  # "-", "+", "not"
    operand: "Expr"
    span: Span | None = hidden()


class IfExp(Record):
    test: "Expr"
    body: "Expr"
    orelse: "Expr"
    span: Span | None = hidden()


class Call(Record):
    func: str
    args: tuple["Expr", ...] = ()
    kwargs: tuple[tuple[str, "Expr"], ...] = ()
    span: Span | None = hidden()


class ListExpr(Record):
    items: tuple["Expr", ...]
    span: Span | None = hidden()


class MapExpr(Record):
    items: tuple[tuple[str, "Expr"], ...]
    span: Span | None = hidden()
    key_spans: tuple[Span | None, ...] = hidden(())


Expr = Union[Num, Str, Bool, Name, InShape, BinOp, Unary, IfExp, Call, ListExpr, MapExpr]


class Symbol(str):
    """An unbound bare name used as a value (``same``, ``bilinear``, ``hflip``)."""

    span: Span | None

    def __new__(cls, name: str, span: Span | None = None):
        s = super().__new__(cls, name)
        s.span = span
        return s


# ----------------------------------------------------------------------------- evaluation

# Bounds on values and on work, so no expression can take long or use much memory, whatever its
# operators: every value (literal, intermediate or result) and every evaluation is checked.
MAX_ITEMS = 10_000      # elements of a list or mapping value, nested ones included
MAX_STR = 10_000        # characters of a string value
MAX_STEPS = 100_000     # work units of one evaluation: one per node, plus the size of lists built

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}

_IN_ATTRS = {"channels": 0, "c": 0, "height": 1, "h": 1, "width": 2, "w": 2}


def _make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never below 90% of value."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _round(number: Any, ndigits: Any = None) -> Any:
    """``round``, without building ``10**-ndigits`` for an integer (``round(1, -10**8)`` would)."""
    if isinstance(number, int) and isinstance(ndigits, int) and not isinstance(ndigits, bool):
        if ndigits >= 0:
            return number
        if ndigits < -len(str(MAX_INT)):  # |number| <= MAX_INT < 10**-ndigits / 2: rounds to 0
            return 0
    return round(number, ndigits)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "round": _round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt,
    "make_divisible": _make_divisible,
}


class Env:
    """Names visible to an expression, plus the incoming shape for ``in.*``."""

    __slots__ = ("names", "in_shape", "allow_calls")

    def __init__(self, names: Mapping[str, Any], in_shape: tuple[int, ...] | None = None,
                 allow_calls: bool = False):
        self.names = names
        self.in_shape = in_shape
        self.allow_calls = allow_calls  # train section: unknown calls become {"type": name, ...}


def magnitude(value: Any) -> str:
    """A number for a message: ``1e+30``, or ``a number of about 4,300 digits`` where a float
    cannot hold it (formatting such an int with ``:g`` raises OverflowError)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        if value.bit_length() < 1000:
            return f"{float(value):.3g}"
        return f"a number of about {int(value.bit_length() * math.log10(2)):,} digits"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def check_number(value: Any, span: Span | None) -> Any:
    """A number within cnndsl's range: |int| ≤ MAX_INT, floats finite."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise error(f"number {magnitude(value)} is too large (limit {MAX_INT:.0e})", span,
                    "no network needs numbers this large; is a digit or an operator wrong?")
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"expression gives {value}", span, "check for overflow or division by zero")
    if isinstance(value, complex):
        raise error(f"expression gives the complex number {value}", span,
                    "a negative number raised to a fractional power has no real value")
    return value


def check_value(value: Any, span: Span | None = None, steps: list[int] | None = None) -> Any:
    """A plain value (from an expression, YAML, --set or the Python API) within the bounds above:
    numbers in range, strings up to MAX_STR characters, lists/mappings up to MAX_ITEMS elements in
    all. Linear in the size, and stops at the first element over the bound."""
    count = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple, dict)):
            count += len(v)
            if count > MAX_ITEMS:
                raise _too_many(span)
            stack.extend(v.values() if isinstance(v, dict) else v)
        elif isinstance(v, str):
            if len(v) > MAX_STR:
                raise error(f"string too long ({len(v):,} characters; the limit is {MAX_STR:,})", span)
        else:
            check_number(v, span)
    if steps is not None:
        _spend(steps, count, span)
    return value


def _too_many(span: Span | None):
    return error(f"value too large: more than {MAX_ITEMS:,} list or mapping elements", span,
                 "expressions build small values (shapes, channel lists); is a list doubling?")


def _spend(steps: list[int], n: int, span: Span | None) -> None:
    steps[0] -= n
    if steps[0] < 0:
        raise error(f"expression too expensive to evaluate (more than {MAX_STEPS:,} steps)", span,
                    "simplify the expression")


def _need_value(v: Any, env: Env, span: Span | None) -> Any:
    if isinstance(v, Symbol):
        hint = did_you_mean(str(v), env.names) or "names available here: " + (
            ", ".join(sorted(env.names)) or "none")
        raise error(f"unknown name '{v}'", v.span or span, hint)
    return v


def evaluate(e: Expr, env: Env) -> Any:
    """Evaluate an expression. Raises CnnError (with the span) on any problem, including a value
    or an amount of work beyond the bounds (MAX_INT, MAX_ITEMS, MAX_STR, MAX_STEPS)."""
    return _eval(e, env, [MAX_STEPS])


def _eval(e: Expr, env: Env, steps: list[int]) -> Any:
    _spend(steps, 1, e.span)
    kind = type(e)
    if kind is Num:
        return check_number(e.value, e.span)
    if kind is Str:
        return check_value(e.value, e.span)
    if kind is Bool:
        return e.value
    if kind is Name:
        if e.id in env.names:
            return env.names[e.id]
        return Symbol(e.id, e.span)
    if kind is InShape:
        return _in_shape(e, env)
    if kind is BinOp:
        a = _need_value(_eval(e.left, env, steps), env, e.span)
        b = _need_value(_eval(e.right, env, steps), env, e.span)
        return _binop(e, a, b, steps)
    if kind is Unary:
        v = _eval(e.operand, env, steps)
        if e.op == "not":
            return not _need_value(v, env, e.span)
        v = _need_value(v, env, e.span)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise error(f"unary '{e.op}' needs a number, got {describe(v)}", e.span)
        return -v if e.op == "-" else v
    if kind is IfExp:
        test = _need_value(_eval(e.test, env, steps), env, e.test.span)
        return _eval(e.body if test else e.orelse, env, steps)
    if kind is ListExpr:
        return check_value([_eval(i, env, steps) for i in e.items], e.span, steps)
    if kind is MapExpr:
        return check_value({k: _eval(v, env, steps) for k, v in e.items}, e.span, steps)
    if kind is Call:
        return _call(e, env, steps)
    raise TypeError(f"not an expression: {e!r}")  # pragma: no cover - internal


def _binop(e: BinOp, a: Any, b: Any, steps: list[int]) -> Any:
    op = e.op
    if op in ("and", "or"):
        return (a and b) if op == "and" else (a or b)
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    if op in ("==", "!="):
        for v in (a, b):
            if isinstance(v, (list, dict)):
                check_value(v, e.span, steps)  # comparing costs the size of the values
        return _BINOPS[op](a, b)
    if not numeric:
        if op == "+" and isinstance(a, list) and isinstance(b, list):
            if len(a) + len(b) > MAX_ITEMS:
                raise _too_many(e.span)  # refused before building the sum
            return check_value(a + b, e.span, steps)
        if op in ("<", "<=", ">", ">=") and isinstance(a, str) and isinstance(b, str):
            return _BINOPS[op](a, b)
        raise error(f"operator '{op}' needs numbers, got {describe(a)} and {describe(b)}", e.span)
    if op in ("/", "//", "%") and b == 0:
        raise error("division by zero", e.span, f"the right side of '{op}' evaluates to 0 here")
    if op == "**" and isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0 \
            and b * math.log2(abs(a)) > 64:  # would build a huge integer before the range check
        raise error(f"{a} ** {b} is too large (limit {MAX_INT:.0e})", e.span)
    try:
        return check_number(_BINOPS[op](a, b), e.span)
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        raise error(f"cannot compute {magnitude(a)} {op} {magnitude(b)}: {exc}", e.span) from None
def _in_shape(e: InShape, env: Env) -> Any:
    shape = env.in_shape
    if shape is None:
        raise error(f"'in.{e.attr}' is not available here", e.span,
                    "'in' is the shape flowing into a layer; use it in layer arguments and conditions")
    if e.attr == "shape":
        return list(shape)
    if e.attr == "rank":
        return len(shape)
    if e.attr in ("features", "f", "numel", "size"):
        return math.prod(shape)
    if e.attr in _IN_ATTRS:
        axes, letter = axes_of(shape), "CHW"[_IN_ATTRS[e.attr]]
        if len(shape) != 3 or letter not in axes:
            raise error(f"'in.{e.attr}' needs a C×H×W input, but the input here is {format_shape(shape)}",
                        e.span, "use 'in.features' for vectors" if len(shape) == 1 else "use in.shape")
        return shape[axes.index(letter)]
    raise error(f"unknown shape attribute 'in.{e.attr}'", e.span,
                did_you_mean(e.attr, [*_IN_ATTRS, "shape", "rank", "features"])
                or "use in.channels, in.height, in.width, in.features, in.shape or in.rank")


def _call(e: Call, env: Env, steps: list[int]) -> Any:
    fn = FUNCTIONS.get(e.func)
    if fn is None:
        if env.allow_calls:  # train section: `sgd(lr=0.1)` is a typed object
            out: dict[str, Any] = {"type": e.func}
            if e.args:
                out["args"] = [_eval(a, env, steps) for a in e.args]
            out.update({k: _eval(v, env, steps) for k, v in e.kwargs})
            return check_value(out, e.span, steps)
        raise error(f"unknown function '{e.func}'", e.span,
                    did_you_mean(e.func, FUNCTIONS) or "functions: " + ", ".join(sorted(FUNCTIONS)))
    args = [_need_value(_eval(a, env, steps), env, a.span) for a in e.args]
    kwargs = {k: _need_value(_eval(v, env, steps), env, v.span) for k, v in e.kwargs}
    check_value([args, kwargs], e.span, steps)  # min/max walk their list: pay for it
    try:
        return check_value(fn(*args, **kwargs), e.span)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        raise error(f"{e.func}(): {exc}", e.span,
                    f"check the arguments of {e.func}; see docs/language.md for its signature") from None


def describe(v: Any) -> str:
    if isinstance(v, Symbol):
        return f"the name '{v}'"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the string {v!r}"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def format_shape(shape: tuple[int, ...] | list[int]) -> str:
    """``32×8×8``, ``vector of 10``, ``8×8×96 (H×W×C)`` after a permute."""
    text = "×".join(str(s) for s in shape) if len(shape) != 1 else f"vector of {shape[0]}"
    axes = axes_text(tuple(shape)) if isinstance(shape, tuple) else ""
    return f"{text} ({axes})" if axes else text


# ----------------------------------------------------------------------------- printing

_PREC = {"if": 1, "or": 2, "and": 3, "not": 4, "==": 5, "!=": 5, "<": 5, "<=": 5, ">": 5, ">=": 5,
         "+": 6, "-": 6, "*": 7, "/": 7, "//": 7, "%": 7, "neg": 8, "**": 9}


def format_expr(e: Expr, prec: int = 0) -> str:
    """Canonical source text of an expression (minimal parentheses)."""
    kind = type(e)
    if kind is Num:
        v = e.value
        if isinstance(v, float) and math.isinf(v):
            text = "1e999" if v > 0 else "-1e999"
        else:
            text = repr(v)
        return f"({text})" if text.startswith("-") and prec > _PREC["neg"] else text
    if kind is Str:
        return '"' + e.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if kind is Bool:
        return "true" if e.value else "false"
    if kind is Name:
        return e.id
    if kind is InShape:
        return f"in.{e.attr}"
    if kind is BinOp:
        p = _PREC[e.op]
        right_p = p if e.op == "**" else p + 1
        left_p = p + 1 if e.op == "**" or p == _PREC["=="] else p  # comparisons do not chain
        text = f"{format_expr(e.left, left_p)} {e.op} {format_expr(e.right, right_p)}"
        return f"({text})" if p < prec else text
    if kind is Unary:
        p = _PREC["not" if e.op == "not" else "neg"]
        text = ("not " if e.op == "not" else e.op) + format_expr(e.operand, p)
        return f"({text})" if p < prec else text
    if kind is IfExp:
        text = f"{format_expr(e.body, 2)} if {format_expr(e.test, 2)} else {format_expr(e.orelse, 1)}"
        return f"({text})" if prec > 1 else text
    if kind is ListExpr:
        return "[" + ", ".join(format_expr(i) for i in e.items) + "]"
    if kind is MapExpr:
        return "{" + ", ".join(f"{k}: {format_expr(v)}" for k, v in e.items) + "}"
    if kind is Call:
        parts = [format_expr(a) for a in e.args] + [f"{k}={format_expr(v)}" for k, v in e.kwargs]
        return f"{e.func}(" + ", ".join(parts) + ")"
    raise TypeError(f"not an expression: {e!r}")  # pragma: no cover


def literal(value: Any, span: Span | None = None) -> Expr:
    """Wrap a plain Python value (from YAML or --set) as an expression."""
    if isinstance(value, bool):
        return Bool(value, span)
    if isinstance(value, (int, float)):
        return Num(check_number(value, span), span)
    if isinstance(value, str):
        return Str(value, span)
    if isinstance(value, list):
        return ListExpr(tuple(literal(v, span) for v in value), span)
    if isinstance(value, dict):
        return MapExpr(tuple((str(k), literal(v, span)) for k, v in value.items()), span)
    raise TypeError(f"cannot use {type(value).__name__} as a value")
