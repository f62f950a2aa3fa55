"""The Lark LALR parser of the ``.cnn`` grammar (``cnn.lark``), built once and cached on disk."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark

GRAMMAR = Path(__file__).with_name("cnn.lark")


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """One parser for both start symbols: ``start`` (a file) and ``expr`` (a YAML or --set value)."""
    return Lark.open(str(GRAMMAR), parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=True, cache=True, start=["start", "expr"])
