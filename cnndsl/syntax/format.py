"""Spec IR → ``.cnn`` text: the inverse of the parser, keeping comments and the user's line breaks.

``format_cnn(spec)`` round-trips (``parse(format_cnn(s)).canonical() == s.canonical()``) and is
idempotent (formatting its output gives the same text). The style:

- one blank line between top-level constructs, four-space indentation, ``conv(64, k=3)`` spacing;
- comments stay with their items (:mod:`cnndsl.syntax.trivia`); a trailing comment keeps its column
  (relative to the first item of its line) when the code before it leaves room, else follows two
  spaces after the code;
- items the user wrote on one line stay on one line while they fit ``width`` (100) columns, each
  at its column relative to the first when there is room, else two spaces after the previous;
  a longer run is wrapped at the last item that fits; a braced construct (``{ ... }``,
  ``concat { a | b }``) written on one line stays on one line when it fits and holds no comments;
  a call longer than the width gets one argument per line;
- a spec read from YAML or built in code has no line breaks to keep: one item per line, and a
  braced construct on one line when it has at most 4 items within 80 columns.

Imports stay imports: the blocks a spec imported are not written (``standalone=True`` writes
them instead of the ``import`` lines). A value with no ``.cnn`` spelling (``null`` in the train
section, a layer named ``concat``, a string holding a line break) raises ``ValueError`` naming it.

Each item kind has a method ``_item_<kind>`` here and ``_yitem_<kind>`` in
:mod:`cnndsl.syntax.format_yaml`: a new construct adds one method to each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir import BlockDef, NetworkDef, Param, Spec
from .format_data import data, data_key, format_value
from .spelling import ITEM_KEYWORDS, KEYWORDS, expr_text, located, name, quote, ref_text
from .trivia import Comment, Notes, attach, bodies

__all__ = ["format_cnn", "format_value", "format_yaml", "own_blocks"]

INDENT = "    "
WIDTH = 100         # lines are wrapped to this width (comments aside)
SEP = "  "          # between items on one line, when their source columns do not apply
INLINE_WIDTH = 80   # without source layout: a braced body is written on one line when it fits this
INLINE_ITEMS = 4    # ... and holds at most this many items


def format_cnn(spec: Spec, *, standalone: bool = False, width: int = WIDTH) -> str:
    """Idiomatic ``.cnn`` text for ``spec``: imports, blocks, the network, then ``train``."""
    return _CnnWriter(spec, width).write(standalone)


def format_yaml(spec: Spec, *, standalone: bool = False) -> str:
    """The YAML twin of :func:`format_cnn` (see :mod:`cnndsl.syntax.format_yaml`)."""
    from .format_yaml import format_yaml as write

    return write(spec, standalone=standalone)


def own_blocks(spec: Spec, standalone: bool = False) -> tuple[BlockDef, ...]:
    """The blocks the spec's own file defines (``cnndsl.load`` merges imported ones in: their
    spans name another file); all of them when ``standalone``."""
    if standalone or spec.path is None:
        return spec.blocks
    return tuple(b for b in spec.blocks if b.span is None or b.span.file == spec.path)


@dataclass
class _Row:
    """A line being filled with items: its text, the first item (columns are relative to it)."""

    text: str
    first: Any
    last: Any


class _CnnWriter:
    def __init__(self, spec: Spec, width: int):
        self.spec, self.width = spec, width
        self.notes = attach(spec)
        trivia = spec.trivia
        self.layout = trivia is not None and trivia.syntax == "cnn"
        self.file = trivia.file if trivia is not None else None
        self._cache: dict[tuple[int, int], list[str]] = {}

    # ------------------------------------------------------------------ positions and comments

    def ext(self, node: Any) -> Any:
        """The node's source extent when the layout of its source applies, else None."""
        if not self.layout:
            return None
        span = getattr(node, "extent", None)
        return span if span is not None and span.file == self.file else None

    def commented(self, line: str, c: Comment, ref: Any, out_col: int, offset: int = 0) -> str:
        """``line`` (which starts at column ``offset``) and the comment ``c``: at its source column
        relative to ``ref`` (the span of something written at ``out_col``) when that leaves a
        space, else SEP after the code."""
        pad = len(SEP)
        if ref is not None and self.layout and c.line == ref.line:
            want = out_col + (c.col - ref.col) - (offset + len(line))
            pad = want if want >= 1 else pad
        return line + " " * pad + c.text

    def finish(self, line: str, trailing: list, ref: Any, ind: str, out_col: int | None = None) -> list[str]:
        """The last line of an item with its trailing comments (the first on the line, the others
        on lines of their own after it); ``ref`` is written at ``out_col`` (default: ``ind``)."""
        if not trailing:
            return [line]
        col = len(ind) if out_col is None else out_col
        return [self.commented(line, trailing[0], ref, col), *(ind + c.text for c in trailing[1:])]

    @staticmethod
    def marks(entries: list, ind: str) -> list[str]:
        """Own-line comments, ``None`` being a blank line."""
        return ["" if c is None else ind + c.text for c in entries]

    def quiet(self, node: Any) -> bool:
        """No comment inside ``node`` (its leading and trailing ones are written outside it)."""
        n = self.notes.of(node)
        return not (n.header or n.end) and not any(
            self.notes.of(c) or not self.quiet(c) for b in bodies(node) for c in b)

    # ------------------------------------------------------------------ the file

    def write(self, standalone: bool) -> str:
        spec = self.spec
        sections: list[list[str]] = []
        if spec.imports and not standalone:
            lines: list[str] = []
            for i, imp in enumerate(spec.imports):
                n = self.notes.of(imp)
                lines += self.marks(_strip(n.leading) if i == 0 else n.leading, "")
                lines += self.finish(f"import {quote(imp.path)}", n.trailing, imp.span, "")
            sections.append(lines)
        for b in own_blocks(spec, standalone):
            with located(b.span):
                sections.append(self.definition("block", b, self.block_body(b)))
        if spec.network is not None:
            with located(spec.network.span):
                sections.append(self.definition("network", spec.network, self.network_body(spec.network)))
        if spec.train is not None:
            with located((spec.train_spans or {}).get(())):
                sections.append(self.train(spec.train))
        out: list[str] = []
        for lines in sections:
            if out:
                out.append("")
            out += lines
        out += self.marks(self.notes.spec_end if out else _strip(self.notes.spec_end), "")
        return "\n".join(out) + "\n"

    def definition(self, kw: str, d: BlockDef | NetworkDef, body: list[str]) -> list[str]:
        n = self.notes.of(d)
        head = f"{kw} {name(d.name, kw)}"
        if d.params:
            head += "(" + ", ".join(self.param(p) for p in d.params) + ")"
        head += " {"
        lines = self.marks(_strip(n.leading), "")
        lines.append(self.commented(head, n.header[0], self.ext(d), 0) if n.header else head)
        lines += [INDENT + c.text for c in n.header[1:]] + body + self.marks(n.end, INDENT)
        return lines + self.finish("}", n.trailing, None, "")

    @staticmethod
    def param(p: Param) -> str:
        pname = name(p.name, "parameter")
        return pname if p.default is None else f"{pname} = {expr_text(p.default)}"

    def block_body(self, b: BlockDef) -> list[str]:
        return self.body(b.body, INDENT)

    def network_body(self, net: NetworkDef) -> list[str]:
        dims = net.input
        if not dims:
            raise ValueError(f"network {net.name!r} has an empty input shape, which .cnn cannot write")
        if all(type(d).__name__ == "Num" and type(d.value) is int and d.value >= 0 for d in dims):
            text = "input " + "x".join(str(d.value) for d in dims)
        else:
            text = "input(" + ", ".join(expr_text(d) for d in dims) + ")"
        n = self.notes.of(("input", id(net)))
        lines = self.marks([c for c in n.leading if c is not None], INDENT)
        lines += self.finish(INDENT + text, n.trailing, net.input_span if self.layout else None, INDENT)
        lines += self.body(net.body, INDENT)
        for kw, nodes, text_of in (("output", net.outputs, lambda r: ref_text(r.path)),
                                   ("freeze", net.freeze, lambda p: quote(p.glob)),
                                   ("unfreeze", net.unfreeze, lambda p: quote(p.glob))):
            if nodes:
                lines += self.statement(kw, nodes, text_of)
        return lines

    def statement(self, kw: str, nodes: tuple, text_of) -> list[str]:
        """``output a, b`` / ``freeze "g"``: one line, with the comments of every part."""
        notes = [self.notes.of(x) for x in nodes]
        lines = self.marks([c for n in notes for c in n.leading if c is not None], INDENT)
        trailing = [c for n in notes for c in n.trailing]
        first = nodes[0].span if self.layout else None
        text = INDENT + f"{kw} " + ", ".join(text_of(x) for x in nodes)
        return lines + self.finish(text, trailing, first, INDENT, len(INDENT) + len(kw) + 1)

    def train(self, train: Any) -> list[str]:
        if not isinstance(train, dict):
            raise ValueError("the train section must be a mapping")
        extents = (self.spec.trivia.extents or {}) if self.layout else {}
        n = self.notes.of(("train",))
        lines = self.marks(_strip(n.leading), "")
        if not train and not (n.header or n.end):
            return lines + self.finish("train {}", n.trailing, None, "")
        head = "train {"
        lines.append(self.commented(head, n.header[0], extents.get(("train",)), 0) if n.header else head)
        lines += [INDENT + c.text for c in n.header[1:]]
        keys = list(train)
        for i, (k, v) in enumerate(train.items()):
            kn = self.notes.of(("train", k))
            with located((self.spec.train_spans or {}).get((k,))):
                text = f"{INDENT}{data_key(k)}: {data(v, INDENT, len(INDENT) + len(str(k)) + 2)}"
            if i + 1 < len(keys) and keys[i + 1] in KEYWORDS:
                text += ","  # a keyword as the next key could continue or end the value
            value = text.split("\n")
            ref = extents.get(("train", k)) if len(value) == 1 else None
            lines += self.marks(kn.leading, INDENT) + value[:-1] + self.finish(value[-1], kn.trailing, ref, INDENT)
        return lines + self.marks(n.end, INDENT) + self.finish("}", n.trailing, None, "")

    # ------------------------------------------------------------------ bodies

    def body(self, items: tuple, ind: str, pre: list | tuple = (), opener: Any = None) -> list[str]:
        """The lines of a body at indentation ``ind``; ``pre``: comments to write first; items on
        the line of the ``opener`` (a braced construct too long for one line) get a line each."""
        out = [ind + c.text for c in pre]
        row: _Row | None = None
        skip = opener.line if opener is not None else None
        for it in items:
            n = self.notes.of(it)
            lines = self.item(it, ind)
            if row is not None and len(lines) == 1 and not n.leading and self.same_line(row.last, it) \
                    and self.ext(it).line != skip:
                joined = self.join(row, it, lines[0][len(ind):], ind)
                if joined is not None:
                    row.text, row.last = joined, it
                    continue
            if row is not None:
                out += self.close(row, ind)
                row = None
            out += self.marks(n.leading, ind)
            if len(lines) == 1:
                row = _Row(lines[0], it, it)
            else:
                out += lines[:-1] + self.finish(lines[-1], n.trailing, None, ind)
        if row is not None:
            out += self.close(row, ind)
        return out

    def same_line(self, prev: Any, it: Any) -> bool:
        """``it`` starts on the source line where ``prev`` ends (and ``prev`` ends no comment)."""
        a, b = self.ext(prev), self.ext(it)
        return a is not None and b is not None and a.end_line == b.line and not self.notes.of(prev).trailing

    def join(self, row: _Row, it: Any, piece: str, ind: str) -> str | None:
        first, here = self.ext(row.first), self.ext(it)
        pad = len(SEP)
        if first is not None and here is not None and here.line == first.line:
            want = len(ind) + (here.col - first.col) - len(row.text)
            pad = want if want >= 1 else pad
        for p in dict.fromkeys((pad, len(SEP))):
            text = row.text + " " * p + piece
            if len(text) <= self.width:
                return text
        return None

    def close(self, row: _Row, ind: str) -> list[str]:
        return self.finish(row.text, self.notes.of(row.last).trailing, self.ext(row.first), ind)

    def row_text(self, items: tuple, ind: str) -> str | None:
        """A body on one line (``a  b  c``, at the items' relative source columns), or None when an
        item needs several lines."""
        row: _Row | None = None
        for it in items:
            lines = self.item(it, ind)
            if len(lines) != 1:
                return None
            piece = lines[0][len(ind):]
            if row is None:
                row = _Row(ind + piece, it, it)
                continue
            first, here = self.ext(row.first), self.ext(it)
            pad = len(SEP)
            if first is not None and here is not None and here.line == first.line:
                want = len(ind) + (here.col - first.col) - len(row.text)
                pad = want if want >= 1 else pad
            row.text += " " * pad + piece
            row.last = it
        return "" if row is None else row.text[len(ind):]

    # ------------------------------------------------------------------ items

    def item(self, it: Any, ind: str) -> list[str]:
        """An item as full lines at indentation ``ind``: on one line when it fits, else broken."""
        key = (id(it), len(ind))
        if key not in self._cache:
            with located(getattr(it, "span", None)):
                lines = self.render(it, ind, True)
                if len(lines) == 1 and len(lines[0]) > self.width:
                    lines = self.render(it, ind, False)
            self._cache[key] = lines
        return self._cache[key]

    def render(self, it: Any, ind: str, inline: bool) -> list[str]:
        core = getattr(self, f"_item_{it.kind}")(it, ind, inline)
        label = getattr(it, "name", None)
        lines = [ind + (f"{name(label, 'item', ITEM_KEYWORDS)}: " if label is not None else "") + core[0], *core[1:]]
        n = self.notes.of(it)
        if len(lines) > 1 and n.header:
            lines[0] = self.commented(lines[0], n.header[0], self.ext(it), len(ind))
        lines[-1] += self.suffix(it)
        return lines

    def suffix(self, it: Any) -> str:
        """`` x3 as i when c`` after an item."""
        text = ""
        repeat, when = getattr(it, "repeat", None), getattr(it, "when", None)
        if repeat is not None:
            c = repeat.count
            count = f"x{c.value}" if type(c).__name__ == "Num" and type(c.value) is int and c.value >= 0 \
                else f"x({expr_text(c)})"
            text += " " + count + ("" if repeat.index is None else " as " + name(repeat.index, "repeat index"))
        if when is not None:
            text += " when " + self.condition(when)
        return text

    @staticmethod
    def condition(e: Any) -> str:
        # after a condition that ends in a mapping's `}`, the lexer takes `network`, `train`, ...
        # (the name of the next item) for keywords; parentheses (no AST node) avoid that
        text = expr_text(e)
        return f"({text})" if text.endswith("}") else text

    def call(self, head: str, parts: list[str], ind: str, inline: bool) -> list[str]:
        """``head(a, b)``, or one part per line (with a trailing comma) when not ``inline``."""
        if inline or not parts:
            return [f"{head}(" + ", ".join(parts) + ")"]
        return [f"{head}(", *(ind + INDENT + p + "," for p in parts), ind + ")"]

    def _item_layer(self, it: Any, ind: str, inline: bool) -> list[str]:
        op = name(it.op, "layer", ITEM_KEYWORDS)
        if not it.args and not it.kwargs:
            return [op]
        parts = [expr_text(a) for a in it.args] + [f"{name(k.name, 'argument')}={expr_text(k.value)}"
                                                    for k in it.kwargs]
        return self.call(op, parts, ind, inline)

    def _item_merge(self, it: Any, ind: str, inline: bool) -> list[str]:
        if not it.refs:
            raise ValueError(f"a {it.merge}(...) merge with no references")
        return self.call(it.merge, [ref_text(r.path) for r in it.refs], ind, inline)

    def _item_from(self, it: Any, ind: str, inline: bool) -> list[str]:
        return [f"from {ref_text(it.ref.path)}"]

    def one_line(self, node: Any, body: tuple, ind: str, on_one_source_line: bool) -> str | None:
        """``body`` as one line when that is the layout to keep (or, without source layout, when it
        is short), else None."""
        if self.ext(node) is not None:
            return self.row_text(body, ind + INDENT) if on_one_source_line else None
        if len(body) > INLINE_ITEMS:
            return None
        text = self.row_text(body, ind + INDENT)
        return text if text is not None and len(text) <= INLINE_WIDTH else None

    def braced(self, node: Any, body: tuple, ind: str, text: str | None, notes: Notes | None = None) -> list[str]:
        """``{ text }``, or ``{`` + the body's lines + ``}`` (the header comment is the caller's)."""
        if text is not None:
            return [f"{{ {text} }}" if text else "{ }"]
        n = notes if notes is not None else self.notes.of(node)
        inner = ind + INDENT
        return ["{", *self.body(body, inner, n.header[1:], self.ext(node)), *self.marks(n.end, inner), ind + "}"]

    def _item_group(self, it: Any, ind: str, inline: bool) -> list[str]:
        ext = self.ext(it)
        text = self.one_line(it, it.body, ind, ext is not None and ext.line == ext.end_line) \
            if inline and self.quiet(it) else None
        return self.braced(it, it.body, ind, text)

    def _item_residual(self, it: Any, ind: str, inline: bool) -> list[str]:
        quiet, ext, sc = inline and self.quiet(it), self.ext(it), it.shortcut
        # the first line gets the item's indentation and label later: widths and columns are absolute
        lead = len(ind) + (len(it.name) + 2 if it.name is not None else 0)
        main_line = ext is not None and all(self.ext(x) is not None and self.ext(x).end_line == ext.line
                                            for x in it.body)
        main = self.one_line(it, it.body, ind, main_line) if quiet else None
        head = ""
        if sc is not None:
            head = "shortcut" + ("" if sc.name is None else " " + name(sc.name, "shortcut", {"when"}))
            head += "" if sc.when is None else " when " + self.condition(sc.when)
        if main is not None and lead + len(f"residual {{ {main} }} {head} {{") > self.width:
            main = None
        lines = ["residual " + l if i == 0 else l for i, l in enumerate(self.braced(it, it.body, ind, main))]
        if sc is None:
            return lines
        offset = 0 if len(lines) > 1 else lead
        sext = self.ext(sc)
        text = self.one_line(sc, sc.body, ind, sext is not None and sext.line == sext.end_line) if quiet else None
        if text is not None and offset + len(f"{lines[-1]} {head} {{ {text} }}{self.suffix(it)}") > self.width:
            text = None
        body = self.braced(sc, sc.body, ind, text)
        n = self.notes.of(sc)
        line = lines[-1] + " " + head + " " + body[0]
        if len(body) > 1 and n.header:
            line = self.commented(line, n.header[0], sext, offset + len(lines[-1]) + 1, offset)
        return [*lines[:-1], line, *body[1:]]

    def _item_parallel(self, it: Any, ind: str, inline: bool) -> list[str]:
        if not it.branches:
            raise ValueError(f"a {it.merge} {{ }} with no branches")
        ext = self.ext(it)
        if inline and self.quiet(it):
            texts = [self.one_line(it, b, ind, ext is not None and ext.line == ext.end_line) for b in it.branches]
            if all(t is not None for t in texts):
                words: list[str] = []
                for i, t in enumerate(texts):
                    words += (["|"] if i else []) + ([t] if t else [])  # an empty branch: nothing between bars
                inner = " ".join(words)
                if ext is not None or len(inner) <= INLINE_WIDTH:
                    return [f"{it.merge} {{ {inner} }}" if inner else f"{it.merge} {{ }}"]
        n, inner = self.notes.of(it), ind + INDENT
        lines = [f"{it.merge} {{"]
        # comments written after a branch's last item (or before the first) belong before the next
        # item, which may come after empty branches: they are carried over those
        carry = [inner + c.text for c in n.header[1:]]
        for i, branch in enumerate(it.branches):
            if not branch:
                lines += [ind + "  |"] if i else []
                continue
            stmts = carry + self.body(branch, inner, (), ext)
            extras = max(len(self.notes.of(branch[-1]).trailing) - 1, 0)
            stmts, carry = stmts[:len(stmts) - extras], stmts[len(stmts) - extras:]
            if i:
                at = next(j for j, l in enumerate(stmts) if l.strip() and not l.lstrip().startswith("#"))
                stmts[at] = ind + "  | " + stmts[at][len(inner):]
            lines += stmts
        return lines + carry + self.marks(n.end, inner) + [ind + "}"]


def _strip(entries: list) -> list:
    """Leading comments without the blank line before them (a separator is written anyway)."""
    return entries[1:] if entries[:1] == [None] else entries
