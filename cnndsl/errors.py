"""Diagnostics: a source span, a message, a hint — rendered with the source line and a caret.

Every user error in cnndsl is a :class:`CnnError` carrying one or more :class:`Diagnostic`.
The CLI prints them and exits 2; the Python API raises them. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Iterable, Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True, eq=False)
class Source:
    """A text the front ends read (a spec file, a YAML value, a ``--set`` value) and its name.

    Spans point into their Source, so a diagnostic quotes the line of the text it was made from —
    never a line of another spec that happens to share the name (two inline specs are both
    ``"<string>"``). ``newlines`` is the line-break pattern of the syntax (YAML counts more breaks
    than the ``.cnn`` lexer does), so line numbers agree with the parser's.
    """

    name: str
    text: str = field(repr=False)
    newlines: str = "\n"

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n") if self.newlines == "\n" else re.split(self.newlines, self.text)

    def line(self, number: int) -> str | None:
        """The text of a 1-based line (without its line break), or None outside the text."""
        if not 1 <= number <= len(self.lines):
            return None
        line = self.lines[number - 1]
        return line[:-1] if line.endswith("\r") else line

    def span(self, line: int, col: int, end_line: int | None = None, end_col: int | None = None,
             offset: tuple[int, int] = (0, 0)) -> "Span":
        """A span in this text; ``offset`` (lines, columns) shifts positions of a text embedded in
        this one (a YAML value parsed on its own): lines always, columns on its first line only."""
        dl, dc = offset
        return Span(self.name, line + dl, col + (dc if line == 1 else 0),
                    None if end_line is None else end_line + dl,
                    None if end_col is None else end_col + (dc if end_line == 1 else 0), self)


@dataclass(frozen=True, slots=True)
class Span:
    """A position in a source file (1-based line and column; end is exclusive) and the text it is in.
    Line 0 names the file alone (a checkpoint, an image): no position, no quoted line."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None
    source: Source | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line >= 1 else self.file


@dataclass(frozen=True)
class Diagnostic:
    """One message about the user's input."""

    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = "error"
    notes: tuple[tuple[Span | None, str], ...] = ()

    def render(self, color: bool = False) -> str:
        return render(self, color=color)


class CnnError(Exception):
    """A user error: the spec, a file or an argument is wrong. Carries the diagnostics."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__(self.render())

    @property
    def span(self) -> Span | None:
        return self.diagnostics[0].span if self.diagnostics else None

    def render(self, color: bool = False) -> str:
        return "\n".join(d.render(color=color) for d in self.diagnostics)


def error(message: str, span: Span | None = None, hint: str | None = None,
          notes: Iterable[tuple[Span | None, str]] = ()) -> CnnError:
    """Build a CnnError with one diagnostic (``raise error(...)``)."""
    return CnnError(Diagnostic(message, span, hint, "error", tuple(notes)))


def warning(message: str, span: Span | None = None, hint: str | None = None) -> Diagnostic:
    return Diagnostic(message, span, hint, "warning")


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint for a misspelt name, or None."""
    import difflib  # only when a name is wrong

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


# ----------------------------------------------------------------------------- rendering

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "note": "\033[1;36m",
           "bold": "\033[1m", "blue": "\033[1;34m", "reset": "\033[0m"}


def _paint(text: str, what: str, color: bool) -> str:
    return f"{_COLORS[what]}{text}{_COLORS['reset']}" if color else text


# Control characters and the bidirectional overrides that reorder text on screen ("trojan source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_UNSAFE_ALL = re.compile("[\\t\\n" + _UNSAFE.pattern[1:])


def printable(text: str, newlines: bool = True) -> str:
    """``text`` with control characters written as escapes (``\\x1b``), so nothing a spec says can
    move the cursor, recolour the terminal or reorder what is shown. ``newlines=False`` escapes
    line breaks and tabs too (for one table cell or one quoted line)."""
    pattern = _UNSAFE if newlines else _UNSAFE_ALL
    return pattern.sub(_escape, text) if pattern.search(text) else text


def _escape(m: re.Match) -> str:
    return ascii(m.group())[1:-1]


def _quote(span: Span, color: bool) -> list[str]:
    line = span.source.line(span.line) if span.source is not None else None
    if line is None:
        return []
    line = line.expandtabs(4) if "\t" not in line[: span.col] else line.replace("\t", " ")
    if _UNSAFE.search(line):  # escapes widen the line: move and widen the caret with them
        end = span.end_col if span.end_line == span.line and span.end_col else span.col + 1
        head, mid = (printable(part, newlines=False) for part in (line[: span.col - 1], line[span.col - 1: end - 1]))
        line = head + mid + printable(line[end - 1:], newlines=False)
        span = Span(span.file, span.line, len(head) + 1, span.line, len(head) + 1 + max(1, len(mid)), span.source)
    if len(line) > 160:  # keep the caret visible on very long lines
        start = max(0, span.col - 80)
        line, col = line[start:start + 160], span.col - start
    else:
        col = span.col
    width = 1
    if span.end_line == span.line and span.end_col and span.end_col > span.col:
        width = min(span.end_col - span.col, max(1, len(line) - col + 1))
    gutter = str(span.line)
    pad = " " * len(gutter)
    caret = " " * (col - 1) + "^" + "~" * (width - 1)
    return [f" {_paint(gutter, 'blue', color)} | {line}",
            f" {pad} | {_paint(caret, 'error', color)}"]


def render(d: Diagnostic, color: bool = False) -> str:
    """``file:line:col: error: message``, the source line with a caret, then hint and notes.

    Text that comes from the user (file names, names and values quoted in messages, source lines)
    is shown with its control characters escaped (:func:`printable`)."""
    where = f"{printable(str(d.span), False)}: " if d.span else "cnndsl: "
    out = [_paint(where, "bold", color) + _paint(d.severity + ":", d.severity, color) + " " + printable(d.message)]
    if d.span:
        out += _quote(d.span, color)
    for span, text in d.notes:
        out.append(f"{printable(str(span), False)}: {_paint('note:', 'note', color)} {printable(text)}" if span
                   else f"  note: {printable(text)}")
        if span:
            out += _quote(span, color)
    if d.hint:
        out.append(f"  {_paint('hint:', 'note', color)} {printable(d.hint)}")
    return "\n".join(out)


def use_color(stream=sys.stderr) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ
