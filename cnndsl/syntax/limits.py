"""Input limits, checked before anything expensive runs.

Each bound is checked by a linear scan before the work it bounds: the file size before reading,
the number of tokens before the LALR parser builds a tree (a tree node costs far more than a
scanned character), nesting before anything recursive, number literals before ``int()``.
"""

from __future__ import annotations

import math
import re

from ..errors import Source, Span, error
from ..expr import MAX_INT

MAX_FILE_BYTES = 1 << 20     # 1 MiB: larger spec files are refused before parsing
MAX_NESTING = 64             # nested groups / branches / blocks bodies / brackets
MAX_EXPR_DEPTH = 400         # depth of any syntax tree (long expression chains)
MAX_TOKENS = 20_000          # tokens of a .cnn file or expression (2,000 unrolled layers: 12-16k; specs: < 320)

_INT_DIGITS = len(str(MAX_INT))


def check_text(text: str, source: Source | str) -> None:
    """Refuse empty, binary or oversized source text with a clear message."""
    if not isinstance(source, Source):
        source = Source(source, text)
    size = len(text.encode("utf-8", errors="replace")) if len(text) > MAX_FILE_BYTES // 4 else len(text)
    if size > MAX_FILE_BYTES:
        raise error(f"spec is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})",
                    Span(source.name, 1, 1), "split it into files and use 'import'")
    if "\x00" in text:
        raise error("spec looks like a binary file (it contains NUL bytes)", Span(source.name, 1, 1),
                    "cnndsl reads .cnn text files and YAML documents")
    if not text.strip():
        raise error("spec is empty", Span(source.name, 1, 1),
                    "a spec needs at least 'network Name { input 3x32x32 ... }'")


# comments and strings first (their contents are not tokens), then anything else that is not space
_TOKEN = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"?|[A-Za-z0-9_.]+|\*\*|//|[=!<>]=|\S')


def check_tokens(text: str, source: Source, offset: tuple[int, int] = (0, 0), what: str = "spec") -> None:
    """Refuse more than MAX_TOKENS tokens before parsing (linear; stops at the first one over).

    Parsing costs tens of microseconds and a tree node per token, so 200,000 ``relu`` (1 MB)
    would take many seconds and hundreds of MB before any later limit could apply."""
    if len(text) <= MAX_TOKENS:  # cannot hold more tokens than characters
        return
    count = 0
    for m in _TOKEN.finditer(text):
        if m.group()[0] != "#":
            count += 1
            if count > MAX_TOKENS:
                line = text.count("\n", 0, m.start()) + 1
                col = m.start() - text.rfind("\n", 0, m.start())
                raise error(f"{what} too long: more than {MAX_TOKENS:,} tokens", source.span(line, col, offset=offset),
                            "a network this size is written with blocks and repeats (x N), not item by item"
                            if what == "spec" else "expressions compute values, they do not list them")


def number_literal(text: str, span: Span | None) -> int | float:
    """The value of a number literal, refused beyond cnndsl's range before it is converted:
    integers above 10^18 (``int()`` of 4,300+ digits raises, and of fewer digits makes a huge
    number), floats that overflow to infinity."""
    if any(c in text for c in ".eE"):
        value = float(text)
        if not math.isfinite(value):
            raise error(f"number {_short(text)} is too large: it overflows a 64-bit float", span,
                        "floats must be finite (at most about 1.8e308)")
        return value
    if len(text.lstrip("0")) > _INT_DIGITS or int(text) > MAX_INT:
        raise error(f"number {_short(text)} is too large (limit {MAX_INT:.0e})", span,
                    "no network needs numbers this large; is a digit wrong?")
    return int(text)


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:10]}…{text[-6:]} ({len(text):,} characters)"
