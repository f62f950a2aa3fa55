"""The ``.cnn`` writer's items: bodies (runs of items on one line), ``_item_<kind>`` per construct.

See :mod:`cnndsl.syntax.format` for the style. A new construct adds ``_item_<kind>(self, it, ind,
inline)`` here: the item's lines (the first without indentation or label, the others whole),
on one line when ``inline`` allows it; ``braced()`` and ``body()`` write nested bodies with their
comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..backbone.syntax import options
from ..ir import Spec
from .spelling import ITEM_KEYWORDS, expr_text, label_text, located, model_text, name, plain_text, ref_text
from .trivia import Comment, Notes, attach

INDENT = "    "
WIDTH = 100         # lines are wrapped to this width (comments aside)
SEP = "  "          # between items on one line, when their source columns do not apply
INLINE_WIDTH = 80   # without source layout: a braced body is written on one line when it fits this
INLINE_ITEMS = 4    # ... and holds at most this many items

@dataclass
class _Row:
    """A line being filled with items: its text, the first item (columns are relative to it)."""

    text: str
    first: Any
    last: Any


class ItemWriter:
    """Comments, rows and items; :class:`cnndsl.syntax.format._CnnWriter` adds the file."""

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

    def spacing(self, used: int, ref: Any, out_col: int, line: int, col: int, before: Any = None) -> int:
        """The spaces before something at source ``line:col``, ``used`` columns being taken: it
        keeps its column relative to ``ref`` (the span of what was written at ``out_col``) when that
        leaves two spaces, or one where the source had one after ``before``; else SEP."""
        if ref is None or not self.layout or line != ref.line:
            return len(SEP)
        want = out_col + (col - ref.col) - used
        one = before is not None and before.end_line == line and col - before.end_col == 1
        return want if want >= 2 or (want == 1 and one) else len(SEP)

    def commented(self, line: str, c: Comment, ref: Any, out_col: int, offset: int = 0, before: Any = None) -> str:
        """``line`` (which starts at column ``offset``) and the comment ``c`` (see ``spacing``)."""
        return line + " " * self.spacing(offset + len(line), ref, out_col, c.line, c.col, before) + c.text

    def finish(self, line: str, trailing: list, ref: Any, ind: str, out_col: int | None = None,
               before: Any = None) -> list[str]:
        """The last line of an item with its trailing comments (the first on the line, the others
        on lines of their own after it); ``ref`` is written at ``out_col`` (default: ``ind``)."""
        if not trailing:
            return [line]
        col = len(ind) if out_col is None else out_col
        return [self.commented(line, trailing[0], ref, col, 0, before), *(ind + c.text for c in trailing[1:])]

    @staticmethod
    def marks(entries: list, ind: str) -> list[str]:
        """Own-line comments, ``None`` being a blank line."""
        return ["" if c is None else ind + c.text for c in entries]

    def quiet(self, node: Any) -> bool:
        """No comment inside ``node`` (its leading and trailing ones are written outside it)."""
        return not self.notes.any_inside(node)

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

    def pad(self, row: _Row, it: Any, ind: str) -> int:
        here = self.ext(it)
        return self.spacing(len(row.text), self.ext(row.first), len(ind), here.line, here.col, self.ext(row.last)) \
            if here is not None else len(SEP)

    def join(self, row: _Row, it: Any, piece: str, ind: str) -> str | None:
        for p in dict.fromkeys((self.pad(row, it, ind), len(SEP))):
            text = row.text + " " * p + piece
            if len(text) <= self.width:
                return text
        return None

    def close(self, row: _Row, ind: str) -> list[str]:
        return self.finish(row.text, self.notes.of(row.last).trailing, self.ext(row.first), ind,
                           before=self.ext(row.last))

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
            row.text += " " * self.pad(row, it, ind) + piece
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
        lines = [ind + (f"{label_text(label)}: " if label is not None else "") + core[0], *core[1:]]
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
            return [op + "()" if op == "backbone" else op]  # bare `backbone NAME` starts a backbone item
        parts = [expr_text(a) for a in it.args] + [f"{name(k.name, 'argument')}={expr_text(k.value)}"
                                                    for k in it.kwargs]
        return self.call(op, parts, ind, inline)

    def _item_merge(self, it: Any, ind: str, inline: bool) -> list[str]:
        if not it.refs:
            raise ValueError(f"a {it.merge}(...) merge with no references")
        return self.call(it.merge, [ref_text(r.path) for r in it.refs], ind, inline)

    def _item_split(self, it: Any, ind: str, inline: bool) -> list[str]:
        """``x1, x2: chunk(2)``: the part names take the label's place."""
        names = ", ".join(label_text(n, "part") for n in it.names)
        return [f"{names}: {it.how}(" + ", ".join(expr_text(a) for a in it.args) + ")"]

    def _item_from(self, it: Any, ind: str, inline: bool) -> list[str]:
        return [f"from {ref_text(it.ref.path)}"]

    def _item_backbone(self, it: Any, ind: str, inline: bool) -> list[str]:
        """``backbone resnet18(weights = DEFAULT, taps = [layer2, layer3])``."""
        head = "backbone " + model_text(it.model)
        parts = [f"{k} = {plain_text(v)}" for k, v in options(it)]
        parts += [f"{name(k, 'argument')} = {plain_text(v)}" for k, v in it.args]
        return self.call(head, parts, ind, inline) if parts else [head]

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
        lead = len(ind) + (len(label_text(it.name)) + 2 if it.name is not None else 0)
        main_line = ext is not None and all(self.ext(x) is not None and self.ext(x).end_line == ext.line
                                            for x in it.body)
        main = self.one_line(it, it.body, ind, main_line) if quiet else None
        head = ""
        if sc is not None:
            head = "shortcut" + ("" if sc.name is None else " " + label_text(sc.name, "shortcut", {"when"}))
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
