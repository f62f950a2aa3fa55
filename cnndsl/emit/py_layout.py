"""Laying out calls the way ``ruff format`` (black's style) does, so the emitted file is stable
under the formatter: a statement that fits in 88 columns stays on one line; otherwise its last
call opens, with the arguments on one indented line when they fit there, else one per line with a
trailing comma, each laid out again. A comment inside a call always opens it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

WIDTH = 88


@dataclass
class CallExpr:
    fn: str                                              # "nn.Conv2d", "BasicBlock"
    args: list["Expr"] = field(default_factory=list)     # rendered "name=value" or positional
    comments: list[str] = field(default_factory=list)    # one per argument ("" for none)
    brackets: str = "()"                                 # "[]": a list display

    def flat(self) -> str:
        return f"{self.fn}{self.brackets[0]}{', '.join(flat(a) for a in self.args)}{self.brackets[1]}"

    @property
    def has_comments(self) -> bool:
        return any(self.comments) or any(isinstance(a, KwArg) and isinstance(a.value, CallExpr)
                                         and a.value.has_comments or isinstance(a, CallExpr) and a.has_comments
                                         for a in self.args)


@dataclass
class KwArg:
    name: str
    value: "Expr"


Expr = str | CallExpr | KwArg


def class_call(cls: Any, args: Iterable[tuple[str, Expr | None, bool]]) -> CallExpr:
    """``Block(...)`` for an emitted class ``cls``: ``args`` are (name, written value or None to
    leave it out, required); required arguments go by position until the first keyword, a
    left-out one or one the class takes by keyword only (``keyword_only``, ``late``)."""
    out: list[Expr] = []
    positional = True
    for name, written, required in args:
        if written is None:
            positional = False
        elif required and positional and name not in cls.keyword_only and name not in cls.late:
            out.append(written)
        else:
            positional = False
            out.append(KwArg(name, written))
    return CallExpr(cls.name, out)


def flat(e: Expr) -> str:
    if isinstance(e, CallExpr):
        return e.flat()
    if isinstance(e, KwArg):
        return f"{e.name}={flat(e.value)}"
    return e


def _has_comments(e: Expr) -> bool:
    if isinstance(e, KwArg):
        return _has_comments(e.value)
    return isinstance(e, CallExpr) and e.has_comments


def _trailing(comment: str) -> str:
    return f"  # {comment}" if comment else ""


def lay_out(indent: int, prefix: str, e: Expr, suffix: str = "", comment: str = "") -> list[str]:
    """Lines of the statement ``prefix + e + suffix`` at ``indent`` spaces (comment at its end)."""
    pad = " " * indent
    one = pad + prefix + flat(e) + suffix
    if not _has_comments(e) and len(one + _trailing(comment)) <= WIDTH:
        return [one + _trailing(comment)]
    if isinstance(e, KwArg):
        return lay_out(indent, prefix + e.name + "=", e.value, suffix, comment)
    if not isinstance(e, CallExpr) or not e.args:
        return [one + _trailing(comment)]   # nothing to open: stays long
    head = pad + prefix + e.fn + e.brackets[0]
    tail = pad + e.brackets[1] + suffix + _trailing(comment)
    inner = " " * (indent + 4) + ", ".join(flat(a) for a in e.args)
    if not e.has_comments and len(inner) <= WIDTH and not (len(e.args) == 1 and isinstance(e.args[0], CallExpr)):
        return [head, inner, tail]
    if len(e.args) == 1 and not any(e.comments) and isinstance(e.args[0], CallExpr) and not e.args[0].has_comments:
        # black hugs nothing: a lone call argument goes on its own line, laid out again
        body = lay_out(indent + 4, "", e.args[0])
        return [head, *body, tail]
    lines = [head]
    comments = e.comments or [""] * len(e.args)
    for a, c in zip(e.args, comments):
        lines += lay_out(indent + 4, "", a, ",", c)
    lines.append(tail)
    return lines


def with_comment(indent: int, stmt: str, comment: str) -> str:
    """A statement with its shape comment, left off where the line would pass the width."""
    line = " " * indent + stmt
    if comment and len(line) + len(comment) + 4 <= 88:
        return f"{line}  # {comment}"
    return line
