"""The Lark LALR parser of the ``.cnn`` grammar (``cnn.lark``), built once and cached on disk.

Building the LALR tables takes ~10× longer than loading them, so they are cached in the user's
cache folder (``$XDG_CACHE_HOME/cnndsl`` or ``~/.cache/cnndsl``), in a file named after a hash of
the grammar, the options and the lark version; lark checks that hash again when loading and
rebuilds a stale or damaged file. Where that folder cannot be created, lark's own cache in the
temporary directory is used. Beside it, :mod:`cnndsl.syntax.regex_cache` keeps the lexer's compiled
regular expressions (another 15–20 ms of every parse process).
"""

from __future__ import annotations

import functools
import hashlib
import os
from contextvars import ContextVar
from pathlib import Path

import lark
from lark import Lark

from . import regex_cache

GRAMMAR = Path(__file__).with_name("cnn.lark")
OPTIONS = dict(parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=True,
               start=["start", "expr"])


def cache_file() -> str | bool:
    """Where the parse tables are cached (``True``: lark's default place)."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnndsl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return True
    key = hashlib.sha256(GRAMMAR.read_bytes() + repr(sorted(OPTIONS.items())).encode()
                         + lark.__version__.encode()).hexdigest()[:24]
    return str(folder / f"cnn-lalr-{key}.lark")

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
    tables = cache_file()
    regexes = regex_cache.cache_path(tables)
    if regexes is not None and not regex_cache.preload(regexes):
        return regex_cache.record(lambda: _with_all_scanners(_open(tables)), regexes)
    return _open(tables)


def _open(tables: str | bool) -> Lark:
    return Lark.open(str(GRAMMAR), cache=tables, lexer_callbacks={"COMMENT": _on_comment}, **OPTIONS)


def _with_all_scanners(p: Lark) -> Lark:
    """Build the scanner of every lexer state now (lark builds each on first use), so that the
    regex cache holds them all."""
    lexer = getattr(getattr(p, "parser", None), "lexer", None)
    states = list(getattr(lexer, "lexers", {}).values()) + [getattr(lexer, "root_lexer", None)]
    for state in {id(s): s for s in states if s is not None}.values():
        getattr(state, "scanner", None)
    return p
