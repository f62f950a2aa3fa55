"""Input guards and friendly syntax errors for the ``.cnn`` front end.

Nesting is refused before anything recursive runs (a linear bracket scan, then the tree depth);
Lark's ``UnexpectedInput`` becomes a diagnostic with the expected tokens in words, the unclosed
bracket at end of file, and a hint taught by example (``examples.py``, via ``match_examples``).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterator

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import CnnError, Source, error
from .examples import POSITION_HINT, SYNTAX_EXAMPLES
from .grammar import parser
from .limits import MAX_EXPR_DEPTH, MAX_NESTING


# ----------------------------------------------------------------------------- nesting limits

_STRUCTURAL = {"group", "residual", "shortcut", "parallel", "branch", "body", "mapping", "list", "arglist"}


def check_depth(tree: Tree, source: Source, offset: tuple[int, int] = (0, 0)) -> None:
    """Refuse absurd nesting before anything recursive (pydantic, evaluation) sees the tree."""
    stack: list[tuple[Any, int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, nesting = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in _STRUCTURAL:
            nesting += 1
        if nesting > MAX_NESTING or depth > MAX_EXPR_DEPTH:
            m = node.meta
            span = None if m.empty else source.span(m.line, m.column, m.end_line, m.end_column, offset)
            what = f"nesting deeper than {MAX_NESTING} levels" if nesting > MAX_NESTING else \
                f"expression nesting deeper than {MAX_EXPR_DEPTH} levels"
            raise error(what, span, "flatten the structure, or use a repeat (x N) instead of deep nesting")
        stack.extend((child, depth + 1, nesting) for child in node.children)


# comments and strings (skipped: their brackets do not count), or one bracket
_BRACKET_SCAN = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"?|[()\[\]{}]')


def _brackets(text: str) -> Iterator[tuple[str, int]]:
    """Every bracket outside strings and comments, with its offset (one linear pass of a regex:
    text between brackets is skipped in C, so a 1 MB file costs milliseconds)."""
    for m in _BRACKET_SCAN.finditer(text):
        ch = m.group()
        if len(ch) == 1 and ch in "()[]{}":
            yield ch, m.start()


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset (lines end at '\\n', as lark counts them)."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def check_brackets(text: str, source: Source, offset: tuple[int, int] = (0, 0)) -> None:
    """Refuse bracket nesting deeper than MAX_NESTING before the parser runs (linear time).

    Parenthesised expressions leave no node in the tree, so ``check_depth`` cannot see them; without
    this, ``conv((((...1...))))`` 100,000 deep would take seconds to parse.
    """
    depth = 0
    for ch, at in _brackets(text):
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                line, col = _position(text, at)
                raise error(f"nesting deeper than {MAX_NESTING} levels", source.span(line, col, line, col + 1, offset),
                            "flatten the structure, or use a repeat (x N) instead of deep nesting")
        else:
            depth = max(0, depth - 1)


# ----------------------------------------------------------------------------- syntax errors

_FRIENDLY = {"NAME": "a name", "NUMBER": "a number", "INT": "a whole number", "STRING": "a string",
             "SHAPE": "a shape such as 3x32x32", "REPEAT": "a repeat such as x3", "$END": "end of file"}


def _describe_terminal(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    for t in parser().terminals:
        if t.name == name and t.pattern.type == "str":
            return f"'{t.pattern.value}'"
    return name.lower()


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type in ("NAME", "NUMBER", "INT", "STRING", "SHAPE"):
        noun = _FRIENDLY[tok.type].split(" such")[0].split(" ", 1)[1]  # "a name" → "name"
        return f"{noun} '{tok.value}'"
    return f"'{tok.value}'"


def syntax_error(exc: UnexpectedInput, source: Source, expression: bool = False) -> CnnError:
    """The diagnostic for a parse error in ``source`` (a whole file, or one ``expression``)."""
    text = source.text
    line, col = (exc.line, exc.column) if getattr(exc, "line", -1) not in (-1, None) else _eof_pos(text)
    span = source.span(line, col, line, col + 1)
    label = None
    try:
        label = exc.match_examples(functools.partial(parser().parse, start="start"), SYNTAX_EXAMPLES,
                                   use_accepts=True)
    except Exception:  # noqa: BLE001 - example matching is best effort
        label = None
    notes = []
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        message = f"unexpected character {char!r}"
        hint = label or _expected_hint(exc.allowed)
    elif isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
        tok = getattr(exc, "token", None)
        at_end = isinstance(exc, UnexpectedEOF) or (tok is not None and tok.type == "$END")
        if at_end:
            message = "unexpected end of file"
            span = source.span(*_eof_pos(text))
            opener = _unclosed(text)
            if opener:
                notes.append((source.span(*opener[1:], opener[1], opener[2] + 1),
                              f"this '{opener[0]}' is never closed"))
                closer = {"(": ")", "[": "]", "{": "}"}[opener[0]]
                # the example labels describe mid-file mistakes; at the end, the open bracket is the story
                label = (f"the expression ends inside this '{opener[0]}': is a '{closer}' missing?"
                         if expression else
                         f"the file ends inside the '{opener[0]}' opened on line {opener[1]}: "
                         f"is it truncated, or is a '{closer}' missing?")
        elif label == POSITION_HINT:
            message = f"'{tok.value}' is a position: items are referred to by name"
        else:
            message = f"unexpected {_describe_token(tok)}"
        hint = label or _expected_hint(getattr(exc, "accepts", None) or getattr(exc, "expected", set()))
    else:  # pragma: no cover - lark has no other UnexpectedInput subclasses
        message, hint = str(exc).splitlines()[0], label
    return error(message, span, hint, notes)


_CONTEXTUAL = {"BACKBONE", "INIT"}   # keywords only before a model name / a file name: not worth listing


def _expected_hint(names: Any) -> str | None:
    names = sorted({n for n in (names or ()) if not n.startswith("__") and n not in _CONTEXTUAL})
    if not names:
        return None
    shown = [_describe_terminal(n) for n in names]
    if len(shown) > 8:
        shown = shown[:8] + ["…"]
    return "expected " + ", ".join(shown)


def _eof_pos(text: str) -> tuple[int, int]:
    """Just after the last visible character, so the caret lands on a line that is shown."""
    stripped = text.rstrip()
    if not stripped:
        return 1, 1
    lines = stripped.split("\n")
    return len(lines), len(lines[-1]) + 1


def _unclosed(text: str) -> tuple[str, int, int] | None:
    """The innermost bracket left open at the end of the text (skipping strings and comments)."""
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch, at in _brackets(text):
        if ch in "([{":
            stack.append((ch, at))
        elif stack and stack[-1][0] == pairs[ch]:
            stack.pop()
    return (stack[-1][0], *_position(text, stack[-1][1])) if stack else None
