"""Spec IR → YAML text: the YAML twin of :func:`cnndsl.syntax.format.format_cnn`, keeping comments.

Layers are flow mappings on one line (``- {name: conv1, conv: [32, {k: 3}]}``), bodies block lists.
Comments stay with their items as in ``.cnn`` (:mod:`cnndsl.syntax.trivia`): leading ones on their
own lines before the item, a trailing one at the end of its line (at its source column when
formatting YAML to YAML and there is room), a construct's header comment at the end of its first
line, and end comments after the last item of a body, indented under it. A key longer than 128
characters is written as an explicit key (``? key``), which PyYAML reads back (a plain key is
limited to 1,024).

Each item kind has a method ``_yitem_<kind>`` (see :mod:`cnndsl.syntax.format`).
"""

from __future__ import annotations

from typing import Any

from .. import expr as E
from ..ir import BlockDef, NetworkDef, Param, Spec
from .spelling import check_text, expr_text, located, name, ref_text
from .trivia import Comment, attach

SIMPLE_KEY = 128   # longer keys are written as explicit keys (`? key`)
DATA_WIDTH = 100   # a train value longer than this is written as a block collection
_YAML_RESERVED = frozenset({"name", "repeat", "as", "when", "shortcut", "merge", "group", "residual", "parallel",
                            "from", "concat", "add", "multiply"})


def format_yaml(spec: Spec, *, standalone: bool = False) -> str:
    """The YAML twin of :func:`format_cnn` (keys ``imports``, ``blocks``, ``network``, ``train``)."""
    return _YamlWriter(spec).write(standalone)


_DUMPER = None


def _dumper():
    """A SafeDumper that writes strings holding line breaks double-quoted (one line, escaped)."""
    global _DUMPER
    if _DUMPER is None:
        import yaml  # PyYAML is imported only when YAML is written

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data):  # the loader refuses anchors: write shared values out
                return True

        def represent_str(dumper, s):
            check_text(s.replace("\x00", ""))  # a NUL is escaped; a lone surrogate cannot be written
            style = '"' if any(c in s for c in "\n\r\x85\u2028\u2029") else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)

        Dumper.add_representer(str, represent_str)
        _DUMPER = Dumper
    return _DUMPER


def flow(v: Any) -> str:
    """One value in YAML flow style, on one line."""
    import yaml

    text = yaml.dump(v, Dumper=_dumper(), default_flow_style=True, width=1 << 30, sort_keys=False,
                     allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def keyed(key: Any, value: str | None, nested: list[str] = ()) -> list[str]:
    """``key: value`` (or ``key:`` and the nested lines); an explicit ``? key`` when it is long."""
    k = flow(key)
    tail = [] if value is None else [value]
    if len(k) <= SIMPLE_KEY:
        return [" ".join([k + ":", *tail]), *nested]
    return [f"? {k}", " ".join([":", *tail]), *nested]


def comment_text(c: Comment) -> str:
    """A comment as YAML can hold it: characters YAML reads as line breaks or refuses are escaped."""
    return "".join(ch if ch == "\t" or (" " <= ch <= "~") or ("\xa0" <= ch <= "\ud7ff")
                   or ("\ue000" <= ch <= "\ufffd") or ch >= "\U00010000" else f"\\u{ord(ch):04x}" for ch in c.text)


def _ydata(key: Any, v: Any, width: int = DATA_WIDTH) -> list[str]:
    """Plain data: ``key: value`` on one line when it fits, else a block mapping / list."""
    text = flow(v)
    if key is None:
        head = "- "
    else:
        head = flow(key) + ": "
        if len(head) - 2 > SIMPLE_KEY:
            head = "? " + head[:-2] + "\n: "
    if not isinstance(v, (dict, list)) or not v or len(head) + len(text) <= width:
        return (head + text).split("\n")
    if isinstance(v, dict):
        sub = [l for k, x in v.items() for l in _ydata(k, x, width - 2)]
    else:
        sub = [l for x in v for l in _ydata(None, x, width - 2)]
    if key is None:  # a collection inside a list: its first line shares the '- '
        return ["- " + sub[0], *("  " + l for l in sub[1:])]
    return [*head.rstrip().split("\n"), *("  " + l for l in sub)]


def _yexpr(e: E.Expr) -> Any:
    """An expression as a YAML value: numbers and booleans as scalars, lists and mappings as YAML
    collections, anything else as its expression text (a YAML string is parsed as an expression)."""
    kind = type(e)
    if kind is E.Num or kind is E.Bool:
        return e.value
    if kind is E.ListExpr:
        return [_yexpr(i) for i in e.items]
    if kind is E.MapExpr:
        return {k: _yexpr(v) for k, v in e.items}
    return expr_text(e)


def _ypositional(e: E.Expr) -> Any:
    # a mapping among positional arguments would read as the keyword arguments: write it as text
    return expr_text(e) if type(e) is E.MapExpr else _yexpr(e)


def _yparams(params: tuple[Param, ...]) -> str:
    return flow({name(p.name, "parameter"): None if p.default is None else _yexpr(p.default) for p in params})


def _yargs(it: Any) -> Any:
    """``null`` → none; a value → one positional; a list → positionals (+ a final keyword mapping);
    a mapping → keywords (the forms yaml_load.call_args reads)."""
    kwargs = {name(k.name, "argument"): _yexpr(k.value) for k in it.kwargs}
    if not it.args:
        return kwargs or None
    if len(it.args) == 1 and not kwargs and type(it.args[0]) not in (E.ListExpr, E.MapExpr):
        return _yexpr(it.args[0])
    values = [_ypositional(a) for a in it.args]
    return values + [kwargs] if kwargs else values


class _YamlWriter:
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
            fields.append("    params: " + _yparams(b.params))
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
            fields.append("  params: " + _yparams(net.params))
        at = len(fields)
        inp = self.notes.of(("input", id(net)))
        fields += self.marks([c for c in inp.leading if c is not None], "  ")
        dims = [_yexpr(d) for d in net.input]
        if all(type(d) is int and d >= 0 for d in dims):  # the shape form, as in .cnn
            line = "  input: " + flow("x".join(map(str, dims)) if len(dims) > 1 else dims[0])
        else:
            line = "  input: " + flow(dims)
        fields.append(self.commented(line, inp.trailing[0], net.input_span, 2) if inp.trailing else line)
        fields += ["  " + comment_text(c) for c in inp.trailing[1:]]
        inner = "  "
        if net.body:
            fields += ["  layers:", *self.items(net.body, "    ")]
            inner = "    "
        for key, nodes, text_of in (("outputs", net.outputs, lambda r: ref_text(r.path)),
                                    ("freeze", net.freeze, lambda p: p.glob),
                                    ("unfreeze", net.unfreeze, lambda p: p.glob)):
            if nodes:
                notes = [self.notes.of(x) for x in nodes]
                fields += self.marks([c for m in notes for c in m.leading if c is not None], "  ")
                line = f"  {key}: " + flow([text_of(x) for x in nodes])
                trailing = [c for m in notes for c in m.trailing]
                fields.append(self.commented(line, trailing[0], nodes[0].extent or nodes[0].span, len(key) + 5)
                              if trailing else line)
                fields += ["  " + comment_text(c) for c in trailing[1:]]
                inner = "  "
        return self.marks(self.lead(n.leading), "") + self.opened(net, "network:", fields, inner, at,
                                                                  net.extent, 0, pre_ind="  ")

    def train(self, train: Any) -> list[str]:
        if not isinstance(train, dict):
            raise ValueError("the train section must be a mapping")
        n = self.notes.of(("train",))
        lines = []
        for k, v in train.items():
            with located((self.spec.train_spans or {}).get((k,))):
                entry = ["  " + l for l in _ydata(k, v)]
            kn = self.notes.of(("train", k))
            if kn.trailing:
                ref = self.extents.get(("train", k)) if len(entry) == 1 else None
                entry[-1] = self.commented(entry[-1], kn.trailing[0], ref, 2)
            lines += [*self.marks(kn.leading, "  "), *entry, *("  " + comment_text(c) for c in kn.trailing[1:])]
        first = "train:" if train else "train: {}"
        return self.marks(self.lead(n.leading), "") + self.opened(("train",), first, lines, "  ", 0,
                                                                  self.extents.get(("train",)), 0)

    # ------------------------------------------------------------------ items

    def items(self, body: tuple, ind: str) -> list[str]:
        """The entries of a body, their ``-`` at ``ind``."""
        out = []
        for it in body:
            lines = self.item(it, ind)
            if len(lines) == 1:
                out += self.entry(it, lines[0], ind, getattr(it, "extent", None), len(ind) + 2)
            else:
                out += self.marks(self.notes.of(it).leading, ind) + lines
        return out

    def item(self, it: Any, ind: str) -> list[str]:
        """``_yitem_<kind>(it, ind)`` gives the item's lines, or its value (a leaf: one flow line);
        ``_yitem_<kind>(it, None)`` gives its value, for a flow collection."""
        with located(getattr(it, "span", None)):
            out = getattr(self, f"_yitem_{it.kind}")(it, ind)
            if isinstance(out, list) and len(out) == 1:
                out = self.value(it)  # a construct that fits one line reads back as a flow collection
            lines = out if isinstance(out, list) else [ind + "- " + flow(out)]
        return lines

    def value(self, it: Any) -> Any:
        with located(getattr(it, "span", None)):
            out = getattr(self, f"_yitem_{it.kind}")(it, None)
        return out

    def flat(self, it: Any) -> bool:
        """Whether a construct stays a flow collection on one line: it was one in the YAML source and
        holds no comments."""
        ext = getattr(it, "extent", None)
        return (self.layout and ext is not None and ext.file == self.file and ext.line == ext.end_line
                and not self.notes.any_inside(it))

    def meta(self, it: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if it.name is not None:
            meta["name"] = name(it.name, "item")
        if it.repeat is not None:
            meta["repeat"] = _yexpr(it.repeat.count)
            if it.repeat.index is not None:
                meta["as"] = name(it.repeat.index, "repeat index")
        if it.when is not None:
            meta["when"] = _yexpr(it.when)
        return meta

    def _yitem_from(self, it: Any, ind: str | None) -> Any:
        return {"from": ref_text(it.ref.path)}

    def _yitem_layer(self, it: Any, ind: str | None) -> Any:
        meta, args = self.meta(it), _yargs(it)
        op = name(it.op, "layer")
        if args is None and not meta:
            return op  # a bare name is a layer, whatever the name
        if op in _YAML_RESERVED:
            raise ValueError(f"a layer named {op!r} with arguments, a name, repeat or condition cannot be "
                             "written in YAML (as a key it means something else)")
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[op] = args
        return {**d, **meta}

    def _yitem_merge(self, it: Any, ind: str | None) -> Any:
        meta = self.meta(it)
        if not it.refs:
            raise ValueError(f"a {it.merge}(...) merge with no references")
        refs = [ref_text(r.path) for r in it.refs]
        d = {"name": meta.pop("name")} if "name" in meta else {}
        d[it.merge] = refs[0] if len(refs) == 1 else refs
        return {**d, **meta}

    def compound(self, it: Any, ind: str, fields: list[str], body_at: int | None, inner: str = "    ",
                 end: bool = True) -> list[str]:
        """A construct with a body as a list entry: its meta keys, then ``fields`` (whole lines at
        ``ind + '  '``; its first item is ``fields[body_at]``, its items' ``-`` at ``ind + inner``)."""
        lines = [f"{ind}  {k}: {flow(v)}" for k, v in self.meta(it).items()] + fields
        at = None if body_at is None else body_at + len(lines) - len(fields) - 1
        return self.opened(it, ind + "- " + lines[0][len(ind) + 2:], lines[1:], ind + inner, at, it.extent,
                           len(ind) + 2, end)

    def sub(self, key: str, body: tuple, ind: str) -> list[str]:
        """``key:`` and the entries of ``body`` under it (``ind``: where ``key`` goes)."""
        if not body:
            return [f"{ind}{key}: []"]
        return [f"{ind}{key}:", *self.items(body, ind + "  ")]

    def _yitem_group(self, it: Any, ind: str | None) -> Any:
        if ind is None or self.flat(it):
            return {**self.meta(it), "group": [self.value(x) for x in it.body]}
        return self.compound(it, ind, self.sub("group", it.body, ind + "  "), 1 if it.body else None)

    def _yitem_residual(self, it: Any, ind: str | None) -> Any:
        if ind is None or self.flat(it):
            sc = it.shortcut
            value = {**self.meta(it), "residual": [self.value(x) for x in it.body]}
            if sc is not None:
                value["shortcut"] = {**({} if sc.name is None else {"name": name(sc.name, "shortcut")}),
                                     **({} if sc.when is None else {"when": _yexpr(sc.when)}),
                                     **({"layers": [self.value(x) for x in sc.body]} if sc.body else {})}
            return value
        n = self.notes.of(it)
        lines = self.sub("residual", it.body, ind + "  ") + self.marks(n.end, ind + "    ")
        sc = it.shortcut
        if sc is not None:
            fields = []
            if sc.name is not None:
                fields.append(f"{ind}    name: " + flow(name(sc.name, "shortcut")))
            if sc.when is not None:
                fields.append(f"{ind}    when: " + flow(_yexpr(sc.when)))
            at = None
            if sc.body:
                at = len(fields) + 1
                fields += self.sub("layers", sc.body, ind + "    ")
            head = f"{ind}  shortcut:" if fields else f"{ind}  shortcut: {{}}"
            lines += self.opened(sc, head, fields, ind + ("      " if sc.body else "    "), at, sc.extent,
                                 len(ind) + 2, after=n.trailing)  # the residual's trailing ones end it
        else:
            lines += self.marks(n.trailing, ind + "    ")
        # its end comments (written above) and its header ones go before the shortcut
        return self.compound(it, ind, lines, 1, end=False)

    def _yitem_parallel(self, it: Any, ind: str | None) -> Any:
        if ind is None or self.flat(it):
            return {**self.meta(it), "merge": it.merge,
                    "parallel": [[self.value(x) for x in b] for b in it.branches]}
        lines = [f"{ind}  merge: {it.merge}", f"{ind}  parallel:"]
        first, carry = None, []
        for b in it.branches:
            if not b:
                lines.append(f"{ind}    - []")
                continue
            sub = carry + self.items(b, ind + "      ")
            # comments after a branch's last entry belong before the next entry, which may come
            # after empty branches: they are carried over those
            last = self.notes.of(b[-1])
            extras = max(len(last.header + last.trailing) - 1, 0) if len(self.item(b[-1], ind)) == 1 else 0
            sub, carry = sub[:len(sub) - extras], sub[len(sub) - extras:]
            at = next(j for j, l in enumerate(sub) if l.startswith(ind + "      - "))
            first = len(lines) + at if first is None else first
            sub[at] = f"{ind}    - " + sub[at][len(ind) + 6:]
            lines += sub
        if not it.branches:
            lines[-1] += " []"
        return self.compound(it, ind, lines + carry, first, "      ")
