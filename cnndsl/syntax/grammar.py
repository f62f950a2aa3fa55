"""The Lark LALR parser of the ``.cnn`` grammar (``cnn.lark``), built once and cached on disk."""

from __future__ import annotations

import functools
from contextvars import ContextVar
from pathlib import Path

from lark import Lark

GRAMMAR = Path(__file__).with_name("cnn.lark")

# where the lexer puts the COMMENT tokens it skips (a list while parse_cnn runs, else None)
COMMENTS: ContextVar[list | None] = ContextVar("cnndsl_comments", default=None)


def _on_comment(tok):
    sink = COMMENTS.get()
    if sink is not None:
        sink.append(tok)
    return tok


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """One parser for both start symbols: ``start`` (a file) and ``expr`` (a YAML or --set value)."""
    return Lark.open(str(GRAMMAR), parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=True, cache=True, start=["start", "expr"],
                     lexer_callbacks={"COMMENT": _on_comment})
