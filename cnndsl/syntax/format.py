"""Spec IR → ``.cnn`` text: the inverse of the parser, keeping comments and the user's line breaks.

``format_cnn(spec)`` round-trips (``canonical_spec(parse(format_cnn(s))) == canonical_spec(s)``) and is
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

Each item kind has a method ``_item_<kind>`` (:mod:`cnndsl.syntax.format_items`) and
``_yitem_<kind>`` (:mod:`cnndsl.syntax.format_yaml_items`): a new construct adds one to each.
"""

from __future__ import annotations

from typing import Any

from ..ir import BlockDef, Init, NetworkDef, Param, Spec
from .format_data import data, data_key, format_value
from .format_items import INDENT, WIDTH, ItemWriter
from .spelling import KEYWORDS, expr_text, located, name, plain_text, quote, ref_text

__all__ = ["format_cnn", "format_value", "format_yaml", "own_blocks"]


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


class _CnnWriter(ItemWriter):
    """The file: imports, block and network definitions, the train section."""

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
        if getattr(d, "extends", None) is not None:
            head += " extends " + self._item_layer(d.extends, "", True)[0]
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
        if not net.input and net.extends is None:
            raise ValueError(f"network {net.name!r} has an empty input shape, which .cnn cannot write")
        lines = self.input_line(net) if net.input else []  # none: inherited from the network it extends
        lines += self.body(net.body, INDENT)
        for kw, nodes, text_of in (("output", net.outputs, lambda r: ref_text(r.path)),
                                   ("freeze", net.freeze, lambda p: plain_text(p.glob)),    # freeze all,
                                   ("unfreeze", net.unfreeze, lambda p: plain_text(p.glob))):  # "layer4.*"
            if nodes:
                lines += self.statement(kw, nodes, text_of)
        if net.init is not None:  # its span starts at `init`
            lines += self.statement("init", (net.init,), _init_text, len(INDENT))
        return lines

    def input_line(self, net: NetworkDef) -> list[str]:
        dims = net.input
        if all(type(d).__name__ == "Num" and type(d.value) is int and d.value >= 0 for d in dims):
            text = "input " + "x".join(str(d.value) for d in dims)
        else:
            text = "input(" + ", ".join(expr_text(d) for d in dims) + ")"
        n = self.notes.of(("input", id(net)))
        lines = self.marks([c for c in n.leading if c is not None], INDENT)
        return lines + self.finish(INDENT + text, n.trailing, net.input_span if self.layout else None, INDENT)

    def statement(self, kw: str, nodes: tuple, text_of, out_col: int | None = None) -> list[str]:
        """``output a, b`` / ``freeze "g"``: one line, with the comments of every part (trailing
        ones at their column relative to the first part's span, written at ``out_col``, default:
        after ``kw``)."""
        notes = [self.notes.of(x) for x in nodes]
        lines = self.marks([c for n in notes for c in n.leading if c is not None], INDENT)
        trailing = [c for n in notes for c in n.trailing]
        first = nodes[0].span if self.layout else None
        text = INDENT + f"{kw} " + ", ".join(text_of(x) for x in nodes)
        col = len(INDENT) + len(kw) + 1 if out_col is None else out_col
        return lines + self.finish(text, trailing, first, INDENT, col)

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


def _init_text(init: Init) -> str:
    """``"runs/x/best.pt"`` or ``"..." (strict = false)`` (after ``init``)."""
    return quote(init.source) + ("" if init.strict else " (strict = false)")


def _strip(entries: list) -> list:
    """Leading comments without the blank line before them (a separator is written anyway)."""
    return entries[1:] if entries[:1] == [None] else entries
