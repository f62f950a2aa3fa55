"""Spec IR → YAML text: the YAML twin of :func:`cnndsl.syntax.format.format_cnn`, keeping comments.

Layers are flow mappings on one line (``- {name: conv1, conv: [32, {k: 3}]}``), bodies block lists.
Comments stay with their items as in ``.cnn`` (:mod:`cnndsl.syntax.trivia`): leading ones on their
own lines before the item, a trailing one at the end of its line (at its source column when
formatting YAML to YAML and there is room), a construct's header comment at the end of its first
line, and end comments after the last item of a body, indented under it. A key longer than 128
characters is written as an explicit key (``? key``), which PyYAML reads back (a plain key is
limited to 1,024).

Each item kind has a method ``_yitem_<kind>`` (:mod:`cnndsl.syntax.format_yaml_items`).
"""

from __future__ import annotations

from typing import Any

from ..ir import BlockDef, Init, NetworkDef, Spec
from .format_yaml_items import YamlItems
from .spelling import located, name, ref_path
from .trivia import Comment, attach
from .yaml_text import comment_text, flow, keyed, yaml_data, yexpr, yparams

__all__ = ["format_yaml"]


def format_yaml(spec: Spec, *, standalone: bool = False) -> str:
    """The YAML twin of :func:`format_cnn` (keys ``imports``, ``blocks``, ``network``, ``train``)."""
    return _YamlWriter(spec).write(standalone)


class _YamlWriter(YamlItems):
    """Every method returns whole lines (with their indentation); ``ind`` is where an entry's
    ``-`` (or a mapping's keys) start."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.notes = attach(spec)
        trivia = spec.trivia
        self.layout = trivia is not None and trivia.syntax == "yaml"
        self.file = trivia.file if trivia is not None else None
        self.extents = (trivia.extents or {}) if trivia is not None else {}

    # ------------------------------------------------------------------ comments

    def commented(self, line: str, c: Comment, ref: Any, out_col: int) -> str:
        """``line`` and ``c``: at its source column relative to ``ref`` (written at ``out_col``) when
        formatting YAML to YAML leaves room, else two spaces after the code."""
        pad = 2
        if ref is not None and self.layout and ref.file == self.file and c.line == ref.line:
            want = out_col + (c.col - ref.col) - len(line)
            pad = want if want >= 1 else pad
        return line + " " * pad + comment_text(c)

    @staticmethod
    def marks(entries: list, ind: str) -> list[str]:
        return ["" if c is None else ind + comment_text(c) for c in entries]

    def entry(self, key: Any, line: str, ind: str, ref: Any, out_col: int) -> list[str]:
        """A one-line entry with its leading comments before it and its trailing ones after it (the
        first at the end of the line, the others on lines of their own)."""
        n = self.notes.of(key)
        trailing = n.header + n.trailing  # a construct on one line: its header comments trail it
        if trailing:
            line = self.commented(line, trailing[0], ref, out_col)
        return [*self.marks(n.leading, ind), line, *(ind + comment_text(c) for c in trailing[1:])]

    def opened(self, key: Any, first: str, rest: list[str], inner: str, body_at: int | None,
               ref: Any, out_col: int, end: bool = True, after: list = (), pre_ind: str | None = None) -> list[str]:
        """A construct of several lines: its header comments end its first line or come right
        before its first item (``rest[body_at]``, at ``pre_ind``, default ``inner``, the
        indentation of its items); its end comments, then its trailing ones (YAML has no closing
        line for them) and ``after``, follow its last line, at ``inner`` (``end=False``: the caller
        writes its end comments)."""
        n = self.notes.of(key)
        if n.header:
            first = self.commented(first, n.header[0], ref, out_col)
        at = len(rest) if body_at is None else body_at
        pre = [(inner if body_at is None or pre_ind is None else pre_ind) + comment_text(c) for c in n.header[1:]]
        tail = (n.end + n.trailing if end else []) + list(after)
        return [first, *rest[:at], *pre, *rest[at:], *self.marks(tail, inner)]

    # ------------------------------------------------------------------ the file

    def write(self, standalone: bool) -> str:
        from .format import own_blocks

        spec = self.spec
        out: list[list[str]] = []
        if spec.imports and not standalone:
            out.append(self.imports(spec.imports))
        blocks = own_blocks(spec, standalone)
        if blocks:
            lines = ["blocks:"]
            for i, b in enumerate(blocks):
                lines += [""] if i else []
                with located(b.span):
                    lines += self.block(b)
            above = self.marks(self.lead(self.notes.of(blocks[0]).leading), "")  # went above `blocks:`
            out.append(above + lines)
        if spec.network is not None:
            with located(spec.network.span):
                out.append(self.network(spec.network))
        if spec.train is not None:
            with located((spec.train_spans or {}).get(())):
                out.append(self.train(spec.train))
        text: list[str] = []
        for lines in out:
            text += [""] if text else []
            text += lines
        text += self.marks(self.notes.spec_end, "")
        return "\n".join(text).strip("\n") + "\n"

    def imports(self, imports: tuple) -> list[str]:
        """``imports: [a, b]`` (comments before the first import go above it, trailing ones after
        the list), or one import per line when comments sit between them."""
        first = self.marks(self.lead(self.notes.of(imports[0]).leading), "")
        if any(self.notes.of(i).leading for i in imports[1:]):
            lines = [l for i in imports[1:] for l in self.entry(i, "  - " + flow(i.path), "  ", i.span, 4)]
            return first + self.entry((imports[0],), "imports:", "", None, 0)[:1] + \
                self.entry(imports[0], "  - " + flow(imports[0].path), "  ", imports[0].span, 4)[len(first):] + lines
        trailing = [c for i in imports for c in self.notes.of(i).trailing]
        line = "imports: " + flow([i.path for i in imports])
        if trailing:
            line = self.commented(line, trailing[0], imports[0].span, 10)
        return first + [line, *(comment_text(c) for c in trailing[1:])]

    @staticmethod
    def lead(entries: list) -> list:
        return entries[1:] if entries[:1] == [None] else entries

    def block(self, b: BlockDef) -> list[str]:
        n = self.notes.of(b)
        head = ["  " + l for l in keyed(name(b.name, "block"), None)]
        fields = []
        if b.params:
            fields.append("    params: " + yparams(b.params))
        at = None
        if b.body:
            fields.append("    layers:")
            at = len(head) - 1 + len(fields)
            fields += self.items(b.body, "      ")
        if not fields:
            head[-1] += " {}"
        lead = self.marks(self.lead(n.leading), "  ") if b is not self.spec.blocks[0] else []
        return lead + self.opened(b, head[0], head[1:] + fields, "      " if b.body else "    ", at, b.extent, 2)

    def network(self, net: NetworkDef) -> list[str]:
        n = self.notes.of(net)
        fields = ["  name: " + flow(name(net.name, "network"))]
        if net.params:
            fields.append("  params: " + yparams(net.params))
        if net.extends is not None:
            fields.append("  extends: " + flow(self.value(net.extends)))
        at = len(fields)
        if net.input:  # none: inherited from the network it extends
            fields += self.input_lines(net)
        inner = "  "
        if net.body:
            fields += ["  layers:", *self.items(net.body, "    ")]
            inner = "    "
        init = (net.init,) if net.init is not None else ()
        # out_col: where the first node's extent is written (in the list after `key: [`; init: at its key)
        for key, nodes, value, out_col in (
                ("outputs", net.outputs, [ref_path(r.path) for r in net.outputs], len("outputs") + 5),
                ("freeze", net.freeze, [p.glob for p in net.freeze], len("freeze") + 5),
                ("unfreeze", net.unfreeze, [p.glob for p in net.unfreeze], len("unfreeze") + 5),
                ("init", init, _init_value(net.init), 2)):
            if nodes:
                notes = [self.notes.of(x) for x in nodes]
                fields += self.marks([c for m in notes for c in m.leading if c is not None], "  ")
                line = f"  {key}: " + flow(value)
                trailing = [c for m in notes for c in m.trailing]
                fields.append(self.commented(line, trailing[0], nodes[0].extent or nodes[0].span, out_col)
                              if trailing else line)
                fields += ["  " + comment_text(c) for c in trailing[1:]]
                inner = "  "
        return self.marks(self.lead(n.leading), "") + self.opened(net, "network:", fields, inner, at,
                                                                  net.extent, 0, pre_ind="  ")

    def input_lines(self, net: NetworkDef) -> list[str]:
        inp = self.notes.of(("input", id(net)))
        lines = self.marks([c for c in inp.leading if c is not None], "  ")
        dims = [yexpr(d) for d in net.input]
        if all(type(d) is int and d >= 0 for d in dims):  # the shape form, as in .cnn
            line = "  input: " + flow("x".join(map(str, dims)) if len(dims) > 1 else dims[0])
        else:
            line = "  input: " + flow(dims)
        lines.append(self.commented(line, inp.trailing[0], net.input_span, 2) if inp.trailing else line)
        return lines + ["  " + comment_text(c) for c in inp.trailing[1:]]

    def train(self, train: Any) -> list[str]:
        if not isinstance(train, dict):
            raise ValueError("the train section must be a mapping")
        n = self.notes.of(("train",))
        lines = []
        for k, v in train.items():
            with located((self.spec.train_spans or {}).get((k,))):
                entry = ["  " + l for l in yaml_data(k, v)]
            kn = self.notes.of(("train", k))
            if kn.trailing:
                ref = self.extents.get(("train", k)) if len(entry) == 1 else None
                entry[-1] = self.commented(entry[-1], kn.trailing[0], ref, 2)
            lines += [*self.marks(kn.leading, "  "), *entry, *("  " + comment_text(c) for c in kn.trailing[1:])]
        first = "train:" if train else "train: {}"
        return self.marks(self.lead(n.leading), "") + self.opened(("train",), first, lines, "  ", 0,
                                                                  self.extents.get(("train",)), 0)


def _init_value(init: Init | None) -> Any:
    """``init: runs/x/best.pt`` or ``init: {source: ..., strict: false}``."""
    if init is None or init.strict:
        return None if init is None else init.source
    return {"source": init.source, "strict": False}
