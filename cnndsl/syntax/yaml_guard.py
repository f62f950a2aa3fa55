"""The YAML loader's guards, run before anything is built: a bracket-depth pre-scan and an event
scan (libyaml when available) that refuse anchors/aliases, non-standard tags, several documents, deep
nesting and too many values; PyYAML's own errors become diagnostics at their line (with a hint when
the line is mis-indented)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import Source, Span, error
from .limits import MAX_NESTING, MAX_TOKENS

MAX_YAML_DEPTH = 2 * MAX_NESTING  # each structural level of a spec is two YAML levels
MAX_YAML_NODES = MAX_TOKENS       # scalars, lists and mappings in one document
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STD_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


def short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


# a comment, a quoted string (to its closing quote, lines included) or one flow bracket
_FLOW_SCAN = re.compile(r"#[^\n]*|\"[^\"]*\"?|'[^']*'?|[\[\]{}]")


def prescan(source: Source) -> None:
    """Cheap flow-bracket depth check, so no parser ever sees absurd nesting (one regex pass)."""
    depth, text = 0, source.text
    for m in _FLOW_SCAN.finditer(text):
        ch = m.group()
        if ch in ("[", "{"):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                at = m.start()
                raise error(f"YAML nesting depth > {MAX_YAML_DEPTH}",
                            source.span(text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)),
                            "specs never need this much nesting")
        elif ch in ("]", "}"):
            depth -= 1


def scan_events(source: Source) -> None:
    """Refuse tags, anchors, several documents, deep nesting and too many nodes, event by event
    (before any node tree is composed)."""
    depth, docs, nodes = 0, 0, 0
    try:
        for ev in yaml.parse(source.text, Loader=LOADER):
            if isinstance(ev, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise error(f"spec too long: more than {MAX_YAML_NODES:,} YAML values",
                                mark_span(ev.start_mark, source),
                                "a network this size is written with blocks and repeats, not item by item")
            tag = getattr(ev, "tag", None)
            if tag is not None and tag not in STD_TAGS and tag != "!":
                raise error(f"YAML tag {short_tag(tag)} is not allowed", mark_span(ev.start_mark, source),
                            "cnndsl specs hold plain data (mappings, lists, numbers, strings); remove the tag")
            if isinstance(ev, yaml.AliasEvent) or getattr(ev, "anchor", None):
                raise error("YAML anchors/aliases are not allowed in cnndsl specs", mark_span(ev.start_mark, source),
                            "write the repeated part out, or define a block and call it")
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise error(f"YAML nesting depth > {MAX_YAML_DEPTH}", mark_span(ev.start_mark, source))
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(ev, yaml.DocumentStartEvent):
                docs += 1
                if docs > 1:
                    raise error("the YAML stream holds more than one document", mark_span(ev.start_mark, source),
                                "a spec is a single YAML document")
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from None


def mark_span(mark: Any, source: Source) -> Span:
    return source.span(mark.line + 1, mark.column + 1)


def yaml_error(exc: yaml.YAMLError, source: Source):
    text = source.text
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    lines = source.lines
    span = mark_span(mark, source) if mark else source.span(1, 1)
    if text.splitlines() and span.line > len(text.splitlines()):  # at the end of the stream: after the last text
        last = len(text.rstrip().splitlines()) or 1
        span = source.span(last, len(lines[last - 1].rstrip()) + 1)
    line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
    if line[span.col - 1:span.col] == "\t" or (problem and "tab" in problem.lower()):
        hint = "YAML indentation must use spaces, not tabs"
    elif indentation := _misindented(lines, span.line):
        hint = indentation
    else:
        hint = "check the indentation, the ':' after each key and the closing brackets and quotes"
    notes = []
    if context_mark is not None and context and mark_span(context_mark, source) != span:
        notes.append((mark_span(context_mark, source), f"{context}: it starts here"))
    return error(f"invalid YAML: {problem}", span, hint, notes)


def _misindented(lines: list[str], lineno: int) -> str | None:
    """A hint naming the indentation when line ``lineno`` starts at a column no open block allows."""
    def indent(text: str) -> int:
        return len(text) - len(text.lstrip(" "))

    if not 0 < lineno <= len(lines) or not lines[lineno - 1].strip():
        return None
    me, allowed, floor, prev = indent(lines[lineno - 1]), set(), None, None
    for text in reversed(lines[:lineno - 1]):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        ind = indent(text)
        if prev is None:
            prev = text
        if floor is None or ind < floor:  # an enclosing line (or the one just before)
            floor = ind
            allowed.add(ind)
            if text.lstrip().startswith("- "):
                allowed.add(ind + 2)
    if prev is None or me in allowed or (prev.rstrip().endswith(":") and me > indent(prev)):
        return None
    levels = ", ".join(str(i) for i in sorted(allowed))
    spaces = f"{me} space" + ("" if me == 1 else "s")
    return (f"indentation: line {lineno} starts at column {me + 1} ({spaces}), but the lines above open "
            f"blocks at {levels} spaces; indent it like the key or list item it belongs to")
