"""Comments and layout: what a formatter needs from the source that the IR does not hold.

The front ends record, besides the IR, a :class:`Trivia` on ``Spec.trivia``: the source syntax,
every comment (line, column, text, alone on its line or not), which lines are blank, and where the
train section's keys are. IR nodes carry their ``extent`` (label to condition, ``block`` to ``}``).
None of it takes part in equality, the canonical form or the hash.

At format time :func:`attach` gives each comment to an item, like black or prettier do:

- a comment alone on its line is a **leading** comment of the next item of the same body, or an
  **end** comment of the body when nothing follows it (written before the closing ``}``);
- a comment after code is a **trailing** comment of the item that ends on its line (of the
  last one, when several share the line), or a **header** comment of the construct whose opening
  line it ends (``features: {  # ...``); a comment inside a multi-line item trails that item;
- blank lines between items and comments are kept (runs of them become one).

Both writers look the notes up by node (``notes.of(node)``), so a comment written in one syntax
is carried to the other. An item is any IR node with a ``kind``; its nested bodies are its
``body`` and ``branches`` fields and any nested node that has a ``body`` (a ``shortcut``): a new
construct that follows these names gets comment placement with no change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Span
from ..node import Node

Pos = tuple[int, int]
_FAR = (1 << 30, 0)
ROOT = ("root",)


@dataclass(frozen=True)
class Comment:
    line: int        # 1-based, as the front end counts lines
    col: int         # 1-based column of '#'
    text: str        # from '#' to the end of the line, trailing whitespace removed
    code_end: int    # the column just after the code before it on its line; 0: alone on its line

    @property
    def own_line(self) -> bool:
        return self.code_end == 0


@dataclass(frozen=True)
class Trivia:
    """The source facts the formatter keeps (``Spec.trivia``)."""

    syntax: str                              # "cnn" or "yaml": the syntax the spec was read from
    file: str                                # the file the comments are in
    comments: tuple[Comment, ...] = ()
    blank_lines: frozenset[int] = frozenset()
    extents: Any = None                      # {("train",): Span, ("train", key): Span}


@dataclass
class Notes:
    """The comments of one item; ``None`` in ``leading`` and ``end`` is a blank line."""

    leading: list = field(default_factory=list)
    trailing: list = field(default_factory=list)
    header: list = field(default_factory=list)
    end: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.leading or self.trailing or self.header or self.end)


_EMPTY = Notes()


class CommentMap:
    """Notes by node (``of(node)``) or by pseudo key (``("train", key)``, ``("input", id(net))``)."""

    def __init__(self, trivia: Trivia | None = None):
        self.trivia = trivia
        self._notes: dict[Any, Notes] = {}
        self.spec_end: list = []     # comments after the last top-level construct

    @staticmethod
    def key(node: Any) -> Any:
        return node if isinstance(node, tuple) else id(node)

    def of(self, node: Any) -> Notes:
        return self._notes.get(self.key(node), _EMPTY)

    def edit(self, node: Any) -> Notes:
        return self._notes.setdefault(self.key(node), Notes())

    def any_inside(self, node: Any) -> bool:
        """Whether anything inside ``node`` has comments (its leading and trailing ones are outside)."""
        n = self.of(node)
        if n.header or n.end:
            return True
        return any(self.of(c) or self.any_inside(c) for body in bodies(node) for c in body)


# ----------------------------------------------------------------------------- the anchor tree


def is_item(x: Any) -> bool:
    return isinstance(x, Node) and hasattr(x, "kind")


def bodies(node: Any) -> list[list[Any]]:
    """The nested bodies of an item, in field order: ``body``, each of ``branches``, and a nested
    node that has a ``body`` (a shortcut) as a one-element body."""
    out: list[list[Any]] = []
    for fname in getattr(type(node), "model_fields", ()):
        v = getattr(node, fname)
        if fname == "body" and isinstance(v, tuple):
            out.append(list(v))
        elif fname == "branches" and isinstance(v, tuple):
            out += [list(b) for b in v]
        elif isinstance(v, Node) and isinstance(getattr(v, "body", None), tuple) and not is_item(v):
            out.append([v])
    return out


@dataclass
class _Anchor:
    key: Any                            # the node, or a pseudo key such as ("train", name)
    start: Pos
    end: Pos
    groups: list[list["_Anchor"]]       # bodies; blank lines are kept only between members of one
    container: bool
    nested: bool = False                # a shortcut: its leading comments end the body before it

    @property
    def children(self) -> list["_Anchor"]:
        return sorted((a for g in self.groups for a in g), key=lambda a: a.start)


def _pos(span: Any) -> tuple[Pos, Pos] | None:
    if span is None:
        return None
    start = (span.line, span.col)
    end = (span.end_line, span.end_col) if span.end_line is not None else start
    return start, end


def _anchor(node: Any, file: str, key: Any = None, span: Any = None) -> _Anchor | None:
    span = span or getattr(node, "extent", None) or getattr(node, "span", None)
    where = _pos(span)
    if where is None or span.file != file:
        return None
    if key is not None:
        return _Anchor(key, where[0], where[1], [], False)
    groups = [[a for a in (_anchor(n, file) for n in b) if a is not None] for b in bodies(node)]
    for g in groups:
        for a in g:
            a.nested = a.container and not is_item(a.key)
    container = hasattr(node, "body") or hasattr(node, "branches")
    return _Anchor(node, where[0], where[1], groups, container)


def _group(nodes: list, file: str) -> list[_Anchor]:
    return [a for a in (_anchor(n, file) for n in nodes) if a is not None]


def _tree(spec: Any, trivia: Trivia) -> _Anchor:
    f = trivia.file
    top: list[_Anchor] = _group(list(spec.imports), f)
    for b in spec.blocks:
        a = _anchor(b, f)
        if a is not None:
            top.append(a)
    net = spec.network
    if net is not None:
        a = _anchor(net, f)
        if a is not None:
            a.container = True
            inp = None if net.input_span is None else _anchor(net, f, key=("input", id(net)), span=net.input_span)
            a.groups = [[inp] if inp else [], _group(list(net.body), f), _group(list(net.outputs), f),
                        _group(list(net.freeze), f), _group(list(net.unfreeze), f),
                        _group([net.init] if net.init is not None else [], f)]
            top.append(a)
    extents = trivia.extents or {}
    if spec.train is not None and ("train",) in extents:
        s, e = _pos(extents[("train",)])
        keys = [_Anchor(("train", k), *_pos(extents[("train", k)]), [], False)
                for k in (spec.train if isinstance(spec.train, dict) else ()) if ("train", k) in extents]
        top.append(_Anchor(("train",), s, e, [keys], True))
    return _Anchor(ROOT, (0, 0), _FAR, [top], True)


# ----------------------------------------------------------------------------- placement


def attach(spec: Any) -> CommentMap:
    """Give every comment of ``spec.trivia`` to an item (see the module docstring)."""
    trivia = getattr(spec, "trivia", None)
    notes = CommentMap(trivia)
    if trivia is None:
        return notes
    root = _tree(spec, trivia)
    yaml = trivia.syntax == "yaml"
    ends: dict[Any, list] = {}
    for c in sorted(trivia.comments, key=lambda c: (c.line, c.col)):
        _place(c, root, notes, ends, yaml)
    reach: dict[int, int] = {}
    _reach(root, notes, ends, reach)
    _blank_lines(root, notes, ends, trivia.blank_lines, reach)
    return notes


def _place(c: Comment, parent: _Anchor, notes: CommentMap, ends: dict, yaml: bool) -> None:
    pos = (c.line, c.col)
    kids = parent.children
    for k in kids:
        if k.start <= pos < k.end:
            if k.container:
                return _place(c, k, notes, ends, yaml)
            notes.edit(k.key).trailing.append(c)  # inside a multi-line leaf
            return None
    before = [k for k in kids if k.end <= pos]
    prev = max(before, key=lambda k: k.end) if before else None
    after = [k for k in kids if k.start > pos]
    nxt = after[0] if after else None
    if not c.own_line:
        if not yaml and prev is not None and prev.end[0] == c.line and prev.end[1] != c.code_end \
                and nxt is not None and nxt.nested:  # `residual { ... }  # c` before `shortcut`: the residual's
            notes.edit(parent.key).trailing.append(c)
            return None
        if prev is not None and prev.end[0] == c.line:
            owner = parent
            while yaml and prev.container and prev.start[0] != prev.end[0] and prev.children \
                    and prev.children[-1].end[0] == c.line:
                owner, prev = prev, prev.children[-1]  # a block collection ends with its last item
            notes.edit(owner.key if prev.nested else prev.key).trailing.append(c)  # a shortcut's: its residual's
            return None
        if parent.key is not ROOT and prev is None and (yaml or c.line == parent.start[0]):
            notes.edit(parent.key).header.append(c)
            return None
    if yaml and prev is not None and prev.container and c.col > prev.start[1]:
        return _place_end(c, prev, notes, ends, yaml)  # indented under the construct before it
    if nxt is not None and not nxt.nested:
        notes.edit(nxt.key).leading.append(c)
    else:
        ends.setdefault(CommentMap.key(parent.key), []).append(c)
    return None


def _place_end(c: Comment, parent: _Anchor, notes: CommentMap, ends: dict, yaml: bool) -> None:
    kids = parent.children
    last = kids[-1] if kids else None
    if last is not None and last.container and c.col > last.start[1]:
        return _place_end(c, last, notes, ends, yaml)
    ends.setdefault(CommentMap.key(parent.key), []).append(c)
    return None


def _reach(a: _Anchor, notes: CommentMap, ends: dict, out: dict[int, int]) -> int:
    """The last source line an anchor's text or its comments take (``out``: by anchor id)."""
    n = notes.of(a.key)
    r = max([a.end[0], *(c.line for c in n.trailing + n.header + ends.get(CommentMap.key(a.key), []))])
    for kid in a.children:
        r = max(r, _reach(kid, notes, ends, out))
    out[id(a)] = r
    return r


def _blank_lines(parent: _Anchor, notes: CommentMap, ends: dict, blank: frozenset[int],
                 reach: dict[int, int]) -> None:
    """Order each item's leading comments and mark blank lines between them and the items (blank
    lines among an item's own comments are not between it and the next)."""

    def between(a: int, b: int) -> bool:
        return any(line in blank for line in range(a + 1, b))

    def marked(comments: list, cursor: int | None, stop: int | None) -> list:
        out: list = []
        for c in sorted(comments, key=lambda c: (c.line, c.col)):
            if cursor is not None and between(cursor, c.line):
                out.append(None)
            out.append(c)
            cursor = c.line
        if stop is not None and cursor is not None and between(cursor, stop):
            out.append(None)
        return out

    last_end = None
    for group in parent.groups:
        prev = None
        for a in sorted(group, key=lambda a: a.start):
            n = notes.edit(a.key)
            n.leading = marked(n.leading, reach[id(prev)] if prev else None, a.start[0])
            n.trailing.sort(key=lambda c: (c.line, c.col))
            if a.container:
                _blank_lines(a, notes, ends, blank, reach)
            prev = a
            last_end = max(last_end or 0, reach[id(a)])
    end = marked(ends.get(CommentMap.key(parent.key), []), last_end, None)
    if parent.key is ROOT:
        notes.spec_end = end
    else:
        notes.edit(parent.key).end = end
        notes.edit(parent.key).header.sort(key=lambda c: (c.line, c.col))


# ----------------------------------------------------------------------------- front ends


def blank_lines(lines: list[str]) -> frozenset[int]:
    return frozenset(i for i, line in enumerate(lines, 1) if not line.strip())


def _meta_span(meta: Any, filename: str) -> Span:
    return Span(filename, meta.line, meta.column, meta.end_line, meta.end_column)


def cnn_trivia(text: str, filename: str, tokens: list, tree: Any) -> Trivia:
    """The trivia of a ``.cnn`` file: the COMMENT tokens the lexer passed by, and the extents of the
    train section (``train`` to ``}``) and of each of its keys (key to value)."""
    lines = text.split("\n")
    comments = []
    for t in tokens:
        before = lines[t.line - 1][:t.column - 1] if t.line <= len(lines) else ""
        code = before.rstrip()
        comments.append(Comment(t.line, t.column, str(t).rstrip(), len(code) + 1 if code.strip() else 0))
    extents: dict[tuple, Any] = {}
    for node in getattr(tree, "children", ()):
        if getattr(node, "data", None) == "train_def":
            extents[("train",)] = _meta_span(node.meta, filename)
            mapping = node.children[0]
            for entry in mapping.children:
                if getattr(entry, "data", None) == "entry":
                    extents[("train", str(entry.children[0]))] = _meta_span(entry.meta, filename)
    return Trivia("cnn", filename, tuple(comments), blank_lines(lines), extents)
