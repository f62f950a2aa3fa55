"""The expression rules of the ``.cnn`` tree → IR transformer (numbers, strings, names, calls,
lists, mappings, operators), mixed into :class:`cnndsl.syntax.parse._ToSpec`; and how a quoted
string token reads."""

from __future__ import annotations

from typing import Any

from .. import expr as E
from ..errors import Span, error
from .limits import number_literal


def unquote(tok: Any) -> str:
    """A STRING token's text, unquoted; any other token (a NAME such as ``freeze all``, an INT
    position, a TEMPLATE) as it is."""
    if getattr(tok, "type", "STRING") != "STRING":
        return str(tok)
    s = str(tok)[1:-1]
    return s.replace('\\"', '"').replace("\\\\", "\\") if "\\" in s else s


class ExprRules:
    """One method per expression rule of the grammar; ``sp``/``tsp`` (spans of a rule and of a token)
    come from the transformer."""

    def sp(self, meta: Any) -> Span | None:
        raise NotImplementedError

    def tsp(self, tok: Any) -> Span:
        raise NotImplementedError

    def number(self, meta, children):
        (tok,) = children
        return E.Num(number_literal(str(tok), self.tsp(tok)), self.tsp(tok))

    def string(self, meta, children):
        return E.Str(unquote(children[0]), self.tsp(children[0]))

    def true(self, meta, children):
        return E.Bool(True, self.sp(meta))

    def false(self, meta, children):
        return E.Bool(False, self.sp(meta))

    def name(self, meta, children):
        return E.Name(str(children[0]), self.tsp(children[0]))

    def inshape(self, meta, children):
        return E.InShape(str(children[0]), self.sp(meta))

    def funcall(self, meta, children):
        name, (args, kwargs) = children
        return E.Call(str(name), tuple(args), tuple((k.name, k.value) for k in kwargs), self.sp(meta))

    def list(self, meta, children):
        return E.ListExpr(tuple(c for c in children if c is not None), self.sp(meta))

    def mapping(self, meta, children):
        entries = [c for c in children if c is not None]
        seen: dict[str, Span] = {}
        for key, _, span in entries:
            if key in seen:
                raise error(f"key '{key}' is given twice", span, notes=[(seen[key], "first given here")])
            seen[key] = span
        return E.MapExpr(tuple((k, v) for k, v, _ in entries), self.sp(meta), tuple(s for _, _, s in entries))

    def entry(self, meta, children):
        key, value = children
        return str(key), value, self.tsp(key)

    def binop(self, meta, children):
        left, op, right = children
        return E.BinOp(str(op), left, right, self.sp(meta))

    def or_(self, meta, children):
        return E.BinOp("or", children[0], children[1], self.sp(meta))

    def and_(self, meta, children):
        return E.BinOp("and", children[0], children[1], self.sp(meta))

    def not_(self, meta, children):
        return E.Unary("not", children[0], self.sp(meta))

    def unary(self, meta, children):
        op, operand = children
        return E.Unary(str(op), operand, self.sp(meta))

    def ifexp(self, meta, children):
        body, test, orelse = children
        return E.IfExp(test, body, orelse, self.sp(meta))
