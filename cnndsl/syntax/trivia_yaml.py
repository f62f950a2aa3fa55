"""Comments and extents of a YAML spec: PyYAML drops comments, so they are recovered from the text.

A ``#`` starts a comment where it is outside every token the YAML scanner produced and follows
whitespace or starts a line; the comment runs to the end of the line. Lines are counted the way
PyYAML counts them (``\\r\\n``, ``\\r``, ``\\n``, NEL, LS and PS each end a line), so positions agree
with the node marks the loader records.
"""

from __future__ import annotations

import bisect
from typing import Any

import yaml

from ..errors import Span
from .trivia import Comment, Trivia

_BREAKS = "\n\r\x85\u2028\u2029"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def end_mark(node: yaml.Node) -> Any:
    """Where a node's own text ends. PyYAML ends a block collection where the next token starts
    (after any comments that follow it); this is the end of its last scalar or flow collection."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node.end_mark


def extent(node: yaml.Node, filename: str, key: yaml.Node | None = None) -> Span:
    """The span from ``key`` (or the node) to the node's own end (1-based, end exclusive)."""
    start, end = (key or node).start_mark, end_mark(node)
    return Span(filename, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def yaml_trivia(text: str, filename: str, root: yaml.Node) -> Trivia:
    """The comments of a YAML spec, its blank lines and the extents of its train section's keys."""
    covered = []
    for tok in yaml.scan(text, Loader=_Loader):
        if isinstance(tok, yaml.ScalarToken):
            covered.append((tok.start_mark.index, tok.end_mark.index))
    covered.sort()
    starts = [s for s, _ in covered]
    comments: list[Comment] = []
    blank: set[int] = set()
    line, i, n = 1, 0, len(text)
    while i <= n:
        j = i
        while j < n and text[j] not in _BREAKS:
            j += 1
        row = text[i:j]
        if not row.strip():
            blank.add(line)
        col = _comment_col(row, i, covered, starts)
        if col is not None:
            code = row[:col].rstrip()
            comments.append(Comment(line, col + 1, row[col:].rstrip(), len(code) + 1 if code.strip() else 0))
        if j >= n:
            break
        j += 2 if text.startswith("\r\n", j) else 1
        i, line = j, line + 1
    return Trivia("yaml", filename, tuple(comments), frozenset(blank), _train_extents(root, filename))


def _comment_col(row: str, offset: int, covered: list, starts: list) -> int | None:
    col = row.find("#")
    while col >= 0:
        if col == 0 or row[col - 1] in " \t":
            k = bisect.bisect_right(starts, offset + col) - 1
            if k < 0 or covered[k][1] <= offset + col:
                return col
        col = row.find("#", col + 1)
    return None


def _train_extents(root: yaml.Node, filename: str) -> dict:
    out: dict = {}
    if not isinstance(root, yaml.MappingNode):
        return out
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == "train":
            out[("train",)] = extent(v, filename, k)
            if isinstance(v, yaml.MappingNode):
                for kk, vv in v.value:
                    if isinstance(kk, yaml.ScalarNode):
                        out[("train", kk.value)] = extent(vv, filename, kk)
    return out
