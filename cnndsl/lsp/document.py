"""One editor buffer, analysed the way ``cnndsl check`` analyses a file — from the buffer's text, with
imports resolved relative to the file (preferring other unsaved buffers) — plus an index from source
positions to the layers expanded from them. No torch, no pygls: plain data the server translates.

Positions here are 0-based (line, column in code points); cnndsl spans are 1-based.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import CnnError, Diagnostic, Span

if TYPE_CHECKING:
    from ..analysis import Analysis, LayerInfo
    from ..graph import Container
    from ..ir import BlockDef, Spec

Pos = tuple[int, int]


@dataclass
class Entry:
    """Everything expanded from one source position: layer instances, or block/stage instances."""

    line: int                       # 0-based
    col: int
    end_col: int
    layers: list["LayerInfo"] = field(default_factory=list)
    containers: list["Container"] = field(default_factory=list)


@dataclass
class Result:
    """A buffer's analysis: diagnostics (errors and warnings, like ``check``), the spec and the
    expanded network when they could be built, and the position index."""

    path: str
    text: str
    diagnostics: list[Diagnostic]
    spec: "Spec | None" = None
    analysis: "Analysis | None" = None
    entries: dict[int, list[Entry]] = field(default_factory=dict)  # by line, sorted by column

    def blocks(self) -> dict[str, "BlockDef"]:
        """Blocks visible in the buffer: its own and imported ones (from the last parse)."""
        return {b.name: b for b in self.spec.blocks} if self.spec else {}


def is_yaml(path: str, text: str) -> bool:
    from ..syntax.source import detect_format

    return detect_format(text, path) == "yaml"


_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:", re.M)


def looks_like_spec(text: str) -> bool:
    """A YAML text with at least one of cnndsl's top-level keys (or no keys yet)."""
    keys = set(_TOP_KEY.findall(text))
    return not keys or bool(keys & {"imports", "blocks", "network", "train"})


def analyse(text: str, path: str, read: Callable[[Path], str] | None = None) -> Result:
    """Parse, resolve imports, expand and analyse ``text`` as the file ``path``. A bug in cnndsl
    becomes a diagnostic too, so the editor keeps working and the bug is seen."""
    try:
        return _analyse(text, path, read)
    except Exception as exc:  # noqa: BLE001 - an internal error, reported where the user looks
        message = f"cnndsl internal error: {type(exc).__name__}: {exc}"
        return Result(path, text, [Diagnostic(message, None, "this is a bug in cnndsl; please report it")])


def _analyse(text: str, path: str, read: Callable[[Path], str] | None) -> Result:
    from ..api import analyze
    from ..syntax.source import parse_text, read_file, resolve_imports

    result = Result(path, text, [])
    if is_yaml(path, text) and not looks_like_spec(text):
        return result  # some other YAML file (a CI workflow...): not ours to judge
    try:
        spec = parse_text(text, path)
        spec = resolve_imports(spec, Path(path).parent, read or read_file)
    except CnnError as exc:
        result.diagnostics += exc.diagnostics
        return result
    result.spec = spec
    if spec.network is not None:  # a block library has no network: nothing to expand (not an error here)
        try:
            result.analysis = analyze(spec)
            result.diagnostics += result.analysis.warnings
        except CnnError as exc:
            result.diagnostics += exc.diagnostics
    if spec.train:  # what `cnndsl check` says of it: the config, and the data against the network
        from ..train.preflight import preflight

        try:
            result.diagnostics += preflight(spec, result.analysis).warnings
        except CnnError as exc:
            result.diagnostics += exc.diagnostics
    if result.analysis is not None:
        result.entries = index(result.analysis, path)
    return result


def same_file(span: Span | None, path: str) -> bool:
    if span is None:
        return False
    if span.file == path:
        return True
    try:
        return Path(span.file).resolve() == Path(path).resolve()
    except OSError:
        return False


def index(analysis: "Analysis", path: str) -> dict[int, list[Entry]]:
    """Entries by line for the layers and containers whose source position is in ``path``."""
    by_pos: dict[tuple[int, int], Entry] = {}

    def entry(span: Span) -> Entry:
        key = (span.line - 1, span.col - 1)
        if key not in by_pos:
            end = span.end_col - 1 if span.end_line == span.line and span.end_col else span.col
            by_pos[key] = Entry(key[0], key[1], end)
        return by_pos[key]

    for info in analysis.layers:
        if same_file(info.node.span, path):
            entry(info.node.span).layers.append(info)
    for c in analysis.graph.containers.values():
        if same_file(c.span, path) and c.output >= 0:
            entry(c.span).containers.append(c)
    lines: dict[int, list[Entry]] = {}
    for e in sorted(by_pos.values(), key=lambda e: (e.line, e.col)):
        lines.setdefault(e.line, []).append(e)
    return lines


def entry_at(result: Result, pos: Pos) -> Entry | None:
    """The entry a cursor is on: the last one starting at or before it on its line (so a layer's
    label and arguments count as the layer), else the line's first."""
    line, col = pos
    on_line = result.entries.get(line, [])
    before = [e for e in on_line if e.col <= col]
    if before:
        return before[-1]
    return on_line[0] if on_line else None


def outermost(containers: list["Container"]) -> list["Container"]:
    """Containers not nested in another of the list (``layer1``, not ``layer1.0``)."""
    paths = {c.path for c in containers}
    return [c for c in containers if not any(c.path.startswith(p + ".") for p in paths)]


def code_end(line: str) -> int:
    """Column where a line's code ends (before a trailing comment and spaces)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return len(line[:i].rstrip())
    return len(line.rstrip())


WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def word_at(text: str, pos: Pos) -> tuple[str, int, int] | None:
    """The identifier under the cursor: (word, start column, end column)."""
    lines = text.splitlines()
    if pos[0] >= len(lines):
        return None
    line = lines[pos[0]]
    for m in WORD.finditer(line):
        if m.start() <= pos[1] <= m.end():
            return m.group(), m.start(), m.end()
    return None
