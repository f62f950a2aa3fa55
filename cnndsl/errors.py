"""Diagnostics: a source span, a message, a hint — rendered with the source line and a caret.

Every user error in cnndsl is a :class:`CnnError` carrying one or more :class:`Diagnostic`.
The CLI prints them and exits 2; the Python API raises them. Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass
from typing import Iterable, Literal

Severity = Literal["error", "warning", "note"]

# Source texts by file name, so diagnostics can show the offending line. Filled by the front ends.
_SOURCES: dict[str, str] = {}


def remember_source(name: str, text: str) -> None:
    """Record a source text so diagnostics pointing into it can quote the line."""
    _SOURCES[name] = text


@dataclass(frozen=True, slots=True)
class Span:
    """A position in a source file (1-based line and column; end is exclusive). Line 0 names the
    file alone (a checkpoint, an image): no position, no quoted line."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

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
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


# ----------------------------------------------------------------------------- rendering

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "note": "\033[1;36m",
           "bold": "\033[1m", "blue": "\033[1;34m", "reset": "\033[0m"}


def _paint(text: str, what: str, color: bool) -> str:
    return f"{_COLORS[what]}{text}{_COLORS['reset']}" if color else text


def _source_line(span: Span) -> str | None:
    text = _SOURCES.get(span.file)
    if text is None:
        try:
            if os.path.isfile(span.file) and os.path.getsize(span.file) <= 1 << 20:
                with open(span.file, encoding="utf-8", errors="replace") as f:
                    text = f.read()
        except OSError:
            text = None
    if text is None:
        return None
    lines = text.splitlines()
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1]
    return None


def _quote(span: Span, color: bool) -> list[str]:
    line = _source_line(span) if span.line >= 1 else None
    if line is None:
        return []
    line = line.expandtabs(4) if "\t" not in line[: span.col] else line.replace("\t", " ")
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
    """``file:line:col: error: message``, the source line with a caret, then hint and notes."""
    where = f"{d.span}: " if d.span else "cnndsl: "
    out = [_paint(where, "bold", color) + _paint(d.severity + ":", d.severity, color) + " " + d.message]
    if d.span:
        out += _quote(d.span, color)
    for span, text in d.notes:
        out.append(f"{span}: {_paint('note:', 'note', color)} {text}" if span else f"  note: {text}")
        if span:
            out += _quote(span, color)
    if d.hint:
        out.append(f"  {_paint('hint:', 'note', color)} {d.hint}")
    return "\n".join(out)


def use_color(stream=sys.stderr) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ
